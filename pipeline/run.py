"""The pipeline's stages as plain functions: the CLI calls them, and each DAG task calls one.

Every stage that writes the staging store or publishes the warehouse holds the store's writer
lock; under Airflow those tasks also share a one-slot pool.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline import __version__
from pipeline.errors import PipelineError
from pipeline.ingest import IngestSummary, ingest_landing
from pipeline.load_checks import (
    LoadAlert,
    analysable_patients,
    fewer_analysable_alert,
    no_estimates_alert,
    record_alerts,
    standing_alerts,
)
from pipeline.progress import step
from pipeline.settings import DataHome, DesignSettings, ModelSettings
from pipeline.store import open_store, writer_lock
from pipeline.warehouse import build_and_publish

log = logging.getLogger("synk.run")


def ingest(home: DataHome, only_drop: str | None = None, confirm_retire: bool = False) -> dict[str, object]:
    """Load every new drop; refusals are recorded and returned, not raised (see ``raise_refusals``)."""
    summary = ingest_landing(home, only_drop=only_drop, confirm_retire=confirm_retire)
    for line in summary.lines():
        log.info("%s", line)
    return summary.as_dict()


def raise_refusals(summary: dict[str, object], published: dict[str, object] | None = None) -> None:
    """Fail with the coordinator-facing message when a drop was rejected or held, or when a load went
    through but went wrong (a file mostly quarantined, fewer analysable patients: pipeline/load_checks.py)."""
    drops = summary["drops"]
    messages = [d["message"] for d in drops if d["status"] in ("rejected", "held")]  # type: ignore[index,union-attr]
    messages += [d["alert"] for d in drops if d.get("alert")]  # type: ignore[union-attr]
    if published and published.get("alert"):
        messages.append(str(published["alert"]))
    for message in messages:  # one readable line per fault in the task log, above the traceback
        log.error("%s", message)
    if messages:
        raise PipelineError(" ".join(messages))


def raise_no_estimates(models: dict[str, object], once: bool = False) -> None:
    """Fail with the reason when a model run fitted no estimate at all. With ``once`` (the DAG, which
    refits on every hourly publication), only the first such run since the site's last drop fails."""
    if models.get("alert") and not (once and models.get("told_before")):
        log.error("%s", models["alert"])
        raise PipelineError(str(models["alert"]))


def publish_warehouse(home: DataHome, design: DesignSettings | None = None) -> dict[str, object]:
    """Build and publish the warehouse; an alert when it has fewer analysable patients than the one it replaces."""
    with writer_lock(home), step("build and publish the warehouse"):
        before = analysable_patients(home.warehouse_path)
        path, snapshot = build_and_publish(home, design)
        after = analysable_patients(path) or 0
        alert = fewer_analysable_alert(before, after)
        if alert:
            _record(home, alert)
    return {
        "warehouse": str(path),
        "data_snapshot": snapshot,
        "analysable_patients": after,
        "analysable_patients_before": before,
        "alert": alert.message if alert else "",
    }


def _record(home: DataHome, alert: LoadAlert) -> bool:
    """Keep an alert in the store (the caller holds the writer lock), for `synk status`, unless the same
    alert still stands; returns whether it was told before."""
    log.warning("%s", alert.message)
    with open_store(home) as store:
        if any(kind == alert.kind and message == alert.message for _, kind, message in standing_alerts(store)):
            return True
        record_alerts(store, [alert], datetime.now(UTC).replace(tzinfo=None))
    return False


def fit_models(home: DataHome, settings: ModelSettings | None = None) -> dict[str, object]:
    """Fit the comparative models on the published warehouse, keep them in the store, republish."""
    from pipeline.models.fit import fit_models as fit  # statsmodels loads only when models run

    settings = settings or ModelSettings.for_home(home)
    if not home.warehouse_path.exists():
        raise PipelineError(f"No published warehouse at {home.warehouse_path}: run a load first.")
    with step("fit comparative models"):
        con = duckdb.connect(str(home.warehouse_path), read_only=True)
        try:
            snapshot = con.execute("SELECT data_snapshot FROM build_info").fetchone()[0]
            results = fit(con, settings, data_snapshot=snapshot, code_version=__version__)
        finally:
            con.close()
    # Small groups are expected at a single clinic: one line says how many, the details go to INFO.
    for warning in results.warnings:
        log.info("%s", warning)
    if results.warnings:
        log.warning(
            "%d model notes (small groups, missing data); see the INFO log or model_estimates.note",
            len(results.warnings),
        )
    run_id = str(results.model_runs["run_id"].iloc[0])
    alert, told_before = None, False
    with writer_lock(home):
        with open_store(home) as store:
            store.execute("BEGIN TRANSACTION")
            # A refit of the same data and settings gives the same run id: replace it, never duplicate it.
            for table in ("model_runs", "model_estimates", "covariate_balance", "propensity_diagnostics"):
                store.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
                frame = getattr(results, table)
                if not frame.empty:
                    store.register("results_frame", frame)
                    columns = ", ".join(f'"{c}"' for c in frame.columns)
                    store.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM results_frame")
                    store.unregister("results_frame")
            store.execute("COMMIT")
        with step("republish the warehouse with the model results"):
            build_and_publish(home)
        if results.model_estimates.empty:
            alert = no_estimates_alert(home.warehouse_path, settings.min_group_size)
            told_before = _record(home, alert)
    return {
        "run_id": run_id,
        "estimates": len(results.model_estimates),
        "warnings": results.warnings,
        "alert": alert.message if alert else "",
        "told_before": told_before,
    }


def write_report(
    home: DataHome,
    quarter: str,
    provisional: bool = False,
    now: datetime | None = None,
    settings: ModelSettings | None = None,
) -> Path:
    """The quarter's report as of the quarter's end (see pipeline.report.publish); returns report.html.
    A quarter not yet ended, or with no data loaded by its end, is refused unless ``provisional``."""
    from pipeline.report.build import parse_quarter
    from pipeline.report.publish import publish_quarter

    try:
        parse_quarter(quarter)
    except ValueError as error:
        raise PipelineError(str(error)) from None
    return publish_quarter(home, quarter, provisional=provisional, now=now, settings=settings)


def quarter_before(moment: datetime) -> str:
    """The quarter that ended before ``moment``: the report DAG runs on the first day of the next."""
    quarter = (moment.month - 1) // 3  # 0-based index of the current quarter
    year = moment.year
    if quarter == 0:
        return f"{year - 1}Q4"
    return f"{year}Q{quarter}"


def current_quarter(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return f"{moment.year}Q{(moment.month - 1) // 3 + 1}"


@dataclass
class RunResult:
    ingest: dict[str, object]
    warehouse: dict[str, object]
    models: dict[str, object]


def run_all(home: DataHome, only_drop: str | None = None, confirm_retire: bool = False) -> RunResult:
    """One full pass outside Airflow: ingest, publish, fit. Refusals are raised after the rest is done."""
    loaded = ingest(home, only_drop=only_drop, confirm_retire=confirm_retire)
    published = publish_warehouse(home)
    models = fit_models(home)
    result = RunResult(loaded, published, models)
    log.debug("%s", json.dumps(result.__dict__, default=str))
    return result


__all__ = [
    "IngestSummary",
    "current_quarter",
    "fit_models",
    "ingest",
    "publish_warehouse",
    "quarter_before",
    "raise_no_estimates",
    "raise_refusals",
    "run_all",
    "write_report",
]
