"""Two-stage pooling: the random-effects meta-analysis of the sites' own estimates, as R's metafor 3.8
computes it (``rma(yi, vi, method = "REML", test = "knha")``, ``predict()``, ``confint()``,
``leave1out()``), so that every number can be reproduced there (tests/crosscheck/metafor_reference.R).

- tau^2: REML by Fisher scoring from the Hedges (HE) start, a step halved while it would make tau^2
  negative (so tau^2 >= 0 always), metafor's check that tau^2 = 0 has no higher likelihood; its
  convergence is reported. Never the DerSimonian-Laird of statsmodels as it is, which is not truncated
  at 0 (a negative tau^2 on five homogeneous sites, I^2 -318%, NaN intervals).
- Hartung-Knapp(-Sidik-Jonkman): the variance of the pooled mean times q = Q_w / (k - 1), t with k - 1
  degrees of freedom (``test = "knha"``); the modified form (``test = "adhoc"`` in metafor 3.8; Knapp and
  Hartung's ad hoc rule, Röver et al. 2015) uses max(1, q), so the interval is never narrower than the
  standard random-effects one, itself at least as wide as the fixed-effect one (equal at tau^2 = 0).
  The modified form is the one reported first; both are kept.
- The prediction interval: mu +- t(k - 1) sqrt(se^2 + tau^2) (``predict()`` of the same fit).
- The Q-profile interval of tau^2 (``confint()``'s default): the tau^2 where the generalised Q statistic
  crosses the chi-square quantiles with k - 1 df, truncated at 0.
- I^2 as metafor gives it for REML: tau^2 / (tau^2 + s^2), s^2 the typical within-site variance
  (k - 1) sum(w) / ((sum w)^2 - sum(w^2)), w = 1 / v; here a fraction (metafor prints percent).
- Cochran's Q with the fixed-effect weights, its chi-square p; the fixed-effect (inverse-variance) mean.

k = 1 gives the one site's estimate with a normal interval and no heterogeneity; k = 2 is computed
(t with 1 df) and flagged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, stats

from pipeline.errors import NetworkInputError
from pipeline.intervals import ALPHA, interval

# metafor's defaults (rma.uni's control list): the step-change threshold, the iteration limit and the
# tolerance of the tau^2 = 0 likelihood check. The threshold here is tighter (1e-10, metafor 1e-5):
# a step under 1e-5 can leave tau^2 about 1e-6 from the maximum; pass 1e-5 to replay metafor exactly.
THRESHOLD = 1e-10
METAFOR_THRESHOLD = 1e-5
MAX_ITERATIONS = 100
LL0_TOLERANCE = float(np.finfo(float).eps) ** 0.25
# confint()'s search range for tau^2 is [0, max(100, 10 tau^2)]; its root tolerance is tighter here
# (metafor's uniroot uses eps^0.25; the crosscheck asks metafor for 1e-12 too).
QP_TOLERANCE = 1e-12


@dataclass(frozen=True)
class FixedEffect:
    """The inverse-variance (fixed- or common-effect) mean, normal interval (``rma(method = "EE")``)."""

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class Tau2Fit:
    tau2: float
    converged: bool
    iterations: int


@dataclass(frozen=True)
class MetaAnalysis:
    """One random-effects meta-analysis of k site estimates.

    ``std_error``, ``ci_*``, ``p_value`` and ``pi_*`` are the modified Hartung-Knapp ones (metafor
    ``test = "adhoc"``); the ``*_hk`` fields the plain Hartung-Knapp ones (``test = "knha"``).
    ``hk_floored``: the plain interval was narrower than the standard random-effects one, so the floor set
    the width. ``i2`` is a fraction. ``flags``: sentences on what limits the result (k = 1, k = 2, a tau^2
    that did not converge, a tau^2 interval at the end of its search range)."""

    k: int
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    pi_low: float
    pi_high: float
    std_error_hk: float
    ci_low_hk: float
    ci_high_hk: float
    p_value_hk: float
    pi_low_hk: float
    pi_high_hk: float
    hk_floored: bool
    tau2: float
    tau2_ci_low: float
    tau2_ci_high: float
    tau2_converged: bool
    tau2_iterations: int
    i2: float
    q: float
    q_df: int
    q_p_value: float
    fixed: FixedEffect
    flags: tuple[str, ...] = ()

    @property
    def tau(self) -> float:
        return math.sqrt(self.tau2) if np.isfinite(self.tau2) else float("nan")

    def columns(self) -> dict[str, object]:
        """The two-stage row's own columns of ``network_estimates`` (the rest name the comparison)."""
        return {
            "estimate": self.estimate,
            "std_error": self.std_error,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "stage": "two-stage",
            "k_sites": self.k,
            "tau2": self.tau2,
            "tau2_ci_low": self.tau2_ci_low,
            "tau2_ci_high": self.tau2_ci_high,
            "i2": self.i2,
            "pi_low": self.pi_low,
            "pi_high": self.pi_high,
            "note": "; ".join(self.flags) or None,
        }


@dataclass(frozen=True)
class LeftOut:
    """The meta-analysis without one site (metafor ``leave1out()``)."""

    site: str
    result: MetaAnalysis


def _checked(yi: Sequence[float], vi: Sequence[float], labels: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if y.ndim != 1 or y.shape != v.shape:
        raise NetworkInputError(f"Meta-analysis: {y.size} estimates but {v.size} variances; give one of each per site.")
    if labels is not None and len(labels) != y.size:
        raise NetworkInputError(f"Meta-analysis: {len(labels)} site labels for {y.size} estimates.")
    if y.size == 0:
        raise NetworkInputError("Meta-analysis: no site estimates to pool.")
    names = list(labels) if labels is not None else [str(i + 1) for i in range(y.size)]
    bad = [names[i] for i in range(y.size) if not (np.isfinite(y[i]) and np.isfinite(v[i]) and v[i] > 0)]
    if bad:
        raise NetworkInputError(
            "Meta-analysis: every site needs a finite estimate and a positive finite variance; not so for site(s) "
            + ", ".join(bad)
            + "."
        )
    return y, v


def fixed_effect(yi: Sequence[float], vi: Sequence[float]) -> FixedEffect:
    """The inverse-variance mean with its normal 95% interval and z-test p."""
    y, v = _checked(yi, vi, None)
    w = 1 / v
    estimate = float(np.sum(w * y) / np.sum(w))
    se = float(1 / math.sqrt(np.sum(w)))
    low, high = interval(estimate, se)
    return FixedEffect(estimate, se, low, high, float(2 * stats.norm.sf(abs(estimate / se))))


def cochran_q(y: np.ndarray, v: np.ndarray) -> float:
    """Cochran's Q: the fixed-effect weighted sum of squares about the fixed-effect mean."""
    w = 1 / v
    mean = np.sum(w * y) / np.sum(w)
    return max(0.0, float(np.sum(w * (y - mean) ** 2)))


def generalised_q(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    """The Q statistic with weights 1 / (v + tau^2) about their own weighted mean (the Q-profile's)."""
    w = 1 / (v + tau2)
    mean = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mean) ** 2))


def _reml_loglik(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    """The restricted log-likelihood of the intercept-only model (metafor's, with the constant)."""
    w = 1 / (v + tau2)
    mean = np.sum(w * y) / np.sum(w)
    k = y.size
    return float(
        -0.5 * (k - 1) * math.log(2 * math.pi)
        - 0.5 * np.sum(np.log(v + tau2))
        - 0.5 * math.log(np.sum(w))
        - 0.5 * np.sum(w * (y - mean) ** 2)
    )


def reml_tau2(
    yi: Sequence[float], vi: Sequence[float], threshold: float = THRESHOLD, max_iterations: int = MAX_ITERATIONS
) -> Tau2Fit:
    """REML tau^2 by metafor's Fisher scoring: from the HE estimate (truncated at 0), steps
    (y'PPy - tr P) / tr(PP) with P = W - W 1 1' W / sum(W), each halved while it would take tau^2 below
    0, until a step changes tau^2 by at most ``threshold``; then metafor's check that the likelihood at
    tau^2 = 0 is not higher. Not converged after ``max_iterations``: the last value, flagged."""
    y, v = _checked(yi, vi, None)
    k = y.size
    if k == 1:
        return Tau2Fit(float("nan"), False, 0)
    # The Hedges (HE) start: unweighted residual sum of squares less its expectation without tau^2.
    tau2 = max(0.0, float((np.sum((y - y.mean()) ** 2) - (1 - 1 / k) * np.sum(v)) / (k - 1)))
    converged = False
    iterations = 0
    while iterations <= max_iterations:
        iterations += 1
        w = 1 / (v + tau2)
        total = np.sum(w)
        residual = y - np.sum(w * y) / total
        py = w * residual  # P y
        trace_p = total - np.sum(w**2) / total
        trace_pp = np.sum(w**2) - 2 * np.sum(w**3) / total + (np.sum(w**2) / total) ** 2
        step = float((np.sum(py**2) - trace_p) / trace_pp)
        if not np.isfinite(step):
            step = 0.0
        while tau2 + step < 0:  # as metafor: halve the step until tau^2 stays at or above 0
            step /= 2
        previous, tau2 = tau2, tau2 + step
        if abs(previous - tau2) <= threshold:
            converged = True
            break
    if converged and tau2 > threshold and _reml_loglik(0.0, y, v) - _reml_loglik(tau2, y, v) > LL0_TOLERANCE:
        tau2 = 0.0  # metafor: the scoring stopped at a local maximum; tau^2 = 0 is better
    return Tau2Fit(float(tau2), converged, iterations)


def q_profile(yi: Sequence[float], vi: Sequence[float], tau2: float) -> tuple[float, float, tuple[str, ...]]:
    """The Q-profile 95% interval of tau^2 (metafor ``confint()``): the tau^2 where Q(tau^2) equals the
    chi-square(k - 1) upper and lower 2.5% points, searched over [0, max(100, 10 tau^2)]; a bound that
    cannot be crossed there is the range's end (0, or the top, flagged)."""
    y, v = _checked(yi, vi, None)
    k = y.size
    if k < 2:
        return float("nan"), float("nan"), ()
    top = max(100.0, 10 * tau2)
    crit_upper = float(stats.chi2.ppf(1 - ALPHA / 2, k - 1))
    crit_lower = float(stats.chi2.ppf(ALPHA / 2, k - 1))
    q_at_zero, q_at_top = generalised_q(0.0, y, v), generalised_q(top, y, v)
    flags: list[str] = []

    def root(target: float) -> float:
        return float(
            optimize.brentq(lambda t: generalised_q(t, y, v) - target, 0.0, top, xtol=QP_TOLERANCE, rtol=1e-15)
        )

    if q_at_zero < crit_lower:
        return 0.0, 0.0, ("tau2 interval empty: Q below its lower chi-square quantile even at tau2 = 0",)
    if q_at_top > crit_lower:
        high = top
        flags.append(f"tau2 upper bound at the search limit ({top:g})")
    else:
        high = root(crit_lower)
    if q_at_top > crit_upper:
        return top, top, (f"tau2 interval beyond the search limit ({top:g})",)
    low = 0.0 if q_at_zero < crit_upper else root(crit_upper)
    return low, high, tuple(flags)


def i_squared(vi: Sequence[float], tau2: float) -> float:
    """metafor's I^2 for a random-effects fit, as a fraction: tau^2 / (tau^2 + s^2), s^2 the typical
    within-site variance (k - 1) sum(w) / ((sum w)^2 - sum w^2), w = 1 / v."""
    v = np.asarray(vi, dtype=float)
    k = v.size
    if k < 2:
        return float("nan")
    w = 1 / v
    typical = (k - 1) * np.sum(w) / (np.sum(w) ** 2 - np.sum(w**2))
    return float(tau2 / (typical + tau2))


def _single_site(y: np.ndarray, v: np.ndarray) -> MetaAnalysis:
    """k = 1: the site's own estimate, normal interval; nothing on heterogeneity."""
    fixed = fixed_effect(y, v)
    nan = float("nan")
    return MetaAnalysis(
        1,
        fixed.estimate,
        fixed.std_error,
        fixed.ci_low,
        fixed.ci_high,
        fixed.p_value,
        nan,
        nan,
        fixed.std_error,
        fixed.ci_low,
        fixed.ci_high,
        fixed.p_value,
        nan,
        nan,
        False,
        nan,
        nan,
        nan,
        False,
        0,
        nan,
        0.0,
        0,
        nan,
        fixed,
        ("k=1: one site, its own estimate with a normal interval; no heterogeneity, no prediction interval",),
    )


def random_effects(
    yi: Sequence[float], vi: Sequence[float], labels: Sequence[str] | None = None, threshold: float = THRESHOLD
) -> MetaAnalysis:
    """The random-effects meta-analysis of site estimates ``yi`` with variances ``vi`` (squared SEs)."""
    y, v = _checked(yi, vi, labels)
    k = y.size
    if k == 1:
        return _single_site(y, v)
    fit = reml_tau2(y, v, threshold)
    tau2 = fit.tau2
    w = 1 / (v + tau2)
    total = float(np.sum(w))
    estimate = float(np.sum(w * y) / total)
    weighted_rss = float(np.sum(w * (y - estimate) ** 2))
    # metafor: a residual sum of squares at machine zero counts as 0 (identical site estimates).
    q_w = 0.0 if weighted_rss <= np.finfo(float).eps else weighted_rss / (k - 1)
    df = k - 1
    critical = float(stats.t.ppf(1 - ALPHA / 2, df))

    def inference(scale: float) -> tuple[float, float, float, float, float, float]:
        se = math.sqrt(scale / total)
        p = float(2 * stats.t.sf(abs(estimate / se), df)) if se > 0 else float("nan")
        spread = critical * math.sqrt(se**2 + tau2)
        return se, estimate - critical * se, estimate + critical * se, p, estimate - spread, estimate + spread

    se_hk, low_hk, high_hk, p_hk, pi_low_hk, pi_high_hk = inference(q_w)
    se, low, high, p, pi_low, pi_high = inference(max(1.0, q_w))
    tau2_low, tau2_high, qp_flags = q_profile(y, v, tau2)
    q = cochran_q(y, v)
    flags = list(qp_flags)
    if k == 2:
        flags.insert(0, "k=2: two sites, t with 1 df; tau2 and its interval barely estimable")
    if not fit.converged:
        flags.insert(0, f"tau2 (REML) did not converge in {MAX_ITERATIONS} iterations")
    return MetaAnalysis(
        k=k,
        estimate=estimate,
        std_error=se,
        ci_low=low,
        ci_high=high,
        p_value=p,
        pi_low=pi_low,
        pi_high=pi_high,
        std_error_hk=se_hk,
        ci_low_hk=low_hk,
        ci_high_hk=high_hk,
        p_value_hk=p_hk,
        pi_low_hk=pi_low_hk,
        pi_high_hk=pi_high_hk,
        hk_floored=q_w < 1.0,
        tau2=tau2,
        tau2_ci_low=tau2_low,
        tau2_ci_high=tau2_high,
        tau2_converged=fit.converged,
        tau2_iterations=fit.iterations,
        i2=i_squared(v, tau2),
        q=q,
        q_df=df,
        q_p_value=float(stats.chi2.sf(q, df)),
        fixed=fixed_effect(y, v),
        flags=tuple(flags),
    )


def leave_one_out(
    yi: Sequence[float], vi: Sequence[float], labels: Sequence[str], threshold: float = THRESHOLD
) -> list[LeftOut]:
    """The meta-analysis again without each site in turn (metafor ``leave1out()``): a pooled answer that
    hangs on one site shows it. Empty for one site."""
    y, v = _checked(yi, vi, labels)
    if y.size < 2:
        return []
    results = []
    for i, site in enumerate(labels):
        keep = np.arange(y.size) != i
        result = random_effects(y[keep], v[keep], [s for j, s in enumerate(labels) if j != i], threshold)
        results.append(LeftOut(str(site), replace(result, flags=(f"without {site}", *result.flags))))
    return results
