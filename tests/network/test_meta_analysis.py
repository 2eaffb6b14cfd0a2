"""The two-stage meta-analysis on cases whose answer is known without R: homogeneous sites give tau^2 = 0
(never negative, where statsmodels' DerSimonian-Laird goes below 0), REML is the restricted likelihood's
maximum, the Q-profile bounds are where Q crosses its chi-square quantiles, the modified Hartung-Knapp is
never narrower than the fixed-effect interval, and one or two sites are handled and flagged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.stats.meta_analysis import combine_effects

from pipeline.errors import NetworkInputError
from pipeline.network.meta_analysis import (
    METAFOR_THRESHOLD,
    _reml_loglik,
    generalised_q,
    leave_one_out,
    random_effects,
)

HOMOGENEOUS = (np.array([10.2, 9.8, 10.1, 9.9, 10.0]), np.array([4.0, 5.0, 3.0, 6.0, 4.5]))
HETEROGENEOUS = (np.array([-2.0, 3.5, 6.0, 1.0, 9.5, 4.0]), np.array([2.0, 1.5, 3.0, 2.5, 4.0, 1.0]))


def test_homogeneous_sites_give_tau2_zero_where_statsmodels_dl_goes_negative() -> None:
    y, v = HOMOGENEOUS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dl = combine_effects(y, v, method_re="dl")
    assert dl.tau2 < 0  # the trap: statsmodels as it is
    result = random_effects(y, v)
    assert result.tau2 == 0.0 and result.i2 == 0.0 and result.tau2_converged
    assert (result.tau2_ci_low, result.tau2_ci_high) == (0.0, 0.0)
    # At tau^2 = 0 the random-effects mean is the fixed-effect one and the modified interval is at least as wide.
    assert result.estimate == pytest.approx(result.fixed.estimate, rel=1e-14)
    assert result.hk_floored and result.ci_high - result.ci_low >= result.fixed.ci_high - result.fixed.ci_low
    assert result.ci_high_hk - result.ci_low_hk < result.ci_high - result.ci_low
    assert np.isfinite([result.ci_low, result.ci_high, result.pi_low, result.pi_high]).all()


def test_reml_is_the_restricted_likelihoods_maximum_and_qp_bounds_solve_q() -> None:
    y, v = HETEROGENEOUS
    result = random_effects(y, v)
    best = optimize.minimize_scalar(
        lambda t: -_reml_loglik(t, y, v), bounds=(0, 200), method="bounded", options={"xatol": 1e-12}
    )
    assert result.tau2 > 0 and result.tau2 == pytest.approx(best.x, rel=1e-6)
    k = len(y)
    assert generalised_q(result.tau2_ci_low, y, v) == pytest.approx(stats.chi2.ppf(0.975, k - 1), rel=1e-9)
    assert generalised_q(result.tau2_ci_high, y, v) == pytest.approx(stats.chi2.ppf(0.025, k - 1), rel=1e-9)
    assert result.tau2_ci_low < result.tau2 < result.tau2_ci_high
    t = stats.t.ppf(0.975, k - 1)
    assert result.pi_high - result.estimate == pytest.approx(t * np.sqrt(result.std_error**2 + result.tau2))
    assert not result.hk_floored and result.std_error == result.std_error_hk
    assert result.i2 == pytest.approx(
        result.tau2 / (result.tau2 + (k - 1) * np.sum(1 / v) / (np.sum(1 / v) ** 2 - np.sum(1 / v**2)))
    )


def test_metafors_own_threshold_lands_near_the_tight_one() -> None:
    y, v = HETEROGENEOUS
    tight, loose = random_effects(y, v), random_effects(y, v, threshold=METAFOR_THRESHOLD)
    assert abs(tight.tau2 - loose.tau2) < 1e-4 and loose.tau2_iterations <= tight.tau2_iterations


def test_two_sites_are_pooled_and_flagged_one_site_is_its_own_estimate() -> None:
    two = random_effects([1.0, 4.0], [1.0, 1.5], ["siteA", "siteB"])
    assert two.k == 2 and two.tau2 >= 0 and two.flags[0].startswith("k=2")
    assert np.isfinite([two.estimate, two.ci_low, two.ci_high, two.pi_low, two.pi_high]).all()
    one = random_effects([2.5], [0.25], ["siteA"])
    assert (one.k, one.estimate, one.std_error) == (1, 2.5, 0.5)
    assert np.isnan(one.tau2) and np.isnan(one.pi_low) and one.flags[0].startswith("k=1")
    assert one.ci_low == pytest.approx(2.5 - 1.959963984540054 * 0.5)


def test_leave_one_out_is_the_meta_analysis_of_the_others() -> None:
    y, v = HETEROGENEOUS
    labels = [f"site{i}" for i in range(len(y))]
    left = leave_one_out(y, v, labels)
    assert [entry.site for entry in left] == labels
    third = random_effects(np.delete(y, 2), np.delete(v, 2))
    assert left[2].result.estimate == third.estimate and left[2].result.tau2 == third.tau2
    assert left[2].result.flags[0] == "without site2"


def test_a_site_without_a_positive_variance_is_named() -> None:
    with pytest.raises(NetworkInputError, match=r"site\(s\) siteB\."):
        random_effects([1.0, 2.0, 3.0], [1.0, 0.0, 2.0], ["siteA", "siteB", "siteC"])
    with pytest.raises(NetworkInputError, match="no site estimates"):
        random_effects([], [])


def test_the_two_stage_row_carries_the_network_estimates_columns() -> None:
    y, v = HETEROGENEOUS
    result = random_effects(y, v)
    row = result.columns()
    assert row["stage"] == "two-stage" and row["k_sites"] == len(y)
    assert (row["tau2"], row["i2"], row["pi_low"], row["ci_low"]) == (
        result.tau2,
        result.i2,
        result.pi_low,
        result.ci_low,
    )
    assert row["pi_low"] < row["ci_low"] < row["estimate"] < row["ci_high"] < row["pi_high"]
