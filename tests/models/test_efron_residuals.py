"""Efron score residuals for the Cox models' sandwich (pipeline/models/efron_residuals.py); R's coxph agrees to
1e-14 in tests/crosscheck/."""

from __future__ import annotations

import numpy as np
from statsmodels.duration.hazard_regression import PHReg

from pipeline.models.efron_residuals import efron_score_residuals


def _data(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 300
    x = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n)]).astype(float)
    time = rng.exponential(np.exp(-0.5 * x[:, 0] + 0.3 * x[:, 1])) * 100
    time = np.ceil(time / 10) if ties else time  # whole tens of days: many ties
    event = (rng.random(n) < 0.8).astype(float)
    strata = rng.integers(0, 3, n)
    return time, event, x, strata


def test_without_ties_they_are_statsmodels_score_residuals() -> None:
    time, event, x, _ = _data(1, ties=False)
    model = PHReg(time, x, status=event, ties="efron")
    beta = model.fit().params
    # (statsmodels leaves NaN for a patient censored after the last event, whose residual is 0)
    expected = np.nan_to_num(model.score_residuals(beta))
    np.testing.assert_allclose(efron_score_residuals(time, event, x, beta), expected, atol=1e-12)


def test_with_ties_they_sum_to_the_efron_score_in_each_stratum() -> None:
    time, event, x, strata = _data(2, ties=True)
    model = PHReg(time, x, status=event, strata=strata, ties="efron")
    beta = model.fit().params + 0.1  # off the estimate, where the score is not zero
    residuals = efron_score_residuals(time, event, x, beta, strata)
    np.testing.assert_allclose(residuals.sum(axis=0), model.score(beta), rtol=1e-10)
    # and they are not Breslow's (what PHReg gives whatever the ties)
    assert np.abs(residuals - np.nan_to_num(model.score_residuals(beta))).max() > 1e-3
