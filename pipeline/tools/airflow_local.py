"""Run the project's DAGs in an embedded Airflow: SQLite metadata under the data home, no server.

``make demo`` and the DAG tests use this. Airflow reads its configuration when first imported,
so ``configure`` must run before anything imports ``airflow``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from pipeline.settings import PROJECT_ROOT, STORE_WRITER_POOL, DataHome

DAGS_FOLDER = PROJECT_ROOT / "dags"


def configure(home: DataHome) -> dict[str, str]:
    """Point Airflow at the project's DAGs and a SQLite database under ``<home>/airflow``."""
    airflow_home = home.root / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    settings = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "SYNK_HOME": str(home.root),
        "GX_ANALYTICS_ENABLED": "False",
        # dag.test() waits out a retry's delay in the foreground: embedded runs report a failure at once.
        "SYNK_TASK_RETRIES": "0",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
    }
    os.environ.update(settings)
    return settings


def _airflow_cli(*args: str) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), *args], check=True, capture_output=True, text=True, env=os.environ.copy())


# Airflow's pools: (name, slots, description). docker-compose.yml's airflow-init creates the same (a test checks).
POOLS = ((STORE_WRITER_POOL, 1, "One writer of the DuckDB staging store at a time"),)


def migrate() -> None:
    """Create or upgrade the metadata database, and the one-slot pool every store writer shares."""
    _airflow_cli("db", "migrate")
    for name, slots, description in POOLS:
        _airflow_cli("pools", "set", name, str(slots), description)


def load_dags() -> dict[str, object]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return dict(bag.dags)


def run_dag(dag: object, logical_date: datetime | None = None, conf: dict | None = None) -> str:
    """Run a DAG once through Airflow's ``dag.test()``; return the run's final state."""
    return run_dag_tasks(dag, logical_date, conf)[0]


def run_dag_tasks(
    dag: object, logical_date: datetime | None = None, conf: dict | None = None
) -> tuple[str, dict[str, str]]:
    """Run a DAG once through ``dag.test()``; the run's final state and each task's (e.g. skipped)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    kwargs: dict[str, object] = {}
    if logical_date is not None:
        kwargs["logical_date"] = logical_date
    if conf:
        kwargs["run_conf"] = conf
    run = dag.test(**kwargs)  # type: ignore[attr-defined]
    with create_session() as session:
        tasks = session.query(TaskInstance.task_id, TaskInstance.state).filter_by(dag_id=run.dag_id, run_id=run.run_id)
        states = {task_id: str(state) for task_id, state in tasks}
    return str(run.state), states


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the three DAGs once in an embedded Airflow.")
    parser.add_argument("--home", help="data home")
    parser.add_argument("--report-date", help="logical date of the report run (default: start of next quarter)")
    args = parser.parse_args(argv)
    home = DataHome.resolve(args.home).ensure()
    configure(home)
    migrate()
    dags = load_dags()
    from pipeline.quarters import current_quarter

    quarter = current_quarter()
    year, q = int(quarter[:4]), int(quarter[-1])
    report_date = (
        datetime.fromisoformat(args.report_date)
        if args.report_date
        else datetime(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1, 6)
    )
    states = {}
    states["ingest_clinic_exports"] = run_dag(dags["ingest_clinic_exports"])
    states["fit_outcome_models"] = run_dag(dags["fit_outcome_models"])
    # The current quarter has not ended: the demo's report is provisional (published/provisional/).
    states["publish_quarterly_report"] = run_dag(
        dags["publish_quarterly_report"],
        logical_date=report_date.astimezone(),
        conf={"quarter": quarter, "provisional": True},
    )
    for dag_id, state in states.items():
        print(f"{dag_id}: {state}")
    return 0 if all(s.endswith("success") for s in states.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
