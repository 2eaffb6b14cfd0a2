"""Small-cell suppression: the one place every published count, mean and estimate goes through.

The rule (CMS cell size, see the domain notes):

- a count from 1 to 10 shows as ``<11`` (0 shows);
- a mean, SD, percentage or estimate computed on fewer than 11 patients is hidden;
- no hidden cell may be recoverable from a published total: in every line of a table that adds up
  to a published total (a column adding to its group's size, a row adding to its "all" cell), at
  least two cells are hidden and the hidden ones add up to 11 or more (complementary suppression:
  the extra cells show as ``suppressed``).

Tables are built from counts with :func:`suppress_grid` (two-way tables), :func:`suppress_counts`
(one column), :func:`flow_counts` (nested steps) and :func:`hide_small` (statistics on n patients);
figures are drawn only from frames passed through :func:`safe_summary` / :func:`mark_shown`.
:func:`audit_table` is the last check on every published table: it refuses to publish a count
column holding 1 to 10.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

SMALL_CELL = 11  # counts below this (and above 0) are hidden
SUPPRESSED = "<11"
COMPLEMENTARY = "suppressed"  # a larger count hidden so that a small one cannot be worked out from the total
HIDDEN = "hidden (n<11)"
SMALL_PATTERN = re.compile(r"(?:[1-9]|10)")  # matched whole (fullmatch)

# Status of a cell in a suppressed grid.
SHOWN, SMALL, SECONDARY = "shown", "small", "secondary"


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def is_small(count: object) -> bool:
    """True for a count that must not be shown: 1 to 10."""
    return not _missing(count) and 0 < int(count) < SMALL_CELL  # type: ignore[call-overload]


def format_count(count: object) -> str:
    """A count as published: '' when unknown, '0', '<11' for 1 to 10, else the number."""
    if _missing(count):
        return ""
    return SUPPRESSED if is_small(count) else f"{int(count):,}"  # type: ignore[call-overload]


def suppress_grid(
    grid: Sequence[Sequence[int]] | np.ndarray, rows_total: bool = True, columns_total: bool = True
) -> np.ndarray:
    """Statuses (SHOWN, SMALL, SECONDARY) for a two-way table of counts.

    ``columns_total``: each column adds up to a published total (e.g. a group's size), so each column
    with a hidden cell needs at least two, adding up to 11 or more; ``rows_total`` likewise for rows.
    Secondary cells are chosen smallest first, repeating until every line is safe."""
    values = np.asarray(grid, dtype=np.int64).reshape(len(grid), -1) if len(grid) else np.zeros((0, 0), np.int64)
    status = np.full(values.shape, SHOWN, dtype=object)
    status[(values > 0) & (values < SMALL_CELL)] = SMALL
    lines: list[list[tuple[int, int]]] = []
    if columns_total:
        lines += [[(r, c) for r in range(values.shape[0])] for c in range(values.shape[1])]
    if rows_total:
        lines += [[(r, c) for c in range(values.shape[1])] for r in range(values.shape[0])]
    changed = True
    while changed:
        changed = False
        for line in lines:
            hidden = [cell for cell in line if status[cell] != SHOWN]
            if not hidden:
                continue
            while len(hidden) < 2 or sum(int(values[cell]) for cell in hidden) < SMALL_CELL:
                candidates = sorted(
                    (int(values[cell]), cell) for cell in line if status[cell] == SHOWN and values[cell]
                )
                if not candidates:
                    break
                cell = candidates[0][1]
                status[cell] = SECONDARY
                hidden.append(cell)
                changed = True
    return status


def shown_grid(grid: Sequence[Sequence[int]] | np.ndarray, status: np.ndarray) -> list[list[str]]:
    values = np.asarray(grid, dtype=np.int64).reshape(status.shape)
    words = {SMALL: SUPPRESSED, SECONDARY: COMPLEMENTARY}
    return [
        [words.get(s, format_count(v)) for v, s in zip(rv, rs, strict=True)]
        for rv, rs in zip(values, status, strict=True)
    ]


def suppress_counts(counts: Sequence[int], complementary: bool = True) -> list[str]:
    """Format a column of counts. With ``complementary`` (the column adds up to a published total),
    further cells are hidden (shown as 'suppressed'), smallest first, until at least two are hidden
    and the hidden cells add up to 11 or more, so no hidden cell can be worked out by subtraction."""
    values = [[0 if _missing(c) else int(c)] for c in counts]
    if not values:
        return []
    status = suppress_grid(values, rows_total=False, columns_total=complementary)
    return [row[0] for row in shown_grid(values, status)]


def flow_counts(counts: Sequence[int], anchor: int = 0) -> list[str]:
    """Format the steps of a patient flow (each a subset of the one before). The ``anchor`` step is shown
    exactly (the analysis population, whose size other tables add up to); a step that differs by 1 to 10
    patients from the nearest exactly shown step towards the anchor is shown as a range of 10 values, so
    the number lost (a small cell) cannot be worked out by subtraction."""
    values = [int(c) for c in counts]
    shown = [""] * len(values)
    if not values:
        return shown
    shown[anchor] = format_count(values[anchor])
    exact = values[anchor]
    for i in range(anchor + 1, len(values)):  # later steps: subsets of the anchor
        if is_small(values[i]):
            shown[i] = SUPPRESSED
        elif 0 < exact - values[i] < SMALL_CELL:
            shown[i] = f"{exact - SMALL_CELL + 1:,} to {exact - 1:,}"
        else:
            shown[i] = format_count(values[i])
            exact = values[i]
    exact = values[anchor]
    for i in range(anchor - 1, -1, -1):  # earlier steps: supersets of the anchor
        if is_small(values[i]):
            shown[i] = SUPPRESSED
        elif 0 < values[i] - exact < SMALL_CELL:
            shown[i] = f"{exact + 1:,} to {exact + SMALL_CELL - 1:,}"
        else:
            shown[i] = format_count(values[i])
            exact = values[i]
    return shown


def flow_excluded(counts: Sequence[int], anchor: int = 0) -> list[str]:
    """The number each step of a flow excluded, shown only where both neighbouring steps are shown
    exactly (otherwise it would give away a hidden step): '' for the first step."""
    shown = flow_counts(counts, anchor)
    out = [""]
    for i in range(1, len(counts)):
        lost = int(counts[i - 1]) - int(counts[i])
        exact = shown[i - 1] == format_count(counts[i - 1]) and shown[i] == format_count(counts[i])
        exact = exact and not is_small(counts[i - 1]) and not is_small(counts[i])
        out.append(format_count(lost) if exact else (SUPPRESSED if is_small(lost) else COMPLEMENTARY))
    return out


def hide_small(value: object, n: object, digits: int = 1) -> str:
    """A mean, SD, percentage or estimate computed on ``n`` patients: hidden when n is below 11."""
    if _missing(n) or int(n) < SMALL_CELL:  # type: ignore[call-overload]
        return HIDDEN
    if _missing(value):
        return ""
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def percent(count: int, total: int, status: str = SHOWN) -> str:
    """A percentage, shown only for a shown count out of a total of at least 11."""
    if status != SHOWN or total < SMALL_CELL:
        return ""
    return f"{100.0 * count / total:.0f}%"


def safe_summary(summary: pd.DataFrame, n_column: str = "n") -> pd.DataFrame:
    """A frame of statistics (mean, sd, ci_low, ci_high, ...) with every statistic on fewer than 11
    patients set to NaN and those rows flagged ``shown`` False: what figures may draw."""
    safe = summary.copy()
    shown = safe[n_column].fillna(0).astype(int) >= SMALL_CELL
    for column in ("mean", "sd", "ci_low", "ci_high", "median", "q1", "q3"):
        if column in safe.columns:
            safe[column] = safe[column].where(shown)
    safe["shown"] = shown
    return safe


def too_small(record: object) -> bool:
    n_treated, n_control = record.n_treated, record.n_control  # type: ignore[attr-defined]
    return _missing(n_treated) or _missing(n_control) or min(int(n_treated), int(n_control)) < SMALL_CELL


def shown_estimate(record: object) -> bool:
    """Whether an estimate may be published: estimated, both groups at least 11 patients, and its
    diagnostics passed (like OHDSI's CohortMethod, no estimate is shown before its diagnostics pass)."""
    return (
        not too_small(record)
        and not _missing(record.estimate)  # type: ignore[attr-defined]
        and bool(record.diagnostics_ok)  # type: ignore[attr-defined]
    )


def mark_shown(estimates: pd.DataFrame) -> pd.DataFrame:
    """Every estimate with ``shown`` (may be drawn) and ``why_hidden``; a hidden one's numbers are set to NaN,
    so a figure cannot draw them."""
    marked = estimates.copy()
    shown = [shown_estimate(r) for r in estimates.itertuples(index=False)]
    marked["shown"] = shown
    marked["why_hidden"] = [
        ""
        if ok
        else "not run: group under 11"
        if too_small(r)
        else "not estimated"
        if _missing(r.estimate)
        else "diagnostics did not pass"
        for ok, r in zip(shown, estimates.itertuples(index=False), strict=True)
    ]
    hidden = ~marked["shown"].astype(bool)
    for column in ("estimate", "ci_low", "ci_high", "std_error", "p_value", "p_adjusted", "e_value", "e_value_ci"):
        if column in marked.columns:
            marked.loc[hidden, column] = np.nan
    return marked


COUNT_COLUMN = re.compile(r"(patients|rows|^n$|^n |count|sessions|drops|files|^\d{4}$|single|combined|^all$)", re.I)


def audit_table(name: str, frame: pd.DataFrame) -> None:
    """Refuse to publish a table with a count from 1 to 10 in any count-like column (a last check)."""
    for column in frame.columns:
        if not COUNT_COLUMN.search(str(column)):
            continue
        for value in frame[column].astype(str):
            head = value.split(" (")[0].replace(",", "").strip()
            if SMALL_PATTERN.fullmatch(head):
                raise AssertionError(f"table {name}, column {column}: a count from 1 to 10 would be published")
