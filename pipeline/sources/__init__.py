"""Source adapters: each turns one drop folder into the contract's three tables as text frames.

An adapter only parses. Screening, validation and loading take what it yields, whatever the
source format, so a second format (REDCap) is a new adapter and nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROW_NUMBER = "row_number"  # the row as a spreadsheet numbers it: the header is row 1

# manifest.json "source" -> the module whose parse_source(drop_id, received, manifest) reads such a drop
# (imported when a drop names it: the adapters build on each other's helpers and on this module).
SOURCES = {
    "clinic_csv": "pipeline.sources.clinic_csv",
    "redcap": "pipeline.sources.redcap",
}


@dataclass(frozen=True)
class ReceivedFile:
    """One file of a drop as received: kept in the archive with its checksum."""

    file: str  # name inside the drop, e.g. 'patients.csv.gz'
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    site_id: str | None = None
    exported_on: str | None = None
    snapshot: str = "full"
    confirm_retire: bool = False
    source: str = "clinic_csv"
    # The drop's files as the sender wrote them (name -> {"bytes": n, "sha256": hex}): the drop is read
    # once every listed file is there as listed. None: no listing, read when seen.
    files: dict[str, dict[str, object]] | None = None
    raw: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RowRule:
    """A row rule an adapter found broken: its name and the source's columns it looked at."""

    rule: str
    columns: tuple[str, ...]


@dataclass
class SourceDrop:
    """What an adapter yields: text frames (empty cell = null) keyed by contract file name."""

    drop_id: str
    manifest: Manifest
    files: dict[str, ReceivedFile]  # contract table -> the file it came from
    tables: dict[str, pd.DataFrame]  # contract table -> text columns + ROW_NUMBER
    # Row rules an adapter applies itself (REDCap: an incomplete form instance), by table and row
    # position in its frame. The rows stay in the table (their records exist, so a full snapshot
    # does not retire them); validation quarantines them with these rules.
    row_rules: dict[str, dict[int, list[RowRule]]] = field(default_factory=dict)
    # How the source names a contract column where it differs (REDCap: treatments.day is tx_day), so a
    # coordinator's message points at what they see in their own system: table -> column -> name.
    source_columns: dict[str, dict[str, str]] = field(default_factory=dict)

    def column_name(self, table: str, column: str) -> str:
        return self.source_columns.get(table, {}).get(column, column)


def strip_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every text cell without surrounding whitespace, and null where that leaves it empty.

    Stripped once per distinct value of a column and spread over its rows: cells repeat (codes,
    scores), and a REDCap export has a hundred columns (18 million cells at 10,000 patients).
    """
    columns = {}
    for name, column in frame.items():
        codes, uniques = pd.factorize(column)  # a null cell gets -1: the appended None
        stripped = np.array([str(value).strip() or None for value in uniques] + [None], dtype=object)
        columns[name] = pd.Series(stripped[codes], index=frame.index, dtype="str")
    return pd.DataFrame(columns, index=frame.index)


def source_parser(name: str) -> Callable[[str, list[ReceivedFile], Manifest], SourceDrop] | None:
    """The parser registered for a manifest's source, or None for a source the pipeline does not know."""
    module = SOURCES.get(name)
    return importlib.import_module(module).parse_source if module else None
