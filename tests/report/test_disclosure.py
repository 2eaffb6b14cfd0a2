"""The register and the disclosure audit, on small releases built by hand.

The adversary here shares no code with the audit: it reads the tables as printed, knows which patients
each cell counts (as a sum over patient types), enumerates every cohort of whole patients that agrees
with everything printed, and reports each hidden count it can pin inside 1 to 10 more narrowly than
"<11" says.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.report.disclosure import PROTECTION_VALUES, DisclosureError, audit, protect
from pipeline.report.register import SECONDARY, SHOWN, Register
from pipeline.report.suppression import SMALL_CELL, suppress_counts

# Patient types: (group, combination, scored at 12 months).
TYPES = [
    (g, c, s)
    for g, combos in (("single", ("BTX", "PT")), ("combined", ("BTX+PT", "BTX+SN")))
    for c in combos
    for s in (1, 0)
]


def cohort(counts: list[int]) -> list[tuple[tuple[str, str, int], tuple[str, str]]]:
    """Patients of each type, with keys that stay the same when a later release adds patients of a type."""
    return [
        (kind, ("s1", f"T{t}P{k}")) for t, (kind, n) in enumerate(zip(TYPES, counts, strict=True)) for k in range(n)
    ]


def tables(patients: list) -> dict[str, tuple[list[int], str]]:
    """Each printed cell: the types it counts, and a table name. Linked as a report's tables are: a flow
    total, group sizes, combinations within groups, an order table that repeats one combination, scored
    patients per group and per combination (the estimates' n)."""
    cells: dict[str, tuple[list[int], str]] = {"flow|all": (list(range(len(TYPES))), "patient_flow")}
    for g in ("single", "combined"):
        cells[f"table1|{g}"] = ([i for i, t in enumerate(TYPES) if t[0] == g], "table1")
        cells[f"scored|{g}"] = ([i for i, t in enumerate(TYPES) if t[0] == g and t[2]], "estimates")
    for c in ("BTX", "PT", "BTX+PT", "BTX+SN"):
        cells[f"combinations|{c}"] = ([i for i, t in enumerate(TYPES) if t[1] == c], "combinations")
    cells["order|PT"] = ([i for i, t in enumerate(TYPES) if t[1] == "PT"], "treatment_order")
    for c in ("BTX", "BTX+PT"):
        cells[f"scored|{c}"] = ([i for i, t in enumerate(TYPES) if t[1] == c and t[2]], "estimates")
    return cells


def release(counts: list[int], name: str = "2026-Q3") -> Register:
    """The register as the report's tables would fill it: the combinations suppressed within each group
    (complementary), every other count by the cell rule alone."""
    patients = cohort(counts)
    register = Register(name)
    defined = tables(patients)
    members = {key: [p for kind, p in patients if TYPES.index(kind) in types] for key, (types, _) in defined.items()}
    statuses: dict[str, str] = {}
    for _group, combos in (("single", ("BTX", "PT")), ("combined", ("BTX+PT", "BTX+SN"))):
        keys = [f"combinations|{c}" for c in combos]
        for key, text in zip(keys, suppress_counts([len(members[k]) for k in keys]), strict=True):
            statuses[key] = text
    for key, (_, table) in defined.items():
        text = statuses.get(key)
        if text is None:
            register.count(key, key, members[key], place=(table, 0, key))
        else:
            register.printed_count(key, key, members[key], text, (table, 0, key))
    return register


def cohorts(register: Register, types_of: dict[str, list[int]], total: int) -> Iterator[tuple[int, ...]]:
    """Every vector of type counts (whole patients) that agrees with what the register prints."""
    known = []
    for key, cell in register.cells.items():
        text = register.text(key) if cell.status != "implied" else None
        if text is None:
            continue
        if text == "<11":
            low, high = 1, SMALL_CELL - 1
        elif text == "suppressed":
            low, high = SMALL_CELL, total
        elif text == "not shown":
            continue
        elif " to " in text:
            low, high = (int(v.replace(",", "")) for v in text.split(" to "))
        else:
            low = high = int(text.replace(",", ""))
        known.append((types_of[key], low, high))
    yield from _search([], known, total)


def _search(prefix: list[int], known: list[tuple[list[int], int, int]], total: int) -> Iterator[tuple[int, ...]]:
    """Depth first over the types, cutting a branch as soon as a printed count cannot be met."""
    position = len(prefix)
    if position == len(TYPES):
        if all(low <= sum(prefix[i] for i in types) <= high for types, low, high in known):
            yield tuple(prefix)
        return
    for value in range(total - sum(prefix) + 1):
        trial = [*prefix, value]
        if position == len(TYPES) - 1 and sum(trial) != total:
            continue
        feasible = True
        for types, low, high in known:
            done = sum(trial[i] for i in types if i <= position)
            if done > high or (max(types) <= position and done < low):
                feasible = False
                break
        if feasible:
            yield from _search(trial, known, total)


def adversary(register: Register, counts: list[int]) -> list[str]:
    """The hidden counts (and differences of printed counts one inside another) pinned inside 1 to 10."""
    defined = tables(cohort(counts))
    types_of = {key: types for key, (types, _) in defined.items()}
    targets = {key: types for key, types in types_of.items() if register.cells[key].status != SHOWN}
    for (outer, a), (inner, b) in itertools.permutations(types_of.items(), 2):
        if set(b) < set(a):
            targets[f"{outer} minus {inner}"] = sorted(set(a) - set(b))
    true = {k: sum(counts[i] for i in types) for k, types in targets.items()}
    seen: dict[str, set[int]] = {k: set() for k in targets if 0 < true[k] < SMALL_CELL}
    for full in cohorts(register, types_of, sum(counts)):
        for key in seen:
            seen[key].add(sum(full[i] for i in targets[key]))
    return [
        key
        for key, values in seen.items()
        if min(values) >= 1 and max(values) <= SMALL_CELL - 1 and max(values) - min(values) < PROTECTION_VALUES - 1
    ]


SMALL_RELEASES = [
    [2, 1, 10, 5, 12, 2, 4, 1],  # the issue's example: PT hidden in combinations, printed in the order table
    [20, 3, 5, 0, 12, 2, 4, 1],
    [14, 2, 9, 3, 11, 4, 2, 2],
    [12, 0, 1, 3, 10, 5, 3, 0],
    [15, 1, 6, 6, 8, 4, 1, 1],
]


@pytest.mark.parametrize("counts", SMALL_RELEASES)
def test_the_brute_force_adversary_finds_leaks_before_and_none_after(counts: list[int]) -> None:
    register = release(counts)
    before = adversary(register, counts)
    found = audit(register)
    record = protect(register, order=("estimates", "treatment_order", "table1", "combinations", "patient_flow"))
    after = adversary(register, counts)
    assert after == [], after
    assert record["passed"] and audit(register).passed
    # The audit saw every leak the adversary saw (the adversary works in whole patients, the audit in the
    # linear relaxation, which can only see more).
    assert bool(before) <= bool(found.leaks)


def test_the_issue_example_is_found_and_closed() -> None:
    """PT hidden in combinations (complementary suppression) but printed in the order table: with the group
    size, the small BTX cell is worked out exactly."""
    counts = [2, 1, 10, 5, 12, 2, 4, 1]  # single modality: BTX 3 ("<11"), PT 15 ("suppressed"); order PT 15
    register = release(counts)
    assert register.text("combinations|BTX") == "<11" and register.text("combinations|PT") == "suppressed"
    assert register.text("order|PT") == "15"
    assert adversary(register, counts), "the unprotected release leaks"
    protect(register)
    assert adversary(register, counts) == []
    assert register.text("order|PT") in ("suppressed", "not shown") or " to " in register.text("order|PT")


def random_release(rng: np.random.Generator, n_patients: int, n_sites: int, name: str) -> Register:
    """A cohort with sites, groups, combinations, index years and scores, and a release of linked tables
    over it (sizes, combinations by group, years by group, scored per combination, per site)."""
    combos = {"single": ["BTX", "PT", "SN"], "combined": ["BTX+PT", "BTX+SN", "BTX+MY", "BTX+PT+SN"]}
    sites = rng.integers(0, n_sites, n_patients)
    group = np.where(rng.random(n_patients) < 0.45, "combined", "single")
    combination = np.array([rng.choice(combos[g], p=None if g == "single" else [0.5, 0.2, 0.2, 0.1]) for g in group])
    scored = rng.random(n_patients) < 0.8
    year = rng.integers(2020, 2027, n_patients)
    keys = [(f"site{s:02d}", f"P{i}") for i, s in enumerate(sites)]
    register = Register(name)

    def put(key: str, table: str, mask: np.ndarray, status: str | None = None) -> None:
        register.count(key, key, [k for k, m in zip(keys, mask, strict=True) if m], status, (table, 0, key))

    put("flow|all", "patient_flow", np.ones(n_patients, bool))
    for g in combos:
        put(f"table1|{g}", "table1", group == g)
        put(f"scored|{g}", "estimates", (group == g) & scored)
        cells = [(c, (combination == c)) for c in combos[g]]
        shown = suppress_counts([int(m.sum()) for _, m in cells])
        for (c, m), text in zip(cells, shown, strict=True):
            status = {"<11": None, "suppressed": SECONDARY}.get(text, SHOWN if m.sum() == 0 or m.sum() >= 11 else None)
            put(f"combinations|{g}|{c}", "combinations", m, status)
            put(f"scored|{c}", "estimates", m & scored, None if (m & scored).sum() else SHOWN)
        for y in range(2020, 2027):
            put(f"years|{g}|{y}", "groups_by_year", (group == g) & (year == y))
    for s in range(n_sites):
        put(f"sites|{s}", "sites", sites == s)
    return register


@pytest.mark.parametrize(
    ("n_patients", "n_sites", "seed"),
    [(7, 1, 1), (25, 2, 2), (60, 1, 3), (150, 3, 4), (400, 1, 5), (900, 6, 6), (3000, 12, 7)],
)
def test_random_cohorts_pass_the_audit_after_protection(n_patients: int, n_sites: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    register = random_release(rng, n_patients, n_sites, "2026-Q3")
    protect(register, order=("estimates", "groups_by_year", "sites", "table1", "combinations", "patient_flow"))
    assert audit(register).passed
    printed = {k: register.text(k) for k, c in register.cells.items() if c.status != "implied"}
    # The cell rule: nothing from 1 to 10 printed; and no two exact counts one inside another differ by 1 to 10.
    exact = {k: int(t.replace(",", "")) for k, t in printed.items() if t.replace(",", "").isdigit()}
    assert not [k for k, v in exact.items() if 0 < v < SMALL_CELL]
    sets = {k: set(register.cells[k].members.tolist()) for k in exact}
    for a, b in itertools.permutations(exact, 2):
        if sets[b] < sets[a]:
            assert not 0 < exact[a] - exact[b] < SMALL_CELL, (a, b)


def test_two_consecutive_releases_do_not_reveal_the_new_patients() -> None:
    """A count printed in one quarter and again, cumulative, in the next: their difference is the quarter's
    new patients, a small count the audit must not let through."""
    first = release([20, 3, 15, 0, 12, 2, 14, 1], "2026-Q3")
    protect(first)
    # The same patients and four new PT patients (scored).
    second = release([20, 3, 19, 0, 12, 2, 14, 1], "2026-Q4")
    assert second.cells["order|PT"].value - first.cells["order|PT"].value == 4
    leaks = audit(second, [first]).leaks
    # The four new patients: this quarter's total (or PT count) minus last quarter's.
    new_patients = [leak for leak in leaks if leak.low == leak.high == 4]
    assert new_patients, [leak.target.what for leak in leaks]
    record = protect(second, [first])
    assert record["releases_read"] == ["2026-Q3", "2026-Q4"]
    assert audit(second, [first]).passed
    # Read together, the two releases pin no change between them.
    for key in ("order|PT", "combinations|PT", "table1|single"):
        texts = first.text(key), second.text(key)
        if all(t.isdigit() for t in texts):
            assert not 0 < int(texts[1]) - int(texts[0]) < SMALL_CELL, key


def test_a_release_that_cannot_be_made_safe_is_refused_naming_the_table() -> None:
    """An earlier release printed the group and its scored patients exactly; the new one can hide nothing
    that would stop the difference (5 unscored patients) being read."""
    earlier = Register("2026-Q3")
    patients = [("s1", f"P{i}") for i in range(30)]
    earlier.count("table1|single", "single modality patients", patients, place=("table1", 0, "single"))
    earlier.count("scored|single", "scored single modality patients", patients[:25], place=("estimates", 0, "n"))
    current = Register("2026-Q4")
    current.count(
        "unscored|single", "single modality patients without a score", patients[25:], place=("attrition", 0, "n")
    )
    with pytest.raises(DisclosureError, match=r"2026-Q4 release cannot be published: in table attrition"):
        protect(current, [earlier])


def test_a_register_refuses_a_printed_number_that_is_not_its_count() -> None:
    register = Register("2026-Q3")
    with pytest.raises(ValueError, match="not the count of its patients"):
        register.printed_count(
            "t|a", "a", [("s1", "P1")] * 1 + [("s1", f"P{i}") for i in range(2, 13)], "13", ("t", 0, "a")
        )
    with pytest.raises(ValueError, match="from 1 to 10"):
        register.count("t|b", "b", [("s1", "P1")], status=SHOWN, place=("t", 1, "b"))


def test_a_register_is_kept_and_read_back(tmp_path: Path) -> None:
    register = release(SMALL_RELEASES[1])
    protect(register)
    path = tmp_path / "r.register.json.gz"
    register.save(path)
    again = Register.load(path)
    assert {k: again.text(k) for k in again.cells if again.cells[k].status != "implied"} == {
        k: register.text(k) for k in register.cells if register.cells[k].status != "implied"
    }
    assert audit(again).passed
