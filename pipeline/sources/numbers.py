"""How the contract spells a number, and how every stage reads one.

Clinic tools spell the same number many ways: pandas writes a column holding any empty cell as
floats (``3.0``), SAS and SPSS pad and add points (``3.00``), a hand edit gives ``+3``, a scientific
format ``3e0``. All are the number 3, and an integer rule asks for an integral value, not a cell
without a point. So a number is read once, here, into its value and its canonical spelling (the
shortest plain decimal: ``3``, ``3.5``, ``-0.25``), and the suites' type and integer rules test
the canonical spelling.

What is not a number the contract allows is never read as something else:

- a missing-value marker (``NA``, ``N/A``, ``NaN``, ``NULL``, ``.``, ``#N/A``) in a number column
  refuses the drop (``refuse_missing_markers``): it is a setting of the exporting tool, fixed once;
- thousands separators (``1,000``), decimal commas (``3,5``), infinity, digits of other scripts
  (``٣``, full-width ``３``), hexadecimal, underscores, and a number with more than 30 digits either
  side of the point stay text: the row is quarantined under the column's type rule
  (``type_number:<column>``, ``type_integer:<column>``, ``item_integer:<instrument>``).

``-0`` is zero, and is read as ``0``.
"""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np
import pandas as pd

from pipeline.contract import COLUMNS
from pipeline.errors import DropRejected, row_list
from pipeline.sources import ROW_NUMBER, SourceDrop

# ASCII digits only ([0-9], not \d, which takes any script's digits); an exponent is allowed.
NUMBER_SPELLING = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
MISSING_MARKERS = frozenset({"na", "n/a", "nan", "null", ".", "#n/a"})  # compared in lower case
_MAX_DIGITS = 30  # a plain decimal of at most this many digits either side of the point


def canonical_number(text: str) -> str | None:
    """The canonical spelling of a cell the contract reads as a number ('3.00' -> '3'), else None."""
    text = text.strip()
    if not NUMBER_SPELLING.fullmatch(text):
        return None
    value = Decimal(text)
    if value.is_zero():
        return "0"  # -0, 0.000, 0e5
    if abs(value.adjusted()) > _MAX_DIGITS:
        return None
    spelled = format(value.normalize(), "f")  # positional, no trailing zeros: '3', '30', '0.25'
    return spelled


def read_numbers(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Values (float64, NaN where the cell is empty or not a number) and spellings of a text column.

    A spelling is the canonical one where the cell is a number, the cell itself where it is not
    (so a type rule on it fails), and null where the cell is empty. Read once per distinct cell:
    scores repeat across a million assessment rows.
    """
    codes, uniques = pd.factorize(cells)  # an empty cell gets -1: the appended null
    canonical = [canonical_number(str(cell)) for cell in uniques]
    spelled = np.array([c if c is not None else str(u) for c, u in zip(canonical, uniques, strict=True)] + [None])
    values = np.array([float(c) if c is not None else np.nan for c in canonical] + [np.nan], dtype="float64")
    return (
        pd.Series(values[codes], index=cells.index, dtype="float64"),
        pd.Series(spelled[codes], index=cells.index, dtype="str"),
    )


def integral_text(cells: pd.Series) -> pd.Series:
    """Cells holding an integral number in their canonical spelling ('2.0' -> '2'); others unchanged.

    For text fields a tool may have written as floats (REDCap's form status and repeat instance,
    read back from pandas), which name codes and keys, not quantities.
    """
    codes, uniques = pd.factorize(cells)
    out = []
    for cell in uniques:
        canonical = canonical_number(str(cell))
        out.append(canonical if canonical is not None and "." not in canonical else cell)
    return pd.Series(np.array([*out, None], dtype=object)[codes], index=cells.index, dtype="str")


def is_missing_marker(cells: pd.Series) -> pd.Series:
    return cells.str.strip().str.lower().isin(MISSING_MARKERS).fillna(False).astype(bool)


def refuse_missing_markers(drop: SourceDrop) -> None:
    """Refuse a drop whose number columns spell a missing value as a marker instead of an empty cell.

    A marker is the exporting tool's setting (R's ``NA``, SAS's ``.``), so it is in every empty cell of
    the file: refused once, with the setting to change, rather than quarantined row by row, and never
    read as a number or silently as empty.
    """
    faults = []
    for table, frame in drop.tables.items():
        file = drop.files[table].file if table in drop.files else f"{table}.csv"
        for column in COLUMNS[table]:
            if column.kind == "text" or column.name not in frame:
                continue
            marked = is_missing_marker(frame[column.name])
            if marked.any():
                rows = sorted(set(frame.loc[marked, ROW_NUMBER].astype(int).tolist()))
                faults.append(f"{file}, column {drop.column_name(table, column.name)} ({row_list(rows)})")
    if faults:
        raise DropRejected(
            drop.drop_id,
            "number column(s) spell a missing value with a marker (NA, N/A, NaN, NULL, . or #N/A) where the "
            "contract leaves the cell empty: " + "; ".join(dict.fromkeys(faults)) + ".",
            'Export missing values as empty cells (R: write.csv(..., na = ""); SAS: options missing = " " '
            "before the export; pandas: to_csv without na_rep) and send the drop again.",
        )
