"""Pool the network's site bundles (the coordinating centre's data home) whenever some have landed."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from pipeline.notify import CoordinatorNotifier
from pipeline.settings import DAG_OWNER, task_retries

DOC = """
### Pool network bundles

Hourly, at the coordinating centre: checks every bundle and answer in `landing/` (format, version,
checksums, the network's sites, duplicates; docs/network.md), moves it into `archive/network/` with a
ledger row, pools the sites' newest bundles into `warehouse/network.duckdb` (`network_estimates`, both
stages side by side), and writes each site the second exchange's request in `requests/<site>/`.

**When it fails**: `check_refusals` fails when a file was refused, with one sentence per file (altered,
duplicated, unknown site, wrong version); the file is kept in `archive/network/refused/`. Ask the site for
a new bundle. Any other task: read its log; the previous network warehouse stays published.
"""


@dag(
    dag_id="pool_network_bundles",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["synkinesis", "network"],
    doc_md=DOC,
    default_args={
        "owner": DAG_OWNER,
        "retries": task_retries(1),
        "retry_delay": timedelta(minutes=5),
        "on_failure_callback": CoordinatorNotifier(),
    },
)
def pool_network_bundles() -> None:
    @task
    def receive_bundles() -> dict:
        from pipeline.network.coordinator import receive_task
        from pipeline.settings import DataHome

        return receive_task(DataHome.resolve().ensure())

    @task
    def publish_network(received: dict) -> str:
        from pipeline.network.coordinator import publish_task
        from pipeline.settings import DataHome

        return publish_task(DataHome.resolve())

    @task
    def write_requests(warehouse: str) -> list:
        from pipeline.network.coordinator import requests_task
        from pipeline.settings import DataHome

        return requests_task(DataHome.resolve())

    @task(retries=0, trigger_rule="none_failed")
    def check_refusals(received: dict) -> None:
        from pipeline.network.coordinator import check_refusals_task

        check_refusals_task(received)

    received = receive_bundles()
    write_requests(publish_network(received))
    check_refusals(received)


pool_network_bundles()
