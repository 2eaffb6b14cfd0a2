"""Confidence intervals, one home: the level every published interval uses and the two ways they are made.

A model's interval comes from its estimate and standard error (normal, or Student's t with the model's
degrees of freedom); a mean's from its SD and n (t with n - 1 degrees of freedom).
"""

from __future__ import annotations

import math

from scipy import stats
from statsmodels.stats.proportion import proportion_confint

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE


def interval(estimate: float, std_error: float, df: float | None = None) -> tuple[float, float]:
    """The two-sided interval around ``estimate``: normal, or t with ``df`` degrees of freedom."""
    quantile = 1 - ALPHA / 2
    critical = float(stats.norm.ppf(quantile) if df is None else stats.t.ppf(quantile, df))
    return estimate - critical * std_error, estimate + critical * std_error


def mean_interval(mean: float, sd: float, n: int) -> tuple[float, float]:
    """The t interval of a mean; NaN where it cannot be made (fewer than two values, no SD)."""
    if n < 2 or sd is None or math.isnan(sd):
        return float("nan"), float("nan")
    return interval(mean, sd / math.sqrt(n), n - 1)


def clopper_pearson(successes: int, trials: int) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a proportion (statsmodels' ``beta`` method); NaN where there
    are no trials."""
    if trials <= 0:
        return float("nan"), float("nan")
    low, high = proportion_confint(successes, trials, alpha=ALPHA, method="beta")
    return float(low), float(high)
