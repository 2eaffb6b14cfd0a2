"""Every DAG imports cleanly and carries the schedule, tags, docs and ownership it should."""

from __future__ import annotations

import subprocess
import sys

from pipeline.settings import DAG_OWNER, DAG_TAGS, STORE_WRITER_POOL
from pipeline.tools.airflow_local import DAGS_FOLDER

EXPECTED = {
    "ingest_clinic_exports": "@hourly",
    "fit_outcome_models": None,  # asset-triggered
    "publish_quarterly_report": "0 6 1 1,4,7,10 *",
    "pool_network_bundles": "@hourly",  # the network's coordinating centre (docs/network.md)
}


def test_every_dag_file_imports_without_error(dags) -> None:
    assert set(dags) == set(EXPECTED)
    assert {p.stem for p in DAGS_FOLDER.glob("*.py")} == set(EXPECTED)


def test_schedules(dags) -> None:
    for dag_id, cron in EXPECTED.items():
        dag = dags[dag_id]
        if cron is None:
            assert "Asset" in type(dag.timetable).__name__
            assert [asset.name for asset in dag.schedule] == ["synk_outcomes_warehouse"]
        else:
            assert dag.schedule == cron
        assert dag.catchup is False
        assert dag.max_active_runs == 1


def test_tags_docs_owner_and_pool(dags) -> None:
    from pipeline.notify import CoordinatorNotifier  # imports airflow: only once the fixture configured it

    for dag in dags.values():
        assert dag.tags and set(dag.tags) <= DAG_TAGS | {"synkinesis"}
        assert dag.doc_md and "When it fails" in dag.doc_md
        for task in dag.tasks:
            assert task.owner == DAG_OWNER
            # Every task tells the coordinator when it fails (tests/dags/test_dag_runs.py sends one).
            assert any(isinstance(c, CoordinatorNotifier) for c in task.on_failure_callback or [])
    checks = {"ingest_clinic_exports": "check_refusals", "fit_outcome_models": "check_estimates"}
    writers = [t for name in checks for t in dags[name].tasks if t.task_id != checks[name]]
    assert all(t.pool == STORE_WRITER_POOL for t in writers)
    # A check only reads what the task before it returned; it fails once, with the coordinator's sentence.
    assert all(dags[name].get_task(task).retries == 0 for name, task in checks.items())
    # A refusal is told when nothing new was published too.
    assert dags["ingest_clinic_exports"].get_task("check_refusals").trigger_rule == "none_failed"


def test_the_warehouse_asset_links_ingest_to_models(dags) -> None:
    publish = dags["ingest_clinic_exports"].get_task("publish_warehouse")
    assert [a.name for a in publish.outlets] == ["synk_outcomes_warehouse"]


def test_dag_files_import_quickly_and_hold_no_logic() -> None:
    """Wiring only: importing a DAG file must not import pandas, duckdb, GX or statsmodels."""
    for path in DAGS_FOLDER.glob("*.py"):
        code = (
            f"import sys, runpy; runpy.run_path({str(path)!r}); "
            "heavy = [m for m in ('pandas', 'duckdb', 'great_expectations', 'statsmodels') if m in sys.modules]; "
            "print(','.join(heavy))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "", f"{path.name} imports {out.stdout.strip()} at parse time"
