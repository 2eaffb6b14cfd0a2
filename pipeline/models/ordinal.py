"""House-Brackmann as the ordinal grade it is: a proportional-odds model (statsmodels' ``OrderedModel``) of
the grade at the timepoint on the group, the baseline grade and the covariates, reported as the odds ratio of
a better (lower) grade for the first group against the second."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.miscmodels.ordinal_model import OrderedModel

from pipeline.intervals import interval
from pipeline.models import fit_record
from pipeline.models.estimators import Estimate, adjustment_design, failed
from pipeline.settings import ModelSettings

ORDINAL_OUTCOMES = frozenset({"house_brackmann"})
# The log-likelihood's least curvature below which the model is not identified (flat along some direction:
# separation, the coefficients running off to infinity): identified fits here have 5e-3 and more, separated
# ones 2e-8 and less.
MIN_CURVATURE = 1e-6


def better_grade_odds_ratio(frame: pd.DataFrame, settings: ModelSettings, higher_is_better: bool) -> Estimate:
    """Odds ratio of a better grade, first group vs second (above 1: the first group ends in better grades),
    with its Wald 95% CI; adjusted for the baseline grade and the covariates of the ANCOVA."""
    design, notes = adjustment_design(frame, settings)
    if design is None:
        return failed("; ".join(notes))
    grade = (frame.loc[design.index, "baseline_value"] + frame.loc[design.index, "change"]).round().astype(int)
    if grade.nunique() < 2:
        return failed("; ".join([*notes, "not estimated: every patient ends in the same grade"]))
    # Ordered categories only where observed: an empty grade has no threshold to estimate.
    endog = pd.Series(pd.Categorical(grade, categories=sorted(grade.unique()), ordered=True), index=design.index)
    exog = design.drop(columns=["const"])
    try:
        # gtol 1e-8 rather than scipy's 1e-5: the maximum to ordinal::clm's precision (1e-9 against 2e-5 on the
        # odds ratio; tests/crosscheck/), for no more time.
        fit = OrderedModel(endog, exog, distr="logit").fit(method="bfgs", disp=False, maxiter=500, gtol=1e-8)
    except (np.linalg.LinAlgError, ValueError) as error:
        return failed("; ".join([*notes, f"fit failed (ordinal): {error}"]))
    if fit_record.on():
        fit_record.record(
            "ordinal",
            exog.assign(**{".grade": grade}).reset_index(drop=True),
            y=".grade",
            x=[str(c) for c in exog.columns],
            coefficient="treated",
            family="proportional-odds logit (thresholds on the observed grades)",
            sign=1.0 if higher_is_better else -1.0,
            published="exp(sign * beta); std_error of beta; Wald normal CI and p",
        )
    beta, se = float(fit.params["treated"]), float(fit.bse["treated"])
    if np.linalg.eigvalsh(-fit.model.hessian(fit.params)).min() < MIN_CURVATURE:
        # Separation (a grade, or a covariate, predicts perfectly): the likelihood has no maximum and the
        # BFGS "converged" on a ridge; ordinal::clm gives no standard errors (its Hessian is singular).
        return failed("; ".join([*notes, "fit failed (ordinal): not identified (separation; singular Hessian)"]))
    if not (np.isfinite(beta) and np.isfinite(se) and se > 0):
        return failed("; ".join([*notes, "fit failed (ordinal): non-finite standard error"]))
    # OrderedModel: a positive coefficient moves a patient to a higher category. Where a lower grade is
    # better, the odds of a better grade are exp(-beta); else exp(beta).
    sign = 1.0 if higher_is_better else -1.0
    log_or = sign * beta
    log_low, log_high = interval(log_or, se)
    converged = bool(fit.mle_retvals.get("converged", True))
    notes = [*notes, "proportional-odds logit: odds ratio of a better grade (1 = no difference)"]
    if not converged:
        notes.append("did not converge: numbers shown for completeness only")
    return Estimate(
        float(np.exp(log_or)),
        se,  # on the log-odds scale
        float(np.exp(log_low)),
        float(np.exp(log_high)),
        float(2 * stats.norm.sf(abs(beta / se))),
        converged,
        "; ".join(notes),
    )
