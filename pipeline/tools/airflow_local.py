"""Run the project's DAGs in an embedded Airflow: SQLite metadata under the data home, no server.

``make demo`` and the DAG tests use this. Airflow reads its configuration when first imported,
so ``configure`` must run before anything imports ``airflow``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings
from datetime import datetime
from pathlib import Path

from pipeline.progress import step
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
        # The DAGs these runs register come up unpaused: `make airflow` afterwards schedules them.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
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


def unpause(dag_ids: list[str]) -> None:
    """Unpause these DAGs in the metadata database (a data home whose demo ran before they came up
    unpaused has them paused, and the scheduler of `make airflow` would run none of them)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id.in_(dag_ids)).update(
            {DagModel.is_paused: False}, synchronize_session=False
        )


def run_dag(dag: object, logical_date: datetime | None = None, conf: dict | None = None) -> str:
    """Run a DAG once through Airflow's ``dag.test()``; return the run's final state."""
    return run_dag_tasks(dag, logical_date, conf)[0]


def run_dag_tasks(
    dag: object, logical_date: datetime | None = None, conf: dict | None = None
) -> tuple[str, dict[str, str]]:
    """Run a DAG once through ``dag.test()``; the run's final state and each task's (e.g. skipped)."""
    state, states, _ = run_dag_results(dag, logical_date, conf)
    return state, states


def run_dag_results(
    dag: object, logical_date: datetime | None = None, conf: dict | None = None
) -> tuple[str, dict[str, str], dict[str, object]]:
    """Run a DAG once through ``dag.test()``: the run's final state, each task's state, and each task's
    return value (its XCom; absent for a task that returned nothing or was skipped)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
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
        query = XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, key="return_value")
        values = {xcom.task_id: XComModel.deserialize_value(xcom) for xcom in session.scalars(query)}
    return str(run.state), states, values


def quiet_third_party_warnings() -> None:
    """Airflow's own modules warn of their dependencies' deprecations (Starlette, SQLAlchemy) on every
    run; on the demo's console they read as faults of the pipeline, and a coordinator can do nothing
    about them. This tool only (the tests keep every warning)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
    warnings.filterwarnings("ignore", message=r".*is deprecated", category=UserWarning)  # StarletteDeprecationWarning


def _default_report_date(quarter: str) -> datetime:
    year, q = int(quarter[:4]), int(quarter[-1])
    return datetime(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1, 6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the three DAGs once in an embedded Airflow (what `make demo` does after generating a drop).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--home", help="data home (default: $SYNK_HOME, else data/ in the checkout)")
    parser.add_argument("--report-date", help="logical date of the report run (default: start of next quarter)")
    args = parser.parse_args(argv)
    home = DataHome.resolve(args.home).ensure()
    configure(home)
    quiet_third_party_warnings()
    with step("set up Airflow's metadata database and read the DAGs", plain=True):
        migrate()
        dags = load_dags()
    quiet_third_party_warnings()  # again: importing Airflow may have added filters of its own in front
    from pipeline.quarters import current_quarter
    from pipeline.stages import latest_model_run, models_up_to_date, numerical_warnings_line

    quarter = current_quarter()
    report_date = datetime.fromisoformat(args.report_date) if args.report_date else _default_report_date(quarter)
    states: dict[str, str] = {}
    with step("load new drops (archive, screen, validate) and publish the warehouse", plain=True):
        states["ingest_clinic_exports"], ingest_tasks, _ = run_dag_results(dags["ingest_clinic_exports"])
    published = ingest_tasks.get("publish_warehouse") == "success"
    # Under the scheduler the warehouse Asset triggers the models only when the data changed; here too.
    fitted = False
    if published or not models_up_to_date(home):
        with step("fit the comparative models", plain=True):
            states["fit_outcome_models"], _, fits = run_dag_results(dags["fit_outcome_models"])
        fitted = True
        models = fits.get("fit_models")
        if isinstance(models, dict) and models.get("numerical_warnings"):
            print(f"  {numerical_warnings_line(models['numerical_warnings'])}", file=sys.stderr, flush=True)
    # The current quarter has not ended: the demo's report is provisional (published/provisional/).
    with step(f"write the provisional {quarter} report (disclosure audit, figures, PDF)", plain=True):
        states["publish_quarterly_report"], _, reports = run_dag_results(
            dags["publish_quarterly_report"],
            logical_date=report_date.astimezone(),
            conf={"quarter": quarter, "provisional": True},
        )
    unpause(list(dags))  # `make airflow` afterwards schedules them
    built = reports.get("build_as_of")
    report_unchanged = isinstance(built, dict) and bool(built.get("report"))
    for dag_id, state in states.items():
        print(f"{dag_id}: {state}")
    succeeded = all(s.endswith("success") for s in states.values())
    if succeeded and not published and not fitted and report_unchanged:
        run = latest_model_run(home)
        since = f"run {run[0]} ({run[1]:%Y-%m-%d %H:%M} UTC)" if run else "the last run"
        print(f"Nothing new since {since}: the warehouse, models and report are up to date.")
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
