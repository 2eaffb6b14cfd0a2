"""The disclosure audit: can a reader work out a count from 1 to 10 from this release and the earlier ones?

What a reader knows: every count printed exactly, every range printed ("270 to 279"), that "<11" is 1 to 10
and that "suppressed" hides a count of 11 or more, in this release and in every earlier release kept in the
data home. The unknowns are the sizes of the finest partition of patients (the *atoms*: patients who fall in
exactly the same printed cells of every release). For each *target*, a set of patients whose number is 1 to
10, linear programming (HiGHS) finds the least and the most it can be given all that. The target is safe when
its range reaches 0 or 11, or holds at least ``PROTECTION_VALUES`` values (the reader knows little more than
"<11" says); it is a leak when it is pinned more narrowly inside 1 to 10. The targets:

- every hidden cell (``<11``, ``suppressed``) of every release, and every count the tables imply without
  printing it (:meth:`Register.implied`: a total minus its printed parts);
- the difference of two printed cells one inside the other (a total minus a part);
- the patients a cell gained or lost from one release to the next (the same cell in two releases).

On a leak, :func:`protect` gives up detail in the new release, earlier releases being published already: it
prints a count the leak is read from as a range of ten values that leaves the leak known only as "1 to 10"
(as the patient flow does), or, where that cannot help, hides a count that pins it (a non-zero shadow price),
taking the tables in the caller's order, smallest count first. When nothing in the new release can be given
up, the release is refused with a sentence naming the table. The design: ``docs/disclosure.md``.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import highspy
import numpy as np
from scipy import sparse

from pipeline.errors import PipelineError
from pipeline.report.register import (
    HIDDEN_STATUSES,
    IMPLIED,
    RANGE,
    SECONDARY,
    SHOWN,
    SMALL,
    WITHHELD,
    Cell,
    PatientKey,
    Register,
)
from pipeline.report.suppression import SMALL_CELL

TOLERANCE = 1e-6
MAX_ROUNDS = 200
# A count of 1 to 10 is protected while a reader cannot narrow it to fewer than this many values (tau-argus's
# protection interval): knowing it is "at least 2" says no more than "<11" does; "6 or 7" says too much.
PROTECTION_VALUES = 5


class DisclosureError(PipelineError):
    """A release that cannot be made safe by giving up more of it."""


@dataclass(frozen=True)
class Target:
    release: str
    kind: str  # "hidden", "difference", "change"
    what: str  # words naming it, never a value
    table: str
    atoms: tuple[int, ...]
    # Printed cells that, shown as a range of ten, leave the target known only as "1 to 10":
    # (cell position, whether the target lies inside that cell).
    ranges: tuple[tuple[int, bool], ...] = ()


@dataclass
class Leak:
    target: Target
    low: float
    high: float
    binding: list[int]  # positions of cells whose constraint pins it


@dataclass
class AuditResult:
    releases: list[str]
    atoms: int
    constraints: int
    targets: int
    leaks: list[Leak] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.leaks


@dataclass
class _Problem:
    """The registers as one linear system over the atoms."""

    registers: list[Register]
    cells: list[tuple[int, Cell]]  # (register index, cell)
    rows: sparse.csr_matrix  # cells x atoms, 1 where the atom lies in the cell
    sizes: np.ndarray  # the true size of each atom
    keys: list[bytes] = field(
        default_factory=list
    )  # each cell's atoms, as bytes: cells with equal keys count the same patients

    def atoms_of(self, position: int) -> np.ndarray:
        return self.rows.indices[self.rows.indptr[position] : self.rows.indptr[position + 1]]


def _problem(registers: list[Register]) -> _Problem:
    universe: dict[PatientKey, int] = {}
    cells: list[tuple[int, Cell]] = []
    rows, cols = [], []
    for r, register in enumerate(registers):
        to_global = np.array([universe.setdefault(p, len(universe)) for p in register.patients], dtype=np.int64)
        for cell in register.cells.values():
            cols.append(to_global[cell.members] if len(cell.members) else np.zeros(0, np.int64))
            rows.append(np.full(len(cell.members), len(cells), dtype=np.int64))
            cells.append((r, cell))
    cell_of = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    patient_of = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    by_patient = sparse.csr_matrix(
        (np.ones(len(cell_of), dtype=np.int8), (patient_of, cell_of)), shape=(len(universe), len(cells))
    )
    by_patient.sort_indices()
    # Patients in exactly the same cells form one atom.
    signatures: dict[bytes, int] = {}
    atom_of = np.empty(len(universe), dtype=np.int64)
    for patient in range(len(universe)):
        start, end = by_patient.indptr[patient], by_patient.indptr[patient + 1]
        atom_of[patient] = signatures.setdefault(by_patient.indices[start:end].tobytes(), len(signatures))
    sizes = np.bincount(atom_of, minlength=len(signatures)).astype(float)
    cell_atoms = sparse.csr_matrix(
        (np.ones(len(cell_of)), (cell_of, atom_of[patient_of])), shape=(len(cells), len(signatures))
    )
    cell_atoms.sum_duplicates()
    cell_atoms.data[:] = 1.0  # an atom is wholly in a cell or wholly out
    cell_atoms.sort_indices()
    problem = _Problem(registers, cells, cell_atoms, sizes)
    problem.keys = [problem.atoms_of(p).tobytes() for p in range(len(cells))]
    return problem


def _silent_highs() -> highspy.Highs:
    """A HiGHS instance, without the banner it writes to the process's standard output when created."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            highs = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return highs


def _known_bounds(cell: Cell) -> tuple[float, float] | None:
    """What the release tells a reader of the cell's count: (low, high), or None for nothing."""
    if cell.status == SHOWN:
        return float(cell.value), float(cell.value)
    if cell.status == RANGE and cell.low is not None and cell.high is not None:
        return float(cell.low), float(cell.high)
    if cell.status == SMALL:
        return 1.0, float(SMALL_CELL - 1)
    if cell.status == SECONDARY and cell.value >= SMALL_CELL:  # a table that hid a 0 that way says nothing
        return float(SMALL_CELL), np.inf
    return None


class _Reader:
    """What a reader knows, as one HiGHS model over the atoms; re-solved for each target from the last basis."""

    def __init__(self, problem: _Problem) -> None:
        bounds: dict[bytes, list[float]] = {}
        self.cells_of_row: dict[bytes, list[int]] = {}
        for position, (_, cell) in enumerate(problem.cells):
            known = _known_bounds(cell)
            if known is None:
                continue
            key = problem.keys[position]
            low, high = bounds.setdefault(key, [0.0, np.inf])
            bounds[key] = [max(low, known[0]), min(high, known[1])]
            self.cells_of_row.setdefault(key, []).append(position)
        self.row_keys = list(bounds)
        first = {key: positions[0] for key, positions in self.cells_of_row.items()}
        self.n_atoms = len(problem.sizes)
        self.n_exact = sum(1 for key in self.row_keys if bounds[key][0] == bounds[key][1])
        self.highs = _silent_highs()
        for option, value in (("output_flag", False), ("presolve", "off"), ("simplex_strategy", 4)):
            self.highs.setOptionValue(option, value)  # primal simplex from the last basis: only the costs change
        matrix = (
            problem.rows[[first[k] for k in self.row_keys]].tocsc()
            if self.row_keys
            else sparse.csc_matrix((0, self.n_atoms))
        )
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n_atoms, len(self.row_keys)
        lp.col_cost_ = np.zeros(self.n_atoms)
        lp.col_lower_ = np.zeros(self.n_atoms)
        lp.col_upper_ = np.full(self.n_atoms, highspy.kHighsInf)
        lp.row_lower_ = np.array([bounds[k][0] for k in self.row_keys], dtype=float)
        lp.row_upper_ = np.array([min(bounds[k][1], highspy.kHighsInf) for k in self.row_keys], dtype=float)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr
        lp.a_matrix_.index_ = matrix.indices
        lp.a_matrix_.value_ = matrix.data.astype(float)
        self.highs.passModel(lp)
        self.columns = np.arange(self.n_atoms, dtype=np.int32)

    def _solve(self, cost: np.ndarray, sense: highspy.ObjSense) -> tuple[float, list[bytes]]:
        self.highs.changeColsCost(self.n_atoms, self.columns, cost)
        self.highs.changeObjectiveSense(sense)
        self.highs.run()
        status = self.highs.getModelStatus()
        if status == highspy.HighsModelStatus.kUnbounded:
            return (np.inf if sense == highspy.ObjSense.kMaximize else -np.inf), []
        if status != highspy.HighsModelStatus.kOptimal:
            words = self.highs.modelStatusToString(status)
            raise DisclosureError(f"The disclosure audit could not be solved ({words}); nothing was published.")
        duals = self.highs.getSolution().row_dual
        binding = [key for key, dual in zip(self.row_keys, duals, strict=True) if abs(dual) > TOLERANCE]
        return float(self.highs.getInfo().objective_function_value), binding

    def check(self, target: Target) -> Leak | None:
        cost = np.zeros(self.n_atoms)
        cost[list(target.atoms)] = 1.0
        high, high_binding = self._solve(cost, highspy.ObjSense.kMaximize)
        if high >= SMALL_CELL - TOLERANCE:
            return None
        low, low_binding = self._solve(cost, highspy.ObjSense.kMinimize)
        # A reader counts whole patients: the ends of the range round inwards.
        low, high = float(np.ceil(low - TOLERANCE)), float(np.floor(high + TOLERANCE))
        if low <= 0 or high - low >= PROTECTION_VALUES - 1:
            return None
        binding = [p for key in [*high_binding, *low_binding] for p in self.cells_of_row[key]]
        return Leak(target, low, high, binding)


def _targets(problem: _Problem) -> list[Target]:
    rows, sizes = problem.rows, problem.sizes
    values = np.asarray(rows @ sizes).ravel()
    found: dict[tuple[int, ...], Target] = {}

    def add(target: Target) -> None:
        if target.atoms and 0 < sizes[list(target.atoms)].sum() < SMALL_CELL:
            found.setdefault(target.atoms, target)

    def words(position: int) -> str:
        cell = problem.cells[position][1]
        return f"{cell.population} ({cell.table or 'implied by other counts'})"

    # Who holds whom: shared[i, j] = patients in both cells i and j; j lies inside i when shared = |j|.
    shared = (rows @ sparse.diags(sizes) @ rows.T).tocoo()
    inside = (np.abs(shared.data - values[shared.col]) < TOLERANCE) & (shared.row != shared.col)
    outer_of, inner_of = shared.row[inside], shared.col[inside]
    holders: dict[int, list[int]] = {}
    for outer, inner in zip(outer_of.tolist(), inner_of.tolist(), strict=True):
        holders.setdefault(inner, []).append(outer)

    for position, (r, cell) in enumerate(problem.cells):
        if cell.status in HIDDEN_STATUSES:
            # An implied count (a total minus its printed parts) is covered by ranging a total that holds it.
            ranges = tuple((p, True) for p in holders.get(position, ())) if cell.status == IMPLIED else ()
            atoms = tuple(problem.atoms_of(position).tolist())
            add(Target(problem.registers[r].release, "hidden", words(position), cell.table, atoms, ranges))
    # A printed cell inside another, differing by 1 to 10: the difference is a count in itself.
    printed = np.array([cell.status != IMPLIED for _, cell in problem.cells], dtype=bool)
    gap = values[outer_of] - values[inner_of]
    pairs = (gap > TOLERANCE) & (gap < SMALL_CELL - TOLERANCE) & printed[outer_of] & printed[inner_of]
    for outer, inner in zip(outer_of[pairs].tolist(), inner_of[pairs].tolist(), strict=True):
        atoms = tuple(sorted(set(problem.atoms_of(outer).tolist()) - set(problem.atoms_of(inner).tolist())))
        release = problem.registers[problem.cells[outer][0]].release
        table = problem.cells[outer][1].table
        what = f"{words(outer)} minus {words(inner)}"
        add(Target(release, "difference", what, table, atoms, ((inner, False), (outer, True))))
    # The same cell in any two releases (not only neighbours: a reader may keep the first and the third):
    # the patients it gained or lost in between.
    by_key: dict[str, list[int]] = {}
    for position, (_, cell) in enumerate(problem.cells):
        by_key.setdefault(cell.key, []).append(position)
    for positions in by_key.values():
        for before, after in itertools.combinations(positions, 2):
            a, b = set(problem.atoms_of(before).tolist()), set(problem.atoms_of(after).tolist())
            names = (
                problem.registers[problem.cells[before][0]].release,
                problem.registers[problem.cells[after][0]].release,
            )
            for moved, verb, holds in ((b - a, "joined", True), (a - b, "left", False)):
                what = f"patients who {verb} {words(after)} between {names[0]} and {names[1]}"
                add(
                    Target(
                        names[1], "change", what, problem.cells[after][1].table, tuple(sorted(moved)), ((after, holds),)
                    )
                )
    return list(found.values())


def audit(current: Register, earlier: list[Register] | None = None) -> AuditResult:
    """Every leak of ``current`` read together with ``earlier`` releases (see the module)."""
    return _audit([*(earlier or []), current])[0]


def _audit(registers: list[Register], only: list[Target] | None = None) -> tuple[AuditResult, _Problem]:
    problem = _problem(registers)
    reader = _Reader(problem)
    targets = _targets(problem) if only is None else only
    result = AuditResult([r.release for r in registers], len(problem.sizes), len(reader.row_keys), len(targets))
    for target in sorted(targets, key=lambda t: t.atoms):  # neighbouring objectives: fewer simplex steps
        leak = reader.check(target)
        if leak is not None:
            result.leaks.append(leak)
    return result, problem


def protect(
    current: Register,
    earlier: list[Register] | None = None,
    order: Sequence[str] = (),
    headline: Collection[str] = (),
) -> dict[str, object]:
    """Give up detail in ``current`` until no count from 1 to 10 can be worked out; return the audit's record
    for the manifest. ``order``: tables whose counts are given up first (the rest after them); ``headline``:
    keys of the counts given up after every table (and, with them, every count of the same patients).
    Raises :class:`DisclosureError` when nothing in this release can be given up to prevent a leak."""
    registers = [*(earlier or []), current]
    ranked = {table: rank for rank, table in enumerate(order)}
    changed: dict[str, str] = {}
    found_before: int | None = None
    only: list[Target] | None = None
    for _ in range(MAX_ROUNDS):
        # Giving up detail only takes from what a reader knows: a target once safe stays safe.
        result, problem = _audit(registers, only)
        if found_before is None:
            found_before = len(result.leaks)
        if result.passed:
            break
        # A count an earlier release printed exactly is known whatever this one does with it.
        printed_before = {
            problem.keys[p] for p, (r, c) in enumerate(problem.cells) if r < len(registers) - 1 and c.status == SHOWN
        }

        def movable(position: int, problem: _Problem = problem, printed_before: set[bytes] = printed_before) -> bool:
            release, cell = problem.cells[position]
            return (
                release == len(registers) - 1
                and cell.status in (SHOWN, RANGE, SMALL, SECONDARY)
                and problem.keys[position] not in printed_before
            )

        # A count is given up with every twin (the same patients, printed the same way: _give_up), so it ranks
        # as its most important twin: a detail table's copy of the headline is not the cheap one to give up.
        rank_of: dict[bytes, int] = {}
        for p, (r, c) in enumerate(problem.cells):
            if r == len(registers) - 1:
                key = problem.keys[p]
                rank = len(ranked) + 1 if c.key in headline else ranked.get(c.table, len(ranked))
                rank_of[key] = max(rank_of.get(key, -1), rank)

        def priority(
            position: int, problem: _Problem = problem, rank_of: dict[bytes, int] = rank_of
        ) -> tuple[int, int, str]:
            cell = problem.cells[position][1]
            rank = rank_of.get(problem.keys[position], ranked.get(cell.table, len(ranked)))
            return rank, cell.value, cell.key

        touched: set[bytes] = set()
        for leak in result.leaks:
            if any(problem.keys[p] in touched for p in [*leak.binding, *(p for p, _ in leak.target.ranges)]):
                continue  # something it depends on changed this round: look again next round
            touched.add(_relieve(problem, leak, movable, priority, changed))
        touched.discard(b"")
        if not touched:
            leak = result.leaks[0]
            raise DisclosureError(
                f"The {current.release} release cannot be published: in table {leak.target.table or 'of the report'}, "
                f"the number of {leak.target.what} can be worked out as a count from 1 to {SMALL_CELL - 1}, and "
                "nothing in this release can be hidden to prevent it (earlier releases already print what pins it)."
            )
        only = [leak.target for leak in result.leaks]
    else:
        raise DisclosureError(
            f"The {current.release} release cannot be published: the disclosure audit did not settle."
        )
    final, _ = _audit(registers)  # the whole audit once more, on the release as it will be printed
    if not final.passed:
        leak = final.leaks[0]
        raise DisclosureError(
            f"The {current.release} release cannot be published: table {leak.target.table or 'of the report'} "
            f"still lets the number of {leak.target.what} be worked out."
        )
    return {
        "rule": (
            f"no count from 1 to {SMALL_CELL - 1} is printed (it reads '<{SMALL_CELL}'), nor can it be worked out "
            "more narrowly than that from this release and the earlier ones; audited by linear programming over "
            "the finest partition of patients (docs/disclosure.md)"
        ),
        "releases_read": final.releases,
        "counts_registered": len(current.printed()),
        "cells_hidden": sum(1 for c in current.cells.values() if c.status in HIDDEN_STATUSES and c.table),
        "cells_hidden_by_audit": sorted(k for k, how in changed.items() if how in (SECONDARY, WITHHELD)),
        "cells_shown_as_ranges_by_audit": sorted(k for k, how in changed.items() if how == RANGE),
        "leaks_found_before_protection": found_before,
        "atoms": final.atoms,
        "targets_checked": final.targets,
        "passed": True,
    }


def _relieve(
    problem: _Problem,
    leak: Leak,
    movable: Callable[[int], bool],
    priority: Callable[[int], tuple[int, int, str]],
    changed: dict[str, str],
) -> bytes:
    """Give up one count for the leak, the first by ``priority`` among the counts it is read from: a count
    holding it, held by it or beside it (no patient in common) is printed as a range of ten that leaves the
    leak known only as "1 to 10", or widened, or hidden when already ranged; any other count that pins it
    (non-zero shadow price) is hidden.
    Returns the key of the count given up (b"" when none could be)."""
    true = int(problem.sizes[list(leak.target.atoms)].sum())
    holds = dict(leak.target.ranges)

    # Within a table, a range (detail kept) before hiding.
    # A count already "suppressed" is withheld only where no other can be given up.
    def hidden(p: int) -> bool:
        return problem.cells[p][1].status == SECONDARY

    pool = {p for p in [*holds, *leak.binding] if movable(p)}
    # A count holding the leak that does not pin it (a total a reader has anyway from other counts, with no
    # shadow price) would be given up for nothing: only those that pin it, where any can be given up.
    pinning = pool & set(leak.binding)
    candidates = sorted(pinning or pool, key=lambda p: (hidden(p), priority(p)[0], p not in holds, priority(p)))
    atoms = set(leak.target.atoms)
    if not candidates:
        overlapping = [p for p in range(len(problem.cells)) if movable(p) and atoms & set(problem.atoms_of(p).tolist())]
        candidates = sorted(overlapping, key=lambda p: (hidden(p), priority(p)))[:1]
    for position in candidates:
        cell = problem.cells[position][1]
        if cell.status == SECONDARY:  # "suppressed" still says 11 or more (e.g. against an earlier range)
            return _give_up(problem, position, WITHHELD, None, None, changed)
        inside = holds.get(position)
        if inside is None and cell.status in (SHOWN, RANGE) and not atoms & set(problem.atoms_of(position).tolist()):
            # A part beside the leak (a total minus its parts): a range of ten leaves the leak "1 to 10" as well,
            # and keeps a count a reader wants (the answer's n) printed nearly whole rather than hidden. The
            # audit is run again after: where the range does not settle it, more is given up.
            inside = False
        if inside is None or cell.status == SMALL or cell.value < SMALL_CELL:
            return _give_up(problem, position, SECONDARY, None, None, changed)
        if inside:  # the leak lies inside the cell
            low, high = cell.value - true + 1, cell.value - true + SMALL_CELL - 1
        else:
            low, high = cell.value + true - SMALL_CELL + 1, cell.value + true - 1
        if cell.status == RANGE:  # widen a range already printed: it may only lose detail
            low, high = min(low, cell.low or low), max(high, cell.high or high)
            if (low, high) == (cell.low, cell.high):
                return _give_up(problem, position, SECONDARY, None, None, changed)
        return _give_up(problem, position, RANGE, low, high, changed)
    return b""


def _give_up(
    problem: _Problem, position: int, status: str, low: int | None, high: int | None, changed: dict[str, str]
) -> bytes:
    """Print every count of the new release with these patients the same way (a twin left exact would undo it)."""
    key, newest = problem.keys[position], len(problem.registers) - 1
    if status == SECONDARY and problem.cells[position][1].value < SMALL_CELL:
        status = WITHHELD  # "suppressed" promises 11 or more; "<11" is what pins it: say nothing
    # A twin already "suppressed" changes only to say less ("not shown"), never to a range.
    movable = (SHOWN, RANGE, SMALL, SECONDARY) if status == WITHHELD else (SHOWN, RANGE, SMALL)
    twins = [
        c for p, (r, c) in enumerate(problem.cells) if r == newest and problem.keys[p] == key and c.status in movable
    ]
    if status == RANGE and low is not None and high is not None:  # twins print one range, the widest
        low = min([low, *(c.low for c in twins if c.status == RANGE and c.low is not None)])
        high = max([high, *(c.high for c in twins if c.status == RANGE and c.high is not None)])
    for cell in twins:
        cell.status, cell.low, cell.high = status, low, high
        cell.why = {RANGE: "shown as a range", SECONDARY: "hidden", WITHHELD: "withheld"}[
            status
        ] + " by the disclosure audit"
        changed[cell.key] = status
    return key


__all__ = ["AuditResult", "DisclosureError", "Leak", "Target", "audit", "protect"]
