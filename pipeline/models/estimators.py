"""The methods: each takes one analysis frame (``treated`` 0/1, ``change``, ``baseline_value``,
covariates) and returns an :class:`Estimate` of the mean change of the first group minus the second."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from pipeline.intervals import ALPHA
from pipeline.models import fit_record
from pipeline.models.design_matrix import NUMERIC_COVARIATES, covariate_matrix, full_rank_columns, severity_matrix
from pipeline.models.splines import spline_columns
from pipeline.settings import ModelSettings


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
    # ancova with two or more sites: the between-site SD of the site-specific effects (DerSimonian-Laird tau)
    site_spread: float = float("nan")
    # The diagnostics as fields (model_estimates' columns), so no reader searches the note's wording:
    boundary: bool = False  # a variance component estimated at zero (a singular mixed fit)
    balance_ok: bool | None = None  # the weighted balance check (iptw); None where the method has none
    overlap_ok: bool | None = None  # the contrast's overlap check; None where it was not computed

    def columns(self) -> dict[str, object]:
        """The estimate's own columns of a ``model_estimates`` row (``converged`` decides its multiplicity family)."""
        return {
            "estimate": self.estimate,
            "std_error": self.std_error,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "diagnostics_ok": self.diagnostics_ok,
            "note": self.note,
            "converged": self.converged,
            "site_spread": self.site_spread,
            "boundary": self.boundary,
            "balance_ok": self.balance_ok,
            "overlap_ok": self.overlap_ok,
        }

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
    if settings.spline_knots and len(design) >= settings.spline_min_patients:
        splines = spline_columns(design, continuous_terms(design), settings.spline_knots)
        if splines.shape[1]:
            design = pd.concat([design, splines], axis=1)
            notes.append(f"restricted cubic splines ({settings.spline_knots} knots) for continuous terms")
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
    alone = exact_fit_rows(design)
    if alone.any():
        # A patient alone on a term (the one without a severity measure, say) is fitted exactly: leverage
        # 1, where HC3 divides by 1 - h = 0 (R's vcovHC gives NaN, statsmodels a number made of rounding)
        # and a logit separates. The group effect is the same without them and their term.
        design = design[~alone]
        kept, _ = full_rank_columns(design, keep=2)
        design = design[kept]
        n_alone = int(alone.sum())
        shown = n_alone if n_alone >= settings.min_group_size else f"fewer than {settings.min_group_size}"
        notes.append(f"{shown} patient(s) alone on a term (leverage 1) left out")
        n_treated = int(design["treated"].sum())
        if min(n_treated, len(design) - n_treated) < settings.min_group_size:
            return None, [*notes, f"not estimated: fewer than {settings.min_group_size} patients in a group"]
    if len(design) - design.shape[1] < 2:
        return None, [*notes, "fit failed: too few patients for the number of covariates"]
    return design, notes


LEVERAGE_ONE = 1 - 1e-8  # a leverage this close to 1 is 1 in floating point


def exact_fit_rows(design: pd.DataFrame) -> pd.Series:
    """Rows with leverage 1 in a full-rank design: each is alone on some term, so fitted exactly."""
    q, _ = np.linalg.qr(design.to_numpy(dtype=float))
    return pd.Series((q**2).sum(axis=1) > LEVERAGE_ONE, index=design.index)


def continuous_terms(design: pd.DataFrame) -> list[str]:
    """The design's continuous terms: baseline value, severity measures, numeric covariates."""
    return [
        str(c)
        for c in design.columns
        if c == "baseline_value" or str(c).startswith("severity[") or c in NUMERIC_COVARIATES
    ]


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


def record_regression(
    method: str,
    y: np.ndarray,
    design: pd.DataFrame,
    sites: pd.Series,
    settings: ModelSettings,
    weights: np.ndarray | None = None,
    extra: pd.DataFrame | None = None,
    coefficient: str = "treated",
    **spec: object,
) -> None:
    """Record a regression fitted by :func:`robust_fit` (for the cross-check against R): ``.y``, the design
    columns as built, ``.weight`` (variance weights) and ``.cluster`` (the site), with the variance type."""
    if not fit_record.active():
        return
    clusters, _ = site_clusters(sites, settings)
    frame = pd.concat(
        [pd.DataFrame({".y": np.asarray(y, dtype=float)}, index=design.index), design.astype(float)], axis=1
    )
    if weights is not None:
        frame[".weight"] = np.asarray(weights, dtype=float)
    frame[".cluster"] = sites.astype(str).to_numpy()
    if extra is not None:
        frame = pd.concat([frame, extra.set_axis(design.index)], axis=1)
    fit_record.record(
        method,
        frame.reset_index(drop=True),
        x=[str(c) for c in design.columns],
        coefficient=coefficient,
        weights=None if weights is None else "variance",
        # statsmodels' "cluster": sandwich::vcovCL type HC1 (G/(G-1) (N-1)/(N-K)), t with G - 1 df.
        variance="HC3" if clusters is None else "cluster-HC1",
        df="residual" if clusters is None else "clusters-1",
        **spec,
    )


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
    record_regression("ancova", y.to_numpy(), design, frame.loc[design.index, "site_id"], settings)
    with fit_record.labelled():  # each site's own ANCOVA is a note, not a published estimate
        heterogeneity, spread, by_site = site_heterogeneity(frame, design, y, settings)
    if fit_record.on() and by_site is not None:  # the sites' effects behind site_spread, for metafor's rma
        fit_record.record("site_spread", by_site, estimator="DerSimonian-Laird tau, clipped at 0")
    result = coefficient(fit, 1, [*notes, heterogeneity] if heterogeneity else notes)
    return replace(result, site_spread=spread)


def between_site_sd(estimates: list[float], std_errors: list[float]) -> float:
    """DerSimonian-Laird's between-site SD (tau) of site-specific effects; NaN with fewer than two sites."""
    if len(estimates) < 2:
        return float("nan")
    y, v = np.asarray(estimates), np.asarray(std_errors) ** 2
    w = 1 / v
    pooled = float((w * y).sum() / w.sum())
    q = float((w * (y - pooled) ** 2).sum())
    tau2 = max(0.0, (q - (len(y) - 1)) / float(w.sum() - (w**2).sum() / w.sum()))
    return float(np.sqrt(tau2))


def site_heterogeneity(
    frame: pd.DataFrame, design: pd.DataFrame, y: pd.Series, settings: ModelSettings
) -> tuple[str | None, float, pd.DataFrame | None]:
    """With two or more sites: the site-by-group interaction test (a robust Wald F test of group x
    site terms added to the ANCOVA) and each site's own ANCOVA estimate where the site has at least
    ``min_group_size`` patients in each group, so a pooled number that hides sites with different
    effects says so; the between-site SD of those estimates (``between_site_sd``); and the estimates
    themselves (site, estimate, std_error). (None, NaN, None) with one site."""
    sites = frame.loc[design.index, "site_id"].astype(str)
    if sites.nunique() < 2:
        return None, float("nan"), None
    reference = sites.value_counts().sort_index().idxmax()
    treated = design["treated"]
    interactions = pd.DataFrame(
        {f"treated_x_site[{s}]": treated * (sites == s) for s in sorted(sites.unique()) if s != reference},
        index=design.index,
    )
    widened = pd.concat([design, interactions], axis=1)
    kept, _ = full_rank_columns(widened, keep=design.shape[1])
    tested = [c for c in kept if c.startswith("treated_x_site[")]
    parts = []
    if tested:
        try:
            fit = robust_fit(sm.OLS(y.to_numpy(), widened[kept].to_numpy(dtype=float)), sites, settings, [])
            restriction = np.zeros((len(tested), len(kept)))
            for row, name in enumerate(tested):
                restriction[row, kept.index(name)] = 1.0
            test = fit.wald_test(restriction, use_f=True, scalar=True)
            p_value = float(test.pvalue)
            lead = "heterogeneous across sites: " if p_value < ALPHA else ""
            parts.append(f"{lead}site by group interaction p {p_value:.3f} ({sites.nunique()} sites)")
        except (np.linalg.LinAlgError, ValueError):
            parts.append("site by group interaction not testable")
    by_site, site_names, site_estimates, site_errors = [], [], [], []
    for site in sorted(sites.unique()):
        rows = frame.loc[sites.index[sites == site]]
        if min(int((rows["treated"] == 1).sum()), int((rows["treated"] == 0).sum())) < settings.min_group_size:
            continue
        estimate = ancova(rows.reset_index(drop=True), settings)
        if estimate.ok:
            by_site.append(f"{site} {estimate.estimate:.1f} ({estimate.ci_low:.1f} to {estimate.ci_high:.1f})")
            site_names.append(site)
            site_estimates.append(estimate.estimate)
            site_errors.append(estimate.std_error)
    spread = between_site_sd(site_estimates, site_errors)
    if by_site:
        parts.append(f"by site ({settings.min_group_size} or more per group): " + ", ".join(by_site))
    if np.isfinite(spread):
        parts.append(f"between-site SD of the effect {spread:.1f} (DerSimonian-Laird)")
    effects = pd.DataFrame({"site": site_names, "estimate": site_estimates, "std_error": site_errors})
    return ("; ".join(parts) if parts else None), spread, effects


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
