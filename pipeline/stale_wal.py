"""A write-ahead log left beside the published warehouse by someone else's session, set aside.

DuckDB's own clients (its CLI, R's and Python's default) open a file read-write. A session that wrote to
the published warehouse (a scratch table) and died before a checkpoint leaves ``outcomes.duckdb.wal``
beside it. That log belongs to the file it was written for: once a publication has renamed a new file
over it, DuckDB refuses to open the new file ("WAL does not match database file") and every reader,
the models included, fails. So the log of the file being replaced is moved into
``staging/set_aside/`` (named by the time it was set aside) before each publication, and a log found
that the published file cannot be opened with is moved the same way before anything reads it. Nothing
published is lost: the log holds only what that session wrote, which the next publication would have
replaced anyway; it is kept, for the person whose session it was.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.settings import DataHome

log = logging.getLogger("synk.warehouse")
SET_ASIDE = "set_aside"


def wal_of(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def set_aside_folder(home: DataHome) -> Path:
    return home.staging / SET_ASIDE


def set_aside(home: DataHome, why: str) -> str:
    """Move the published warehouse's write-ahead log into ``staging/set_aside/``; return the sentence
    that says so (logged as a warning), or "" when there is none."""
    wal = wal_of(home.warehouse_path)
    if not wal.exists():
        return ""
    folder = set_aside_folder(home)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
    target = folder / f"{home.warehouse_path.name}.{stamp}.wal"
    shutil.move(wal, target)  # a rename where staging and the warehouse share a disk
    sentence = (
        f"A write-ahead log left beside the published warehouse by another session ({why}) was moved to "
        f"{target}: the warehouse opens without it, and nothing published was lost (it holds only what "
        "that session wrote, e.g. a scratch table)."
    )
    log.warning("%s", sentence)
    return sentence


def blocks_reading(home: DataHome) -> bool:
    """True where a write-ahead log beside the published warehouse stops it from being opened: it was written
    for another file (one since replaced). A log of the file itself (a session that died on this file) is
    read with it; a file another process holds for writing is not this."""
    if not wal_of(home.warehouse_path).exists() or not home.warehouse_path.exists():
        return False
    try:
        duckdb.connect(str(home.warehouse_path), read_only=True).close()
    except duckdb.Error as error:
        return "WAL" in str(error)
    return False


def recover(home: DataHome) -> str:
    """Before anything reads the published warehouse (the caller holds the writer lock): set aside a log it
    cannot be opened with; the sentence that says so, or ""."""
    if blocks_reading(home):
        return set_aside(home, "it was written for a file since replaced, and every open of the warehouse failed")
    return ""
