"""A local Airflow on loopback for one machine: scheduler, DAG processor, triggerer and the API
server with its UI (``airflow standalone``, SQLite, LocalExecutor), with the project's DAGs and
data home. ``make airflow`` runs it; the coordinator watches scheduled loads in the UI.

    python -m pipeline.airflow_server [--home DIR] [--port 8793]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.airflow_local import configure, migrate
from pipeline.settings import DataHome

DEFAULT_PORT = 8780  # not 8080 (often taken), nor 8793/8794 (Airflow's own log servers)


def server_environment(home: DataHome, port: int) -> dict[str, str]:
    """Airflow's settings for a server on ``127.0.0.1:port`` (also set in this process)."""
    configure(home)
    os.environ.pop("SYNK_TASK_RETRIES", None)  # a real scheduler retries transient faults
    venv_bin = str(Path(sys.executable).parent)
    settings = {
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        # Task processes reach the API server here; without it every task fails ("connection refused").
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # scheduled loads run from the start
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    os.environ.update(settings)
    return dict(os.environ)


def password_file(home: DataHome) -> Path:
    """Where the simple auth manager of ``airflow standalone`` writes the admin's password."""
    return home.root / "airflow" / "simple_auth_manager_passwords.json.generated"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="data home")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    home = DataHome.resolve(args.home).ensure()
    environment = server_environment(home, args.port)
    migrate()
    print(f"Airflow UI: http://127.0.0.1:{args.port}/  (login: admin; password in {password_file(home)})", flush=True)
    print(f"Data home: {home.root}; drops go in {home.landing}. Stop with Ctrl-C.", flush=True)
    airflow = Path(sys.executable).with_name("airflow")
    os.execve(str(airflow), [str(airflow), "standalone"], environment)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
