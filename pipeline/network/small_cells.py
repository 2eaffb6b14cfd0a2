"""What a site checks before a model's statistics leave it: no statistic computed over 1 to 10 patients.

X'X holds the number of rows, each indicator's number of 1s and the 1s two indicators share, so the four
cells of every pair's two-by-two table (both, the first only, the second only, neither) and every
indicator's 0s can be worked out from it; X'y and the meat then hold a sum over each of those cells. Each
such cell with 1 to 10 patients is *small*. A small level (an indicator column) is merged into a named
neighbour (the two columns added: one level of the category), merged into the reference level (its column
dropped), or its patients are left out; an indicator whose 0s are small is dropped. Which, and why, is said
in words that never give the count. And a model with more than a tenth as many parameters as rows is not
sent (a design that nearly fits each patient reveals them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import pandas as pd

from pipeline.errors import NetworkInputError
from pipeline.report.suppression import SMALL_CELL

ROWS_PER_PARAMETER = 10
MERGED, DROPPED, LEFT_OUT = "merged", "dropped", "left out"
PAIR_CELLS = ("both", "first only", "second only", "neither")


@dataclass(frozen=True)
class SmallCell:
    """A cell of 1 to 10 patients: ``columns`` one indicator (``cell`` '1s' or '0s') or two (``cell`` one of
    ``PAIR_CELLS``). It carries no count."""

    columns: tuple[str, ...]
    cell: str

    def sentence(self) -> str:
        if len(self.columns) == 1:
            which = "holding it" if self.cell == "1s" else "without it"
            return f"the patients {which} ({self.columns[0]}) are 1 to 10"
        first, second = self.columns
        return f"the patients in the {self.cell} cell of {first} by {second} are 1 to 10"


@dataclass(frozen=True)
class LevelAction:
    """What was done to one indicator column, and why (``reason``, a SmallCell's sentence)."""

    column: str
    action: str  # MERGED, DROPPED or LEFT_OUT
    into: str | None
    reason: str

    def sentence(self) -> str:
        if self.action == MERGED:
            return f"{self.column} merged into {self.into or 'the reference level'}: {self.reason}"
        if self.action == DROPPED:
            return f"{self.column} no longer tells patients apart (dropped): {self.reason}"
        return f"the patients with {self.column} left out: {self.reason}"


@dataclass(frozen=True)
class SafeDesign:
    """The design as it may leave the site, what was done to it, and ``withheld``: the reason the model
    cannot be sent at all (a protected column, such as the treatment, with a small cell), or None."""

    design: pd.DataFrame
    actions: list[LevelAction] = field(default_factory=list)
    withheld: str | None = None


def _is_small(count: int) -> bool:
    return 0 < count < SMALL_CELL


def indicator_columns(design: pd.DataFrame, exclude: Sequence[str] = ("const",)) -> list[str]:
    """The design's 0/1 columns other than the intercept (``exclude``)."""
    return [
        str(c)
        for c in design.columns
        if c not in exclude and design[c].notna().all() and design[c].isin((0, 1)).all() and design[c].nunique() > 0
    ]


def small_cells(design: pd.DataFrame, indicators: Sequence[str] | None = None) -> list[SmallCell]:
    """Every small cell of the design's indicators: an indicator's 1s or 0s, a pair's four cells."""
    columns = list(indicators) if indicators is not None else indicator_columns(design)
    n = len(design)
    if not columns:
        return []
    values = design[columns].to_numpy(dtype=float)
    shared = (values.T @ values).round().astype(int)  # shared[a, b]: the 1s of a and b; shared[a, a]: a's 1s
    found: list[SmallCell] = []
    for i, column in enumerate(columns):
        ones = int(shared[i, i])
        if _is_small(ones):
            found.append(SmallCell((column,), "1s"))
        if _is_small(n - ones):
            found.append(SmallCell((column,), "0s"))
    for i, j in combinations(range(len(columns)), 2):
        both = int(shared[i, j])
        first, second = int(shared[i, i]), int(shared[j, j])
        for cell, count in zip(PAIR_CELLS, (both, first - both, second - both, n - first - second + both), strict=True):
            # A pair's "first only" equal to the first's 1s (or "neither" equal to its 0s) is that indicator's own cell.
            if _is_small(count) and not (
                (cell == "first only" and count == first)
                or (cell == "second only" and count == second)
                or (cell == "neither" and count in (n - first, n - second))
            ):
                found.append(SmallCell((columns[i], columns[j]), cell))
    return found


def _without(design: pd.DataFrame, column: str, keep_columns: bool, value: float = 0.0) -> pd.DataFrame:
    """The design without ``column``; with ``keep_columns`` the column stays, set to ``value`` in every row
    (so the site's frame still holds every column of the network's design)."""
    return design.assign(**{column: value}) if keep_columns else design.drop(columns=column)


def merge_level(
    design: pd.DataFrame, column: str, into: str | None, reason: str, keep_columns: bool = False
) -> tuple[pd.DataFrame, LevelAction]:
    """Merge the level ``column`` into the level ``into`` (the two indicators added: they must never both
    be 1), or into the reference level (``into`` None: the column dropped, or zeroed with ``keep_columns``)."""
    if column not in design.columns:
        raise NetworkInputError(f"Small cells: no column {column} to merge.")
    if into is None:
        return _without(design, column, keep_columns), LevelAction(column, MERGED, None, reason)
    if into not in design.columns:
        raise NetworkInputError(f"Small cells: {column} cannot be merged into {into}, which is not in the design.")
    if ((design[column] == 1) & (design[into] == 1)).any():
        raise NetworkInputError(f"Small cells: {column} and {into} are not levels of one category (both 1 in a row).")
    merged = _without(design.assign(**{into: design[into] + design[column]}), column, keep_columns)
    return merged, LevelAction(column, MERGED, into, reason)


def leave_out(
    design: pd.DataFrame, column: str, reason: str, keep_columns: bool = False
) -> tuple[pd.DataFrame, LevelAction]:
    """Leave out the patients with the level ``column`` (and the column, or zero it with ``keep_columns``)."""
    if column not in design.columns:
        raise NetworkInputError(f"Small cells: no column {column} to leave out.")
    kept = _without(design.loc[design[column] != 1], column, keep_columns)
    return kept, LevelAction(column, LEFT_OUT, None, reason)


def disclosure_safe(
    design: pd.DataFrame,
    neighbours: Mapping[str, str | None],
    protected: Sequence[str] = ("treated",),
    indicators: Sequence[str] | None = None,
    keep_columns: bool = False,
) -> SafeDesign:
    """Merge or leave out levels until no cell is small. For a small cell the column acted on is the one
    of its (unprotected) indicators with the fewest 1s: merged into ``neighbours[column]`` (None: the
    reference level) where the map names it, else its patients left out; an indicator whose 0s are small
    is dropped. A small cell of protected columns only (the treatment's 1s, say) withholds the model.
    ``keep_columns``: every column stays (as the network's design needs): a merged or left-out level's
    column is zeroed, an indicator with small 0s set to 1 (its few 0s merged into its 1s)."""
    columns = list(indicators) if indicators is not None else indicator_columns(design, ("const", *protected))
    columns = [*[c for c in protected if c in design.columns], *[c for c in columns if c not in protected]]
    actions: list[LevelAction] = []
    merged_into: dict[str, str | None] = {}
    done: set[str] = set()  # columns acted on (still in the design with ``keep_columns``)
    present: list[str] = []

    def target(column: str) -> str | None:
        into, seen = neighbours[column], {column}
        while into is not None and (into not in present or into in seen):  # its neighbour merged away before it
            seen.add(into)
            into = merged_into.get(into, neighbours.get(into))
            if into in seen:
                return None
        return into

    while True:
        if _is_small(len(design)):
            return SafeDesign(design, actions, "the model's patients are 1 to 10")
        present = [c for c in columns if c in design.columns and c not in done]
        cells = small_cells(design, present)
        if not cells:
            return SafeDesign(design, actions)
        cell = cells[0]
        reason = cell.sentence()
        free = [c for c in cell.columns if c not in protected]
        if not free:
            return SafeDesign(design, actions, f"not sent: {reason}")
        column = min(free, key=lambda c: (int(design[c].sum()), present.index(c)))
        if cell.cell == "0s":
            design, action = _without(design, column, keep_columns, 1.0), LevelAction(column, DROPPED, None, reason)
        elif column in neighbours:
            into = target(column)
            design, action = merge_level(design, column, into, reason, keep_columns)
            merged_into[column] = into
        else:
            design, action = leave_out(design, column, reason, keep_columns)
        done.add(column)
        actions.append(action)


def too_many_parameters(n_rows: int, n_parameters: int) -> str | None:
    """A sentence where the model has more than one parameter per ``ROWS_PER_PARAMETER`` rows, else None."""
    if n_parameters * ROWS_PER_PARAMETER > n_rows:
        return (
            f"not sent: {n_parameters} parameters need at least {n_parameters * ROWS_PER_PARAMETER} patients "
            f"(a tenth of the rows at most)"
        )
    return None
