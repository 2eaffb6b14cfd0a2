"""One-stage pooling from sufficient statistics equals the model fitted on the stacked patients: four
simulated sites of different sizes (one of 40 patients), a design with site fixed effects, a category,
a sex indicator and spline terms at knots fixed before the sites compute; statsmodels OLS and WLS on the
stacked data with site dummies as the reference, to a relative 1e-8."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from pipeline.errors import NetworkInputError
from pipeline.models.estimators import robust_fit
from pipeline.models.splines import spline_basis
from pipeline.network.site_weights import site_iptw_weights
from pipeline.network.sufficient import (
    NetworkDesign,
    meat_request,
    platform_cov_type,
    pool,
    pooled_estimate,
    robust_covariance,
    site_meat,
    site_statistics,
)
from pipeline.settings import ModelSettings

SIZES = {"siteA": 40, "siteB": 120, "siteC": 210, "siteD": 85}
KNOTS = np.array([20.0, 40.0, 60.0, 80.0])  # fixed by the design, not by any site's quantiles
ETIOLOGY_LEVELS = ("bell", "trauma")  # "other" the reference
TOLERANCE = 1e-8


def simulated_site(site: str, n: int, seed: int) -> pd.DataFrame:
    """One site's analysis frame (as the site's own ANCOVA design would hold it) with heteroscedastic errors."""
    rng = np.random.default_rng(seed)
    baseline = rng.uniform(10, 90, n)
    age = rng.normal(50, 12, n)
    female = (rng.random(n) < 0.6).astype(float)
    etiology = rng.choice(["bell", "trauma", "other"], n, p=[0.6, 0.25, 0.15])
    treated = (rng.random(n) < 1 / (1 + np.exp(-(baseline - 50) / 25))).astype(float)
    noise = rng.normal(0, 1, n) * (3 + 0.08 * baseline)
    change = 2.0 * seed + 4.0 * treated - 0.3 * baseline + 0.002 * (baseline - 50) ** 2 + 0.05 * age + noise
    frame = pd.DataFrame(
        {
            "site_id": site,
            "treated": treated,
            "baseline_value": baseline,
            "age": age,
            "sex[F]": female,
            "change": change,
        }
    )
    for level in ETIOLOGY_LEVELS:
        frame[f"etiology[{level}]"] = (etiology == level).astype(float)
    return pd.concat([frame, spline_basis(frame["baseline_value"], KNOTS, "baseline_value")], axis=1)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {site: simulated_site(site, n, seed) for seed, (site, n) in enumerate(SIZES.items(), start=1)}


@pytest.fixture(scope="module")
def design(frames: dict[str, pd.DataFrame]) -> NetworkDesign:
    common = [c for c in frames["siteA"].columns if c not in ("site_id", "change")]
    return NetworkDesign(tuple(SIZES), tuple(common))


def stacked(frames: dict[str, pd.DataFrame], design: NetworkDesign) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Every site's patients in one frame, the site dummies made by pandas (not by the network's code)."""
    everyone = pd.concat(frames.values(), ignore_index=True)
    dummies = pd.get_dummies(pd.Categorical(everyone["site_id"], categories=list(SIZES)), drop_first=True, dtype=float)
    x = pd.concat([pd.Series(1.0, index=everyone.index, name="const"), dummies, everyone[list(design.columns)]], axis=1)
    return x.to_numpy(dtype=float), everyone["change"].to_numpy(dtype=float), everyone["site_id"]


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))))


def exchange(frames, design, cov_type, weight_column=None):
    statistics = [site_statistics(f, design, s, "change", weight_column) for s, f in frames.items()]
    fit = pool(statistics)
    request = meat_request(fit, cov_type)
    meats = [site_meat(f, design, s, "change", request, weight_column) for s, f in frames.items()]
    return fit, robust_covariance(fit, meats)


def test_the_design_has_a_site_of_about_40_and_different_sizes(frames: dict[str, pd.DataFrame]) -> None:
    sizes = sorted(len(f) for f in frames.values())
    assert sizes[0] == 40 and len(set(sizes)) == len(sizes) >= 3


def test_one_stage_estimate_and_model_based_se_equal_stacked_ols(frames, design) -> None:
    fit = pool([site_statistics(f, design, s, "change") for s, f in frames.items()])
    x, y, _ = stacked(frames, design)
    reference = sm.OLS(y, x).fit()
    assert relative(fit.beta, reference.params) < TOLERANCE
    assert relative(np.sqrt(np.diag(fit.cov_model)), reference.bse) < TOLERANCE
    assert fit.df_resid == reference.df_resid
    assert abs(fit.rss - reference.ssr) / reference.ssr < TOLERANCE


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "HC2", "HC3"])
def test_robust_se_after_the_second_exchange_equals_stacked_hc(frames, design, cov_type: str) -> None:
    fit, variance = exchange(frames, design, cov_type)
    x, y, _ = stacked(frames, design)
    reference = sm.OLS(y, x).fit(cov_type=cov_type)
    assert relative(np.sqrt(np.diag(variance.cov)), reference.bse) < TOLERANCE
    assert relative(fit.beta, reference.params) < TOLERANCE


def test_the_platforms_ancova_variance_is_matched_few_sites_hc3_many_clustered(frames, design) -> None:
    """``platform_cov_type`` picks what estimators.robust_fit fits on the stacked data, and the pooled
    treated coefficient (estimate, SE, t interval, p) equals it: HC3 with 4 sites, clustered by site where
    the settings cluster from 3 sites on."""
    x, y, sites = stacked(frames, design)
    column = design.names.index("treated")
    for settings in (ModelSettings(), replace(ModelSettings(), min_sites_for_cluster=3)):
        cov_type = platform_cov_type(len(frames), settings)
        notes: list[str] = []
        reference = robust_fit(sm.OLS(y, x), sites.astype(str), settings, notes)
        assert (cov_type == "cluster") == notes[0].startswith("cluster-robust")
        fit, variance = exchange(frames, design, cov_type)
        pooled = pooled_estimate(fit, "treated", variance)
        ci = np.asarray(reference.conf_int())[column]
        expected = [reference.params[column], reference.bse[column], ci[0], ci[1], reference.pvalues[column]]
        got = [pooled.estimate, pooled.std_error, pooled.ci_low, pooled.ci_high, pooled.p_value]
        assert relative(got, expected) < TOLERANCE, (cov_type, got, expected)


def test_site_stratified_iptw_equals_stacked_wls_with_the_same_weights(frames, design) -> None:
    predictors = ["baseline_value", "age", "sex[F]"]
    weighted = {
        site: frame.assign(weight=site_iptw_weights(frame, predictors, site, truncation=10.0))
        for site, frame in frames.items()
    }
    # Each site's weights are its own model's: the site's treated share stabilizes them.
    for frame in weighted.values():
        treated = frame["treated"] == 1
        assert frame["weight"].between(0, 10).all() and not np.isclose(frame.loc[treated, "weight"].std(), 0)
    x, y, _ = stacked(weighted, design)
    w = pd.concat(weighted.values(), ignore_index=True)["weight"].to_numpy()
    nonrobust = sm.WLS(y, x, weights=w).fit()
    fit = pool([site_statistics(f, design, s, "change", "weight") for s, f in weighted.items()])
    assert relative(fit.beta, nonrobust.params) < TOLERANCE
    assert relative(np.sqrt(np.diag(fit.cov_model)), nonrobust.bse) < TOLERANCE
    for cov_type in ("HC0", "HC1", "HC3"):
        _, variance = exchange(weighted, design, cov_type, "weight")
        reference = sm.WLS(y, x, weights=w).fit(cov_type=cov_type)
        assert relative(np.sqrt(np.diag(variance.cov)), reference.bse) < TOLERANCE, cov_type


def test_contributions_over_other_columns_or_twice_are_refused(frames, design) -> None:
    statistics = [site_statistics(f, design, s, "change") for s, f in frames.items()]
    other = NetworkDesign(design.sites, tuple(c for c in design.columns if c != "age"))
    odd = site_statistics(frames["siteB"], other, "siteB", "change")
    with pytest.raises(NetworkInputError, match="siteB computed over other columns"):
        pool([statistics[0], odd, *statistics[2:]])
    with pytest.raises(NetworkInputError, match="siteA contributed twice"):
        pool([*statistics, statistics[0]])


def test_a_frame_without_a_design_column_or_with_gaps_is_refused_by_name(frames, design) -> None:
    with pytest.raises(NetworkInputError, match=r"siteA: the design frame lacks column\(s\) age"):
        site_statistics(frames["siteA"].drop(columns="age"), design, "siteA", "change")
    gappy = frames["siteA"].copy()
    gappy.loc[3, "baseline_value"] = np.nan
    with pytest.raises(NetworkInputError, match=r"column\(s\) baseline_value hold missing"):
        site_statistics(gappy, design, "siteA", "change")


def test_a_column_constant_over_the_network_is_refused(frames, design) -> None:
    constant = {s: f.assign(**{"sex[F]": 0.0}) for s, f in frames.items()}
    with pytest.raises(NetworkInputError, match="rank"):
        pool([site_statistics(f, design, s, "change") for s, f in constant.items()])


def test_a_second_exchange_missing_a_site_or_of_an_unknown_type_is_refused(frames, design) -> None:
    fit = pool([site_statistics(f, design, s, "change") for s, f in frames.items()])
    with pytest.raises(NetworkInputError, match="cov_type HC9"):
        meat_request(fit, "HC9")
    request = meat_request(fit, "HC3")
    meats = [site_meat(f, design, s, "change", request) for s, f in frames.items() if s != "siteC"]
    with pytest.raises(NetworkInputError, match="every site of the fit must answer"):
        robust_covariance(fit, meats)
