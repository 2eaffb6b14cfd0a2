"""The staging store: ledger, quarantine and the full history of every record received.

One DuckDB file under ``staging/``, written by one process at a time: a file lock here, and in
Airflow a one-slot pool, serialize every writer. A drop is loaded in one transaction, so a
load killed at any point leaves the store as it was before it.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from pipeline.errors import PipelineError
from pipeline.settings import DataHome
from pipeline.sql_files import read_sql

log = logging.getLogger("synk.store")


@contextmanager
def writer_lock(home: DataHome, wait: bool = True) -> Iterator[None]:
    """Hold the store's writer lock: two loads never interleave, whoever starts them."""
    home.staging.mkdir(parents=True, exist_ok=True)
    with open(home.lock_path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise PipelineError("Another load holds the staging store; try again when it has finished.") from None
            # Say so before blocking: a load stuck behind another must not look like a hang.
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            log.warning("Another load (process %s) holds the staging store; waiting for it to finish.", holder)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def open_store(home: DataHome, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    path: Path = home.store_path
    if read_only and not path.exists():
        raise PipelineError(f"No staging store yet at {path}: run a load first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            # DuckDB lets no other process open a file while one writes it.
            raise PipelineError("The staging store is busy with a load; try again when it has finished.") from None
        raise _unreadable(path, error) from None
    except duckdb.Error as error:
        raise _unreadable(path, error) from None
    try:
        if not read_only:
            con.execute(read_sql("store/schema.sql"))
        yield con
    finally:
        con.close()


def _unreadable(path: Path, error: duckdb.Error) -> PipelineError:
    return PipelineError(
        f"The staging store {path} cannot be opened ({type(error).__name__}): it is damaged or not a store. "
        "Move staging/ aside and rebuild it from archive/ (docs/runbook.md, Restoring from the archive)."
    )


def current_patient_keys(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT site_id || '/' || patient_id FROM patients_history WHERE valid_to IS NULL").fetchall()
    return {key for (key,) in rows}


def current_patient_counts(con: duckdb.DuckDBPyConnection, sites: list[str]) -> dict[str, int]:
    rows = con.execute(
        "SELECT site_id, count(*) FROM patients_history WHERE valid_to IS NULL AND list_contains(?, site_id) "
        "GROUP BY site_id",
        [sites],
    ).fetchall()
    return dict(rows)
