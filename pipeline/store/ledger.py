"""The store's record of what was received and what came of it, and every query of it.

``drops``: one row a drop, its latest state (loaded, rejected, held). ``load_ledger``: one row a
received file and attempt, kept for good. ``load_alerts``: loads that went through but went wrong
(pipeline/load_checks.py decides them). The published warehouse carries a copy of the ledger, which
the same queries read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from pipeline.contract import COLUMNS
from pipeline.sources import ReceivedFile
from pipeline.sql_files import read_sql

# A column of patients only: a quarantined row holding it is a patients row (whatever file carried it).
PATIENTS_ONLY_COLUMN = next(
    c.name
    for c in COLUMNS["patients"]
    if all(c.name not in {o.name for o in COLUMNS[t]} for t in COLUMNS if t != "patients")
)


@dataclass(frozen=True)
class FileOutcome:
    """One ledger row: a received file and how its rows were accounted for.

    A file may carry several contract tables (REDCap's flat export carries all three); its rows are
    then the file's own rows, and a row counts as quarantined when anything taken from it is.
    """

    file: ReceivedFile
    tables: tuple[str, ...]  # the contract tables read from the file (none for a manifest or dictionary)
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    status: str
    reason: str | None = None


@dataclass(frozen=True)
class LoadAlert:
    kind: str
    message: str
    drop_id: str | None = None  # None: about the warehouse as a whole


def record_outcomes(
    con: duckdb.DuckDBPyConnection,
    drop_id: str,
    outcomes: list[FileOutcome],
    received_at: datetime,
    loaded_at: datetime | None,
) -> None:
    # Every attempt keeps its rows: a held or rejected drop sent again adds a new receipt.
    for o in outcomes:
        con.execute(
            "INSERT INTO load_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                drop_id,
                o.file.file,
                o.file.sha256,
                o.rows_in,
                o.rows_loaded,
                o.rows_quarantined,
                o.status,
                o.reason,
                received_at,
                loaded_at if o.status == "loaded" else None,
                str(o.file.path),
            ],
        )


def record_drop(
    con: duckdb.DuckDBPyConnection,
    drop_id: str,
    source: str | None,
    snapshot: str | None,
    sites: list[str],
    status: str,
    reason: str | None,
    received_at: datetime,
    loaded_at: datetime | None,
    summary_json: str,
) -> None:
    con.execute("DELETE FROM drops WHERE drop_id = ?", [drop_id])
    con.execute(
        "INSERT INTO drops VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [drop_id, source, snapshot, sites, status, reason, received_at, loaded_at, summary_json],
    )


def previous_attempt(con: duckdb.DuckDBPyConnection, drop_id: str) -> tuple[str, dict[str, str]] | None:
    """The drop's recorded state and the checksums of its files at that attempt, or None if never recorded."""
    row = con.execute("SELECT status, received_at FROM drops WHERE drop_id = ?", [drop_id]).fetchone()
    if row is None:
        return None
    files = con.execute(
        "SELECT file, sha256 FROM load_ledger WHERE drop_id = ? AND received_at = ?", [drop_id, row[1]]
    ).fetchall()
    return row[0], dict(files)


def refused_before(con: duckdb.DuckDBPyConnection, drop_id: str, checksums: dict[str, str]) -> bool:
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


def newer_export(
    con: duckdb.DuckDBPyConnection, sites: list[str], exported_on: str, latest: str
) -> tuple[str, str, str] | None:
    """The loaded drop of one of these sites exported after ``exported_on``, latest first: its id, its
    exported_on and the site; None when there is none. A drop dated after ``latest`` (the future: loaded
    before such dates were refused) orders nothing, so it cannot hold a site's genuine exports."""
    return con.execute(
        "SELECT d.drop_id, json_extract_string(d.summary, '$.exported_on') AS exported, s.site "
        "FROM drops AS d, unnest(d.site_ids) AS s(site) "
        "WHERE d.status = 'loaded' AND list_contains(?, s.site) AND exported > ? AND exported <= ? "
        "ORDER BY exported DESC, d.drop_id LIMIT 1",
        [sites, exported_on, latest],
    ).fetchone()


def drop_rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Every drop in the order received: id, status, reason ('' for none), loaded_at, received_at."""
    return con.execute(
        "SELECT drop_id, status, coalesce(reason, ''), loaded_at, received_at FROM drops ORDER BY received_at"
    ).fetchall()


def drop_record(con: duckdb.DuckDBPyConnection, drop_id: str) -> tuple | None:
    """One drop's latest state: status, reason ('' for none), loaded_at, received_at; None if never received."""
    return con.execute(
        "SELECT status, coalesce(reason, ''), loaded_at, received_at FROM drops WHERE drop_id = ?", [drop_id]
    ).fetchone()


def refused_drops(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, datetime]]:
    """The drops whose latest attempt was refused (rejected or held): id, status, the sentence, received_at."""
    return con.execute(
        "SELECT drop_id, status, coalesce(reason, ''), received_at FROM drops "
        "WHERE status IN ('rejected', 'held') ORDER BY received_at DESC, drop_id"
    ).fetchall()


def quarantined_rows(con: duckdb.DuckDBPyConnection, drop_id: str | None) -> list[tuple]:
    """A drop's quarantined rows (None: every drop's) by file and rule (sql/store/quarantined_rows.sql): file,
    rule, columns, row number, for an unknown_patient row whose patient's own row was quarantined that
    patients file and the patient's key (identifiers only, to count that cause once), and the drop."""
    return con.execute(
        read_sql("store/quarantined_rows.sql"), {"drop_id": drop_id, "patients_only_column": PATIENTS_ONLY_COLUMN}
    ).fetchall()


def ledger_rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """The ledger as ``synk status`` shows it (from the store, or the warehouse's copy): drop, file,
    the first 12 digits of its sha256, rows in, loaded and quarantined, status."""
    return con.execute(
        "SELECT drop_id, file, left(sha256, 12), rows_in, rows_loaded, rows_quarantined, status "
        "FROM load_ledger ORDER BY received_at, drop_id, file"
    ).fetchall()


def last_received(con: duckdb.DuckDBPyConnection) -> tuple[int, datetime | None]:
    """How many drops and files were ever received (loaded or refused), and when the last one was."""
    received, last = con.execute(
        "SELECT count(*), max(received_at) FROM (SELECT received_at FROM drops "
        "UNION ALL SELECT received_at FROM load_ledger)"
    ).fetchone()
    return int(received), last


def loaded_checksums(con: duckdb.DuckDBPyConnection, as_of: datetime, attached_as: str | None = None) -> list[str]:
    """The sha256 of every file loaded by ``as_of``, in order. ``attached_as``: the name the store is
    attached under where ``con`` is another database's connection (a warehouse build)."""
    table = f"{attached_as}.load_ledger" if attached_as else "load_ledger"
    rows = con.execute(
        f"SELECT sha256 FROM {table} WHERE status = 'loaded' AND loaded_at <= ? ORDER BY sha256", [as_of]
    ).fetchall()
    return [sha for (sha,) in rows]


def record_alerts(store: duckdb.DuckDBPyConnection, alerts: list[LoadAlert], raised_at: datetime) -> None:
    for alert in alerts:
        store.execute(
            "INSERT INTO load_alerts (raised_at, drop_id, kind, message) VALUES (?, ?, ?, ?)",
            [raised_at, alert.drop_id, alert.kind, alert.message],
        )


def standing_alerts(store: duckdb.DuckDBPyConnection) -> list[tuple[datetime, str, str]]:
    """Alerts no later drop has answered: a drop's, until a later drop of one of its sites loads; the
    warehouse's, until any later drop loads."""
    if not store.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'load_alerts'").fetchone()[0]:
        return []  # a store last written before alerts were kept, opened read-only
    return store.execute(
        """
        SELECT a.raised_at, a.kind, a.message
        FROM load_alerts AS a
        LEFT JOIN drops AS d ON d.drop_id = a.drop_id
        WHERE NOT EXISTS (
            SELECT 1 FROM drops AS later
            WHERE later.status = 'loaded' AND later.loaded_at > a.raised_at AND (
                a.drop_id IS NULL
                OR later.drop_id <> a.drop_id AND len(list_intersect(later.site_ids, d.site_ids)) > 0
            )
        )
        ORDER BY a.raised_at
        """
    ).fetchall()
