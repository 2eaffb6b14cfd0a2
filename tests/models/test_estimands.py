"""Each row's estimand and role in the analysis plan (docs/sap.md), and the rows no number can be read from."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from pipeline.models import fit_models
from pipeline.models.estimators import between_site_sd
from pipeline.models.fit import DEGENERATE
from pipeline.settings import ModelSettings
from pipeline.tools.synthetic import SyntheticParameters, analysis_tables
from tests.models.test_fit import QUICK, build_warehouse, fit, row, simulate


def test_rows_inside_the_grouping_window_are_descriptive_and_the_twelve_month_ones_are_not() -> None:
    results = fit(*simulate(1, 6.0))
    for timepoint in ("3m", "6m"):  # targets 90 and 180 days: inside the 180-day exposure window
        early = row(results, "ancova", timepoint=timepoint)
        assert early.role == "descriptive"
        assert early.note.endswith("descriptive: the outcome is read inside the 180-day window that decides the groups")
    late = row(results, "ancova")
    assert (late.role, late.estimand) == ("primary", "conditional") and "inside the 180-day" not in late.note
    assert set(results.model_estimates.role) <= {"primary", "sensitivity", "descriptive"}


def test_a_fit_with_a_standard_error_of_zero_is_flagged() -> None:
    patients, scores = simulate(2, 6.0)
    # Every patient's change the same: a zero-variance outcome, which gave SE 0 and CI [0, 0] marked ok.
    baseline = scores[scores.timepoint == "baseline"].set_index("patient_id")["value"]
    follow = scores.timepoint != "baseline"
    scores.loc[follow, "value"] = scores.loc[follow, "patient_id"].map(baseline).to_numpy() + 5.0
    adjusted = row(fit(patients, scores), "ancova")
    assert abs(adjusted.estimate) < 1e-6
    assert not adjusted.diagnostics_ok and DEGENERATE in adjusted.note


def test_the_between_site_sd_is_dersimonian_lairds() -> None:
    # Q = sum w (y - pooled)^2 = 8 with equal SEs of 1 around a pooled 2: tau^2 = (8 - 2) / (3 - 1) = 3.
    assert between_site_sd([0.0, 2.0, 4.0], [1.0, 1.0, 1.0]) == np.sqrt(3.0)
    assert between_site_sd([1.0, 1.1], [1.0, 1.0]) == 0.0  # agreeing within their errors
    assert np.isnan(between_site_sd([1.0], [1.0]))


def test_three_sites_with_different_effects_give_their_spread_a_column() -> None:
    frames, scores = [], []
    for index, effect in enumerate((2.0, 6.0, 12.0)):
        patient_frame, site_scores, _ = analysis_tables(
            300, 1 + index, site=f"site{index + 1:02d}", params=SyntheticParameters(combined_effect=effect)
        )
        frames.append(patient_frame)
        scores.append(site_scores)
    con = duckdb.connect()
    try:
        build_warehouse(con, pd.concat(frames, ignore_index=True), pd.concat(scores, ignore_index=True))
        results = fit_models(con, QUICK, data_snapshot="snap", code_version="test")
    finally:
        con.close()
    adjusted = row(results, "ancova")
    # Site effects about 2.5, 6 and 12 (SE near 1.2 each): a spread of about 4 points, far from 0.
    assert 2.0 < adjusted.site_spread < 7.0, adjusted.note
    assert "between-site SD of the effect" in adjusted.note
    assert np.isnan(row(results, "unadjusted").site_spread)
    single = row(fit(*simulate(1, 6.0, n_sites=1), ModelSettings(methods=("ancova",))), "ancova")
    assert np.isnan(single.site_spread)
