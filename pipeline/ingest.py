"""Ingest: every new drop in the landing directory, through archive, screening, validation and load.

Each drop ends in exactly one state, recorded in the ledger: loaded (valid rows in, failing
rows in quarantine), rejected (nothing of it loaded), held (a full snapshot that would retire
too much) or unchanged (seen before: skipped). Refusals do not stop other drops from loading;
they are returned so the caller can fail loudly after the good data is in.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pandas as pd

from pipeline.errors import DropHeld, DropRejected
from pipeline.landing import LandedDrop, archive_file, discover_drops, list_drop_files
from pipeline.loading import RETIRE_LIMIT, FileOutcome, apply_drop, record_drop, record_outcomes, retirement_shares
from pipeline.progress import step
from pipeline.screening import screen_drop
from pipeline.settings import DataHome
from pipeline.sources import ROW_NUMBER, ReceivedFile, SourceDrop
from pipeline.sources.clinic_csv import parse_drop, table_of
from pipeline.store import current_patient_keys, loaded_checksums, note_activity, open_store, writer_lock
from pipeline.validation.gx_runner import build_data_docs
from pipeline.validation.results_page import write_results_page
from pipeline.validation.rows import ValidatedDrop, validate_drop

log = logging.getLogger("synk.ingest")


@dataclass
class DropResult:
    drop_id: str
    status: str  # loaded, rejected, held, unchanged
    message: str = ""
    rows_loaded: int = 0
    rows_quarantined: int = 0
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestSummary:
    drops: list[DropResult] = field(default_factory=list)

    @property
    def refusals(self) -> list[DropResult]:
        return [d for d in self.drops if d.status in ("rejected", "held")]

    @property
    def loaded(self) -> list[DropResult]:
        return [d for d in self.drops if d.status == "loaded"]

    def as_dict(self) -> dict[str, object]:
        return {"drops": [d.__dict__ for d in self.drops]}

    def lines(self) -> list[str]:
        out = []
        for d in self.drops:
            if d.status == "loaded":
                rules = ", ".join(f"{rule}: {n}" for rule, n in d.quarantine_by_rule.items()) or "none"
                out.append(
                    f"{d.drop_id}: loaded {d.rows_loaded} rows, quarantined {d.rows_quarantined} (by rule: {rules})"
                )
            elif d.status != "unchanged":
                out.append(f"{d.drop_id}: {d.status}. {d.message}")
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


def _refusal_outcomes(
    received: list[ReceivedFile], drop: SourceDrop | None, status: str, reason: str
) -> list[FileOutcome]:
    """Every file of a refused drop: its rows counted as quarantined whole (the file is in the archive)."""
    outcomes = []
    for item in received:
        tables = _tables_of(drop, item)
        rows = _source_rows([drop.tables[t] for t in tables]) if drop else 0
        outcomes.append(FileOutcome(item, tables, rows, 0, rows, status, reason))
    return outcomes


def _previous_attempt(con: duckdb.DuckDBPyConnection, drop_id: str) -> tuple[str, dict[str, str]] | None:
    row = con.execute("SELECT status, received_at FROM drops WHERE drop_id = ?", [drop_id]).fetchone()
    if row is None:
        return None
    files = con.execute(
        "SELECT file, sha256 FROM load_ledger WHERE drop_id = ? AND received_at = ?", [drop_id, row[1]]
    ).fetchall()
    return row[0], dict(files)


def _refused_before(con: duckdb.DuckDBPyConnection, drop_id: str, checksums: dict[str, str]) -> bool:
    """The latest attempt at this drop, in the ledger, was these very files, refused: told once already."""
    files = con.execute(
        "SELECT file, sha256, status FROM load_ledger WHERE drop_id = ? AND received_at = "
        "(SELECT max(received_at) FROM load_ledger WHERE drop_id = ?)",
        [drop_id, drop_id],
    ).fetchall()
    return (
        bool(files)
        and all(status == "rejected" for *_, status in files)
        and {file: sha for file, sha, _ in files} == checksums
    )


def _refuse(
    con: duckdb.DuckDBPyConnection,
    landed: LandedDrop,
    received: list[ReceivedFile],
    drop: SourceDrop | None,
    status: str,
    message: str,
    received_at: datetime,
    keep_drop: bool = False,
) -> DropResult:
    outcomes = _refusal_outcomes(received, drop, status, message)
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


def _file_outcomes(validated: ValidatedDrop, seen: dict[str, tuple[str, str]]) -> list[FileOutcome]:
    """One outcome per file the tables were read from (a REDCap export's one file carries all three)."""
    outcomes = []
    drop = validated.source
    for item in {item.file: item for item in drop.files.values()}.values():
        tables = _tables_of(drop, item)
        if item.sha256 in seen:
            first_drop, first_file = seen[item.sha256]
            outcomes.append(
                FileOutcome(
                    item,
                    tables,
                    0,
                    0,
                    0,
                    "duplicate",
                    f"same content as {first_file} of drop {first_drop}, already loaded",
                )
            )
            continue
        rows = _source_rows([drop.tables[t] for t in tables])
        quarantined = _source_rows([validated.quarantined[t] for t in tables])
        outcomes.append(FileOutcome(item, tables, rows, rows - quarantined, quarantined, "loaded"))
    return outcomes


def ingest_drop(
    home: DataHome, con: duckdb.DuckDBPyConnection, landed: LandedDrop, confirm_retire: bool = False
) -> DropResult:
    received_at = _now()
    if landed.refusal:
        reason = f"Folder {landed.drop_id} in the landing directory was not read: {landed.refusal}."
        previous = _previous_attempt(con, landed.drop_id)
        if previous and previous[0] == "rejected":
            return DropResult(landed.drop_id, "unchanged", reason)
        return _refuse(con, landed, [], None, "rejected", reason, received_at)
    paths, refused_entries = list_drop_files(landed)
    received = [archive_file(path, home.archive, landed.drop_id) for path in paths]
    checksums = {r.file: r.sha256 for r in received}
    previous = _previous_attempt(con, landed.drop_id)
    if previous and previous[1] == checksums and not (previous[0] == "held" and confirm_retire):
        return DropResult(landed.drop_id, "unchanged")
    if previous and previous[0] == "loaded":
        if _refused_before(con, landed.drop_id, checksums):
            return DropResult(landed.drop_id, "unchanged")
        message = (
            f"Drop {landed.drop_id} rejected: a drop of this name was loaded before with other content. "
            "To fix: send corrections as a new drop with a new name; a later row replaces an earlier one."
        )
        # The drop stays "loaded" (its rows are): the refused re-send is recorded in the ledger only.
        return _refuse(con, landed, received, None, "rejected", message, received_at, keep_drop=True)
    drop: SourceDrop | None = None
    try:
        if refused_entries:
            raise DropRejected(
                landed.drop_id,
                f"it holds entries that are not plain files: {', '.join(refused_entries)}.",
                "Put only the export's files in the drop folder; links and sub-folders are not read.",
            )
        with step(f"{landed.drop_id}: parse"):
            drop = parse_drop(landed.drop_id, received)
        with step(f"{landed.drop_id}: de-identification screen"):
            screen_drop(drop)
        with step(f"{landed.drop_id}: validate"):
            validated = validate_drop(drop, current_patient_keys(con), gx_root=home.gx_root)
        if drop.manifest.snapshot == "full" and not (drop.manifest.confirm_retire or confirm_retire):
            for site, (missing, current) in retirement_shares(con, validated).items():
                if current and missing / current > RETIRE_LIMIT:
                    raise DropHeld(
                        landed.drop_id,
                        f"as a full snapshot it would retire {missing} of site {site}'s {current} current patients "
                        f'(more than {RETIRE_LIMIT:.0%}). If the export is partial, mark it "snapshot": '
                        '"incremental" in manifest.json; if the patients really left, add "confirm_retire": true '
                        "(or run with the confirm flag) and send it again.",
                    )
    except (DropRejected, DropHeld) as refusal:
        status = "held" if isinstance(refusal, DropHeld) else "rejected"
        return _refuse(con, landed, received, drop, status, str(refusal), received_at)
    outcomes = _file_outcomes(validated, loaded_checksums(con))
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
        "validation": validated.gx_results,
    }
    with step(f"{landed.drop_id}: load {result.rows_loaded} rows"):
        apply_drop(con, validated, outcomes, received_at, _now(), json.dumps(summary))
    return result


def ingest_landing(home: DataHome, only_drop: str | None = None, confirm_retire: bool = False) -> IngestSummary:
    """Ingest every drop in the landing directory (or one), holding the store's writer lock throughout."""
    home.ensure()
    summary = IngestSummary()
    with writer_lock(home, activity="looking for new drops"), open_store(home) as con:
        drops = [d for d in discover_drops(home.landing) if not only_drop or d.drop_id == only_drop]
        for number, landed in enumerate(drops, 1):
            note_activity(home, f"ingest of drop {landed.drop_id} ({number} of {len(drops)} in landing/)")
            summary.drops.append(ingest_drop(home, con, landed, confirm_retire))
    # A held drop was validated too: its results are shown with the rest.
    if any(d.status != "unchanged" for d in summary.drops):
        with step("update the GX Data Docs and the validation results page"):
            build_data_docs(home.gx_root)
            write_results_page(home.gx_root)
    return summary
