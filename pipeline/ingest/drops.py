"""Every new drop in the landing directory, through archive, screening, validation and load.

Each drop ends in exactly one state, recorded in the ledger: loaded (valid rows in, failing
rows in quarantine), rejected (nothing of it loaded), held (a full snapshot that would retire
too much) or unchanged (seen before: skipped). Refusals do not stop other drops from loading;
they are returned so the caller can fail loudly after the good data is in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pandas as pd

from pipeline.contract import TABLES
from pipeline.errors import DropHeld, DropRejected, PipelineError, row_list
from pipeline.ingest.receive import (
    LandedDrop,
    archive_file,
    check_limits,
    discover_drops,
    expanded_size,
    list_drop_files,
)
from pipeline.ingest.screening import safe_name, screen_drop
from pipeline.load_checks import quarantine_share_alert
from pipeline.progress import step
from pipeline.settings import DataHome, IngestSettings
from pipeline.sources import MANIFEST, ROW_NUMBER, Manifest, ReceivedFile, SourceDrop
from pipeline.sources.clinic_csv import table_of
from pipeline.sources.dispatch import latest_exported_on, parse_drop, read_manifest
from pipeline.store.connection import note_activity, open_store, writer_lock
from pipeline.store.history import (
    RETIRE_LIMIT,
    apply_drop,
    current_patient_keys,
    current_treatments,
    retirement_shares,
    sites_of,
)
from pipeline.store.ledger import (
    FileOutcome,
    newer_export,
    previous_attempt,
    record_alerts,
    record_drop,
    record_outcomes,
    refused_before,
    refused_drops,
)
from pipeline.validation.gx_runner import build_data_docs
from pipeline.validation.results_page import write_results_page
from pipeline.validation.rows import ValidatedDrop, validate_drop

log = logging.getLogger("synk.ingest")


@dataclass
class DropResult:
    drop_id: str
    status: str  # loaded, rejected, held, unchanged, waiting (not ready: nothing recorded)
    message: str = ""
    rows_loaded: int = 0
    rows_quarantined: int = 0
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    alert: str = ""  # loaded, but too much of a file quarantined (pipeline/load_checks.py)


@dataclass
class IngestSummary:
    drops: list[DropResult] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)  # hidden folders in landing/, never read

    @property
    def refusals(self) -> list[DropResult]:
        return [d for d in self.drops if d.status in ("rejected", "held")]

    @property
    def loaded(self) -> list[DropResult]:
        return [d for d in self.drops if d.status == "loaded"]

    def as_dict(self) -> dict[str, object]:
        return {"drops": [d.__dict__ for d in self.drops], "hidden": self.hidden}

    def lines(self) -> list[str]:
        out = []
        for d in self.drops:
            if d.status == "loaded":
                rules = ", ".join(f"{rule}: {n}" for rule, n in d.quarantine_by_rule.items()) or "none"
                out.append(
                    f"{d.drop_id}: loaded {d.rows_loaded} rows, quarantined {d.rows_quarantined} (by rule: {rules})"
                )
                if d.alert:
                    out.append(d.alert)
            elif d.status != "unchanged":
                out.append(f"{d.drop_id}: {d.status}. {d.message}")
        out += [
            f"Folder {name} in the landing directory is hidden (its name starts with '.') and is not read; "
            "rename it without the '.' to load it."
            for name in self.hidden
        ]
        return out


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _tables_of(drop: SourceDrop | None, item: ReceivedFile) -> tuple[str, ...]:
    """The contract tables read from a received file: one for a clinic CSV file, three for a REDCap export."""
    if drop is None:
        table = table_of(item.file)
        return (table,) if table else ()
    return tuple(table for table, source in drop.files.items() if source.file == item.file)


def _source_rows(frames: list[pd.DataFrame]) -> int:
    """Rows of the file the frames were taken from: distinct row numbers (a REDCap row gives many assessments)."""
    numbers = [frame[ROW_NUMBER] for frame in frames if not frame.empty]
    return int(pd.concat(numbers).nunique()) if numbers else 0


def _line_rows(item: ReceivedFile, settings: IngestSettings) -> int:
    """Data rows of a file that was refused before it could be parsed: its lines after the header.
    Counted from the archived bytes (decompressed, up to the size limit), so the ledger still says
    how much of the export was refused."""
    if not (table_of(item.file) or item.file == "redcap_records.csv"):
        return 0
    size, lines = expanded_size(item.path, item.file.endswith(".gz"), settings.max_file_mib << 20)
    return max(lines - 1, 0) if size else 0


def _refusal_outcomes(
    received: list[ReceivedFile], drop: SourceDrop | None, status: str, reason: str, settings: IngestSettings
) -> list[FileOutcome]:
    """Every file of a refused drop: its rows counted as quarantined whole (the file is in the archive)."""
    outcomes = []
    for item in received:
        tables = _tables_of(drop, item)
        rows = _source_rows([drop.tables[t] for t in tables]) if drop else _line_rows(item, settings)
        outcomes.append(FileOutcome(item, tables, rows, 0, rows, status, reason))
    return outcomes


def _refuse(
    con: duckdb.DuckDBPyConnection,
    landed: LandedDrop,
    received: list[ReceivedFile],
    drop: SourceDrop | None,
    status: str,
    message: str,
    received_at: datetime,
    settings: IngestSettings,
    keep_drop: bool = False,
) -> DropResult:
    outcomes = _refusal_outcomes(received, drop, status, message, settings)
    con.execute("BEGIN TRANSACTION")
    record_outcomes(con, landed.drop_id, outcomes, received_at, None)
    manifest = drop.manifest if drop else None
    if not keep_drop:
        record_drop(
            con,
            landed.drop_id,
            manifest.source if manifest else None,
            manifest.snapshot if manifest else None,
            [],
            status,
            message,
            received_at,
            None,
            json.dumps({"files": len(received)}),
        )
    con.execute("COMMIT")
    log.warning("%s", message)
    return DropResult(landed.drop_id, status, message, 0, sum(o.rows_quarantined for o in outcomes))


def _file_outcomes(validated: ValidatedDrop) -> list[FileOutcome]:
    """One outcome per file the tables were read from (a REDCap export's one file carries all three).

    A file loaded before under another drop is loaded again all the same: a checksum says the file
    was seen, not that it is not the site's current data (a re-sent original reverts a correction,
    and as a full snapshot it brings back the records a later drop retired)."""
    outcomes = []
    drop = validated.source
    for item in {item.file: item for item in drop.files.values()}.values():
        tables = _tables_of(drop, item)
        rows = _source_rows([drop.tables[t] for t in tables])
        quarantined = _source_rows([validated.quarantined[t] for t in tables])
        outcomes.append(FileOutcome(item, tables, rows, rows - quarantined, quarantined, "loaded"))
    return outcomes


def _readiness(manifest: Manifest | None, received: list[ReceivedFile]) -> tuple[str, str] | None:
    """Whether a drop whose manifest lists its files is all there: None when ready (or nothing is
    listed), else ("waiting" or "rejected", the sentence). A file smaller than listed, or listed and
    absent, is still being copied; one of the listed size with another checksum, or one not listed, is
    not what the clinic sent."""
    if manifest is None or manifest.files is None:
        return None
    present = {item.file: item for item in received if item.file != MANIFEST}
    waiting, wrong = [], []
    for name, listed in manifest.files.items():
        item = present.get(name)
        if item is None:
            waiting.append(f"{name} is not there yet")
        elif listed.get("bytes") is not None and item.size < int(listed["bytes"]):
            waiting.append(f"{name} has {item.size:,} of its {int(listed['bytes']):,} bytes")
        elif (listed.get("bytes") is not None and item.size != int(listed["bytes"])) or (
            listed.get("sha256") is not None and str(listed["sha256"]).lower() != item.sha256
        ):
            wrong.append(f"{name} differs from the size or sha256 manifest.json lists")
    wrong += [f"{name} is not listed in manifest.json" for name in present if name not in manifest.files]
    if wrong:
        return "rejected", (
            "its files are not those its manifest.json lists: " + "; ".join(wrong) + ". To fix: list every file "
            "with its size and sha256 as written, and send the drop again."
        )
    if waiting:
        return "waiting", (
            "not read yet: " + "; ".join(waiting) + " (manifest.json lists the drop's files; it is read once they "
            "are all there as listed)."
        )
    return None


def _quiet_manifest(received: list[ReceivedFile]) -> Manifest | None:
    """The manifest if it reads; a faulty one is refused by the parser, with its sentence."""
    try:
        return read_manifest("", next((item for item in received if item.file == MANIFEST), None))
    except Exception:
        return None


def _check_sites(drop: SourceDrop) -> None:
    """A manifest that names a site names every row's site: else a full snapshot would retire the
    manifest's site for rows of another."""
    site = drop.manifest.site_id
    if site is None:
        return
    faults = []
    for table in (t for t in TABLES if t in drop.tables):
        frame = drop.tables[table]
        other = frame["site_id"].notna() & (frame["site_id"] != site)
        if other.any():
            file = drop.files[table].file if table in drop.files else f"{table}.csv"
            rows = row_list(frame.loc[other, ROW_NUMBER].tolist())
            faults.append(f"{file}, column {drop.column_name(table, 'site_id')} ({rows})")
    if faults:
        raise DropRejected(
            drop.drop_id,
            "manifest.json's site_id is not the site of its rows: " + "; ".join(faults) + ".",
            "Send one site per drop, with that site's id in manifest.json and in every row.",
        )


def _check_order(con: duckdb.DuckDBPyConnection, drop: SourceDrop) -> None:
    """An export older than one already loaded for its site would put older data over newer: held.
    Drops that give no exported_on are taken in the order they arrive."""
    exported = drop.manifest.exported_on
    if exported is None:
        return
    newer = newer_export(con, sites_of(drop), exported, latest_exported_on())
    if newer:
        raise DropHeld(
            drop.drop_id,
            f"it was exported on {exported}, before drop {newer[0]} (exported on {newer[1]}), already loaded for "
            f"site {newer[2]}: loading it would put older data over newer. If it is the site's current data, "
            "export it again (its exported_on is then today) and send it as a new drop; otherwise move it out "
            "of landing/.",
        )


def _retirement_hold(con: duckdb.DuckDBPyConnection, validated: ValidatedDrop) -> str | None:
    """The sentence holding a full snapshot that would retire too much of any table of a site."""
    over = [
        f"{missing:,} of site {site}'s {current:,} current {table}"
        for (table, site), (missing, current) in retirement_shares(con, validated).items()
        if current and missing / current > RETIRE_LIMIT
    ]
    if not over:
        return None
    return (
        f"as a full snapshot it would retire {'; '.join(over)} (more than {RETIRE_LIMIT:.0%}). If the export is "
        'partial, mark it "snapshot": "incremental" in manifest.json; if the records really left, add '
        '"confirm_retire": true to manifest.json and send it again, or confirm this drop as it is: '
        f"`synk run --drop {validated.source.drop_id} --confirm-retire`, or trigger ingest_clinic_exports with "
        "drop set to it and confirm_retire ticked."
    )


def _unchanged_while_read(paths: list, stats: list[os.stat_result]) -> list[str]:
    """Files whose size or modification time changed while the drop was archived: still being written."""
    changed = []
    for path, before in zip(paths, stats, strict=True):
        try:
            after = path.stat()
        except OSError:
            changed.append(path.name)
            continue
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            changed.append(path.name)
    return changed


def ingest_drop(
    home: DataHome,
    con: duckdb.DuckDBPyConnection,
    landed: LandedDrop,
    confirm_retire: bool = False,
    settings: IngestSettings | None = None,
) -> DropResult:
    """One drop, ending in one recorded state; a drop whose load fails on anything unforeseen is
    refused with a sentence (the error's type, never its text, which may quote a cell), so the drops
    after it still load."""
    settings = settings or IngestSettings.for_home(home)
    try:
        result, loaded = _ingest_drop(home, con, landed, confirm_retire, settings)
    except Exception as error:
        log.debug("drop %s failed", landed.drop_id, exc_info=False)
        with contextlib.suppress(duckdb.Error):  # no transaction was open
            con.execute("ROLLBACK")
        if _machine_fault(error):
            raise  # the machine, not the drop: the run stops and says so, and the drop loads on a later run
        message = (
            f"Drop {landed.drop_id} rejected: its load failed with {type(error).__name__}, which a drop that "
            "follows the contract never causes. Nothing of it was loaded. To fix: check the export against the "
            "contract (numbers where numbers belong, a small manifest.json) and send it again as a new drop; "
            "tell the platform's developers (the error type above) if it does."
        )
        paths, _ = list_drop_files(landed) if landed.refusal is None else ([], [])
        received = [archive_file(path, home.archive, landed.drop_id) for path in paths]
        return _refuse(con, landed, received, None, "rejected", message, _now(), settings)
    if loaded is not None:
        # Loaded (committed): past here nothing may refuse the drop.
        outcomes, quarantined = loaded
        alert = quarantine_share_alert(landed.drop_id, outcomes, quarantined, settings.max_quarantine_share)
        if alert:
            record_alerts(con, [alert], _now())
            log.warning("%s", alert.message)
            result.alert = alert.message
    return result


def _machine_fault(error: Exception) -> bool:
    """A fault of the machine or the store (a full disk fails the commit), which refusing the drop
    would wrongly pin on it: the drop must load once the fault is mended."""
    return isinstance(
        error,
        OSError
        | MemoryError
        | duckdb.IOException
        | duckdb.TransactionException
        | duckdb.FatalException
        | duckdb.OutOfMemoryException,
    ) or "No space left" in str(error)


def _ingest_drop(
    home: DataHome,
    con: duckdb.DuckDBPyConnection,
    landed: LandedDrop,
    confirm_retire: bool,
    settings: IngestSettings,
) -> tuple[DropResult, tuple[list[FileOutcome], dict[str, pd.DataFrame]] | None]:
    """The drop's result, and what it loaded (its outcomes and quarantined rows) when it loaded."""
    received_at = _now()
    if landed.refusal:
        reason = f"Folder {landed.drop_id} in the landing directory was not read: {landed.refusal}."
        previous = previous_attempt(con, landed.drop_id)
        if previous and previous[0] == "rejected":
            return DropResult(landed.drop_id, "unchanged", reason), None
        return _refuse(con, landed, [], None, "rejected", reason, received_at, settings), None
    paths, refused_entries = list_drop_files(landed)
    stats = [path.stat() for path in paths]
    received = [archive_file(path, home.archive, landed.drop_id) for path in paths]
    changing = _unchanged_while_read(paths, stats)
    if changing:
        return DropResult(
            landed.drop_id,
            "waiting",
            f"not read yet: {', '.join(changing)} changed while it was read (still being "
            "written); it is read on a later run.",
        ), None
    readiness = _readiness(_quiet_manifest(received), received)
    if readiness and readiness[0] == "waiting":
        return DropResult(landed.drop_id, "waiting", readiness[1]), None
    checksums = {r.file: r.sha256 for r in received}
    previous = previous_attempt(con, landed.drop_id)
    if previous and previous[1] == checksums and not (previous[0] == "held" and confirm_retire):
        return DropResult(landed.drop_id, "unchanged"), None
    if previous and previous[0] == "loaded":
        if refused_before(con, landed.drop_id, checksums):
            return DropResult(landed.drop_id, "unchanged"), None
        message = (
            f"Drop {landed.drop_id} rejected: a drop of this name was loaded before with other content. "
            "To fix: send corrections as a new drop with a new name; a later row replaces an earlier one."
        )
        # The drop stays "loaded" (its rows are): the refused re-send is recorded in the ledger only.
        return _refuse(con, landed, received, None, "rejected", message, received_at, settings, keep_drop=True), None
    drop: SourceDrop | None = None
    try:
        if refused_entries:
            raise DropRejected(
                landed.drop_id,
                f"it holds entries that are not plain files: {', '.join(refused_entries)}.",
                "Put only the export's files in the drop folder; links and sub-folders are not read.",
            )
        if readiness:
            raise DropRejected(landed.drop_id, readiness[1])
        check_limits(landed.drop_id, received, settings)
        with step(f"{landed.drop_id}: parse"):
            drop = parse_drop(landed.drop_id, received)
        with step(f"{landed.drop_id}: de-identification screen"):
            screen_drop(drop, settings.max_cell_chars)
        _check_sites(drop)
        _check_order(con, drop)
        with step(f"{landed.drop_id}: validate"):
            known = current_patient_keys(con)
            treatments = current_treatments(con)
            validated = validate_drop(drop, known, gx_root=home.gx_root, known_treatments=treatments)
        if drop.manifest.snapshot == "full" and not (drop.manifest.confirm_retire or confirm_retire):
            held = _retirement_hold(con, validated)
            if held:
                raise DropHeld(landed.drop_id, held)
    except (DropRejected, DropHeld) as refusal:
        status = "held" if isinstance(refusal, DropHeld) else "rejected"
        return _refuse(con, landed, received, drop, status, str(refusal), received_at, settings), None
    outcomes = _file_outcomes(validated)
    carried = {item.file for item in drop.files.values()}
    # The manifest (and a REDCap drop's dictionary) is a received file too: ledgered and archived, with no rows.
    outcomes += [FileOutcome(item, (), 0, 0, 0, "loaded") for item in received if item.file not in carried]
    result = DropResult(
        landed.drop_id,
        "loaded",
        rows_loaded=sum(o.rows_loaded for o in outcomes),
        rows_quarantined=sum(o.rows_quarantined for o in outcomes),
        quarantine_by_rule=validated.rule_counts(),
    )
    summary = {
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "quarantine_by_rule": result.quarantine_by_rule,
        "exported_on": drop.manifest.exported_on,
        # The tables the drop carried, empty ones too: a header-only complications file reports none.
        "tables": sorted(drop.tables),
        "validation": validated.gx_results,
    }
    with step(f"{landed.drop_id}: load {result.rows_loaded} rows"):
        apply_drop(con, validated, outcomes, received_at, _now(), json.dumps(summary))
    return result, (outcomes, validated.quarantined)


def ingest_landing(home: DataHome, only_drop: str | None = None, confirm_retire: bool = False) -> IngestSummary:
    """Ingest every drop in the landing directory (or one), holding the store's writer lock throughout."""
    home.ensure()
    settings = IngestSettings.for_home(home)  # a bad ingest.json stops the run before anything loads
    summary = IngestSummary()
    with writer_lock(home, activity="looking for new drops"), open_store(home) as con:
        drops, summary.hidden = discover_drops(home.landing)
        if only_drop is not None:
            drops = [d for d in drops if d.drop_id == only_drop]
            if not drops:  # a typo while confirming a held snapshot must not read as a green run
                raise PipelineError(
                    f"No drop folder named {safe_name(only_drop, 'folder')} is in {home.landing}; check the name "
                    "against the folders there (`synk status` lists the drops received) and run again."
                )
        for number, landed in enumerate(drops, 1):
            note_activity(home, f"ingest of drop {landed.drop_id} ({number} of {len(drops)} in landing/)")
            summary.drops.append(ingest_drop(home, con, landed, confirm_retire, settings))
        refused = refused_drops(con)
    for waiting in (d for d in summary.drops if d.status == "waiting"):
        log.warning("%s: %s", waiting.drop_id, waiting.message)
    # A held drop was validated too: its results are shown with the rest.
    if any(d.status not in ("unchanged", "waiting") for d in summary.drops):
        with step("update the GX Data Docs and the validation results page"):
            build_data_docs(home.gx_root)
            write_results_page(home.gx_root, refused)
    return summary
