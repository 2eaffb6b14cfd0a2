"""The ordinal House-Brackmann model where it is not identified (pipeline/models/ordinal.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.models.ordinal import better_grade_odds_ratio
from pipeline.settings import ModelSettings

SETTINGS = ModelSettings(covariates=("age_at_onset",), spline_knots=0)


def _frame(separated: bool, n: int = 60, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    treated = np.tile([0, 1], n // 2)
    baseline = rng.integers(3, 6, n).astype(float)
    final = np.where(treated == 1, 2.0, 4.0) if separated else np.clip(baseline - treated - rng.integers(0, 2, n), 1, 6)
    return pd.DataFrame(
        {
            "site_id": "site01",
            "outcome": "house_brackmann",
            "treated": treated,
            "baseline_value": baseline,
            "change": final - baseline,
            "age_at_onset": rng.normal(45, 12, n),
        }
    )


def test_an_identified_fit_gives_an_odds_ratio() -> None:
    result = better_grade_odds_ratio(_frame(separated=False), SETTINGS, higher_is_better=False)
    assert np.isfinite(result.std_error) and result.estimate > 1


def test_a_grade_the_group_predicts_perfectly_is_not_estimated() -> None:
    # Every treated patient ends in grade 2, every control in 4: no maximum; clm's Hessian is singular.
    result = better_grade_odds_ratio(_frame(separated=True), SETTINGS, higher_is_better=False)
    assert not np.isfinite(result.estimate) and "not identified" in (result.note or "")
