"""What ``synk generate`` learned for issue 19: the helpers that fit the claims straight from generated frames
give the very data of a drop, and the truths they carry are set by the parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt

from pipeline.tools.synthetic import (
    SyntheticParameters,
    analysis_tables,
    generate_drop,
    synergy_tables,
    treatment_tables,
)


def test_treatment_tables_are_the_drops_treatments(tmp_path: Path) -> None:
    generate_drop(tmp_path / "drop", patients=120, seed=4)
    written = pd.read_csv(tmp_path / "drop" / "treatments.csv", dtype=str, keep_default_na=False)
    _, treatments, visits = treatment_tables(120, 4)
    units = treatments["botox_units"].map(lambda v: "" if pd.isna(v) else f"{v:g}")
    assert list(written["treatment_id"]) == list(treatments["treatment_id"])
    assert list(written["day"]) == [str(d) for d in treatments["day"]]
    assert list(written["botox_units"]) == list(units)
    assessments = pd.read_csv(tmp_path / "drop" / "assessments.csv", dtype=str, keep_default_na=False)
    visited = set(zip(assessments["patient_id"], assessments["visit_day"].astype(int), strict=True))
    assert visited <= set(zip(visits["patient_id"], visits["visit_day"], strict=True))


def test_the_synergy_truth_leaves_the_data_as_they_are() -> None:
    params = SyntheticParameters(synergy_pt_sn_on_btx=3.0)
    patients, scores, _ = analysis_tables(400, 2, params=params)
    same_patients, same_scores, truth = synergy_tables(400, 2, params=params)
    pdt.assert_frame_equal(patients, same_patients)
    pdt.assert_frame_equal(scores, same_scores)
    assert 1.0 < truth < 3.5
    _, _, none = synergy_tables(400, 2, params=SyntheticParameters(combined_effect=0.0, synergy_pt_sn_on_btx=0.0))
    assert none == 0.0


def test_gaps_after_surgery_are_longer_and_doses_smaller_by_the_parameters() -> None:
    def gaps(params: SyntheticParameters) -> pd.DataFrame:
        _, treatments, _ = treatment_tables(400, 1, params=params)
        surgery = treatments[treatments["modality"].isin(["selective_neurectomy", "selective_myectomy"])]
        first = surgery.groupby("patient_id")["day"].min().rename("surgery_day")
        botox = treatments[treatments["modality"] == "botox"].merge(first, on="patient_id")
        botox = botox[botox["day"] >= 0].sort_values(["patient_id", "day"])
        botox["gap"] = botox.groupby("patient_id")["day"].shift(-1) - botox["day"]
        botox["after"] = botox["day"] >= botox["surgery_day"]
        return botox.dropna(subset=["gap"])

    longer = gaps(SyntheticParameters(surgery_interval_days=45.0, surgery_dose_factor=0.5))
    same = gaps(SyntheticParameters(surgery_interval_days=0.0, surgery_dose_factor=1.0))
    change = longer.groupby("after")["gap"].mean().diff().iloc[-1] - same.groupby("after")["gap"].mean().diff().iloc[-1]
    assert 35 < change < 55, change
    ratio = longer.loc[longer["after"], "botox_units"].mean() / same.loc[same["after"], "botox_units"].mean()
    assert np.isclose(ratio, 0.5, atol=0.05), ratio
