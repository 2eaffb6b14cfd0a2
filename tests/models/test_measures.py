"""Responders and the ordinal House-Brackmann recover known effects on simulated data (small, fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.models.ordinal import better_grade_odds_ratio
from pipeline.models.responders import responder_difference, responder_shares
from pipeline.settings import ModelSettings

SETTINGS = ModelSettings(covariates=())


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site_id": "s1",
            "patient_id": [f"P{i}" for i in range(n)],
            "treated": (rng.random(n) < 0.5).astype(int),
            "baseline_value": rng.normal(50, 10, n),
        }
    )


def test_responder_risk_difference_recovers_a_known_difference() -> None:
    rng = np.random.default_rng(7)
    frame = _frame(rng, 2000)
    # 50% of the first group and 30% of the second improve by at least 10 points (SAQ: lower is better, so
    # a response is a fall of 10 or more); the rest change by less.
    responds = rng.random(len(frame)) < np.where(frame["treated"] == 1, 0.5, 0.3)
    frame["change"] = np.where(responds, -rng.uniform(10, 20, len(frame)), rng.uniform(-9.5, 5, len(frame)))
    result = responder_difference(frame, SETTINGS, higher_is_better=False, threshold=10.0, threshold_words="test")
    assert result.diagnostics_ok and result.ci_low < 20.0 < result.ci_high
    assert abs(result.estimate - 20.0) < 5.0
    first, second = responder_shares(frame, higher_is_better=False, threshold=10.0)
    assert abs(first - 0.5) < 0.05 and abs(second - 0.3) < 0.05
    # No difference in truth: the interval covers 0.
    frame["change"] = np.where(rng.random(len(frame)) < 0.4, -15.0, 0.0)
    null = responder_difference(frame, SETTINGS, higher_is_better=False, threshold=10.0, threshold_words="test")
    assert null.ci_low < 0 < null.ci_high


def test_too_few_responders_in_a_group_is_not_estimated() -> None:
    rng = np.random.default_rng(3)
    frame = _frame(rng, 200)
    # SAQ (lower is better): ten patients of the first group fall by 30 points, no one else responds.
    first = frame.index[frame["treated"] == 1][:10]
    frame["change"] = 0.0
    frame.loc[first, "change"] = -30.0
    result = responder_difference(frame, SETTINGS, higher_is_better=False, threshold=28.2, threshold_words="test")
    assert not result.diagnostics_ok and "too few responders to compare" in result.note
    # Eleven or more responders and non-responders in each group: estimated.
    frame.loc[frame.index[frame["treated"] == 1][:15], "change"] = -30.0
    frame.loc[frame.index[frame["treated"] == 0][:12], "change"] = -30.0
    result = responder_difference(frame, SETTINGS, higher_is_better=False, threshold=28.2, threshold_words="test")
    assert result.diagnostics_ok


def test_ordinal_model_recovers_a_known_odds_ratio_of_a_better_grade() -> None:
    rng = np.random.default_rng(11)
    frame = _frame(rng, 1500)
    baseline = rng.integers(2, 6, len(frame)).astype(float)  # House-Brackmann II to V
    frame["baseline_value"] = baseline
    true_log_or = np.log(2.5)  # the first group: 2.5 times the odds of a better (lower) grade
    latent = 0.8 * baseline - true_log_or * frame["treated"] + rng.logistic(size=len(frame))
    grade = np.digitize(latent, [1.0, 2.0, 3.0, 4.0, 5.0]) + 1  # grades 1 to 6
    frame["change"] = grade - baseline
    result = better_grade_odds_ratio(frame, SETTINGS, higher_is_better=False)
    assert result.diagnostics_ok, result.note
    assert result.ci_low < 2.5 < result.ci_high and abs(np.log(result.estimate) - true_log_or) < 0.25
    assert "odds ratio of a better grade" in str(result.note)
