"""Write the department's quarterly report at 06:00 on the first day of each quarter."""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from pipeline.notify import CoordinatorNotifier
from pipeline.settings import DAG_OWNER, STORE_WRITER_POOL, task_retries, task_retry_delay

DOC = """
### Publish the quarterly report

At 06:00 on the first day of January, April, July and October, reports on the quarter just
ended (taken from the run's logical date). `build_as_of` rebuilds the warehouse as loaded by the end
of that quarter, with its model run (reused from the published warehouse when fitted on the same
data, else fitted now), into `staging/as_of/`; `write_report` renders it under
`published/YYYY-Qn/`: report.html, report.pdf, figures, tables, manifest.json, and
`published/index.html`. A manual run may name the quarter with the `quarter` param (e.g. `2026Q3`);
with `provisional` on, a quarter not yet ended is reported on the data loaded so far, marked
PROVISIONAL, under `published/provisional/`.

A quarter with no data loaded by its end (a new installation) is skipped, not failed: the task
log says so. Runs for quarters before the first one are never made (no catch-up).

**When it fails**: the task log says why (the quarter has not ended, a malformed quarter,
Chromium missing). Rerun it for the quarter once fixed.
"""


@dag(
    dag_id="publish_quarterly_report",
    schedule="0 6 1 1,4,7,10 *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["synkinesis", "report"],
    doc_md=DOC,
    default_args={
        "owner": DAG_OWNER,
        "retries": task_retries(1),
        "retry_delay": task_retry_delay(minutes=10),
        "on_failure_callback": CoordinatorNotifier(),  # off unless SYNK_NOTIFY_* is set
    },
    params={
        # Optional (null allowed): the trigger form accepts it empty, and empty means the quarter just ended.
        "quarter": Param(
            None, type=["null", "string"], description="Quarter to report, e.g. 2026Q3 (empty: the one just ended)."
        ),
        "provisional": Param(False, type="boolean", description="Report a quarter not yet ended, marked PROVISIONAL."),
    },
)
def publish_quarterly_report() -> None:
    @task(pool=STORE_WRITER_POOL)
    def build_as_of(
        params: dict | None = None, logical_date: datetime | None = None, run_after: datetime | None = None
    ) -> dict:
        from pipeline.errors import NothingToReport
        from pipeline.quarters import quarter_before
        from pipeline.settings import DataHome
        from pipeline.stages import build_as_of as build

        params = params or {}
        # A cron schedule has no data interval: the quarter is the one before the run's logical date.
        quarter = params.get("quarter") or quarter_before(logical_date or run_after)
        try:
            built = build(DataHome.resolve(), quarter, provisional=bool(params.get("provisional")))
        except NothingToReport as nothing:
            # Not a fault: skipped, not failed; said in the log's body (Airflow's own line is folded away).
            logging.getLogger("synk.report").info("%s Skipped: nothing is wrong.", nothing)
            raise AirflowSkipException(str(nothing)) from None
        return {**built, "quarter": quarter}

    @task
    def write_report(built: dict, params: dict | None = None) -> str:
        from pipeline.settings import DataHome
        from pipeline.stages import write_report as release

        params = params or {}
        return str(release(DataHome.resolve(), built["quarter"], built, provisional=bool(params.get("provisional"))))

    write_report(build_as_of())


publish_quarterly_report()
