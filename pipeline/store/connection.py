"""The staging store's connection and its writer lock.

One DuckDB file under ``staging/``, written by one process at a time: a file lock here, and in
Airflow a one-slot pool, serialize every writer.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import duckdb

from pipeline.errors import PipelineError, StoreBusy
from pipeline.settings import DataHome
from pipeline.sql_files import read_sql

log = logging.getLogger("synk.store")


@dataclass(frozen=True)
class LoadUnderWay:
    """What the holder of the writer lock said it is doing (``synk status`` shows it)."""

    pid: int
    since: datetime
    activity: str


def _write_note(handle: IO[str], pid: int, since: datetime, activity: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": pid, "since": since.isoformat(), "activity": activity}))
    handle.flush()


def _read_note(handle: IO[str]) -> LoadUnderWay:
    handle.seek(0)
    try:
        note = json.loads(handle.read())
        return LoadUnderWay(int(note["pid"]), datetime.fromisoformat(note["since"]), str(note["activity"]))
    except (ValueError, KeyError, TypeError):  # an older lock file (a bare pid), or caught mid-write
        return LoadUnderWay(0, datetime.now(UTC), "a load")


_held: dict[Path, tuple[IO[str], datetime]] = {}  # lock files this process holds: their handle and since when


@contextmanager
def writer_lock(home: DataHome, wait: bool = True, activity: str = "a load") -> Iterator[None]:
    """Hold the store's writer lock: two loads never interleave, whoever starts them. The lock file
    says who holds it, since when and doing what, for ``synk status``."""
    home.staging.mkdir(parents=True, exist_ok=True)
    with open(home.lock_path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise PipelineError("Another load holds the staging store; try again when it has finished.") from None
            # Say so before blocking: a load stuck behind another must not look like a hang.
            holder = _read_note(handle)
            log.warning(
                "Another load (process %s, %s) holds the staging store; waiting for it to finish.",
                holder.pid or "unknown",
                holder.activity,
            )
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        since = datetime.now(UTC)
        _write_note(handle, os.getpid(), since, activity)
        _held[home.lock_path] = (handle, since)
        try:
            yield
        finally:
            _held.pop(home.lock_path, None)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def note_activity(home: DataHome, activity: str) -> None:
    """Say what the load under way is doing now (where this process holds the writer lock)."""
    held = _held.get(home.lock_path)
    if held is not None:
        _write_note(held[0], os.getpid(), held[1], activity)


def load_under_way(home: DataHome) -> LoadUnderWay | None:
    """The writer lock's holder and what it is doing, or None when no one holds it."""
    if not home.lock_path.exists():
        return None
    with open(home.lock_path) as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)  # a probe: free if this succeeds
        except BlockingIOError:
            return _read_note(handle)
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None


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
            raise StoreBusy("The staging store is busy with a load; try again when it has finished.") from None
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
