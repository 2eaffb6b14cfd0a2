"""Source adapters: each turns one drop folder into the contract's three tables as text frames.

An adapter only parses. Screening, validation and loading take what it yields, whatever the
source format, so a second format (REDCap) is a new adapter and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ROW_NUMBER = "row_number"  # the row as a spreadsheet numbers it: the header is row 1


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
    raw: dict[str, object] = field(default_factory=dict)


@dataclass
class SourceDrop:
    """What an adapter yields: text frames (empty cell = null) keyed by contract file name."""

    drop_id: str
    manifest: Manifest
    files: dict[str, ReceivedFile]  # contract table -> the file it came from
    tables: dict[str, pd.DataFrame]  # contract table -> text columns + ROW_NUMBER
