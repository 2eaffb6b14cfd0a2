"""The methods: each takes one analysis frame (``treated`` 0/1, ``change``, ``baseline_value``,
covariates) and returns an :class:`Estimate` of the mean change of the first group minus the second."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from pipeline.models.design_matrix import covariate_matrix, full_rank_columns, severity_matrix
from pipeline.settings import ModelSettings

ALPHA = 0.05


@dataclass(frozen=True)
class Estimate:
    estimate: float = float("nan")
    std_error: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    p_value: float = float("nan")
    diagnostics_ok: bool = False
    note: str | None = None
    converged: bool = True  # False: a fit that did not converge, outside every multiplicity family

    @property
    def ok(self) -> bool:
        return bool(np.isfinite([self.estimate, self.std_error, self.ci_low, self.ci_high, self.p_value]).all())


def failed(note: str) -> Estimate:
    return Estimate(diagnostics_ok=False, note=note, converged=False)


def unadjusted(frame: pd.DataFrame) -> Estimate:
    """Difference in mean change, Welch (unequal variances) standard error, t-based 95% CI and p."""
    treated = frame.loc[frame["treated"] == 1, "change"].to_numpy(dtype=float)
    control = frame.loc[frame["treated"] == 0, "change"].to_numpy(dtype=float)
    if len(treated) < 2 or len(control) < 2:
        return failed("fit failed: fewer than two patients in a group")
    compare = CompareMeans(DescrStatsW(treated), DescrStatsW(control))
    std_error = float(compare.std_meandiff_separatevar)
    if not std_error > 0:
        return failed("fit failed: no variation in change in either group")
    _, p_value, _ = compare.ttest_ind(usevar="unequal")
    ci_low, ci_high = compare.tconfint_diff(alpha=ALPHA, usevar="unequal")
    result = Estimate(
        float(treated.mean() - control.mean()), std_error, float(ci_low), float(ci_high), float(p_value), True, None
    )
    return result if result.ok else failed("fit failed: non-finite result")


def adjustment_design(frame: pd.DataFrame, settings: ModelSettings) -> tuple[pd.DataFrame | None, list[str]]:
    """The ANCOVA design (const, treated, baseline_value, covariates) on complete cases with full
    column rank, and notes on what was pooled, dropped or left out; ``None`` (with the reason as the
    last note) where no comparison can be made."""
    notes: list[str] = []
    covariates, covariate_notes = covariate_matrix(frame, settings.covariates, settings.min_group_size)
    notes.extend(covariate_notes)
    severity, severity_notes = severity_matrix(frame)
    notes.extend(severity_notes)
    design = pd.concat(
        [
            pd.DataFrame(
                {
                    "const": 1.0,
                    "treated": frame["treated"].astype(float),
                    "baseline_value": frame["baseline_value"].astype(float),
                },
                index=frame.index,
            ),
            severity,
            covariates,
        ],
        axis=1,
    )
    complete = design.notna().all(axis=1)
    if "change" in frame:
        complete &= frame["change"].notna()
    if not complete.all():
        left_out = int((~complete).sum())  # a small count is never written out (small-cell rule)
        shown = left_out if left_out >= settings.min_group_size else f"fewer than {settings.min_group_size}"
        notes.append(f"{shown} patient(s) without a covariate value left out")
        design = design[complete]
    n_treated = int(design["treated"].sum())
    if n_treated < settings.min_group_size or len(design) - n_treated < settings.min_group_size:
        notes.append(f"not estimated: fewer than {settings.min_group_size} patients in a group with every covariate")
        return None, notes
    kept, dropped = full_rank_columns(design, keep=2)
    if len(kept) < 2:
        return None, [*notes, "fit failed: everyone is in one group"]
    if dropped:
        notes.append("collinear term(s) dropped: " + ", ".join(dropped))
    design = design[kept]
    if len(design) - design.shape[1] < 2:
        return None, [*notes, "fit failed: too few patients for the number of covariates"]
    return design, notes


def site_clusters(sites: pd.Series, settings: ModelSettings) -> tuple[np.ndarray | None, str]:
    """Each row's site as a cluster number where there are at least ``min_sites_for_cluster`` sites
    (cluster-robust errors), else None (HC3); and the note that says which."""
    n_sites = sites.nunique()
    if n_sites >= settings.min_sites_for_cluster:
        return pd.factorize(sites, sort=True)[0], f"cluster-robust errors by site ({n_sites} sites)"
    return None, "HC3 robust errors"


def robust_fit(
    model: sm.regression.linear_model.RegressionModel, sites: pd.Series, settings: ModelSettings, notes: list[str]
) -> sm.regression.linear_model.RegressionResults:
    """HC3 robust errors, or cluster-robust by site with at least ``min_sites_for_cluster`` sites."""
    clusters, note = site_clusters(sites, settings)
    notes.append(note)
    if clusters is not None:
        return model.fit(cov_type="cluster", cov_kwds={"groups": clusters}, use_t=True)
    return model.fit(cov_type="HC3", use_t=True)


def coefficient(fit: sm.regression.linear_model.RegressionResults, index: int, notes: list[str]) -> Estimate:
    """The estimate of one coefficient of a fitted regression, with its t-based 95% CI."""
    ci = np.asarray(fit.conf_int(alpha=ALPHA))
    result = Estimate(
        float(np.asarray(fit.params)[index]),
        float(np.asarray(fit.bse)[index]),
        float(ci[index, 0]),
        float(ci[index, 1]),
        float(np.asarray(fit.pvalues)[index]),
        True,
        "; ".join(notes),
    )
    if not result.ok:
        return failed("; ".join([*notes, "fit failed: non-finite standard error (a patient with leverage 1?)"]))
    return result


Design = tuple[pd.DataFrame | None, list[str]]


def ancova(frame: pd.DataFrame, settings: ModelSettings, prepared: Design | None = None) -> Estimate:
    """OLS of change on group, baseline value and covariates; HC3 robust errors, or cluster-robust by
    site when the frame has at least ``settings.min_sites_for_cluster`` sites. t-based inference.
    ``prepared``: the frame's ``adjustment_design``, when the caller has it already."""
    design, notes = prepared or adjustment_design(frame, settings)
    notes = list(notes)
    if design is None:
        return failed("; ".join(notes))
    y = frame.loc[design.index, "change"].astype(float)
    try:
        fit = robust_fit(
            sm.OLS(y.to_numpy(), design.to_numpy(dtype=float)),
            frame.loc[design.index, "site_id"].astype(str),
            settings,
            notes,
        )
    except (np.linalg.LinAlgError, ValueError) as error:
        return failed("; ".join([*notes, f"fit failed: {error}"]))
    return coefficient(fit, 1, notes)


def holm(p_values: pd.Series) -> pd.Series:
    """Holm-adjusted p-values; missing p-values stay missing and do not count in the family.

    The step-down formula of ``statsmodels.stats.multitest.multipletests(method="holm")``, computed
    here because that function forces a full ``gc.collect()`` on every call (about 0.1 s each, a
    second or more per run); the tests check the two agree."""
    adjusted = pd.Series(np.nan, index=p_values.index, dtype=float)
    present = p_values.dropna().astype(float)
    if len(present):
        order = np.argsort(present.to_numpy(), kind="stable")
        ranked = present.to_numpy()[order] * np.arange(len(present), 0, -1)
        stepped = np.minimum(np.maximum.accumulate(ranked), 1.0)
        values = np.empty(len(present))
        values[order] = stepped
        adjusted[present.index] = values
    return adjusted
