"""The pipeline's stages as plain functions: the CLI calls them, and each DAG task calls one.

Every stage that writes the staging store or publishes the warehouse holds the store's writer
lock; under Airflow those tasks also share a one-slot pool.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipeline import __version__
from pipeline.build_state import fingerprint, read_state
from pipeline.errors import PipelineError
from pipeline.ingest.drops import IngestSummary, ingest_landing
from pipeline.load_checks import (
    analysable_patients,
    failed_methods_alert,
    fewer_analysable_alert,
    no_estimates_alert,
)
from pipeline.models.pairs import is_claim
from pipeline.progress import step
from pipeline.settings import DataHome, DesignSettings, ModelSettings, ReportSettings
from pipeline.stale_wal import blocks_reading, recover
from pipeline.store.connection import open_store, writer_lock
from pipeline.store.ledger import LoadAlert, last_received, record_alerts, standing_alerts
from pipeline.warehouse import EMPTY_SNAPSHOT, MODEL_TABLES, build_and_publish

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
    """Fail with the reason when a model run fitted no estimate at all, or none of a method. With ``once``
    (the DAG, which refits on every hourly publication), only the first such run since the site's last
    drop fails."""
    if models.get("alert") and not (once and models.get("told_before")):
        log.error("%s", models["alert"])
        raise PipelineError(str(models["alert"]))


def publish_warehouse(home: DataHome, design: DesignSettings | None = None) -> dict[str, object]:
    """Publish the warehouse where the store changed since the published build (or the design or
    code did). ``data_changed`` says whether what the models read differs from what was published
    before (other loaded data, or another design or code): only then is there anything to refit
    (the DAG emits the warehouse Asset). A refusal alone republishes the ledger, not new data.
    An alert when the new build has fewer analysable patients than the one it replaces. ``set_aside``: the
    sentences for a reader's write-ahead log moved away from the published file (pipeline/stale_wal.py)."""
    design = design or DesignSettings.for_home(home)
    with writer_lock(home, activity="publishing the warehouse"):
        # A log another session left, that the published file cannot be opened with, first: else every read
        # below fails, and a home wedged by it before this code would stay wedged.
        notes = [note for note in [recover(home)] if note]
        previous = _published_snapshot(home)
        state = read_state(home)
        same_build = state is not None and state.fingerprint == fingerprint(design)
        if not _store_changed_since_publication(home, design):
            if previous is None:
                log.info("Nothing to publish: no drop has been received yet.")
            else:
                log.info("Warehouse unchanged: nothing received since it was published (data %s).", previous[:12])
            analysable = analysable_patients(home.warehouse_path) or 0
            return {
                "warehouse": str(home.warehouse_path),
                "data_snapshot": previous,
                "published": False,
                "data_changed": False,
                "analysable_patients": analysable,
                "analysable_patients_before": analysable,
                "alert": "",
                "set_aside": notes,
            }
        with step("build and publish the warehouse"):
            before = analysable_patients(home.warehouse_path)
            path, snapshot = build_and_publish(home, design, notes)
            after = analysable_patients(path) or 0
            alert = fewer_analysable_alert(before, after)
            if alert:
                _record(home, alert)
    changed = (snapshot != previous or not same_build) and snapshot != EMPTY_SNAPSHOT
    log.info(
        "Warehouse published (data snapshot %s): %s.",
        snapshot[:12],
        "new data for the models" if changed else "the loaded data is as before",
    )
    return {
        "warehouse": str(path),
        "data_snapshot": snapshot,
        "published": True,
        "data_changed": changed,
        "analysable_patients": after,
        "analysable_patients_before": before,
        "alert": alert.message if alert else "",
        "set_aside": notes,
    }


def _published_snapshot(home: DataHome) -> str | None:
    """The data snapshot of the published warehouse, or None where there is none (or it is unreadable)."""
    if not home.warehouse_path.exists():
        return None
    try:
        with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
            row = con.execute("SELECT data_snapshot FROM build_info").fetchone()
    except duckdb.Error:
        return None
    return row[0] if row else None


def _store_changed_since_publication(home: DataHome, design: DesignSettings) -> bool:
    """False only where the published warehouse is the build recorded beside it, built by this code
    and design, and the store has received nothing since (no drop, loaded or refused)."""
    if not home.store_path.exists():
        return False  # nothing received yet: there is nothing to publish
    with open_store(home, read_only=True) as store:
        received, last = last_received(store)
    if received == 0:
        return False
    state = read_state(home)
    if state is None or state.fingerprint != fingerprint(design) or _published_snapshot(home) != state.data_snapshot:
        return True
    return last is None or last > state.as_of


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
    notes: list[str] = []
    if blocks_reading(home):  # the models DAG runs on its own: it clears a reader's stale log too
        with writer_lock(home, activity="setting aside a stale write-ahead log"):
            notes = [note for note in [recover(home)] if note]
    with step("fit comparative models"):
        con = duckdb.connect(str(home.warehouse_path), read_only=True)
        try:
            snapshot = con.execute("SELECT data_snapshot FROM build_info").fetchone()[0]
            results = fit(con, settings, data_snapshot=snapshot, code_version=__version__)
        finally:
            con.close()
    # Small groups are expected at a single clinic: a few lines count the notes by reason; each
    # note is logged at DEBUG, and kept in model_estimates.note.
    for warning in results.warnings:
        log.debug("%s", warning)
    for line in summarise_notes(results.warnings):
        log.info("%s", line)
    numerical = numerical_warning_kinds(results.numerical_warnings)
    if numerical:
        log.info("%s", numerical_warnings_line(numerical))
    run_id = str(results.model_runs["run_id"].iloc[0])
    alerts: list[LoadAlert] = []
    with writer_lock(home, activity="storing the model results and republishing the warehouse"):
        with open_store(home) as store:
            store.execute("BEGIN TRANSACTION")
            # A refit of the same data and settings gives the same run id: replace it, never duplicate it.
            for table in MODEL_TABLES:
                store.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
                frame = getattr(results, table)
                if not frame.empty:
                    store.register("results_frame", frame)
                    columns = ", ".join(f'"{c}"' for c in frame.columns)
                    store.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM results_frame")
                    store.unregister("results_frame")
            store.execute("COMMIT")
        with step("republish the warehouse with the model results"):
            build_and_publish(home, notes=notes)
        # Nothing but the claims' rows (synergy, BoNT after surgery), or nothing at all: no comparison.
        comparisons = int((~results.model_estimates["contrast"].map(is_claim).astype(bool)).sum())
        if comparisons == 0:
            alerts.append(no_estimates_alert(home.warehouse_path, settings.min_group_size))
        failed = failed_methods_alert(results.model_estimates)
        if failed:
            alerts.append(failed)
        told = [_record(home, alert) for alert in alerts]
    # The notes' count only: the task's return value is logged whole, and the notes are summarised above.
    return {
        "run_id": run_id,
        "estimates": len(results.model_estimates),
        "comparisons": comparisons,  # the rows comparing treatments (the rest are the claims')
        "notes": len(results.warnings),
        "numerical_warnings": numerical,  # by kind, e.g. {"SingularMatrixWarning": 47}
        "alert": " ".join(alert.message for alert in alerts),
        "told_before": bool(told) and all(told),
        "set_aside": notes,
    }


# "BTX+PT_vs_BTX, sunnybrook_composite at 12m, mice: <reason>." -> <reason>
_NOTE_PREFIX = re.compile(r"^[^:]*? at [^,:]+(?:, [a-z_]+)?: ")
NOTE_REASONS_SHOWN = 5


def _reason(note: str) -> str:
    """A note's kind: without its cell, its details (after ';', in brackets) or its group's name."""
    reason = _NOTE_PREFIX.sub("", note).split(";")[0]
    reason = re.sub(r"\s*\([^)]*\)", "", reason)
    return re.sub(r"in the \S+ (?:and the \S+ )?group", "in a group", reason).rstrip(".")


def summarise_notes(notes: list[str]) -> list[str]:
    """A line counting the model notes, and the commonest kinds with their counts (each note in full
    is in model_estimates.note and the DEBUG log)."""
    if not notes:
        return []
    reasons = Counter(_reason(note) for note in notes)
    lines = [f"{len(notes)} model notes (small groups, missing data), by kind; each is in model_estimates.note:"]
    lines += [f"  {count} x {reason}" for reason, count in reasons.most_common(NOTE_REASONS_SHOWN)]
    if len(reasons) > NOTE_REASONS_SHOWN:
        rest = sum(count for _, count in reasons.most_common()[NOTE_REASONS_SHOWN:])
        lines.append(f"  {rest} more, of {len(reasons) - NOTE_REASONS_SHOWN} other kinds (each logged at DEBUG)")
    return lines


def numerical_warning_kinds(caught: list[str]) -> dict[str, int]:
    """The fits' numerical warnings ("<where>: <Category>: <message>") counted by kind, each logged at DEBUG
    with the contrast and outcome it came from."""
    for warning in caught:
        log.debug("%s", warning)
    return dict(Counter(warning.split(": ")[1] for warning in caught).most_common())


def numerical_warnings_line(kinds: dict[str, int]) -> str:
    """One line for the fits' numerical warnings (statsmodels' notes on hard cells), in place of each one."""
    by_kind = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    return f"{sum(kinds.values())} numerical warnings from the model fits ({by_kind}), each logged at DEBUG."


def latest_model_run(home: DataHome) -> tuple[str, datetime] | None:
    """The published warehouse's latest model run: its id and when it started (None: none yet)."""
    if not home.warehouse_path.exists():
        return None
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        latest = "SELECT run_id, started_at FROM model_runs ORDER BY started_at DESC, run_id LIMIT 1"
        row = con.execute(latest).fetchone()
    return (str(row[0]), row[1]) if row else None


def build_as_of(
    home: DataHome,
    quarter: str,
    provisional: bool = False,
    now: datetime | None = None,
    settings: ModelSettings | None = None,
    reuse_stored: bool = True,
) -> dict[str, object]:
    """The warehouse and its model run as of the quarter's end (or now, ``provisional``): pipeline/as_of.py.
    A quarter not yet ended is refused unless ``provisional``; one with nothing loaded raises NothingToReport."""
    from pipeline.as_of import build_as_of as build
    from pipeline.quarters import canonical_quarter, quarter_bounds, quarter_folder, release_name, report_cutoff

    try:
        quarter = canonical_quarter(quarter)
    except ValueError as error:
        raise PipelineError(str(error)) from None
    ReportSettings.for_home(home)  # report.json is checked before the build, not after it
    now = now or datetime.now(UTC).replace(tzinfo=None)
    as_of = report_cutoff(quarter, provisional, now)
    _, end = quarter_bounds(quarter)
    by_words = "now" if as_of == now else f"the end of {quarter_folder(quarter)} ({end - timedelta(days=1):%Y-%m-%d})"
    unchanged = _unchanged_release(home, quarter, provisional, as_of, settings) if reuse_stored else None
    if unchanged is not None:
        return unchanged
    built = build(
        home, as_of, release_name(quarter, provisional), settings, reuse_stored=reuse_stored, by_words=by_words
    )
    return {"warehouse": str(built.path), "as_of": built.as_of.isoformat(), "model_run_id": built.model_run_id}


def _unchanged_release(
    home: DataHome, quarter: str, provisional: bool, as_of: datetime, settings: ModelSettings | None
) -> dict[str, object] | None:
    """``build_as_of``'s result for a release already written from the same inputs (``unchanged_release``),
    with its report.html under "report": nothing is built, fitted or rewritten. None: build it."""
    from pipeline.as_of import loaded_by
    from pipeline.report.release import unchanged_release

    if not home.store_path.exists():
        return None
    with writer_lock(home, activity=f"checking what was loaded by {as_of:%Y-%m-%d %H:%M}"):
        snapshot, last = loaded_by(home, as_of)
    settings = settings or ModelSettings.for_home(home)
    build = fingerprint(DesignSettings.for_home(home))
    report = unchanged_release(home, quarter, provisional, snapshot, settings, as_of, last, build)
    if report is None:
        return None
    manifest = json.loads(report.with_name("manifest.json").read_text(encoding="utf-8"))
    log.info("The %s report is up to date (nothing received since it was written): %s.", quarter, report)
    return {
        "warehouse": "",
        "as_of": str(manifest["data_as_of"]),
        "model_run_id": manifest.get("model_run_id"),
        "report": str(report),
    }


def write_report(home: DataHome, quarter: str, as_of_warehouse: dict[str, object], provisional: bool = False) -> Path:
    """Render the as-of warehouse (``build_as_of``'s result) as the quarter's release: pipeline/report/release.py."""
    from pipeline.quarters import canonical_quarter
    from pipeline.report.release import release_quarter

    if as_of_warehouse.get("report"):  # build_as_of found the release up to date
        return Path(str(as_of_warehouse["report"]))
    return release_quarter(
        home,
        canonical_quarter(quarter),
        Path(str(as_of_warehouse["warehouse"])),
        datetime.fromisoformat(str(as_of_warehouse["as_of"])),
        provisional=provisional,
        build_fingerprint=fingerprint(DesignSettings.for_home(home)),
    )


def report_quarter(
    home: DataHome,
    quarter: str,
    provisional: bool = False,
    now: datetime | None = None,
    settings: ModelSettings | None = None,
    reuse_stored: bool = True,
) -> Path:
    """Both report stages in one call (``synk report``): the as-of warehouse, then the release; returns
    report.html."""
    built = build_as_of(home, quarter, provisional, now, settings, reuse_stored)
    return write_report(home, quarter, built, provisional)


def models_up_to_date(home: DataHome, settings: ModelSettings | None = None) -> bool:
    """The published warehouse holds a model run on its own data with these settings (and this code):
    fitting again would give the same run."""
    if not home.warehouse_path.exists():
        return False
    wanted = json.loads(json.dumps((settings or ModelSettings.for_home(home)).as_dict()))
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        runs = con.execute(
            "SELECT r.settings, r.code_version FROM model_runs AS r, build_info AS b "
            "WHERE r.data_snapshot = b.data_snapshot"
        ).fetchall()
    return any(json.loads(stored) == wanted and version == __version__ for stored, version in runs)


@dataclass
class RunResult:
    ingest: dict[str, object]
    warehouse: dict[str, object]
    models: dict[str, object] | None  # None: no new data, the published model run stands


def run_all(
    home: DataHome, only_drop: str | None = None, confirm_retire: bool = False, settings: ModelSettings | None = None
) -> RunResult:
    """One full pass outside Airflow: ingest, publish, fit. Refusals are raised after the rest is done."""
    loaded = ingest(home, only_drop=only_drop, confirm_retire=confirm_retire)
    try:
        published = publish_warehouse(home)
        # Nothing new since the last fit: the same data and settings would give the same run.
        refit = published["data_changed"] or not models_up_to_date(home, settings)
        models = fit_models(home, settings) if refit else None
    except (OSError, duckdb.Error) as error:
        # The loads are committed: the sentence for the machine's fault must not say nothing was kept.
        new = sum(1 for d in loaded["drops"] if d["status"] == "loaded")  # type: ignore[union-attr]
        if new:
            error.add_note(f"{new} new drop(s) had been loaded before it stopped, and stay loaded")
        raise
    result = RunResult(loaded, published, models)
    log.debug("%s", json.dumps(result.__dict__, default=str))
    return result


__all__ = [
    "IngestSummary",
    "build_as_of",
    "fit_models",
    "ingest",
    "publish_warehouse",
    "raise_no_estimates",
    "raise_refusals",
    "report_quarter",
    "run_all",
    "write_report",
]
