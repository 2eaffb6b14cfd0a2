"""A local Airflow on loopback for one machine: the API server with its UI, then the scheduler, DAG
processor and triggerer (SQLite, LocalExecutor, the simple auth manager), with the project's DAGs
and data home. ``make airflow`` runs it; the coordinator watches scheduled loads in the UI.

    python -m pipeline.tools.airflow_server [--home DIR] [--port 8780]

Unlike ``airflow standalone``, which starts every component at once, the scheduler starts only
once the API server answers: a task process reports to the API server from its first second, and
one started before it is up dies with "connection refused" and is retried minutes later.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from pipeline.models.parallel import available_cores
from pipeline.settings import DataHome
from pipeline.tools.airflow_local import configure, migrate

DEFAULT_PORT = 8780  # not 8080 (often taken), nor 8793/8794 (Airflow's own log servers)
API_SERVER_TIMEOUT = 180.0  # seconds: a first start compiles nothing, but a slow disk takes a while
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# Started in this order once the API server answers.
AFTER_API_SERVER = ("scheduler", "dag-processor", "triggerer")


def server_environment(home: DataHome, port: int) -> dict[str, str]:
    """Airflow's settings for a server on ``127.0.0.1:port`` (also set in this process)."""
    configure(home)
    os.environ.pop("SYNK_TASK_RETRIES", None)  # a real scheduler retries transient faults
    venv_bin = str(Path(sys.executable).parent)
    settings = {
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # LocalExecutor starts this many worker processes up front (32 by default: about 1 GB idle);
        # one per core is as many tasks as the machine runs at once, and the store takes one writer.
        "AIRFLOW__CORE__PARALLELISM": str(available_cores()),
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        # The links in failure notices (a task instance's log) point here.
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}/",
        # Task processes reach the API server here; without it every task fails ("connection refused").
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # scheduled loads run from the start
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    os.environ.update(settings)
    return dict(os.environ)


def free_port() -> int:
    """A free port on loopback, never one of Airflow's fixed log-server ports (8793, 8794)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in (8793, 8794):
            return port


def password_file(home: DataHome) -> Path:
    """Where the simple auth manager writes the admin's generated password."""
    return home.root / "airflow" / "simple_auth_manager_passwords.json.generated"


def api_server_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/version", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Components:
    """Airflow's components as child processes, their output prefixed with their name."""

    def __init__(self, environment: dict[str, str], on_line: Callable[[str, str], None] | None = None) -> None:
        self.environment = environment
        self.on_line = on_line  # called with (name, line) for each line a component prints
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.airflow = str(Path(sys.executable).with_name("airflow"))

    def start(
        self, name: str, command: list[str] | None = None, environment: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``airflow <name>`` (or ``airflow <command...>``) under ``name``, replacing one that stopped."""
        # Each in a process group of its own: a Ctrl-C reaches this process only, which stops them in order,
        # and what a component leaves behind (LocalExecutor's workers ignore SIGTERM) goes with its group.
        process = subprocess.Popen(
            [self.airflow, *(command or [name])],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment or self.environment,
            start_new_session=True,
        )
        self.processes[name] = process
        threading.Thread(target=self.relay, args=(name, process), daemon=True).start()
        return process

    def relay(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            print(f"{name:<13} | {line}", flush=True)
            if self.on_line is not None:
                self.on_line(name, line)

    def exited(self) -> str | None:
        """The name of a component that has stopped, if any."""
        return next((name for name, p in self.processes.items() if p.poll() is not None), None)

    def stop(self) -> None:
        for process in reversed(self.processes.values()):  # the scheduler before the API server it reports to
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for process in self.processes.values():  # whatever is left of each component's group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


def serve(home: DataHome, port: int) -> int:
    """Run the components until Ctrl-C (or SIGTERM) or until one of them stops; return the exit code:
    0 when stopped on purpose, 1 when a component stopped by itself."""
    environment = server_environment(home, port)
    migrate()
    components = Components(environment)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    # Ctrl-C (or SIGTERM) reaches this process: it stops the components, each in its own process group,
    # and ends with 0, as a stop on purpose is not a failure (`make airflow` then ends quietly).
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def stopped_by_itself() -> str | None:
        """A component that stopped while nobody asked (a signal sent to it as well, say by a terminal that
        signals every process, is given a moment to be seen here before its stop is called a fault)."""
        stopped = components.exited()
        return None if stopped is None or stopping.wait(1) else stopped

    try:
        components.start("api-server")
        deadline = time.monotonic() + API_SERVER_TIMEOUT
        while not api_server_answers(port):
            if stopping.is_set():
                return 0
            if stopped_by_itself() or time.monotonic() > deadline:
                print("The API server did not start: see its lines above.", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.5)
        print(f"synk          | The API server answers on port {port}: starting the scheduler.", flush=True)
        for name in AFTER_API_SERVER:
            components.start(name)
        print(f"Airflow UI: http://127.0.0.1:{port}/  (login: admin; password in {password_file(home)})", flush=True)
        print(f"Data home: {home.root}; drops go in {home.landing}. Stop with Ctrl-C.", flush=True)
        while not stopping.is_set():
            stopped = stopped_by_itself()
            if stopped:
                print(f"Airflow's {stopped} stopped: see its lines above; stopping the rest.", file=sys.stderr)
                return 1
            stopping.wait(1)
        return 0
    finally:
        if stopping.is_set():
            print("synk          | Stopping Airflow.", flush=True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        components.stop()
        if stopping.is_set():
            print("synk          | Airflow stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="data home")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    home = DataHome.resolve(args.home).ensure()
    return serve(home, args.port)


if __name__ == "__main__":
    sys.exit(main())
