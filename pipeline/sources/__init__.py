"""Source adapters: each turns one drop folder into the contract's three tables as text frames.

An adapter only parses. Screening, validation and loading take what it yields, whatever the
source format, so a second format (REDCap) is a new adapter and nothing else. ``dispatch`` picks
the adapter a drop names; ``reader`` is the CSV reading they share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ROW_NUMBER = "row_number"  # the row as a spreadsheet numbers it: the header is row 1
MANIFEST = "manifest.json"  # a drop's optional description of itself (pipeline/sources/dispatch.py reads it)


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
