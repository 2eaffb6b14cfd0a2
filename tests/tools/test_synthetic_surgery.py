"""What ``synk generate --surgery-decision`` writes (issue 31): a contract drop whose latest scores drive surgery."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.contract import COLUMNS
from pipeline.tools.synthetic_surgery import SurgeryParameters, generate_surgery_drop, surgery_tables


def test_the_drop_has_the_contracts_columns_and_its_truth(tmp_path: Path) -> None:
    counts = generate_surgery_drop(tmp_path / "drop", patients=60, seed=3)
    for table in ("patients", "treatments", "assessments"):
        frame = pd.read_csv(tmp_path / "drop" / f"{table}.csv", dtype=str, keep_default_na=False)
        assert list(frame.columns) == [c.name for c in COLUMNS[table]] and len(frame) == counts[table]
    manifest = json.loads((tmp_path / "drop" / "manifest.json").read_text(encoding="utf-8"))
    truth = manifest["generator"]["true_effect_surgery_within_90d_vs_continue_bont"]
    assert 6 < truth["sunnybrook_composite"] <= 8 and truth["saq"] < 0


def test_worse_latest_scores_make_surgery_likelier() -> None:
    data = surgery_tables(400, 4, SurgeryParameters())
    surgery = data.treatments[data.treatments["modality"] != "botox"].groupby("patient_id")["day"].min()
    second = data.treatments[data.treatments["modality"] == "botox"].groupby("patient_id")["day"].nth(1)
    second = data.treatments.loc[second.index, ["patient_id", "day"]]
    at_second = second.merge(data.scores, left_on=["patient_id", "day"], right_on=["patient_id", "visit_day"])
    operated = at_second["patient_id"].isin(surgery.index)
    assert (
        at_second.loc[operated, "sunnybrook_composite"].mean()
        < at_second.loc[~operated, "sunnybrook_composite"].mean() - 3
    )
    # only patients not yet operated come back at the peak
    peak = data.scores.merge(surgery.rename("surgery_day"), on="patient_id")
    assert len(peak) > 0


def test_complications_are_drawn_for_the_surgeries_the_drop_holds(tmp_path: Path) -> None:
    from pipeline.tools.synthetic_complications import DEMO_COMPLICATIONS

    counts = generate_surgery_drop(tmp_path / "drop", patients=300, seed=3, complication_rates=DEMO_COMPLICATIONS)
    events = pd.read_csv(tmp_path / "drop" / "complications.csv", dtype=str, keep_default_na=False)
    treatments = pd.read_csv(tmp_path / "drop" / "treatments.csv", dtype=str, keep_default_na=False)
    assert list(events.columns) == [c.name for c in COLUMNS["complications"]] and len(events) == counts["complications"]
    # Every event names one of the drop's own treatments, of the modality its code belongs to.
    named = events.merge(treatments, on=["patient_id", "treatment_id"], how="left", suffixes=("", "_tx"))
    assert named["modality"].notna().all()
    assert set(named.loc[named["code"] == "incomplete_eye_closure", "modality"]) <= {"selective_neurectomy"}
    assert not (tmp_path / "drop-without").exists()
    generate_surgery_drop(tmp_path / "drop-without", patients=60, seed=3)
    assert not (tmp_path / "drop-without" / "complications.csv").exists()
