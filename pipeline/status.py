"""What ``synk status`` shows: standing alerts first, then the load ledger, refusals, and what the
published warehouse holds."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from pipeline.errors import StoreBusy
from pipeline.settings import DataHome
from pipeline.stale_wal import blocks_reading, set_aside_folder, wal_of
from pipeline.store.connection import load_under_way, open_store
from pipeline.store.ledger import drop_rows, ledger_rows, standing_alerts

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
        lines.append(f"  {drop_id:<32} {file:<22} {sha:<12} {rows_in:>9} {loaded:>9} {quarantined:>9} {status}")
    return lines


def _store_lines(home: DataHome) -> list[str]:
    """The drops, ledger and quarantine as the store holds them now."""
    with open_store(home, read_only=True) as store:
        drops = drop_rows(store)
        ledger = ledger_rows(store)
        by_rule = _quarantine_by_rule(store)
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
        lines.extend(f"  {rule}: {count}" for rule, count in by_rule)
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
