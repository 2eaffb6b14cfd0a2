"""Load clinic exports from the landing directory into the staging store and publish the warehouse."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from pipeline.notify import CoordinatorNotifier
from pipeline.settings import DAG_OWNER, STORE_WRITER_POOL, WAREHOUSE_ASSET, task_retries, task_retry_delay

DOC = """
### Load clinic exports

Every hour (and whenever a coordinator triggers it), each new drop folder in the landing
directory is archived with its checksum, screened for identifiers, validated against the
clinic-export contract, and loaded: valid rows into the staging store, failing rows into
quarantine with their rule. The warehouse is then rebuilt and published, which triggers
the models DAG; when no new data was loaded, `publish_warehouse` is skipped and the models
are not refitted.

**When it fails**: the `check_refusals` task says which drop was rejected or held and how to
fix it (`synk status` shows the same). Other drops of the run are loaded all the same. Fix
the export and send it again; for a held full snapshot, confirm it with the `confirm_retire`
param or `"confirm_retire": true` in its manifest. It fails too when a load went through but
went wrong: a file with more than 5% of its rows quarantined (rule, count, share), or a
warehouse with fewer analysable patients than before; `synk status` lists these first.
"""


@dag(
    dag_id="ingest_clinic_exports",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["synkinesis", "ingest"],
    doc_md=DOC,
    default_args={
        "owner": DAG_OWNER,
        "retries": task_retries(2),
        "retry_delay": task_retry_delay(minutes=2),
        "on_failure_callback": CoordinatorNotifier(),  # off unless SYNK_NOTIFY_* is set
    },
    params={
        # Optional (null allowed): the trigger form accepts it empty, and empty means every new drop.
        "drop": Param(None, type=["null", "string"], description="Load only this drop id (empty: every new drop)."),
        "confirm_retire": Param(False, type="boolean", description="Confirm a held full snapshot."),
    },
)
def ingest_clinic_exports() -> None:
    @task(pool=STORE_WRITER_POOL)
    def ingest_drops(params: dict | None = None) -> dict:
        from pipeline.settings import DataHome
        from pipeline.stages import ingest

        params = params or {}
        return ingest(
            DataHome.resolve(), only_drop=params.get("drop") or None, confirm_retire=bool(params.get("confirm_retire"))
        )

    @task(pool=STORE_WRITER_POOL, outlets=[Asset(WAREHOUSE_ASSET)])
    def publish_warehouse(summary: dict) -> dict:
        from pipeline.settings import DataHome
        from pipeline.stages import publish_warehouse as publish

        published = publish(DataHome.resolve())
        if not published["data_changed"]:
            # Skipped, so no Asset event: the models are refitted only on data they have not seen.
            raise AirflowSkipException("No new data for the models: the warehouse Asset is not updated.")
        return published

    # Runs whether the warehouse was published or skipped: a refusal is told either way.
    @task(retries=0, trigger_rule="none_failed")
    def check_refusals(summary: dict) -> None:
        from airflow.sdk import get_current_context

        from pipeline.stages import raise_refusals

        # The publication's alert (fewer analysable patients), where it published: a skip pushes nothing.
        published = get_current_context()["ti"].xcom_pull(task_ids="publish_warehouse")
        raise_refusals(summary, published)

    summary = ingest_drops()
    publish_warehouse(summary) >> check_refusals(summary)


ingest_clinic_exports()
