"""CSV the product writes, safe to open in a spreadsheet: no cell is read as a formula.

A cell that starts with '=', '@', a tab or a carriage return, or with '+' or '-' not followed by a
number, is a formula (or its start) to Excel and LibreOffice; it is written with a leading "'", which
they show as text. A name from a hostile drop ('=HYPERLINK(...)') must not run as one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

_FORMULA_START = re.compile(r"[=@\t\r]|[+-](?![\d.])")


def neutralise_cell(value: object) -> object:
    if isinstance(value, str) and _FORMULA_START.match(value):
        return "'" + value
    return value


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell that a spreadsheet would read as a formula made plain text."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    neutralise_formulas(frame).to_csv(path, index=False, lineterminator="\n")
