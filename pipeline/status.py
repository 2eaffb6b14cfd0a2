"""What ``synk status`` shows: standing alerts first, then the load ledger, refusals, and what the
published warehouse holds."""

from __future__ import annotations

import duckdb

from pipeline.load_checks import standing_alerts
from pipeline.settings import DataHome
from pipeline.store import open_store

_WAREHOUSE_COUNTS = ("patients", "treatments", "assessments", "instrument_scores", "followup_scores", "model_estimates")


def status_lines(home: DataHome) -> list[str]:
    lines = [f"Data home: {home.root}"]
    if not home.store_path.exists():
        return lines + ["Nothing loaded yet: put a drop folder in " + str(home.landing) + " and run `synk run`."]
    with open_store(home, read_only=True) as store:
        drops = store.execute(
            "SELECT drop_id, status, coalesce(reason, ''), loaded_at, received_at FROM drops ORDER BY received_at"
        ).fetchall()
        ledger = store.execute(
            "SELECT drop_id, file, left(sha256, 12), rows_in, rows_loaded, rows_quarantined, status "
            "FROM load_ledger ORDER BY received_at, drop_id, file"
        ).fetchall()
        by_rule = store.execute(
            "SELECT unnest(string_split(rule, '; ')) AS r, count(*) FROM quarantine GROUP BY r ORDER BY r"
        ).fetchall()
        alerts = standing_alerts(store)
    if alerts:
        # First: a load that went through but went wrong is not a quiet success.
        lines.append("")
        lines.append("Needs attention:")
        lines.extend(f"  {raised_at:%Y-%m-%d %H:%M}  {message}" for raised_at, _, message in alerts)
    lines.append("")
    lines.append("Drops:")
    for drop_id, status, reason, loaded_at, received_at in drops:
        when = (loaded_at or received_at).strftime("%Y-%m-%d %H:%M")
        lines.append(f"  {drop_id:<32} {status:<9} {when}" + (f"  {reason}" if status != "loaded" else ""))
    lines.append("")
    lines.append("Load ledger:")
    lines.append(f"  {'drop':<32} {'file':<22} {'sha256':<12} {'in':>9} {'loaded':>9} {'quarant.':>9} status")
    for drop_id, file, sha, rows_in, loaded, quarantined, status in ledger:
        lines.append(f"  {drop_id:<32} {file:<22} {sha:<12} {rows_in:>9} {loaded:>9} {quarantined:>9} {status}")
    if by_rule:
        lines.append("")
        lines.append("Quarantined rows by rule:")
        lines.extend(f"  {rule}: {count}" for rule, count in by_rule)
    if home.data_docs_index.exists():
        lines.append("")
        lines.append(f"Validation results (GX Data Docs): {home.data_docs_index.as_uri()}")
    lines.append("")
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
            for table in _WAREHOUSE_COUNTS:
                count = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                lines.append(f"  {table:<20} {count:>10} rows")
        finally:
            con.close()
    else:
        lines.append("Warehouse: not published yet.")
    return lines
