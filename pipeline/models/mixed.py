"""The mixed model: every follow-up change of an outcome (3, 6 and 12 months) in one linear mixed
model with timepoint, group by timepoint, baseline value and covariates as fixed effects and a
random intercept per patient, with a random slope on time where that converges. The group
difference at each timepoint is its group-by-timepoint coefficient (cell-means coding, so no
linear combination is needed).

The random-intercept model is fitted by ``random_intercept`` (closed-form REML, checked against
statsmodels' MixedLM, which is 500 times slower on it); the optional random slope
(``mixed_random_slope``) by MixedLM, whose convergence warnings are caught: where the slope does
not converge the fit falls back to the intercept alone. A fit that does not converge keeps its
numbers with ``diagnostics_ok`` false and the reason in ``note``.

Standard errors: cluster-robust (sandwich) on the same fit, clustered by patient (by site where
there are ``min_sites_for_cluster`` sites, as for ancova). A random intercept implies the same
variance and correlation at every timepoint; where follow-up spreads with time or patients differ
in slope, its model-based errors are too narrow (0.13 against an SD of 0.20 across seeds in issue
17), the sandwich is not. The model-based SE is kept in the note.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from pipeline.intervals import interval
from pipeline.models import fit_record
from pipeline.models.design_matrix import covariate_matrix, full_rank_columns, severity_matrix
from pipeline.models.estimators import Estimate, continuous_terms, failed, site_clusters
from pipeline.models.random_intercept import fit_random_intercept
from pipeline.models.splines import spline_columns
from pipeline.settings import ModelSettings

BOUNDARY = "The MLE may be on the boundary"


def _design(long: pd.DataFrame, timepoints: list[str], settings: ModelSettings) -> tuple[pd.DataFrame, list[str]]:
    patients = long.drop_duplicates(["site_id", "patient_id"]).reset_index(drop=True)
    covariates, notes = covariate_matrix(patients, settings.covariates, settings.min_group_size)
    severity, severity_notes = severity_matrix(patients)
    notes.extend(severity_notes)
    if settings.spline_knots and len(patients) >= settings.spline_min_patients:
        # Spline terms of the baseline values and continuous covariates, by timepoint as the baseline.
        continuous = pd.concat([patients[["baseline_value"]].astype(float), severity, covariates], axis=1)
        splines = spline_columns(continuous, continuous_terms(continuous), settings.spline_knots)
        if splines.shape[1]:
            severity = pd.concat([severity, splines], axis=1)
            notes.append(f"restricted cubic splines ({settings.spline_knots} knots) for continuous terms")
    columns: dict[str, pd.Series] = {}
    for timepoint in timepoints:
        columns[f"at[{timepoint}]"] = (long["timepoint"] == timepoint).astype(float)
    for timepoint in timepoints:
        columns[f"treated_at[{timepoint}]"] = ((long["timepoint"] == timepoint) & (long["treated"] == 1)).astype(float)
    for timepoint in timepoints:  # baseline by timepoint, as in an MMRM: its effect grows with time
        columns[f"baseline_at[{timepoint}]"] = (
            long["baseline_value"].astype(float).where(long["timepoint"] == timepoint, 0.0)
        )
    # The other baseline severity measures (and the spline terms) by timepoint too: their effect on
    # change grows with time. A missing covariate stays missing on every row (``where`` keeps NaN where
    # the timepoint matches), so the caller's complete-case filter still sees it.
    keyed_severity = pd.concat([patients[["site_id", "patient_id"]], severity], axis=1)
    severity_rows = long[["site_id", "patient_id"]].merge(keyed_severity, on=["site_id", "patient_id"], how="left")
    severity_rows = severity_rows.drop(columns=["site_id", "patient_id"]).set_axis(long.index)
    for name in severity.columns:
        for timepoint in timepoints:
            columns[f"{name}_at[{timepoint}]"] = severity_rows[name].where(long["timepoint"] == timepoint, 0.0)
    # Patient-level covariates (levels pooled by patient counts) by timepoint as well, as an MMRM has them:
    # one coefficient shared by 3, 6 and 12 months is biased wherever a covariate's effect on change grows
    # with time and differs between the groups (issue 29: three sites with effects 2, 6 and 12).
    keyed = pd.concat([patients[["site_id", "patient_id"]], covariates], axis=1)
    per_row = long[["site_id", "patient_id"]].merge(keyed, on=["site_id", "patient_id"], how="left")
    per_row = per_row.drop(columns=["site_id", "patient_id"]).set_axis(long.index)
    for name in covariates.columns:
        for timepoint in timepoints:
            columns[f"{name}_at[{timepoint}]"] = per_row[name].where(long["timepoint"] == timepoint, 0.0)
    return pd.DataFrame(columns, index=long.index), notes


def _fit(
    y: np.ndarray, x: np.ndarray, groups: np.ndarray, exog_re: np.ndarray | None, maxiter: int, methods: list[str]
) -> tuple[object | None, list[str]]:
    """Fit by REML with the optimizers given in turn; return the fit (or None) and the problems seen."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = MixedLM(y, x, groups, exog_re=exog_re).fit(reml=True, maxiter=maxiter, method=methods)
        except (np.linalg.LinAlgError, ValueError) as error:
            return None, [f"{type(error).__name__}: {error}"]
    messages = sorted({str(w.message).split(".")[0] for w in caught if issubclass(w.category, ConvergenceWarning)})
    # A variance estimated at zero is a singular fit, not a failure (lme4 says the same): noted by the caller.
    problems = [m for m in messages if not m.startswith(BOUNDARY)]
    if len(problems) < len(messages):
        fit.boundary = True  # type: ignore[attr-defined]
    if not getattr(fit, "converged", False):
        problems.append("the optimizer did not converge")
    if not np.isfinite(np.asarray(fit.bse_fe)).all():
        problems.append("non-finite standard errors")
    return fit, problems


def mixedlm_sandwich(
    fit: object, y: np.ndarray, x: np.ndarray, groups: np.ndarray, exog_re: np.ndarray, clusters: np.ndarray
) -> np.ndarray:
    """Sandwich SEs of a MixedLM fit: V_i = scale I + Z_i cov_re Z_i' per patient (a loop over
    patients, as MixedLM's own fit; here for the optional random slope, and for the BoNT intervals'
    random-intercept fit in reliance.py)."""
    beta = np.asarray(fit.fe_params)  # type: ignore[attr-defined]
    cov_re, scale = np.asarray(fit.cov_re), float(fit.scale)  # type: ignore[attr-defined]
    residuals = y - x @ beta
    bread = np.zeros((x.shape[1], x.shape[1]))
    codes = pd.factorize(clusters)[0]
    scores = np.zeros((int(codes.max()) + 1, x.shape[1]))
    for patient in np.unique(groups):
        rows = np.flatnonzero(groups == patient)
        z = exog_re[rows]
        v_inv_x = np.linalg.solve(scale * np.eye(len(rows)) + z @ cov_re @ z.T, x[rows])
        bread += x[rows].T @ v_inv_x
        scores[codes[rows[0]]] += v_inv_x.T @ residuals[rows]
    inverse = np.linalg.inv(bread)
    g = len(scores)
    robust = inverse @ (scores.T @ scores) @ inverse * (g / max(g - 1, 1))
    return np.sqrt(np.clip(np.diag(robust), 0, None))


def mixed(long: pd.DataFrame, settings: ModelSettings, design_timepoints: tuple[str, ...]) -> dict[str, Estimate]:
    """``long``: one row per patient and follow-up timepoint (``treated``, ``change``, ``baseline_value``,
    ``days_from_t0``, covariates). Returns an estimate per timepoint present, of ``design_timepoints``
    (the design's, earliest first)."""
    timepoints = [t for t in design_timepoints if (long["timepoint"] == t).any()]
    design, notes = _design(long, timepoints, settings)
    complete = design.notna().all(axis=1) & long["change"].notna()
    if not complete.all():
        notes.append("rows without a covariate value left out")
        design = design[complete]
    keep = 2 * len(timepoints)
    kept, dropped = full_rank_columns(design, keep=keep)
    if len(kept) < keep:
        return {
            t: failed("; ".join([*notes, "fit failed: a group has no follow-up at some timepoint"])) for t in timepoints
        }
    if dropped:
        notes.append("collinear term(s) dropped: " + ", ".join(dropped))
    design = design[kept]
    rows = long.loc[design.index]
    y = rows["change"].to_numpy(dtype=float)
    groups = pd.factorize(rows["site_id"].astype(str) + "/" + rows["patient_id"].astype(str))[0]
    x = design.to_numpy(dtype=float)
    site_codes, cluster_note = site_clusters(rows["site_id"].astype(str), settings)
    clusters = groups if site_codes is None else site_codes
    cluster_note = "patient-clustered sandwich errors" if site_codes is None else cluster_note
    fit, problems = None, ["not fitted"]
    robust_bse: np.ndarray | None = None
    if settings.mixed_random_slope:
        time = np.column_stack([np.ones(len(rows)), rows["days_from_t0"].to_numpy(dtype=float) / 365.25])
        # One optimizer for the slope: it is an option, not worth statsmodels' three retries.
        fit, problems = _fit(y, x, groups, time, settings.mixed_maxiter, ["bfgs"])
        if problems or getattr(fit, "boundary", False):
            notes.append("random slope on time not supported (did not converge or zero variance); intercept only")
            problems = ["slope dropped"]
        else:
            notes.append("random intercept and slope on time per patient")
            robust_bse = mixedlm_sandwich(fit, y, x, groups, time, clusters)
    if problems:
        fit = fit_random_intercept(y, x, groups, clusters)
        robust_bse = fit.robust_bse
        problems = fit.problems
        notes.append("random intercept per patient (REML)")
        if fit.boundary:
            notes.append("patient variance estimated at zero (singular fit: no patient-level variation)")
    if problems:
        notes.append("did not converge (" + "; ".join(problems) + "): numbers shown for completeness only")
    ok = not problems
    if fit_record.on():
        fit_record.record(
            "mixed",
            design.assign(
                **{
                    ".y": y,
                    ".group": groups,
                    ".cluster": clusters,
                    ".years": rows["days_from_t0"].to_numpy(float) / 365.25,
                }
            ).reset_index(drop=True),
            y=".y",
            x=[str(c) for c in kept],
            coefficients={t: f"treated_at[{t}]" for t in timepoints},
            random="intercept" if hasattr(fit, "robust_bse") else "intercept and slope on .years",
            # Where the REML has no finite optimum (the patient variance diverges: not converged, flagged), the
            # fit stops at its bound; the cross-check evaluates lmer's deviance there.
            variance_ratio=float(fit.tau2 / fit.sigma2) if hasattr(fit, "tau2") and fit.sigma2 > 0 else None,
            diverged=any("diverged" in problem for problem in problems),
            estimation="REML",
            variance="sandwich with the model's marginal V, clustered by .cluster, times G/(G-1); normal p and CI",
        )
    params, model_bse = np.asarray(fit.fe_params), np.asarray(fit.bse_fe)
    bse = model_bse if robust_bse is None else robust_bse
    results = {}
    for timepoint in timepoints:
        index = kept.index(f"treated_at[{timepoint}]")
        estimate, std_error = float(params[index]), float(bse[index])
        errors_note = f"{cluster_note} (model-based SE {model_bse[index]:.2f})"
        z = estimate / std_error if std_error > 0 else float("nan")
        p_value = float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else float("nan")
        ci_low, ci_high = interval(estimate, std_error)
        results[timepoint] = Estimate(
            estimate,
            std_error,
            ci_low,
            ci_high,
            p_value,
            ok,
            "; ".join([errors_note, *notes]),
            converged=ok,
            boundary=bool(getattr(fit, "boundary", False)),
        )
    return results
