"""What each estimate can bear: the E-value against unmeasured confounding, and the minimum
detectable difference of its comparison.

E-value (VanderWeele & Ding, Ann Intern Med 2017): the minimum strength of association, on the
risk-ratio scale, that an unmeasured confounder would need with both treatment and outcome to
explain the estimate away. A difference in means is first put on the risk-ratio scale by the
approximation of VanderWeele (2017) that the R package ``EValue`` uses in ``evalues.MD``:
standardized difference ``d = estimate / sd``, ``RR = exp(0.91 d)``, and for the confidence
limit nearer the null ``exp(0.91 d ± 1.78 se_d)``; a CI that contains the null gives 1. The
conversion assumes a roughly normal outcome and a rare binary one behind it, so for these continuous
outcomes the E-value is approximate (the warehouse's column comment and docs/sap.md say so).

Minimum detectable difference: the true difference a two-sided test at 5% would find with the
set power, given the estimate's own standard error: ``(z(1 - 0.05/2) + z(power)) x SE`` (Bloom's
minimum detectable effect). It uses each method's precision, so covariate adjustment shows as a
smaller detectable difference. Computed after the fact from the observed SE, it is a measure of
precision, not a power calculation (a post hoc power says nothing the interval does not).
"""

from __future__ import annotations

import math

from scipy import stats


def e_value_rr(rr: float) -> float:
    """E-value of a risk ratio: ``RR + sqrt(RR (RR - 1))`` after turning an RR below 1 upside down."""
    if not math.isfinite(rr) or rr <= 0:
        return float("nan")
    rr = 1 / rr if rr < 1 else rr
    return rr + math.sqrt(rr * (rr - 1))


def e_values(estimate: float, std_error: float, sd: float) -> tuple[float, float]:
    """E-values of a difference in means and of its confidence limit nearer the null."""
    if not all(math.isfinite(v) for v in (estimate, std_error, sd)) or sd <= 0:
        return float("nan"), float("nan")
    d, se_d = estimate / sd, std_error / sd

    def exp(x: float) -> float:  # a wild estimate (flagged elsewhere) must not overflow the run
        return math.exp(min(max(x, -700.0), 700.0))

    point = e_value_rr(exp(0.91 * d))
    low, high = exp(0.91 * d - 1.78 * se_d), exp(0.91 * d + 1.78 * se_d)
    if low <= 1 <= high:
        return point, 1.0
    return point, e_value_rr(low if d > 0 else high)


def minimum_detectable_difference(std_error: float, power: float = 0.8, alpha: float = 0.05) -> float:
    if not math.isfinite(std_error) or std_error <= 0:
        return float("nan")
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * std_error)
