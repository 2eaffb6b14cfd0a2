"""Fit the comparative models whenever a new warehouse is published."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, dag, task

from pipeline.notify import CoordinatorNotifier
from pipeline.settings import DAG_OWNER, STORE_WRITER_POOL, WAREHOUSE_ASSET, task_retries, task_retry_delay

DOC = """
### Fit comparative models

Triggered by each publication of the warehouse. Fits single vs combined treatment models on
the published tables, stores the estimates with their run record (data snapshot, settings,
code and package versions), and republishes the warehouse with them.

**When it fails**: check the task log for the model that failed; the previous estimates stay
published. Rerun the DAG once the cause is fixed: the same data and settings give the same
numbers. The `check_estimates` task fails when the run fitted no estimate at all, and says why
(no analysable patient, or no group large enough); once, until the site's next drop.
"""


@dag(
    dag_id="fit_outcome_models",
    schedule=[Asset(WAREHOUSE_ASSET)],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["synkinesis", "models"],
    doc_md=DOC,
    default_args={
        "owner": DAG_OWNER,
        "retries": task_retries(1),
        "retry_delay": task_retry_delay(minutes=5),
        "on_failure_callback": CoordinatorNotifier(),  # off unless SYNK_NOTIFY_* is set
    },
)
def fit_outcome_models() -> None:
    @task(pool=STORE_WRITER_POOL)
    def fit_models() -> dict:
        from pipeline.settings import DataHome
        from pipeline.stages import fit_models as fit

        return fit(DataHome.resolve())

    @task(retries=0)
    def check_estimates(models: dict) -> None:
        from pipeline.stages import raise_no_estimates

        raise_no_estimates(models, once=True)  # refitted on every hourly publication: told once

    check_estimates(fit_models())


fit_outcome_models()
