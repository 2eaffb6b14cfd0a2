"""Reading a source's CSV files: text (gunzipped, UTF-8) into text columns and spreadsheet row numbers.

Shared by the sources: the clinic CSV files and REDCap's export are read the same way, strictly, and a
fault is named by file and line, never by a cell's content.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from pipeline.errors import DropRejected, row_list
from pipeline.ingest.screening import name_rules
from pipeline.sources import ROW_NUMBER, ReceivedFile

_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]{0,63}")
_WHITESPACE_LINE = re.compile(r"^[ \t]+\r?$", re.MULTILINE)  # pandas would skip it; the strict reader calls it ragged


def decode(drop_id: str, received: ReceivedFile) -> str:
    """A received file's text (gunzipped; UTF-8, a byte-order mark tolerated)."""
    data = received.path.read_bytes()
    if received.file.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error):
            raise DropRejected(
                drop_id,
                f"{received.file} is not a complete gzip file (truncated or corrupt).",
                "Compress the export again and resend it.",
            ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DropRejected(
            drop_id,
            f"{received.file} is not UTF-8 (first bad byte on line {line}).",
            "Save the export as UTF-8 (CSV UTF-8 in Excel).",
        ) from None


def read_rows(
    drop_id: str, name: str, text: str, check_header: Callable[[list[str]], None], ragged_fix: str
) -> pd.DataFrame:
    """A CSV file's text as text columns (empty cell = null) plus each row's spreadsheet row number.

    A plain file goes through pandas' C parser; anything else, and a plain file whose field counts
    do not add up, through the strict reader, which names the rows. ``check_header`` refuses a header
    the source does not accept, before any row is counted; ``ragged_fix`` says how to mend ragged rows.
    """
    header_line, _, body = text.partition("\n")
    frame = read_plain(header_line, body) if is_plain(body) else None
    if frame is None:
        return _read_strict(drop_id, name, text, check_header, ragged_fix)
    check_header(list(frame.columns[:-1]))
    return frame


def is_plain(body: str) -> bool:
    """No quotes, no blank or whitespace-only lines, no lone carriage return: every line is one row,
    numbered in order.

    Such a file (what clinic systems and Excel export) is read by pandas' C parser, ten times faster
    than the csv module; anything else by the strict reader, which reports faults by line.
    """
    return (
        '"' not in body
        and "\n\n" not in body
        and "\n\r\n" not in body
        and not body.startswith(("\n", "\r\n"))
        and body.count("\r") == body.count("\r\n")
        and not (("\t" in body or " " in body) and _WHITESPACE_LINE.search(body))
    )


def read_plain(header_line: str, body: str) -> pd.DataFrame | None:
    """A plain file's rows; None when a row's field count differs from the header's (the strict reader
    then names the rows)."""
    header = [h.strip() for h in header_line.rstrip("\r").split(",")]
    if not body.strip():
        return None  # no data rows: the strict reader gives the empty frame
    try:
        with warnings.catch_warnings():
            # A long first row only warns (and is cut): a fault, for the strict reader to name.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(body),
                header=None,
                names=list(range(len(header))),
                index_col=False,
                dtype="str",
                keep_default_na=False,
                na_values=[""],
                on_bad_lines="error",
                engine="c",
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError):
        return None
    # A short row would be read with empty cells: every row has exactly len(header) - 1 commas (no
    # quotes here), so their total says whether one is short.
    if body.count(",") != len(frame) * (len(header) - 1):
        return None
    frame.columns = header
    if " " in body or "\t" in body:
        frame = strip_cells(frame)
    frame[ROW_NUMBER] = pd.RangeIndex(2, len(frame) + 2)
    return frame


def _read_strict(
    drop_id: str, name: str, text: str, check_header: Callable[[list[str]], None], ragged_fix: str
) -> pd.DataFrame:
    """Any CSV file, read record by record with the csv module (quoted fields, blank lines)."""
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(rows)]
        records = list(rows)
    except csv.Error as exc:
        raise DropRejected(drop_id, f"{name} is not valid CSV near line {rows.line_num} ({exc}).") from None
    check_header(header)
    ragged = [i + 2 for i, record in enumerate(records) if len(record) != len(header) and record]
    if ragged:
        raise DropRejected(
            drop_id, f"{name} has {row_list(ragged)} with a different number of fields than its header.", ragged_fix
        )
    # Blank lines are not rows; every other record keeps its spreadsheet row number.
    numbered = [(i + 2, record) for i, record in enumerate(records) if record]
    frame = pd.DataFrame([record for _, record in numbered], columns=header, dtype="str")
    if frame.empty:
        frame = pd.DataFrame({h: pd.Series([], dtype="str") for h in header})
    frame = strip_cells(frame)
    frame[ROW_NUMBER] = pd.Series([n for n, _ in numbered], dtype="int64")
    return frame


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


def header_field(header: list[str], position: int) -> str:
    """A header field as a refusal may name it: its name when that is a plain column name the screen
    passes, else its position. A header row may be a data row (the header left out) or a stray file's
    first line, so a field is only printed when it cannot be a cell of one."""
    field = header[position]
    if _COLUMN_NAME.fullmatch(field) and not name_rules(field):
        return field
    return f"field {position + 1} of the header"


def header_fields(header: list[str], positions: list[int]) -> str:
    return ", ".join(header_field(header, i) for i in positions)


def check_header_names(drop_id: str, name: str, header: list[str]) -> None:
    duplicated = [i for i, h in enumerate(header) if header.count(h) > 1 and header.index(h) == i]
    if duplicated:
        raise DropRejected(drop_id, f"{name} has duplicate column(s): {header_fields(header, duplicated)}.")


def other_case_columns(header: list[str], expected: list[str]) -> list[int]:
    """Positions of header fields that are a contract column in another case (``Patient_Id``, ``SEX``).
    Such a field may be printed: equal to a column name but for case, it is that name, not a cell."""
    folded = {column.casefold() for column in expected}
    return [i for i, h in enumerate(header) if h not in expected and h.strip().casefold() in folded]


def other_case_fault(drop_id: str, name: str, header: list[str], expected: list[str]) -> DropRejected | None:
    positions = other_case_columns(header, expected)
    if not positions:
        return None
    by_folded = {column.casefold(): column for column in expected}
    found = ", ".join(f"`{header[i].strip()}` for `{by_folded[header[i].strip().casefold()]}`" for i in positions)
    return DropRejected(
        drop_id,
        f"{name}'s column names must be written as in the contract, in lower case: found {found}.",
        "Export with the contract's column names exactly (lower case, no spaces), e.g. patient_id.",
    )


def check_is_header(drop_id: str, name: str, header: list[str], expected: list[str], fix: str) -> None:
    """A first row that names none of the expected columns is no header (left out, or not this file):
    refused by its field count alone, since its fields are likely the first row's cells. Unless some
    field is a column name in another case: then it is a header, and the sentence says what is wrong."""
    if not set(header) & set(expected):
        fault = other_case_fault(drop_id, name, header, expected)
        if fault:
            raise fault
        raise DropRejected(
            drop_id,
            f"{name} has no header row: none of the {len(header)} field(s) of its first row is a column of the "
            "contract (was the header row left out, or is it another file?).",
            fix,
        )
