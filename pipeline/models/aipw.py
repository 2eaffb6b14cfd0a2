"""``aipw``: augmented inverse-probability weighting, the doubly robust estimator (Robins, Rotnitzky
and Zhao 1994; Glynn and Quinn 2010): right if either the propensity model or the outcome model is.

The propensity model is iptw's design (group on baseline value, every baseline severity measure,
covariates and their spline terms); the outcome model an OLS of change on the same terms in each
group. Per patient, ``psi = m1 - m0 + T (y - m1) / e - (1 - T) (y - m0) / (1 - e)``; the estimate is
the mean of psi and its SE that of the influence function, clustered by site with enough sites.

Issue 29 found three faults and these are the fixes:

- **Cross-fitting** (Chernozhukov et al. 2018): the patients are split into ``FOLDS`` folds (seeded,
  stratified by group); each fold's ``e``, ``m1`` and ``m0`` come from models fitted on the other
  folds. In-sample outcome models with 26 terms in an arm of 100 fit their own noise, so the
  residuals, and with them the SE, were too small (0.75 against a bootstrap SD of 2.50).
- **No extrapolation beyond each arm's support**: patients whose cross-fitted propensity lies outside
  ``TRIM`` to ``1 - TRIM`` are left out (trimming to the overlap region, Crump et al. 2009: the
  estimand is then the average effect among patients who could have had either treatment; the note
  gives the share trimmed, and more than ``MAX_TRIMMED`` fails), and each arm's predictions are
  bounded by the change that arm observed (a spline outcome model predicted 434.6 against a truth
  of 6.0 under a positivity violation).
- **A balance check of its own**: the standardized differences of every main design term (not the
  spline terms, which the outcome model carries) under the weights ``1/e`` and ``1/(1 - e)`` of the
  patients kept; any at or above ``BALANCE_FACTOR x max_smd`` fails. Weighting alone must balance
  to ``max_smd``; here the outcome model removes what a moderate imbalance leaves, so the check is
  for a propensity model grossly wrong (0.2 is the conventional mark of a large imbalance).

Where AIPW's diagnostics fail (its own or the contrast's overlap), no interval or p-value is
published for it (``withheld``): the estimate is kept, with ``diagnostics_ok`` false and the reason.
``aipw_components`` is the in-sample estimator, checked against statsmodels' ``TreatmentEffect``.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from pipeline.intervals import interval
from pipeline.models import fit_record
from pipeline.models.design_matrix import full_rank_columns
from pipeline.models.estimators import Design, Estimate, adjustment_design, failed, site_clusters
from pipeline.models.propensity import standardized_differences
from pipeline.settings import ModelSettings

BOUND = 0.01  # the in-sample estimator's propensity bounds
FOLDS = 5
SEED = 20261207  # the folds: the same data always split the same way
TRIM = 0.05  # cross-fitted propensities outside TRIM to 1 - TRIM: outside the overlap region, left out
MAX_TRIMMED = 0.2  # more of the patients than this outside the overlap region: the estimand has moved too far
BALANCE_FACTOR = 2.0  # AIPW's own balance mark: this times max_smd
WITHHELD = "no interval or p-value published: AIPW's diagnostics fail"


def aipw_components(y: np.ndarray, treated: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """In-sample per-patient psi and the propensities (bounded), and problems met."""
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


def folds_of(treated: np.ndarray, folds: int = FOLDS, seed: int = SEED) -> np.ndarray:
    """Each patient's fold, 0 to ``folds - 1``: shuffled within each group, then dealt out in turn."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(treated), dtype=int)
    for group in (0, 1):
        members = rng.permutation(np.flatnonzero(treated == group))
        fold[members] = np.arange(len(members)) % folds
    return fold


def cross_fitted(
    y: np.ndarray, treated: np.ndarray, x: np.ndarray, folds: int = FOLDS, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Each patient's propensity and both arms' predicted change, from models fitted without the
    patient's fold; each arm's predictions bounded by the change it observed. Returns (e, m1, m0, problems)."""
    fold = folds_of(treated, folds, seed)
    propensity, m1, m0 = (np.full(len(y), np.nan) for _ in range(3))
    problems: set[str] = set()
    for k in range(folds):
        train, test = fold != k, fold == k
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ps_fit = sm.Logit(treated[train], x[train]).fit(disp=0, maxiter=200)
        if any("converge" in str(w.message).lower() or "separation" in str(w.message).lower() for w in caught):
            problems.add("propensity model did not converge in a fold")
        propensity[test] = np.asarray(ps_fit.predict(x[test]))
        for group, target in ((1, m1), (0, m0)):
            rows = train & (treated == group)
            # A term collinear within a fold's arm is dropped, as R's lm does (aipw_components says why).
            columns = [int(c) for c in full_rank_columns(pd.DataFrame(x[rows]), keep=1)[0]]
            beta = np.linalg.lstsq(x[rows][:, columns], y[rows], rcond=None)[0]
            target[test] = x[test][:, columns] @ beta
    for group, target in ((1, m1), (0, m0)):
        observed = y[treated == group]
        np.clip(target, observed.min(), observed.max(), out=target)
    return propensity, m1, m0, sorted(problems)


def withheld(estimate: Estimate) -> Estimate:
    """An AIPW estimate whose diagnostics fail, without its interval and p-value (the estimate and the
    reason kept): a doubly robust interval is only as good as the models' overlap and balance."""
    if estimate.diagnostics_ok or not np.isfinite(estimate.estimate) or not np.isfinite(estimate.ci_low):
        return estimate
    note = "; ".join(part for part in (estimate.note, WITHHELD) if part)
    return replace(estimate, ci_low=float("nan"), ci_high=float("nan"), p_value=float("nan"), note=note)


def aipw(frame: pd.DataFrame, settings: ModelSettings, prepared: Design | None = None) -> Estimate:
    design, notes = prepared or adjustment_design(frame, settings)
    notes = list(notes)
    if design is None:
        return failed("; ".join(notes))
    treated = design["treated"].to_numpy(dtype=float)
    terms = design.drop(columns="treated")
    x = terms.to_numpy(dtype=float)
    # Each fold's models are fitted on (FOLDS - 1) / FOLDS of each group.
    if min(treated.sum(), len(treated) - treated.sum()) * (FOLDS - 1) / FOLDS <= x.shape[1]:
        return failed("; ".join([*notes, "fit failed: fewer patients in a group than outcome-model terms"]))
    y = frame.loc[design.index, "change"].to_numpy(dtype=float)
    try:
        propensity, m1, m0, problems = cross_fitted(y, treated, x)
    except (np.linalg.LinAlgError, ValueError) as error:
        return failed("; ".join([*notes, f"fit failed: {error}"]))
    kept = (propensity >= TRIM) & (propensity <= 1 - TRIM)
    if min(treated[kept].sum(), (1 - treated[kept]).sum()) < settings.min_group_size:
        return failed("; ".join([*notes, "not estimated: too few patients of a group in the overlap region"]))
    e, t, y_kept = propensity[kept], treated[kept], y[kept]
    psi = m1[kept] - m0[kept] + t * (y_kept - m1[kept]) / e - (1 - t) * (y_kept - m0[kept]) / (1 - e)
    estimate = float(psi.mean())
    clusters, cluster_note = site_clusters(frame.loc[design.index, "site_id"].astype(str)[kept], settings)
    if fit_record.on():
        fit_record.record(
            "aipw",
            design.assign(
                **{
                    ".y": y,
                    ".cluster": frame.loc[design.index, "site_id"].astype(str),
                    ".fold": folds_of(treated),
                    # Where a fold's propensity model did not converge (separation) its fitted values are where
                    # the optimizer stopped: the cross-check evaluates the rest at these (as the mixed model's
                    # diverged variance ratio).
                    ".propensity": propensity,
                }
            ).reset_index(drop=True),
            y=".y",
            treated="treated",
            x=[str(c) for c in design.columns if c != "treated"],
            folds=FOLDS,
            trim=TRIM,
            propensity_converged=not problems,
            predictions="each arm's predictions clipped to the range of change that arm observed",
            variance="influence function over the patients kept, "
            + ("iid" if clusters is None else "clustered by site"),
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
    failures = list(problems)
    # The main terms, not their spline terms: the outcome model carries the curves (were it right, the
    # weights' balance would not matter); this guards against a propensity model wrong on what it sees.
    columns = [c for c in terms.columns if c != "const" and not str(c).startswith("spline[")]
    weights = np.where(t == 1, 1 / e, 1 / (1 - e))
    smd = standardized_differences(terms.loc[kept, columns], t, weights).abs().sort_values(ascending=False)
    mark = BALANCE_FACTOR * settings.max_smd
    if len(smd) and smd.iloc[0] >= mark:
        shown = ", ".join(f"{name} {value:.2f}" for name, value in smd.iloc[:3].items() if value >= mark)
        failures.append(f"balance fails: |SMD| under AIPW's weights >= {mark:g} ({shown})")
    trimmed = 1 - float(kept.mean())
    if trimmed > MAX_TRIMMED:
        failures.append(
            f"overlap fails: {trimmed:.0%} of patients outside the overlap region (pass mark {MAX_TRIMMED:.0%}), "
            "so the estimate is of a population unlike the contrast's"
        )
    facts = [f"doubly robust, cross-fitted ({FOLDS} folds), influence-function errors"]
    if clusters is not None:
        facts.append(cluster_note)
    facts.append(
        f"{trimmed:.0%} of patients outside the overlap region (propensity {TRIM:g}-{1 - TRIM:g}) left out"
        if trimmed
        else f"every patient in the overlap region (propensity {TRIM:g}-{1 - TRIM:g})"
    )
    facts.append(f"max |SMD| {smd.iloc[0] if len(smd) else 0.0:.2f} under AIPW's weights")
    result = Estimate(
        estimate,
        std_error,
        ci_low,
        ci_high,
        p_value,
        not failures,
        "; ".join([*failures, *facts, *notes]),
        converged=not problems,
    )
    if not result.ok:
        return failed("; ".join([*notes, "fit failed: non-finite result"]))
    return withheld(result)
