"""The history tables: a validated drop written in (new versions, retirements, quarantine, its
ledger rows), and the current records read back.

Everything a drop changes is written in one transaction: killed at any point, the store is as
it was, and a rerun loads the drop again from the archive.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

import duckdb
import pandas as pd

from pipeline.contract import COLUMNS, KEYS, TABLES
from pipeline.sources import SourceDrop
from pipeline.sources.numbers import read_numbers
from pipeline.store.ledger import FileOutcome, record_drop, record_outcomes
from pipeline.validation.rows import ValidatedDrop

RETIRE_LIMIT = 0.20  # a full snapshot retiring more than this share of a site's patients is held


def sites_of(drop: SourceDrop) -> list[str]:
    """The sites a drop speaks for: its rows' (in any table) and its manifest's."""
    sites: set[str] = set()
    for frame in drop.tables.values():
        sites |= set(frame["site_id"].dropna())
    if drop.manifest.site_id:
        sites.add(drop.manifest.site_id)
    return sorted(sites)


def drop_sites(validated: ValidatedDrop) -> list[str]:
    return sites_of(validated.source)


def retirement_shares(
    con: duckdb.DuckDBPyConnection, validated: ValidatedDrop
) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (table, site): (records a full snapshot would retire, current records). Every table counts:
    an assessments file cut to its header must not empty a site's assessments while its patients stay."""
    sites = drop_sites(validated)
    shares: dict[tuple[str, str], tuple[int, int]] = {}
    for table in TABLES:
        if table not in validated.source.files:
            continue
        keys = list(KEYS[table])
        match = " AND ".join(f'p."{k}" = h."{k}"' for k in keys)
        con.register("present_keys", _present_keys(validated, table).dropna().drop_duplicates())
        try:
            rows = con.execute(
                f"SELECT h.site_id, count(*), count(*) FILTER (WHERE NOT EXISTS "
                f"(SELECT 1 FROM present_keys AS p WHERE {match})) "
                f"FROM {table}_history AS h WHERE h.valid_to IS NULL AND list_contains(?, h.site_id) "
                "GROUP BY h.site_id",
                [sites],
            ).fetchall()
        finally:
            con.unregister("present_keys")
        shares.update({(table, site): (missing, current) for site, current, missing in rows})
    return shares


def current_patient_keys(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT site_id || '/' || patient_id FROM patients_history WHERE valid_to IS NULL").fetchall()
    return {key for (key,) in rows}


def current_treatments(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, int]]:
    """Every current treatment as "site/patient/treatment" -> (modality, day): what a complication may name."""
    rows = con.execute(
        "SELECT site_id || '/' || patient_id || '/' || treatment_id, modality, \"day\" FROM treatments_history "
        "WHERE valid_to IS NULL"
    ).fetchall()
    return {key: (modality, day) for key, modality, day in rows}


def _hash_expression(table: str) -> str:
    columns = ", ".join(f'CAST("{c.name}" AS VARCHAR)' for c in COLUMNS[table])
    return f"md5(concat_ws('|', {columns}))"


def _upsert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, drop_id: str, now: datetime) -> int:
    """Insert rows that are new or changed; end the version they replace. Returns rows taken in."""
    history = f"{table}_history"
    key = " AND ".join(f'h."{k}" = i."{k}"' for k in KEYS[table])
    columns = [c.name for c in COLUMNS[table]]
    quoted = ", ".join(f'"{c}"' for c in columns)
    con.register("incoming_raw", frame)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT {quoted}, row_number, "
            f"{_hash_expression(table)} AS row_hash FROM incoming_raw"
        )
    finally:
        con.unregister("incoming_raw")
    con.execute(
        f"UPDATE {history} AS h SET valid_to = $now, ended_by_drop = $drop, end_reason = 'replaced' "
        f"FROM incoming AS i WHERE h.valid_to IS NULL AND {key} AND h.row_hash <> i.row_hash",
        {"now": now, "drop": drop_id},
    )
    con.execute(
        f"INSERT INTO {history} ({quoted}, drop_id, row_number, row_hash, valid_from) "
        f"SELECT {quoted}, $drop, row_number, row_hash, $now FROM incoming AS i "
        f"WHERE NOT EXISTS (SELECT 1 FROM {history} AS h WHERE h.valid_to IS NULL AND {key})",
        {"now": now, "drop": drop_id},
    )
    con.execute("DROP TABLE incoming")
    return len(frame)


def _retire_missing(
    con: duckdb.DuckDBPyConnection, table: str, present: pd.DataFrame, sites: list[str], drop_id: str, now: datetime
) -> None:
    """A full snapshot is the site's whole data set: end every current record it no longer holds."""
    keys = list(KEYS[table])
    con.register("present_keys", present[keys].dropna().drop_duplicates())
    try:
        match = " AND ".join(f'p."{k}" = h."{k}"' for k in keys)
        con.execute(
            f"UPDATE {table}_history AS h SET valid_to = $now, ended_by_drop = $drop, end_reason = 'retired' "
            f"WHERE h.valid_to IS NULL AND list_contains($sites, h.site_id) "
            f"AND NOT EXISTS (SELECT 1 FROM present_keys AS p WHERE {match})",
            {"now": now, "drop": drop_id, "sites": sites},
        )
    finally:
        con.unregister("present_keys")


def _present_keys(validated: ValidatedDrop, table: str) -> pd.DataFrame:
    """Keys the export holds, valid or not: a quarantined row still says its record exists."""
    text = validated.source.tables[table]
    frame = text[list(KEYS[table])].copy()
    for column in COLUMNS[table]:
        if column.name in frame and column.kind != "text":
            # As validation read it ('3.0' is day 3); a day no record can have (3.5, 1e30) keys nothing.
            values, _ = read_numbers(frame[column.name])
            whole = (values == values.round()) & (values.abs() <= 2**53)
            frame[column.name] = values.where(whole).astype("Int64")
    return frame


def apply_drop(
    con: duckdb.DuckDBPyConnection,
    validated: ValidatedDrop,
    outcomes: list[FileOutcome],
    received_at: datetime,
    now: datetime,
    summary_json: str,
) -> None:
    """Write the whole drop in one transaction (the caller holds the writer lock)."""
    drop = validated.source
    sites = drop_sites(validated)
    con.execute("BEGIN TRANSACTION")
    try:
        for table, frame in validated.valid.items():
            if table in drop.files:
                _upsert(con, table, frame, drop.drop_id, now)
            if drop.manifest.snapshot == "full" and table in drop.files:
                _retire_missing(con, table, _present_keys(validated, table), sites, drop.drop_id, now)
        for frame in validated.quarantined.values():
            if frame.empty:
                continue
            con.register("quarantined", frame)
            con.execute(
                'INSERT INTO quarantine SELECT drop_id, file, row_number, rule, columns, "row", $now FROM quarantined',
                {"now": now},
            )
            con.unregister("quarantined")
        record_outcomes(con, drop.drop_id, outcomes, received_at, now)
        record_drop(
            con,
            drop.drop_id,
            drop.manifest.source,
            drop.manifest.snapshot,
            sites,
            "loaded",
            None,
            received_at,
            now,
            summary_json,
        )
        con.execute("COMMIT")
    except BaseException:
        # A failed write (a full disk) may have ended the transaction already: the first error is the one
        # to report, not "cannot rollback - no transaction is active".
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
