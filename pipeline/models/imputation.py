"""``mice``: the ANCOVA after multiple imputation of missing follow-up, pooled by Rubin's rules, a
sensitivity analysis for loss to follow-up.

Population: the patients of either group with a baseline value of the outcome, whether or not
they have a follow-up value. Their changes at 3, 6 and 12 months are imputed together by chained
equations, so an earlier change informs a missing later one: each incomplete column in turn by
Bayesian linear regression on every other column (R ``mice``'s ``norm``, van Buuren 2018,
algorithm 3.1), ``mice_imputations`` independent chains of ``mice_iterations`` cycles each.
The changes are continuous and unbounded, so ``norm`` rather than ``mice``'s general default,
predictive mean matching, whose donor search was the slowest step at 10,000 patients. Each
completed data set gets the ANCOVA at each timepoint; the estimates are pooled by Rubin's rules
with the Barnard-Rubin degrees of freedom, as ``mice::pool`` does.

Written with numpy rather than statsmodels' ``MICEData`` because that took 5.7 s per contrast
and outcome on 700 patients, some 6 minutes per model run. Seeded per contrast and outcome, so
the same data and settings give the same numbers.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from pipeline.intervals import interval
from pipeline.models import fit_record
from pipeline.models.estimators import Estimate, adjustment_design, failed, site_clusters
from pipeline.settings import ModelSettings


def rubin(estimates: np.ndarray, variances: np.ndarray, complete_df: float) -> tuple[float, float, float]:
    """Pooled estimate, its standard error and Barnard-Rubin degrees of freedom."""
    m = len(estimates)
    pooled = float(estimates.mean())
    within = float(variances.mean())
    between = float(estimates.var(ddof=1)) if m > 1 else 0.0
    total = within + (1 + 1 / m) * between
    if between <= 1e-12 * max(within, 1e-300):  # nothing imputed: rounding, not missing information
        return pooled, float(np.sqrt(total)), complete_df
    share = (1 + 1 / m) * between / total  # lambda: the share of variance due to missing data
    df_old = (m - 1) / share**2
    df_observed = (complete_df + 1) / (complete_df + 3) * complete_df * (1 - share)
    return pooled, float(np.sqrt(total)), float(1 / (1 / df_old + 1 / df_observed))


def _seed(settings: ModelSettings, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{settings.mice_seed}/{key}".encode()).digest()[:8], "big")


def _norm_update(filled: np.ndarray, missing: np.ndarray, column: int, rng: np.random.Generator) -> None:
    """One chained-equation step for one column: Bayesian linear regression imputation (R mice's
    ``norm``, van Buuren 2018 algorithm 3.1): draw sigma, then beta, then each value with its noise."""
    observed = ~missing[:, column]
    # Every other column predicts this one; the column itself becomes the intercept.
    x_obs = filled[observed]
    x_obs[:, column] = 1.0
    x_mis = filled[~observed]
    x_mis[:, column] = 1.0
    y = filled[observed, column]
    xtx = x_obs.T @ x_obs
    xtx += np.diag(np.diag(xtx)) * 1e-5  # mice ridge (each diagonal element), for near-collinear columns
    # One eigendecomposition gives the (pseudo-)inverse and its square root: a dummy that is zero on
    # every observed row leaves X'X singular, and such a column must simply not move the draw.
    values, vectors = np.linalg.eigh(xtx)
    keep = values > values.max() * len(values) * np.finfo(float).eps
    scaled = vectors[:, keep] / np.sqrt(values[keep])  # inverse = scaled @ scaled.T
    beta = scaled @ (scaled.T @ (x_obs.T @ y))
    residuals = y - x_obs @ beta
    sigma = np.sqrt(residuals @ residuals / rng.chisquare(max(observed.sum() - x_obs.shape[1], 1)))
    drawn = beta + sigma * scaled @ rng.standard_normal(int(keep.sum()))
    filled[~observed, column] = x_mis @ drawn + sigma * rng.standard_normal((~observed).sum())


def chained_imputations(
    data: np.ndarray, imputations: int, iterations: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Completed copies of ``data`` (NaN = missing): independent chains started from random
    observed values, each column with missing values updated in turn for ``iterations`` cycles."""
    missing = np.isnan(data)
    targets = [j for j in range(data.shape[1]) if missing[:, j].any()]
    completed = []
    for _ in range(imputations):
        filled = data.copy()
        for j in targets:
            pool = data[~missing[:, j], j]
            filled[missing[:, j], j] = rng.choice(pool, missing[:, j].sum())
        for _ in range(iterations):
            for j in targets:
                _norm_update(filled, missing, j, rng)
        completed.append(filled)
    return completed


class _GroupCoefficient:
    """The group coefficient of an OLS of each completed outcome on the same design, with the
    ANCOVA's robust variance (HC3, or cluster-robust by site with enough sites, as statsmodels
    computes them): the design's projection and leverages are computed once for every imputation
    and timepoint, rather than a statsmodels fit each (the tests check the two agree)."""

    def __init__(self, x: np.ndarray, sites: pd.Series, settings: ModelSettings, index: int = 1) -> None:
        self.x = x
        self.projection = np.linalg.solve(x.T @ x, x.T)  # (X'X)^-1 X'
        self.row = self.projection[index]
        self.clusters, self.note = site_clusters(sites, settings)
        n, p = x.shape
        if self.clusters is None:
            leverage = np.einsum("ij,ji->i", x, self.projection)
            with np.errstate(divide="ignore"):
                self.scale = 1 / (1 - leverage)
            self.df = float(n - p)
        else:
            n_sites = int(self.clusters.max()) + 1
            self.correction = n_sites / (n_sites - 1) * (n - 1) / (n - p)
            self.df = float(n_sites - 1)  # as statsmodels' cluster-robust t tests

    def __call__(self, y: np.ndarray) -> tuple[float, float]:
        residuals = y - self.x @ (self.projection @ y)
        if self.clusters is None:
            variance = float(((self.row * residuals * self.scale) ** 2).sum())
        else:
            sums = np.bincount(self.clusters, weights=self.row * residuals)
            variance = float(self.correction * (sums**2).sum())
        return float(self.row @ y), variance


def tipping_shifts(row: np.ndarray, imputed: np.ndarray, first: np.ndarray, estimate: float) -> str | None:
    """The note on the shift in each group's imputed changes that would bring the estimate to 0."""
    parts = []
    for label, rows in (("first", imputed & first), ("second", imputed & ~first)):
        weight = float(row @ rows)
        if rows.any() and abs(weight) > 1e-12:
            parts.append(f"the {label} group's by {-estimate / weight:+.1f}")
    if not parts:
        return None
    return "tipping point: the estimate is 0 if the imputed changes were shifted, " + " or ".join(parts)


def mice(
    wide: pd.DataFrame,
    settings: ModelSettings,
    key: str,
    design_timepoints: tuple[str, ...],
    shift: tuple[float, float] = (0.0, 0.0),
) -> dict[str, Estimate]:
    """``wide``: one row per patient with ``treated``, ``baseline_value``, covariates and ``change_<tp>``
    (missing where not observed) for ``design_timepoints`` (earliest first). Returns an estimate per
    timepoint with any observed change.

    Tipping point (delta adjustment, as Carpenter and Kenward describe for informative drop-out):
    each note says by how much the imputed changes of the first group (or of the second) would have
    to be shifted for the estimate to be 0. The group coefficient is linear in the outcome, so the
    shift is exact: ``-estimate / (c' m)`` for the coefficient's row ``c`` of ``(X'X)^-1 X'`` and the
    group's imputed rows ``m``. ``shift``: (first, second) group shifts applied to the imputed values
    before the analysis, to check it."""
    # A timepoint too sparse to estimate is left out of the imputation too: as a predictor it would
    # be mostly imputed itself, and its own regression would rest on a handful of patients.
    timepoints = [
        t
        for t in design_timepoints
        if f"change_{t}" in wide
        and min(wide.loc[wide["treated"] == group, f"change_{t}"].notna().sum() for group in (0, 1))
        >= settings.min_group_size
    ]
    design, notes = adjustment_design(wide, settings)
    if design is None:
        return {t: failed("; ".join(notes)) for t in timepoints}
    covariates = design.drop(columns="const")
    changes = wide.loc[design.index, [f"change_{t}" for t in timepoints]].astype(float)
    missing = {t: float(changes[f"change_{t}"].isna().mean()) for t in timepoints}
    data = np.column_stack([covariates.to_numpy(dtype=float), changes.to_numpy(dtype=float)])
    sites = wide.loc[design.index, "site_id"].astype(str)
    x = sm.add_constant(covariates.to_numpy(dtype=float), has_constant="add")
    draws: dict[str, list[tuple[float, float]]] = {t: [] for t in timepoints}
    coefficient = _GroupCoefficient(x, sites, settings)
    rng = np.random.default_rng(_seed(settings, key))
    first = design["treated"].to_numpy(dtype=float) == 1
    imputed = {t: changes[f"change_{t}"].isna().to_numpy() for t in timepoints}
    recorded: list[pd.DataFrame] = []
    for number, completed in enumerate(
        chained_imputations(data, settings.mice_imputations, settings.mice_iterations, rng), start=1
    ):
        outcomes = {}
        for index, timepoint in enumerate(timepoints):
            y = completed[:, covariates.shape[1] + index]
            y = y + imputed[timepoint] * np.where(first, shift[0], shift[1])
            draws[timepoint].append(coefficient(y))
            outcomes[f".y[{timepoint}]"] = y
        if fit_record.active():
            recorded.append(pd.DataFrame({".imp": number, **outcomes, ".cluster": sites.to_numpy()}))
    if recorded:
        frame = pd.concat(recorded, ignore_index=True)
        x_columns = pd.DataFrame(np.tile(x, (len(recorded), 1)), columns=["const", *map(str, covariates.columns)])
        fit_record.record(
            "mice",
            pd.concat([frame, x_columns], axis=1),
            y={t: f".y[{t}]" for t in timepoints},
            x=list(x_columns.columns),
            coefficient="treated",
            imputations=len(recorded),
            complete_df=coefficient.df,
            variance=coefficient.note,
            pooling="Rubin's rules, Barnard-Rubin df (mice::pool.scalar with n and k of the complete-data fit)",
        )
    complete_df = coefficient.df
    results = {}
    for timepoint in timepoints:
        values = np.array(draws[timepoint])
        pooled, std_error, df = rubin(values[:, 0], values[:, 1], complete_df)
        ci_low, ci_high = interval(pooled, std_error, df)
        p_value = float(2 * stats.t.sf(abs(pooled / std_error), df)) if std_error > 0 else float("nan")
        note = [
            f"{settings.mice_imputations} imputations by chained equations (Bayesian linear regression)",
            "pooled by Rubin's rules",
            f"{missing[timepoint]:.0%} of changes at {timepoint} imputed",
            coefficient.note,
            *notes,
        ]
        tipping = tipping_shifts(coefficient.row, imputed[timepoint], first, pooled)
        if tipping:
            note.insert(3, tipping)
        # Mostly imputed: the number rests on the imputation model more than on data; flagged, kept.
        ok = missing[timepoint] <= settings.mice_max_imputed_share
        if not ok:
            note.insert(0, f"more than {settings.mice_max_imputed_share:.0%} of changes imputed: rests on the model")
        results[timepoint] = Estimate(pooled, std_error, ci_low, ci_high, p_value, ok, "; ".join(note))
    return results
