"""Synergy (pipeline/models/synergy.py) against the generator's truth: 3,000 patients confounded by
indication (worse baselines are likelier combined and improve more), fitted straight from generated frames.
The truth is the generator's own, on the measured Sunnybrook composite (``synergy_tables``): floors and
ceilings bend the latent scale, so a latent synergy of 3 points shows as about 2."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from pipeline.analysis_design import AnalysisDesign
from pipeline.models.design_matrix import add_severity, load_baselines, load_changes, load_population
from pipeline.models.pairs import Pair, parse
from pipeline.models.synergy import synergy_pairs, synergy_rows
from pipeline.settings import ModelSettings
from pipeline.tools.synthetic import SyntheticParameters, synergy_tables
from tests.models.test_fit import build_warehouse

# The four groups of PT+SN on BTX made common (a third of the combined each, BTX the single modality), so
# that 3,000 patients give the interaction a standard error near 0.95 points.
FOUR_GROUPS = {"combined_mix": (1 / 3, 0, 0, 1 / 3, 1 / 3), "single_mix": (1, 0, 0, 0)}


def fit_synergy(params: SyntheticParameters, seed: int, patients: int = 3000) -> tuple[dict[str, object], float]:
    patient_frame, scores, truth = synergy_tables(patients, seed, params=params)
    con = duckdb.connect()
    try:
        build_warehouse(con, patient_frame, scores)
        settings = ModelSettings()
        design = AnalysisDesign.read(con)
        population = add_severity(
            load_population(con, settings.covariates), load_baselines(con), ("sunnybrook_composite",)
        )
        rows = synergy_rows(population, load_changes(con), design, settings)
    finally:
        con.close()
    found = [r for r in rows if r["contrast"] == "synergy:PT+SN|BTX" and r["outcome"] == "sunnybrook_composite"]
    assert len(found) == 1, [r["contrast"] for r in rows]
    return found[0], truth


@pytest.mark.parametrize("seed", [0, 1])
def test_a_true_synergy_is_recovered_within_one_and_a_half_points(seed: int) -> None:
    row, truth = fit_synergy(SyntheticParameters(synergy_pt_sn_on_btx=3.0, confounding=1.0, **FOUR_GROUPS), seed)
    assert 1.5 < truth < 2.5  # the latent 3 points, on the measured composite
    assert abs(row["estimate"] - truth) < 1.5, (row["estimate"], truth)
    assert row["ci_low"] < truth < row["ci_high"]
    assert row["method"] == "ancova" and row["timepoint"] == "12m" and row["diagnostics_ok"]
    assert "BTX+PT+SN - BTX+PT - BTX+SN + BTX" in row["note"] and "HC3" in row["note"]
    assert row["n_treated"] >= 11 and row["n_control"] >= 11


@pytest.mark.parametrize("seed", [2, 3])
def test_where_the_truth_is_nothing_the_interval_covers_zero(seed: int) -> None:
    # No effect of any treatment: the interaction is 0 on every scale.
    row, truth = fit_synergy(SyntheticParameters(combined_effect=0.0, synergy_pt_sn_on_btx=0.0, **FOUR_GROUPS), seed)
    assert abs(truth) < 0.05
    assert row["ci_low"] < 0 < row["ci_high"], row


def test_pairs_need_all_four_groups_with_eleven_patients() -> None:
    counts = {"BTX": 30, "BTX+PT": 30, "BTX+SN": 30, "BTX+PT+SN": 30, "BTX+MY": 10, "BTX+PT+MY": 40, "PT": 11}
    population = pd.DataFrame({"combination": [c for c, n in counts.items() for _ in range(n)]})
    pairs = synergy_pairs(population, 11)
    # PT+MY on BTX lacks BTX+MY (10); BTX+PT on nothing lacks the untreated; PT+SN on BTX has all four.
    assert pairs == [Pair("PT", "SN", "BTX")]
    assert pairs[0].name == "synergy:PT+SN|BTX" and pairs[0].groups == ("BTX", "BTX+PT", "BTX+SN", "BTX+PT+SN")
    assert parse("synergy:PT+SN|") == Pair("PT", "SN", "") and Pair("PT", "SN", "").groups[0] == ""
    assert parse("combined_vs_single") is None


def test_the_four_groups_overlap_is_checked_and_a_separated_group_fails_it() -> None:
    row, _ = fit_synergy(SyntheticParameters(synergy_pt_sn_on_btx=3.0, **FOUR_GROUPS), 0)
    assert row["diagnostics_ok"] and "of the four groups' patients in equipoise" in row["note"]
    # Every patient of one group older than everyone else: the group model separates it, overlap fails.
    patient_frame, scores, _ = synergy_tables(1200, 4, params=SyntheticParameters(**FOUR_GROUPS))
    patient_frame.loc[patient_frame["combination"] == "BTX+PT+SN", "age_at_onset"] = 95
    con = duckdb.connect()
    try:
        build_warehouse(con, patient_frame, scores)
        settings = ModelSettings()
        population = add_severity(
            load_population(con, settings.covariates), load_baselines(con), ("sunnybrook_composite",)
        )
        rows = synergy_rows(population, load_changes(con), AnalysisDesign.read(con), settings)
    finally:
        con.close()
    found = [r for r in rows if r["contrast"] == "synergy:PT+SN|BTX" and r["outcome"] == "sunnybrook_composite"]
    assert found and not found[0]["diagnostics_ok"]
    assert "overlap fails over the four groups" in found[0]["note"]
