"""The clinic export of the contract: three comma-separated files, optional manifest.json.

Parsing is strict: a file that cannot be read exactly as the contract says (encoding,
delimiter, ragged rows, unknown or missing columns) rejects the drop, with a message naming
the file and line, never a cell's content.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import warnings
import zlib
from collections.abc import Callable
from datetime import date

import pandas as pd

from pipeline.contract import COLUMNS, FILES
from pipeline.errors import DropRejected, row_list
from pipeline.screening import name_rules, safe_name
from pipeline.sources import ROW_NUMBER, SOURCES, Manifest, ReceivedFile, SourceDrop, source_parser, strip_cells
from pipeline.sources.numbers import refuse_missing_markers

MANIFEST = "manifest.json"
_MANIFEST_MAX_BYTES = 64 << 10  # a manifest is a few lines; a file listing of a few files
_MANIFEST_FIX = (
    'Write it as a JSON object such as {"site_id": "dal01", "exported_on": "2026-11-20", "snapshot": "full"}.'
)
_SUFFIXES = (".csv", ".csv.gz")
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]{0,63}")
_WHITESPACE_LINE = re.compile(r"^[ \t]+\r?$", re.MULTILINE)  # pandas would skip it; the strict reader calls it ragged


def table_of(file_name: str) -> str | None:
    """The contract table a file name carries ('patients.csv.gz' -> 'patients'), if any."""
    for table in FILES:
        if file_name in (table + suffix for suffix in _SUFFIXES):
            return table
    return None


def read_manifest(drop_id: str, received: ReceivedFile | None) -> Manifest:
    if received is None:
        return Manifest()
    if received.size > _MANIFEST_MAX_BYTES:
        raise DropRejected(drop_id, f"{MANIFEST} is larger than {_MANIFEST_MAX_BYTES // 1024} KiB.", _MANIFEST_FIX)
    try:
        raw = json.loads(received.path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested thousands deep.
        raise DropRejected(
            drop_id, f"{MANIFEST} is not valid UTF-8 JSON ({type(exc).__name__}).", _MANIFEST_FIX
        ) from None
    if not isinstance(raw, dict):
        raise DropRejected(drop_id, f"{MANIFEST} is not a JSON object.")
    snapshot = raw.get("snapshot", "full")
    if snapshot not in ("full", "incremental"):
        raise DropRejected(drop_id, f"{MANIFEST} field 'snapshot' must be 'full' or 'incremental'.")
    confirm = raw.get("confirm_retire", False)
    if not isinstance(confirm, bool):
        raise DropRejected(drop_id, f"{MANIFEST} field 'confirm_retire' must be true or false.")
    site = raw.get("site_id")
    exported = raw.get("exported_on")
    if exported is not None:
        try:
            exported = date.fromisoformat(str(exported)).isoformat()
        except ValueError:
            raise DropRejected(
                drop_id, f"{MANIFEST} field 'exported_on' is not a date written YYYY-MM-DD.", _MANIFEST_FIX
            ) from None
    return Manifest(
        site_id=str(site) if site is not None else None,
        exported_on=exported,
        snapshot=snapshot,
        confirm_retire=confirm,
        source=str(raw.get("source", "clinic_csv")),
        files=_listed_files(drop_id, raw.get("files")),
        raw=raw,
    )


def _listed_files(drop_id: str, files: object) -> dict[str, dict[str, object]] | None:
    """manifest.json's optional "files": {"patients.csv": {"bytes": 1234, "sha256": "..."}, ...}."""
    if files is None:
        return None
    fault = DropRejected(
        drop_id,
        f"{MANIFEST} field 'files' must map each file name to its \"bytes\" (a whole number) and/or "
        '"sha256" (64 hex digits).',
        _MANIFEST_FIX,
    )
    if not isinstance(files, dict) or not files:
        raise fault
    for listed in files.values():
        if not isinstance(listed, dict) or not set(listed) <= {"bytes", "sha256"} or not listed:
            raise fault
        size, sha = listed.get("bytes"), listed.get("sha256")
        if (size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0)) or (
            sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha))
        ):
            raise fault
    return {safe_name(str(name)): listed for name, listed in files.items()}


def parse_drop(drop_id: str, received: list[ReceivedFile]) -> SourceDrop:
    """Read a drop's archived files into text frames; raise DropRejected on any file-level fault.

    manifest.json's "source" picks the parser: this module's (the contract's three files) by default.
    Whatever the source, a number column that spells missing values with a marker refuses the drop.
    """
    manifest = read_manifest(drop_id, next((item for item in received if item.file == MANIFEST), None))
    parser = source_parser(manifest.source)
    if parser is None:
        raise DropRejected(
            drop_id,
            f"{MANIFEST} field 'source' names no source the pipeline reads.",
            f"Leave it out for the three contract files, or give one of: {', '.join(SOURCES)}.",
        )
    drop = parser(drop_id, received, manifest)
    refuse_missing_markers(drop)
    return drop


def parse_source(drop_id: str, received: list[ReceivedFile], manifest: Manifest) -> SourceDrop:
    """The contract's three files (.csv or .csv.gz) as text frames."""
    by_table: dict[str, ReceivedFile] = {}
    for item in received:
        if item.file == MANIFEST:
            continue
        table = table_of(item.file)
        if table is None:
            raise DropRejected(
                drop_id,
                f"it holds a file the contract does not know: {item.file}.",
                "A drop holds only patients, treatments and assessments (.csv or .csv.gz) and manifest.json; "
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


def decode(drop_id: str, received: ReceivedFile) -> str:
    """A received file's text (gunzipped; UTF-8, a byte-order mark tolerated): other adapters read with it too."""
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


def read_rows(
    drop_id: str, name: str, text: str, check_header: Callable[[list[str]], None], ragged_fix: str
) -> pd.DataFrame:
    """A CSV file's text as text columns (empty cell = null) plus each row's spreadsheet row number.

    A plain file goes through pandas' C parser; anything else, and a plain file whose field counts
    do not add up, through the strict reader, which names the rows. ``check_header`` refuses a header
    the source does not accept, before any row is counted; ``ragged_fix`` says how to mend ragged rows.
    Other adapters read with it too.
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


def _check_separator(drop_id: str, name: str, header: list[str]) -> None:
    if len(header) == 1 and any(sep in header[0] for sep in (";", "\t", "|")):
        raise DropRejected(
            drop_id,
            f"{name} is not comma-separated (its header has one column).",
            "Export with commas as the delimiter.",
        )


def header_field(header: list[str], position: int) -> str:
    """A header field as a refusal may name it: its name when that is a plain column name the screen
    passes, else its position. A header row may be a data row (the header left out) or a stray file's
    first line, so a field is only printed when it cannot be a cell of one."""
    field = header[position]
    if _COLUMN_NAME.fullmatch(field) and not name_rules(field):
        return field
    return f"field {position + 1} of the header"


def _fields(header: list[str], positions: list[int]) -> str:
    return ", ".join(header_field(header, i) for i in positions)


def check_header_names(drop_id: str, name: str, header: list[str]) -> None:
    duplicated = [i for i, h in enumerate(header) if header.count(h) > 1 and header.index(h) == i]
    if duplicated:
        raise DropRejected(drop_id, f"{name} has duplicate column(s): {_fields(header, duplicated)}.")


def check_is_header(drop_id: str, name: str, header: list[str], expected: list[str], fix: str) -> None:
    """A first row that names none of the expected columns is no header (left out, or not this file):
    refused by its field count alone, since its fields are likely the first row's cells."""
    if not set(header) & set(expected):
        raise DropRejected(
            drop_id,
            f"{name} has no header row: none of the {len(header)} field(s) of its first row is a column of the "
            "contract (was the header row left out, or is it another file?).",
            fix,
        )


def _check_header(drop_id: str, table: str, name: str, header: list[str]) -> None:
    """The header names the contract's columns of the table, each once, in any order."""
    _check_separator(drop_id, name, header)
    expected = [c.name for c in COLUMNS[table]]
    check_is_header(
        drop_id, name, header, expected, "Export the file with its header row, the contract's column names."
    )
    check_header_names(drop_id, name, header)
    faults = []
    unknown = [i for i, h in enumerate(header) if h not in expected]
    if unknown:
        faults.append(
            DropRejected(
                drop_id,
                f"{name} has column(s) the contract does not know: {_fields(header, unknown)}.",
                "Remove unknown columns from the export; they may carry identifiers, so nothing of the drop was "
                "loaded.",
            )
        )
    absent = [c for c in expected if c not in header]
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
