"""``aipw``: augmented inverse-probability weighting, the doubly robust estimator (Robins, Rotnitzky
and Zhao 1994; Glynn and Quinn 2010): right if either the propensity model or the outcome model is.

The propensity model is iptw's (the same design: group on baseline value, every baseline severity
measure, covariates and their spline terms); the outcome model an OLS of change on the same terms
in each group, predicted for everyone. Per patient,
``psi = m1 - m0 + T (y - m1) / e - (1 - T) (y - m0) / (1 - e)``; the estimate is the mean of psi
and its SE that of the influence function, clustered by site with enough sites. Propensities are
bounded at 0.01 and 0.99 (extreme ones make the correction terms explode; the contrast's overlap
check says when that matters). The tests check the estimate and SE against statsmodels'
``TreatmentEffect(...).aipw()``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from pipeline.intervals import interval
from pipeline.models import fit_record
from pipeline.models.design_matrix import full_rank_columns
from pipeline.models.estimators import Design, Estimate, adjustment_design, failed, site_clusters
from pipeline.settings import ModelSettings

BOUND = 0.01


def aipw_components(y: np.ndarray, treated: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-patient psi and the propensities (bounded), and problems met."""
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ps_fit = sm.Logit(treated, x).fit(disp=0, maxiter=200)
    if any("converge" in str(w.message).lower() or "separation" in str(w.message).lower() for w in caught):
        problems.append("propensity model did not converge")
    propensity = np.clip(np.asarray(ps_fit.predict()), BOUND, 1 - BOUND)
    predicted = {}
    for group in (0, 1):
        rows = treated == group
        # A term collinear with others within one group (a site with no patient of the group, a missing
        # indicator that is a site there) is dropped, as R's lm does (its coefficient NA, predicted as 0):
        # a minimum-norm solution would split it over the collinear terms and predict the other group
        # along a direction this group's data do not determine.
        kept = full_rank_columns(pd.DataFrame(x[rows]), keep=1)[0]
        columns = [int(c) for c in kept]
        fit = sm.OLS(y[rows], x[rows][:, columns]).fit()
        predicted[group] = x[:, columns] @ np.asarray(fit.params)
    m1, m0 = predicted[1], predicted[0]
    psi = m1 - m0 + treated * (y - m1) / propensity - (1 - treated) * (y - m0) / (1 - propensity)
    return psi, propensity, problems


def aipw(frame: pd.DataFrame, settings: ModelSettings, prepared: Design | None = None) -> Estimate:
    design, notes = prepared or adjustment_design(frame, settings)
    notes = list(notes)
    if design is None:
        return failed("; ".join(notes))
    treated = design["treated"].to_numpy(dtype=float)
    x = design.drop(columns="treated").to_numpy(dtype=float)
    if min(treated.sum(), len(treated) - treated.sum()) <= x.shape[1]:
        return failed("; ".join([*notes, "fit failed: fewer patients in a group than outcome-model terms"]))
    y = frame.loc[design.index, "change"].to_numpy(dtype=float)
    try:
        psi, propensity, problems = aipw_components(y, treated, x)
    except (np.linalg.LinAlgError, ValueError) as error:
        return failed("; ".join([*notes, f"fit failed: {error}"]))
    estimate = float(psi.mean())
    clusters, cluster_note = site_clusters(frame.loc[design.index, "site_id"].astype(str), settings)
    if fit_record.on():
        fit_record.record(
            "aipw",
            design.assign(**{".y": y, ".cluster": frame.loc[design.index, "site_id"].astype(str)}).reset_index(
                drop=True
            ),
            y=".y",
            treated="treated",
            x=[str(c) for c in design.columns if c != "treated"],
            propensity_bound=BOUND,
            variance="influence function, " + ("iid" if clusters is None else "clustered by site"),
        )
    n = len(psi)
    if clusters is None:
        std_error = float(psi.std(ddof=1) / np.sqrt(n))
        df = float(n - 1)
    else:
        sums = np.bincount(clusters, weights=psi - estimate)
        g = len(sums)
        std_error = float(np.sqrt(g / (g - 1) * (sums**2).sum()) / n)
        df = float(g - 1)
    ci_low, ci_high = interval(estimate, std_error, df)
    p_value = float(2 * stats.t.sf(abs(estimate / std_error), df)) if std_error > 0 else float("nan")
    bounded = int(((propensity <= BOUND) | (propensity >= 1 - BOUND)).sum())
    facts = ["doubly robust (propensity and outcome models), influence-function errors"]
    if clusters is not None:
        facts.append(cluster_note)
    if bounded:
        facts.append(f"propensities bounded at {BOUND:g} and {1 - BOUND:g}")
    result = Estimate(
        estimate,
        std_error,
        ci_low,
        ci_high,
        p_value,
        not problems,
        "; ".join([*problems, *facts, *notes]),
        converged=not problems,
    )
    return result if result.ok else failed("; ".join([*notes, "fit failed: non-finite result"]))
