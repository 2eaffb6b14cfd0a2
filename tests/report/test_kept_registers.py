"""Every release keeps its own register, and each new release is audited against all of them.

The attack (issue 26): three provisional releases of one quarter, a few patients loaded between them. A
reader who kept the first and the third subtracts what both print ("200" received, then "204"): a count from
1 to 10. The third release must have been audited against the first, not only the second.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.report.disclosure import PROTECTION_VALUES
from pipeline.report.kept_registers import earlier_registers, keep_register, kept
from pipeline.report.register import Register
from pipeline.report.release import release_quarter
from pipeline.report.suppression import SMALL_CELL
from pipeline.settings import DataHome
from pipeline.stages import ingest
from pipeline.tools.synthetic import generate_drop
from pipeline.warehouse import build_and_publish

# The tables that print counts of patients, and their count columns.
COUNT_FILES = ("patient_flow", "combinations", "treatment_order", "groups_by_year", "exclusions", "site_funnel")
COUNT_COLUMNS = {
    "patients",
    "excluded at this step",
    "single modality",
    "combined",
    "single modality excluded",
    "combined excluded",
    "all",
}
RANGE = re.compile(r"^(\d+) to (\d+)$")


def known(text: str) -> tuple[float, float] | None:
    """What a printed cell tells a reader of its count: (least, most), or None for nothing."""
    head = text.split(" (")[0].replace(",", "").strip()
    if head == f"<{SMALL_CELL}":
        return 1, SMALL_CELL - 1
    if head == "suppressed":
        return SMALL_CELL, math.inf
    if head.isdigit():
        return int(head), int(head)
    match = RANGE.match(head)
    return (int(match[1]), int(match[2])) if match else None


def cells(folder: Path) -> dict[tuple[str, tuple[str, ...], str], str]:
    """Every printed count of a release, by (table, the row's labels, column)."""
    found = {}
    for name in COUNT_FILES:
        path = folder / f"{name}.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                labels = tuple(v for c, v in row.items() if c not in COUNT_COLUMNS)
                for column in COUNT_COLUMNS & set(row):
                    found[(name, labels, column)] = row[column]
    return found


def differences_worked_out(first: Path, third: Path) -> list[tuple[object, str, str]]:
    """Each cell the two releases print whose change a reader pins inside 1 to 10 (patients who joined or
    left it), more narrowly than "<11" says: an adversary that reads only the published tables."""
    before, after = cells(first), cells(third)
    leaks = []
    for key in before.keys() & after.keys():
        a, b = known(before[key]), known(after[key])
        if a is None or b is None:
            continue
        low, high = b[0] - a[1], b[1] - a[0]
        for lo, hi in ((low, high), (-high, -low)):
            if lo >= 1 and hi <= SMALL_CELL - 1 and hi - lo < PROTECTION_VALUES - 1:
                leaks.append((key, before[key], after[key]))
    return leaks


def test_three_provisional_releases_leak_no_small_count_between_the_first_and_the_third(tmp_path: Path) -> None:
    home = DataHome.resolve(tmp_path / "home").ensure()
    generate_drop(home.landing / "clinic_a-2026-10", patients=200, seed=1, site="clinic_a")
    folders = []
    for number in range(3):
        if number:  # a small clinic's first drop between releases: four more patients each time
            generate_drop(home.landing / f"extra{number}-2026-11", patients=4, seed=10 + number, site=f"extra{number}")
        ingest(home)
        build_and_publish(home)
        html = release_quarter(home, "2026Q4", home.warehouse_path, datetime.now(), provisional=True)
        kept_copy = tmp_path / f"release-{number + 1}"  # what a reader keeps of each release
        kept_copy.mkdir()
        for path in html.parent.glob("*.csv"):
            kept_copy.joinpath(path.name).write_bytes(path.read_bytes())
        folders.append(kept_copy)
    assert not differences_worked_out(folders[0], folders[2])
    assert not differences_worked_out(folders[0], folders[1]) and not differences_worked_out(folders[1], folders[2])
    # Each release kept its own register; the third was audited against the first and the second.
    assert [k.sequence for k in kept(home)] == [1, 2, 3]
    manifest = (html.parent / "manifest.json").read_text(encoding="utf-8")
    assert '"provisional/2026-Q4 #1"' in manifest and '"provisional/2026-Q4 #2"' in manifest


def small_register(name: str, patients: int) -> Register:
    register = Register(name)
    register.count("flow|0", "patients received", [("s1", f"P{i}") for i in range(patients)])
    return register


def test_a_register_kept_the_old_way_counts_as_the_first_and_none_is_overwritten(tmp_path: Path) -> None:
    home = DataHome.resolve(tmp_path / "home").ensure()
    old = home.staging / "releases" / "provisional-2026-Q4.register.json.gz"  # one file per quarter, before
    small_register("provisional/2026-Q4", 200).save(old)
    small_register("2026-Q3", 150).save(home.staging / "releases" / "2026-Q3.register.json.gz")
    written = tmp_path / "register.json.gz"
    small_register("provisional/2026-Q4", 204).save(written)
    second = keep_register(home, "provisional/2026-Q4", written, now=datetime(2026, 11, 9, 12))
    assert old.exists() and second.name.startswith("provisional-2026-Q4.002.20261109T120000Z.")
    # The same counts written again add no file; other counts add a third, beside the others.
    small_register("provisional/2026-Q4", 204).save(written)
    assert keep_register(home, "provisional/2026-Q4", written) == second
    small_register("provisional/2026-Q4", 208).save(written)
    third = keep_register(home, "provisional/2026-Q4", written, now=datetime(2026, 11, 9, 12))
    assert third.name.startswith("provisional-2026-Q4.003.") and not written.exists()
    names = [r.release for r in earlier_registers(home, "2026Q4", provisional=True)]
    assert names == ["2026-Q3", "provisional/2026-Q4 #1", "provisional/2026-Q4 #2", "provisional/2026-Q4 #3"]
    # The quarter's final release is audited against every provisional one; an earlier quarter's, against none.
    assert len(earlier_registers(home, "2026Q4", provisional=False)) == 4
    assert earlier_registers(home, "2026Q3", provisional=False) == []


@pytest.mark.parametrize("name", ["provisional-2026-Q4.register.json.gz.partial", "notes.register.json.gz"])
def test_a_file_that_is_not_a_register_is_left_alone(tmp_path: Path, name: str) -> None:
    home = DataHome.resolve(tmp_path / "home").ensure()
    (home.staging / "releases").mkdir(parents=True)
    (home.staging / "releases" / name).write_bytes(b"")
    assert kept(home) == []
