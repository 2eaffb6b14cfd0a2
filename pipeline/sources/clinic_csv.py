"""The clinic export of the contract: three comma-separated files, optional complications.csv (1.2) and
manifest.json.

Parsing is strict: a file that cannot be read exactly as the contract says (encoding,
delimiter, ragged rows, unknown or missing columns) rejects the drop, with a message naming
the file and line, never a cell's content.
"""

from __future__ import annotations

import pandas as pd

from pipeline.contract import COLUMNS, FILES, TABLES
from pipeline.errors import DropRejected
from pipeline.sources import MANIFEST, ROW_NUMBER, Manifest, ReceivedFile, SourceDrop
from pipeline.sources.reader import (
    check_header_names,
    check_is_header,
    decode,
    header_fields,
    other_case_columns,
    other_case_fault,
    read_rows,
)

_SUFFIXES = (".csv", ".csv.gz")


def table_of(file_name: str) -> str | None:
    """The contract table a file name carries ('patients.csv.gz' -> 'patients'), if any."""
    for table in TABLES:
        if file_name in (table + suffix for suffix in _SUFFIXES):
            return table
    return None


def parse_source(drop_id: str, received: list[ReceivedFile], manifest: Manifest) -> SourceDrop:
    """The contract's three files (.csv or .csv.gz) as text frames, and complications where the drop has it.

    A drop without complications.csv gets no complications frame: nothing of it is validated or loaded,
    and nothing loaded before is retired (the drop says nothing about complications)."""
    by_table: dict[str, ReceivedFile] = {}
    for item in received:
        if item.file == MANIFEST:
            continue
        table = table_of(item.file)
        if table is None:
            raise DropRejected(
                drop_id,
                f"it holds a file the contract does not know: {item.file}.",
                "A drop holds only patients, treatments and assessments (.csv or .csv.gz), optionally complications, "
                "and manifest.json; "
                'a REDCap export needs "source": "redcap" in manifest.json.',
            )
        if table in by_table:
            raise DropRejected(
                drop_id, f"it holds {table} twice ({by_table[table].file} and {item.file}).", "Send one of them."
            )
        by_table[table] = item
    missing = [t for t in FILES if t not in by_table]
    if missing and manifest.snapshot == "full":
        raise DropRejected(
            drop_id,
            f"it lacks {', '.join(m + '.csv' for m in missing)}, which a full snapshot must hold.",
            "Export all three files, or mark the drop incremental in manifest.json.",
        )
    tables: dict[str, pd.DataFrame] = {}
    faults: list[DropRejected] = []
    for table, item in by_table.items():
        try:
            tables[table] = read_table(drop_id, table, item)
        except DropRejected as fault:
            faults.append(fault)
    if faults:
        raise DropRejected.all_of(drop_id, faults)
    for table in missing:
        tables[table] = _empty(table)
    return SourceDrop(drop_id=drop_id, manifest=manifest, files=by_table, tables=tables)


def _empty(table: str) -> pd.DataFrame:
    columns = {c.name: pd.Series([], dtype="str") for c in COLUMNS[table]}
    columns[ROW_NUMBER] = pd.Series([], dtype="int64")
    return pd.DataFrame(columns)


def read_table(drop_id: str, table: str, received: ReceivedFile) -> pd.DataFrame:
    """One contract file as text columns (empty cell = null) plus its spreadsheet row number."""
    text = decode(drop_id, received)
    name = received.file
    if not text.strip():
        raise DropRejected(
            drop_id,
            f"{name} is empty: it has no header row.",
            "Export the file with its header row, even when it has no data rows.",
        )
    frame = read_rows(
        drop_id,
        name,
        text,
        lambda header: _check_header(drop_id, table, name, header),
        "Check for unquoted commas in those rows.",
    )
    return frame[[c.name for c in COLUMNS[table]] + [ROW_NUMBER]]


def _check_separator(drop_id: str, name: str, header: list[str]) -> None:
    if len(header) == 1 and any(sep in header[0] for sep in (";", "\t", "|")):
        raise DropRejected(
            drop_id,
            f"{name} is not comma-separated (its header has one column).",
            "Export with commas as the delimiter.",
        )


def _check_header(drop_id: str, table: str, name: str, header: list[str]) -> None:
    """The header names the contract's columns of the table, each once, in any order."""
    _check_separator(drop_id, name, header)
    expected = [c.name for c in COLUMNS[table]]
    check_is_header(
        drop_id, name, header, expected, "Export the file with its header row, the contract's column names."
    )
    check_header_names(drop_id, name, header)
    other_case = other_case_fault(drop_id, name, header, expected)
    faults = [other_case] if other_case else []
    unknown = [i for i, h in enumerate(header) if h not in expected and i not in other_case_columns(header, expected)]
    if unknown:
        faults.append(
            DropRejected(
                drop_id,
                f"{name} has column(s) the contract does not know: {header_fields(header, unknown)}.",
                "Remove unknown columns from the export; they may carry identifiers, so nothing of the drop was "
                "loaded.",
            )
        )
    folded = {h.strip().casefold() for h in header}
    absent = [c for c in expected if c not in header and c.casefold() not in folded]  # not told twice
    if absent:
        faults.append(
            DropRejected(
                drop_id,
                f"{name} lacks required column(s): {', '.join(absent)}.",
                "Export every column of the contract, in any order.",
            )
        )
    if faults:
        raise DropRejected.all_of(drop_id, faults)
