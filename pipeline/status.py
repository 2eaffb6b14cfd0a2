"""What ``synk status`` shows: standing alerts first, then the load ledger, refusals, and what the
published warehouse holds; with ``--drop``, one drop's quarantined rows by file and rule (row numbers,
never a value), each cause counted once."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import duckdb

from pipeline.errors import PipelineError, StoreBusy
from pipeline.settings import DataHome
from pipeline.stale_wal import blocks_reading, set_aside_folder, wal_of
from pipeline.store.connection import load_under_way, open_store
from pipeline.store.ledger import drop_record, drop_rows, ledger_rows, quarantined_rows, standing_alerts

_WAREHOUSE_COUNTS = (
    "patients",
    "treatments",
    "assessments",
    "complications",
    "instrument_scores",
    "followup_scores",
    "model_estimates",
)


def _under_way_lines(home: DataHome) -> list[str]:
    under_way = load_under_way(home)
    if under_way is None:
        return []
    minutes = max(0, int((datetime.now(UTC) - under_way.since).total_seconds() // 60))
    who = f"process {under_way.pid}, " if under_way.pid else ""
    return ["", f"Under way: {under_way.activity} ({who}since {under_way.since:%H:%M} UTC, {minutes} min)."]


def _ledger_lines(ledger: list[tuple]) -> list[str]:
    lines = ["Load ledger:"]
    lines.append(f"  {'drop':<32} {'file':<22} {'sha256':<12} {'in':>9} {'loaded':>9} {'quarant.':>9} status")
    for drop_id, file, sha, rows_in, loaded, quarantined, status in ledger:
        # A refused file's rows were neither loaded nor quarantined: the whole drop was turned away.
        quarantined = quarantined if status == "loaded" else "-"
        lines.append(f"  {drop_id:<32} {file:<22} {sha:<12} {rows_in:>9} {loaded:>9} {quarantined:>9} {status}")
    return lines


def _store_lines(home: DataHome) -> list[str]:
    """The drops, ledger and quarantine as the store holds them now."""
    with open_store(home, read_only=True) as store:
        drops = drop_rows(store)
        ledger = ledger_rows(store)
        by_rule = _quarantine_by_rule(store)
        knock_on = sum(1 for *_, patient_key, _ in quarantined_rows(store, None) if patient_key is not None)
        alerts = standing_alerts(store)
    lines: list[str] = []
    if alerts:
        # First: a load that went through but went wrong is not a quiet success.
        lines += ["", "Needs attention:"]
        lines.extend(f"  {raised_at:%Y-%m-%d %H:%M}  {message}" for raised_at, _, message in alerts)
    lines += ["", "Drops:"]
    for drop_id, status, reason, loaded_at, received_at in drops:
        when = (loaded_at or received_at).strftime("%Y-%m-%d %H:%M")
        lines.append(f"  {drop_id:<32} {status:<9} {when}" + (f"  {reason}" if status != "loaded" else ""))
    lines += ["", *_ledger_lines(ledger)]
    if by_rule:
        lines += ["", "Quarantined rows by rule:"]
        for rule, count in by_rule:
            because = (
                f" ({knock_on} of them only because their patient's own row was quarantined)"
                if rule == "unknown_patient" and knock_on
                else ""
            )
            lines.append(f"  {rule}: {count}{because}")
        lines.append("  Each drop's rows by file and rule: synk status --drop ID")
    return lines


def _published_ledger_lines(home: DataHome) -> list[str]:
    """While a load holds the store: the ledger as last published (the warehouse keeps a copy)."""
    lines = ["", "The staging store is busy with the load under way; as last published:"]
    if not home.warehouse_path.exists():
        return lines + ["  nothing published yet."]
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        ledger = ledger_rows(con)
        by_rule = _quarantine_by_rule(con)
    finally:
        con.close()
    lines += _ledger_lines(ledger)
    if by_rule:
        lines += ["", "Quarantined rows by rule:"]
        lines.extend(f"  {rule}: {count}" for rule, count in by_rule)
    return lines


def _quarantine_by_rule(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    """Quarantined rows by rule (a row breaking two rules counts under each), in the store or the warehouse."""
    return con.execute(
        "SELECT unnest(string_split(rule, '; ')) AS r, count(*) FROM quarantine GROUP BY r ORDER BY r"
    ).fetchall()


# Past this many ranges a rule's rows are summed up: the quarantine table of the store holds them all.
RANGES_SHOWN = 40


def row_ranges(numbers: list[int]) -> str:
    """Row numbers, runs compressed: [4, 5, 6, 9, 12] -> "rows 4-6, 9, 12" ("row 4" for one)."""
    runs: list[list[int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    shown = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:RANGES_SHOWN]]
    text = ("row " if len(numbers) == 1 else "rows ") + ", ".join(shown)
    if len(runs) > RANGES_SHOWN:
        rest = sum(b - a + 1 for a, b in runs[RANGES_SHOWN:])
        text += f" and {rest} more in {len(runs) - RANGES_SHOWN} ranges (the store's quarantine table has them all)"
    return text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def drop_lines(home: DataHome, drop_id: str) -> list[str]:
    """One drop: its state, and its quarantined rows per file and rule as row numbers (never a value).
    Rows quarantined as unknown_patient only because their patient's own row was quarantined are one
    cause, told with that row, not a problem of their own."""
    if not home.store_path.exists():
        raise PipelineError(f"No drop named {drop_id} has been received: nothing is loaded yet.")
    try:
        with open_store(home, read_only=True) as store:
            record = drop_record(store, drop_id)
            rows = quarantined_rows(store, drop_id) if record else []
    except StoreBusy:
        raise PipelineError(
            "A load holds the staging store now; run `synk status --drop` when it has finished."
        ) from None
    if record is None:
        raise PipelineError(f"No drop named {drop_id} has been received: `synk status` lists the drops.")
    status, reason, loaded_at, received_at = record
    when = (loaded_at or received_at).strftime("%Y-%m-%d %H:%M")
    lines = [f"Drop {drop_id}: {status} {when}"]
    if status != "loaded":
        return lines + [
            f"  {reason}",
            "  No row of it was loaded or quarantined: the drop was refused whole (fix it and send it again).",
        ]
    if not rows:
        return lines + ["  No row was quarantined: every row loaded."]
    by_file: dict[str, dict[tuple[str, str], list[int]]] = defaultdict(lambda: defaultdict(list))
    knock_on: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))  # file -> patient -> rows
    patients_files: dict[str, str] = {}
    for file, rule, columns, row_number, patients_file, patient_key, _ in rows:
        if patient_key is not None:
            knock_on[file][patient_key].append(row_number)
            patients_files[file] = patients_file
        else:
            by_file[file][(rule, columns or "")].append(row_number)
    all_rows = {(file, row_number) for file, _, _, row_number, *_ in rows}
    own = {(file, n) for file, rules in by_file.items() for numbers in rules.values() for n in numbers}
    lines.append(
        f"  {_plural(len(all_rows), 'row')} quarantined (row numbers as a spreadsheet shows them, the header is row 1):"
    )
    for file in sorted(set(by_file) | set(knock_on)):
        in_file = {n for f, n in all_rows if f == file}
        lines.append(f"  {file}: {_plural(len(in_file), 'row')}")
        for (rule, columns), numbers in sorted(by_file[file].items()):
            where = f" ({columns})" if columns else ""
            lines.append(f"    {rule}{where}: {row_ranges(numbers)}")
        patients = knock_on.get(file)
        if patients:
            numbers = [n for ns in patients.values() for n in ns]
            lines.append(
                f"    {_plural(len(set(numbers)), 'row')} of {_plural(len(patients), 'patient')} whose "
                f"{patients_files[file]} row was quarantined (unknown_patient): {row_ranges(numbers)}"
            )
    knocked = {(f, n) for f, patients in knock_on.items() for ns in patients.values() for n in ns} - own
    if knocked:
        lines.append(
            f"  Causes: {_plural(len(own), 'row')} broke a rule; the other {len(knocked)} were quarantined only "
            "because their patient's own row was (fix that row and the rest load with it)."
        )
    return lines


def status_lines(home: DataHome) -> list[str]:
    lines = [f"Data home: {home.root}", *_under_way_lines(home)]
    if not home.store_path.exists():
        return lines + ["Nothing loaded yet: put a drop folder in " + str(home.landing) + " and run `synk run`."]
    try:
        lines += _store_lines(home)
    except StoreBusy:  # DuckDB lets no one read a file while a load writes it (a damaged store is an error)
        lines += _published_ledger_lines(home)
    if home.validation_page.exists():
        lines.append("")
        lines.append(f"Validation results: {home.validation_page.as_uri()}")
    if home.data_docs_index.exists():
        lines.append(f"GX Data Docs (their styles and scripts need the internet): {home.data_docs_index.as_uri()}")
    lines.append("")
    if blocks_reading(home):  # status only reads: the next run sets the log aside (pipeline/stale_wal.py)
        lines.append(
            f"Warehouse: {home.warehouse_path} cannot be opened now: the write-ahead log beside it "
            f"({wal_of(home.warehouse_path).name}) was left by another session for the file it replaced. The "
            f"next `synk run` moves that log to {set_aside_folder(home)} and reads the warehouse again; the "
            "warehouse itself is whole."
        )
        return lines
    if home.warehouse_path.exists():
        try:
            con = duckdb.connect(str(home.warehouse_path), read_only=True)
        except duckdb.Error as error:
            lines.append(
                f"Warehouse: {home.warehouse_path} cannot be read now ({type(error).__name__}: another process "
                "holds it open for writing, or it is damaged); the next publication replaces it."
            )
            return lines
        try:
            built_at, snapshot = con.execute("SELECT built_at, data_snapshot FROM build_info").fetchone()
            lines.append(
                f"Warehouse: {home.warehouse_path} (built {built_at:%Y-%m-%d %H:%M}, data snapshot {snapshot[:12]})"
            )
            present = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            for table in (t for t in _WAREHOUSE_COUNTS if t in present):  # complications: contract 1.2 on
                count = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                lines.append(f"  {table:<20} {count:>10} rows")
        finally:
            con.close()
    else:
        lines.append("Warehouse: not published yet.")
    return lines
