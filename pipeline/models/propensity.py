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

from pipeline.models.design_matrix import SEVERITY, covariate_matrix, full_rank_columns, severity_matrix
from pipeline.models.estimators import (
    Design,
    Estimate,
    adjustment_design,
    coefficient,
    continuous_terms,
    failed,
    record_regression,
    robust_fit,
)
from pipeline.models.splines import spline_columns
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


def variance_ratios(x: pd.DataFrame, treated: np.ndarray, weights: np.ndarray | None) -> pd.Series:
    """Weighted variance of each column in the first group over that in the second (1 is balance;
    Austin 2009's pass range 0.5-2): a mean can balance while the spread does not."""
    w = np.ones(len(treated)) if weights is None else weights
    values = x.to_numpy(dtype=float)

    def variance(rows: np.ndarray) -> np.ndarray:
        mean = np.average(values[rows], axis=0, weights=w[rows])
        return np.average((values[rows] - mean) ** 2, axis=0, weights=w[rows])

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = variance(treated == 1) / variance(treated == 0)
    return pd.Series(ratio, index=x.columns)


def severity_spline(column: str) -> bool:
    """True for a non-spline column, or a spline term of the baseline value or a severity measure."""
    name = str(column)
    return not name.startswith("spline[") or name.startswith(("spline[baseline_value,", "spline[severity["))


def _stabilized_weights(treated: np.ndarray, propensity: np.ndarray, truncation: float) -> np.ndarray:
    share = treated.mean()
    raw = np.where(treated == 1, share / propensity, (1 - share) / (1 - propensity))
    return np.minimum(raw, truncation)


def propensity_fit(treated: np.ndarray, predictors: pd.DataFrame, truncation: float = np.inf) -> tuple[object, bool]:
    """The logistic propensity model, with or without its spline terms, whichever weights balance
    every term (the spline terms too) better: the propensity model is chosen by the balance it gives
    (Rosenbaum and Rubin 1984), since where assignment is nearly linear, spline terms only add noise to
    the weights (a mean balance of 0.13 instead of 0.06 on the generator's data), and where it curves,
    linear terms leave the curve unbalanced. Returns the fit and whether the splines are in it."""
    linear = [c for c in predictors.columns if not str(c).startswith("spline[")]
    simple = sm.Logit(treated, predictors[linear].to_numpy(dtype=float)).fit(disp=0, maxiter=200)
    if len(linear) == predictors.shape[1]:
        return simple, False
    full = sm.Logit(treated, predictors.to_numpy(dtype=float)).fit(disp=0, maxiter=200)
    terms = predictors.drop(columns=[c for c in predictors.columns if c == "const"])

    def worst(fit: object) -> float:
        propensity = np.clip(np.asarray(fit.predict()), 1e-6, 1 - 1e-6)  # type: ignore[attr-defined]
        weights = _stabilized_weights(treated, propensity, truncation)
        return float(standardized_differences(terms, treated, weights).abs().max())

    return (full, True) if worst(full) < worst(simple) else (simple, False)


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
    # Spline terms of the baseline severity measures only: those of age and the like added noise to
    # the weights (and failed balance) on a few hundred patients; the outcome models keep them all.
    predictors = design.drop(columns=[c for c in design.columns if c == "treated" or not severity_spline(c)])
    terms = [c for c in predictors.columns if c != "const"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ps_fit, curved = propensity_fit(treated, predictors, settings.weight_truncation)
        except (np.linalg.LinAlgError, ValueError) as error:
            return PropensityResult(failed("; ".join([*notes, f"propensity model failed: {error}"])), terms)
    problems = [w for w in caught if issubclass(w.category, (ConvergenceWarning, PerfectSeparationWarning))]
    if not curved and any(c.startswith("spline[") for c in terms):
        notes.append("spline terms left out of the propensity model (no better balance), kept in the balance check")
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
    ratios = variance_ratios(predictors[continuous_terms(predictors)], treated, weights)
    spread = np.abs(np.log(ratios.replace(0, np.nan).dropna()))
    outside = spread[spread > np.log(settings.max_variance_ratio)].sort_values(ascending=False)
    if len(outside):
        shown = ", ".join(f"{name} {ratios[name]:.2f}" for name in outside.index[:3])
        failures.append(
            f"balance fails: variance ratio after weighting outside {1 / settings.max_variance_ratio:g}-"
            f"{settings.max_variance_ratio:g} ({shown})"
        )
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
    ps_terms = [str(c) for c in predictors.columns if curved or not str(c).startswith("spline[")]
    record_regression(
        "iptw",
        y,
        outcome_design,
        frame.loc[design.index, "site_id"],
        settings,
        weights,
        predictors[ps_terms].add_prefix("ps:").assign(**{".treated": treated}),
        propensity=[f"ps:{c}" for c in ps_terms],
        propensity_clip=1e-6,
        weights_rule="stabilized ATE, truncated",
        truncation=settings.weight_truncation,
    )
    estimate = coefficient(fit, 1, fit_notes)
    sensitivity = overlap_weighted(y, outcome_design, treated, propensity, frame.loc[design.index, "site_id"], settings)
    if sensitivity:
        estimate = replace(estimate, note="; ".join(part for part in (estimate.note, sensitivity) if part))
    balanced = not any(f.startswith("balance fails") for f in failures)
    estimate = replace(estimate, balance_ok=balanced)
    result.estimate = replace(estimate, diagnostics_ok=False, converged=not problems) if failures else estimate
    return result


def overlap_weighted(
    y: np.ndarray,
    outcome_design: pd.DataFrame,
    treated: np.ndarray,
    propensity: np.ndarray,
    sites: pd.Series,
    settings: ModelSettings,
) -> str:
    """The overlap-weighted (ATO) estimate as a sensitivity beside the IPTW one: weights 1 - e for the first
    group and e for the second never explode where the propensity nears 0 or 1 (Li, Morgan and Zaslavsky
    2018); they estimate the effect among patients who could have had either treatment. A sentence for
    the note, or '' where the fit fails."""
    weights = np.where(treated == 1, 1 - propensity, propensity)
    try:
        fit = robust_fit(
            sm.WLS(y, outcome_design.to_numpy(dtype=float), weights=weights), sites.astype(str), settings, []
        )
    except (np.linalg.LinAlgError, ValueError):
        return ""
    value = coefficient(fit, 1, [])
    if not np.isfinite(value.estimate):
        return ""
    return f"overlap-weighted (ATO) sensitivity {value.estimate:.2f} (95% CI {value.ci_low:.2f} to {value.ci_high:.2f})"


@dataclass(frozen=True)
class Overlap:
    """The overlap of one contrast, computed once and attached to every method's estimate: where
    too few patients are in equipoise no method compares like with like (ancova and the mixed model
    extrapolate a regression line across patients the other group does not have, which is why they
    covered the truth 1 time in 3 when only 4% were in equipoise)."""

    auc: float
    equipoise_share: float
    ok: bool
    note: str
    # The groups' largest baseline differences (|SMD| at or above max_smd): why the unadjusted
    # difference should not be read as an effect (its note leads with it). None where the groups are alike.
    imbalance: str | None = None
    # Each patient's preference score (site_id, patient_id, first_group, preference_score): published in
    # ``preference_scores`` for the report's overlap plot; dropped before the overlap travels to the fits.
    scores: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    def without_scores(self) -> Overlap:
        return replace(self, scores=None)

    def apply(self, estimate: Estimate, method: str = "") -> Estimate:
        if not np.isfinite(estimate.estimate):
            return estimate
        if method == "unadjusted" and self.imbalance:
            # Said, not flagged: the crude difference is a description, shown beside the adjusted ones.
            estimate = replace(estimate, note="; ".join(p for p in (self.imbalance, estimate.note) if p))
        # A failure's reason leads the note (as every failure's does); a pass is a fact at its end.
        parts = (self.note, estimate.note) if not self.ok else (estimate.note, self.note)
        note = "; ".join(part for part in parts if part)
        return replace(estimate, diagnostics_ok=estimate.diagnostics_ok and self.ok, note=note, overlap_ok=self.ok)


NO_OVERLAP = (
    "overlap fails for every method: {reason}; some patients' treatment is decided by the covariates, so any "
    "adjusted difference extrapolates between patients unlike each other"
)
EXTREME = 1e-4  # a fitted propensity this close to 0 or 1: that patient has (almost) no counterpart


def no_overlap(reason: str) -> Overlap:
    """The verdict where the propensity model cannot be fitted or separates the groups."""
    return Overlap(float("nan"), float("nan"), False, NO_OVERLAP.format(reason=reason))


def separation(fit: object, caught: list[warnings.WarningMessage], propensity: np.ndarray) -> str:
    """Why the propensity model separates the groups ('' where it does not): it did not converge (a
    coefficient running off to infinity, as a covariate level all of one group makes it), statsmodels
    saw perfect separation, or patients' fitted propensities are 0 or 1 to four decimals."""
    retvals = getattr(fit, "mle_retvals", None) or {}
    if any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
        return "the propensity model separates the groups (perfect separation)"
    if not retvals.get("converged", True):
        return "the propensity model did not converge (quasi-complete separation: a covariate decides the group)"
    extreme = float(((propensity <= EXTREME) | (propensity >= 1 - EXTREME)).mean())
    if extreme > 0.01:
        return f"{extreme:.0%} of the contrast's patients have a propensity of 0 or 1 (to four decimals)"
    return ""


def contrast_overlap(patients: pd.DataFrame, settings: ModelSettings) -> Overlap | None:
    """``patients``: the contrast's patients (``treated`` 0/1, covariates, ``severity[...]``), one row
    each. A logistic model of group on the covariates and every baseline severity measure (missing
    indicators where absent); its AUC and the share of patients whose preference score is in the
    equipoise range. None where there are too few patients for a model (the cells say why); a model
    that is singular or separates the groups is the verdict 'no overlap' (``no_overlap``)."""
    severity_columns = [c for c in patients.columns if str(c).startswith(f"{SEVERITY}[")]
    if severity_columns:  # patients with no baseline measure are in no analysis
        patients = patients[patients[severity_columns].notna().any(axis=1)]
    if len(patients) < 2 * settings.min_group_size:
        return None
    covariates, _ = covariate_matrix(patients, settings.covariates, settings.min_group_size)
    severity, _ = severity_matrix(patients)
    design = pd.concat([pd.DataFrame({"const": 1.0}, index=patients.index), severity, covariates], axis=1)
    design = design[design.notna().all(axis=1)]
    if settings.spline_knots and len(design) >= settings.spline_min_patients:  # as the outcome models
        severity_terms = [c for c in continuous_terms(design) if c.startswith("severity[")]
        design = pd.concat([design, spline_columns(design, severity_terms, settings.spline_knots)], axis=1)
    treated = patients.loc[design.index, "treated"].to_numpy(dtype=float)
    if min(treated.sum(), len(treated) - treated.sum()) < settings.min_group_size:
        return None
    kept, _ = full_rank_columns(design, keep=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # separation is what this measures, not an error
        try:
            fit, _ = propensity_fit(treated, design[kept])
        except (np.linalg.LinAlgError, ValueError) as error:
            # A singular model is itself the verdict: no overlap (issue 29: it returned nothing, so no
            # method was flagged under a positivity violation).
            return no_overlap(f"the propensity model is singular ({type(error).__name__}: {error})")
    propensity = np.clip(np.asarray(fit.predict()), 1e-6, 1 - 1e-6)
    separated = separation(fit, caught, propensity)
    if separated:
        return no_overlap(separated)
    terms = [c for c in kept if c != "const"]
    smd = standardized_differences(design[terms], treated, None).abs().sort_values(ascending=False)
    imbalance = None
    if len(smd) and smd.iloc[0] >= settings.max_smd:
        shown = ", ".join(f"{name} {value:.2f}" for name, value in smd.iloc[:3].items() if value >= settings.max_smd)
        imbalance = f"confounded: the groups differ at baseline (|SMD| {shown}); the adjusted methods allow for it"
    first, second = propensity[treated == 1], propensity[treated == 0]
    auc = float(stats.mannwhitneyu(first, second).statistic) / (len(first) * len(second))
    preference = preference_scores(propensity, treated.mean())
    low, high = settings.equipoise_bounds
    share = float(((preference >= low) & (preference <= high)).mean())
    ok = share > settings.min_equipoise_share
    facts = f"{share:.0%} of the contrast's patients in equipoise (preference score {low:g}-{high:g}), AUC {auc:.2f}"
    scores = pd.DataFrame(
        {
            "site_id": patients.loc[design.index, "site_id"].astype(str).to_numpy(),
            "patient_id": patients.loc[design.index, "patient_id"].astype(str).to_numpy(),
            "first_group": treated == 1,
            "preference_score": preference,
        }
    )
    if ok:
        return Overlap(auc, share, True, f"overlap: {facts}", imbalance, scores)
    return Overlap(
        auc,
        share,
        False,
        f"overlap fails for every method: {facts}, pass mark {settings.min_equipoise_share:.0%}; treatment is "
        "all but decided by the covariates, so any adjusted difference extrapolates between patients unlike "
        "each other",
        imbalance,
        scores,
    )
