"""Inverse-probability-of-treatment weighting, with the diagnostics the reference tools report
(R's WeightIt/cobalt, Austin & Stuart 2015; Walker et al. 2013 for the preference score):

- a logistic propensity model of the first group on the covariates and the baseline value, its
  covariates and AUC recorded;
- stabilized ATE weights ``P(T)/e`` and ``(1 - P(T))/(1 - e)``, truncated at a setting;
- balance: standardized mean differences of every model term before and after weighting, the
  denominator the unweighted pooled SD (as cobalt does for the ATE); pass when every |SMD| is
  below ``max_smd``;
- overlap: the share of patients whose preference score (the propensity score with the
  treated share taken out) lies in the equipoise range; pass when above ``min_equipoise_share``;
- Kish's effective sample size per group.

The estimate: weighted least squares of change on group and baseline value with robust errors
(weights as variance weights, not frequency weights, which would shrink the errors). A comparison
whose diagnostics fail keeps its numbers with ``diagnostics_ok`` false and the reason.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from pipeline.models.estimators import Design, Estimate, adjustment_design, coefficient, failed, robust_fit
from pipeline.settings import ModelSettings


@dataclass
class PropensityResult:
    estimate: Estimate
    covariates: list[str] = field(default_factory=list)
    auc: float = float("nan")
    equipoise_share: float = float("nan")
    ess_treated: float = float("nan")
    ess_control: float = float("nan")
    max_abs_smd_weighted: float = float("nan")
    n_truncated: int = 0
    balance: pd.DataFrame = field(default_factory=pd.DataFrame)  # covariate, smd_unweighted, smd_weighted


def standardized_differences(x: pd.DataFrame, treated: np.ndarray, weights: np.ndarray | None) -> pd.Series:
    """SMD of each column: weighted group means, unweighted pooled SD as the denominator."""
    first, second = treated == 1, treated == 0
    w = np.ones(len(treated)) if weights is None else weights
    values = x.to_numpy(dtype=float)
    mean_1 = np.average(values[first], axis=0, weights=w[first])
    mean_0 = np.average(values[second], axis=0, weights=w[second])
    pooled = np.sqrt((values[first].var(axis=0, ddof=1) + values[second].var(axis=0, ddof=1)) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        smd = np.where(pooled > 0, (mean_1 - mean_0) / pooled, 0.0)
    return pd.Series(smd, index=x.columns)


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's ESS: (sum w)^2 / sum w^2."""
    return float(weights.sum() ** 2 / (weights**2).sum())


def preference_scores(propensity: np.ndarray, treated_share: float) -> np.ndarray:
    """Walker et al. 2013: logit(F) = logit(e) - logit(P(T))."""
    logit = np.log(propensity / (1 - propensity)) - np.log(treated_share / (1 - treated_share))
    return 1 / (1 + np.exp(-logit))


def iptw(frame: pd.DataFrame, settings: ModelSettings, prepared: Design | None = None) -> PropensityResult:
    design, notes = prepared or adjustment_design(frame, settings)
    notes = list(notes)
    if design is None:
        return PropensityResult(failed("; ".join(notes)))
    treated = design["treated"].to_numpy(dtype=float)
    predictors = design.drop(columns="treated")
    terms = [c for c in predictors.columns if c != "const"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ps_fit = sm.Logit(treated, predictors.to_numpy(dtype=float)).fit(disp=0, maxiter=200)
        except (np.linalg.LinAlgError, ValueError) as error:
            return PropensityResult(failed("; ".join([*notes, f"propensity model failed: {error}"])), terms)
    problems = [w for w in caught if issubclass(w.category, (ConvergenceWarning, PerfectSeparationWarning))]
    propensity = np.clip(np.asarray(ps_fit.predict()), 1e-6, 1 - 1e-6)
    share = treated.mean()
    raw = np.where(treated == 1, share / propensity, (1 - share) / (1 - propensity))
    truncated = raw > settings.weight_truncation
    weights = np.minimum(raw, settings.weight_truncation)
    before = standardized_differences(predictors[terms], treated, None)
    after = standardized_differences(predictors[terms], treated, weights)
    auc = float(stats.mannwhitneyu(propensity[treated == 1], propensity[treated == 0]).statistic) / (
        (treated == 1).sum() * (treated == 0).sum()
    )
    preference = preference_scores(propensity, share)
    low, high = settings.equipoise_bounds
    equipoise = float(((preference >= low) & (preference <= high)).mean())
    result = PropensityResult(
        Estimate(),
        terms,
        auc,
        equipoise,
        effective_sample_size(weights[treated == 1]),
        effective_sample_size(weights[treated == 0]),
        float(after.abs().max()) if len(after) else 0.0,
        int(truncated.sum()),
        pd.DataFrame({"covariate": terms, "smd_unweighted": before.to_numpy(), "smd_weighted": after.to_numpy()}),
    )
    failures = []
    if problems:
        failures.append("propensity model did not converge (separation: groups too distinct)")
    imbalanced = after[after.abs() >= settings.max_smd]
    if len(imbalanced):
        worst = imbalanced.abs().sort_values(ascending=False)
        shown = ", ".join(f"{name} {after[name]:+.2f}" for name in worst.index[:3])
        failures.append(f"balance fails: |SMD| after weighting >= {settings.max_smd:g} ({shown})")
    if equipoise <= settings.min_equipoise_share:
        failures.append(
            f"overlap fails: {equipoise:.0%} of patients in equipoise (preference score {low:g}-{high:g}), "
            f"pass mark {settings.min_equipoise_share:.0%}"
        )
    facts = [
        f"propensity AUC {auc:.2f}",
        f"{equipoise:.0%} in equipoise",
        # As a share of each group: an ESS is not a count, and printed as a number it read as one (docs/disclosure.md).
        f"ESS {result.ess_treated / (treated == 1).sum():.0%} vs {result.ess_control / (treated == 0).sum():.0%} "
        "of the groups",
        f"max |SMD| {result.max_abs_smd_weighted:.2f} after weighting",
    ]
    if truncated.any():
        facts.append(f"weights truncated at {settings.weight_truncation:g}")
    outcome_design = (
        design[["const", "treated", "baseline_value"]] if "baseline_value" in design else design[["const", "treated"]]
    )
    y = frame.loc[design.index, "change"].astype(float).to_numpy()
    fit_notes = [*failures, *facts, *notes]
    try:
        model = sm.WLS(y, outcome_design.to_numpy(dtype=float), weights=weights)
        fit = robust_fit(model, frame.loc[design.index, "site_id"].astype(str), settings, fit_notes)
    except (np.linalg.LinAlgError, ValueError) as error:
        result.estimate = failed("; ".join([*fit_notes, f"fit failed: {error}"]))
        return result
    estimate = coefficient(fit, 1, fit_notes)
    result.estimate = replace(estimate, diagnostics_ok=False, converged=not problems) if failures else estimate
    return result
