"""Each row's estimand and role in the analysis plan (docs/sap.md), and the rows no number can be read from."""

from __future__ import annotations

from pipeline.models.fit import DEGENERATE
from tests.models.test_fit import fit, row, simulate


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
