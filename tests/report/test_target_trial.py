"""The report's section "Surgery or more injections?" (issue 31) on a generated home whose scores drive surgery:
the answer in one sentence with its interval and verdict, the diagnostics table, every count registered."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.report.build import write_report
from pipeline.report.register import Register
from pipeline.report.suppression import SMALL_CELL
from pipeline.report.target_trial import (
    PHASES,
    phase_mix_table,
    read_target_trial,
    register_phase_mix,
    register_target_trial,
    target_trial_table,
)
from pipeline.settings import DataHome
from pipeline.stages import run_all
from pipeline.tools.synthetic_surgery import generate_surgery_drop


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = DataHome.resolve(tmp_path_factory.mktemp("trial") / "home").ensure()
    generate_surgery_drop(home.landing / "surgery-drop", patients=400, seed=1)
    run_all(home)
    return home.warehouse_path


def test_the_report_answers_surgery_or_more_injections_in_one_sentence(warehouse: Path, tmp_path: Path) -> None:
    html = write_report(warehouse, "2026Q4", tmp_path)
    text = re.sub(r"\s+", " ", html.read_text(encoding="utf-8"))
    assert 'id="target-trial"' in text and 'href="#target-trial"' in text
    sentence = re.search(
        r"rather than going on with injections changes the Sunnybrook composite a year later by "
        r"([+-]\d+\.\d) points \(95% CI ([+-]\d+\.\d) to ([+-]\d+\.\d)\): ([^.]+)\.",
        text,
    )
    assert sentence is not None
    estimate, low, high = (float(sentence.group(i)) for i in (1, 2, 3))
    assert low < estimate < high
    csv = pd.read_csv(html.parent / "target_trial.csv", dtype=str, keep_default_na=False)
    assert list(csv["strategy"]) == ["A: surgery within 90 days", "B: no surgery for 12 months"]
    for value in csv["patients with a truncated weight"]:
        assert value == "0" or not re.fullmatch(r"[1-9]|10", value)  # a small count prints <11


def test_every_count_of_the_table_is_registered_with_its_patients(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        claims = con.execute("SELECT * FROM model_estimates WHERE method = 'ccw'").df()
        data = read_target_trial(con, claims, None)
    assert data is not None
    table = target_trial_table(data)
    register = Register("test")
    register_target_trial(register, table, data)
    followed = register.cells["target_trial|followed|1"]
    assert followed.value == int(data.row["n_treated"])
    assert followed.value >= SMALL_CELL
    entering = register.cells["target_trial|entering"]
    assert len(entering.places) == 2  # one count, printed on both rows


def test_the_phase_mix_counts_each_groups_patients_once(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        claims = con.execute("SELECT * FROM model_estimates WHERE method = 'ccw'").df()
        data = read_target_trial(con, claims, None)
    assert data is not None
    table = phase_mix_table(data)
    register = Register("test")
    register_phase_mix(register, table, data)
    for group in ("combined", "single"):
        assessed = register.cells[f"phase_mix|{group}|assessed"].value
        assert assessed == sum(len(register.cells[f"phase_mix|{group}|{p}"].members) for p in PHASES)
    # the generator's peak visits are of patients on injections alone: some single-modality patients' only
    assert register.cells["phase_mix|single|at the peak (14-56 days)"].value > 0
