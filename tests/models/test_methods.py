"""iptw, mixed and mice, and what each estimate can bear (E-value, minimum detectable difference),
checked against the truth of the synthetic generator: its cohort, confounded treatment choice and
Sunnybrook scoring, fed straight to the models (``analysis_tables``) so that many seeds stay fast.
The known effect is the generator's parameter; the generator reports it on the measured scale."""

from __future__ import annotations

import re
import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.stats.power import TTestIndPower

from pipeline.models import ModelResults, fit_models
from pipeline.models.imputation import mice, rubin
from pipeline.models.measures import MEASURES
from pipeline.models.mixed import mixed
from pipeline.models.random_intercept import fit_random_intercept
from pipeline.models.sensitivity import e_value_rr, e_values, minimum_detectable_difference
from pipeline.settings import ModelSettings
from pipeline.tools.synthetic import SyntheticParameters, analysis_tables
from tests.models.test_fit import build_warehouse, row, simulate

CROSS_SECTIONAL = ModelSettings(methods=("unadjusted", "ancova", "iptw"))


def fit_generated(
    seed: int, params: SyntheticParameters, settings: ModelSettings, patients: int = 700
) -> tuple[ModelResults, float]:
    patient_frame, scores, truth = analysis_tables(patients, seed, params=params)
    con = duckdb.connect()
    try:
        build_warehouse(con, patient_frame, scores)
        return fit_models(con, settings, data_snapshot="snap", code_version="test"), truth
    finally:
        con.close()


# Fixed seeds: a 95% interval misses the truth one time in twenty, so a seed list is chosen once
# and kept; the point is that every adjusted method covers it while the naive one never does.
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ancova_and_iptw_recover_the_generated_effect_and_unadjusted_does_not(seed: int) -> None:
    params = SyntheticParameters(combined_effect=8.0, confounding=1.0)
    results, truth = fit_generated(seed, params, CROSS_SECTIONAL)
    assert abs(truth - params.combined_effect) < 1  # items' floors and ceilings shrink it a little
    for method in ("ancova", "iptw"):
        estimate = row(results, method)
        assert estimate.ci_low < truth < estimate.ci_high, (method, estimate.estimate, truth)
    crude = row(results, "unadjusted")
    assert crude.ci_low > truth  # confounding by indication: worse baselines get combined and improve more


@pytest.mark.parametrize("seed", [5, 6])
def test_with_no_effect_the_adjusted_estimates_are_near_zero(seed: int) -> None:
    results, truth = fit_generated(seed, SyntheticParameters(combined_effect=0.0), CROSS_SECTIONAL)
    assert truth == pytest.approx(0.0)
    for method in ("ancova", "iptw"):
        estimate = row(results, method)
        assert abs(estimate.estimate) < 1.5 and estimate.ci_low < 0 < estimate.ci_high, method
    assert row(results, "unadjusted").ci_low > 0  # the naive comparison still finds an "effect"


def test_mixed_and_mice_recover_the_effect_with_their_notes() -> None:
    results, truth = fit_generated(1, SyntheticParameters(), ModelSettings())
    for method in ("mixed", "mice"):
        estimate = row(results, method)
        assert estimate.ci_low < truth < estimate.ci_high, (method, estimate.estimate, truth)
        assert estimate.diagnostics_ok, estimate.note
    assert "random intercept per patient" in row(results, "mixed").note
    assert "imputations by chained equations" in row(results, "mice").note
    # mixed uses every patient with any follow-up; mice every patient with a baseline value
    assert row(results, "mice").n_treated >= row(results, "mixed").n_treated >= row(results, "ancova").n_treated


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mice_stays_close_to_the_truth_when_follow_up_is_missing_at_random_given_baseline(seed: int) -> None:
    params = SyntheticParameters(dropout_by_severity=1.5)
    results, truth = fit_generated(seed, params, ModelSettings(methods=("unadjusted", "mice")))
    imputed = row(results, "mice")
    assert imputed.ci_low < truth < imputed.ci_high
    assert abs(imputed.estimate - truth) < 1.5
    share = float(imputed.note.split("% of changes at 12m imputed")[0].rsplit("; ", 1)[-1])
    assert share > 25  # the dropout really took a good part of the 12-month visits


def test_iptw_records_its_propensity_model_balance_and_overlap() -> None:
    # Seed 2: with spline terms in the balance check, seed 1's weights leave baseline_value at
    # |SMD| 0.13 and are flagged (the generator's assignment curves in the measured baseline).
    results, _ = fit_generated(2, SyntheticParameters(), CROSS_SECTIONAL)
    diagnostics = results.propensity_diagnostics
    primary = diagnostics[(diagnostics.contrast == "combined_vs_single") & (diagnostics.timepoint == "12m")].iloc[0]
    assert "baseline_value" in primary.covariates and "age_at_onset" in primary.covariates
    assert 0.6 < primary.auc < 0.95
    assert primary.equipoise_share > 0.2 and primary.max_abs_smd_weighted < 0.1
    assert primary.diagnostics_ok and row(results, "iptw").diagnostics_ok
    balance = results.covariate_balance
    baseline = balance[
        (balance.contrast == "combined_vs_single")
        & (balance.timepoint == "12m")
        & (balance.covariate == "baseline_value")
    ].iloc[0]
    assert baseline.smd_unweighted < -0.5 and abs(baseline.smd_weighted) < 0.1  # combined: worse baselines
    primary_rows = (balance.contrast == "combined_vs_single") & (balance.timepoint == "12m")
    curve = balance[primary_rows & balance.covariate.str.startswith("spline[baseline_value,")]
    assert len(curve) == 3 and (curve.smd_weighted.abs() < 0.1).all()  # balance beyond the mean
    assert primary.ess_treated < (row(results, "iptw").n_treated)


def _patients_with(combined: np.ndarray, baseline: np.ndarray, prior: np.ndarray, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    n = len(combined)
    ids = [f"P{i:04d}" for i in range(n)]
    patients = pd.DataFrame(
        {
            "site_id": "s1",
            "patient_id": ids,
            "combination": np.where(combined, "BTX+PT", "BTX"),
            "age_at_onset": rng.integers(20, 80, n),
            "prior_treatment": prior,
        }
    )
    base = pd.DataFrame(
        {
            "site_id": "s1",
            "patient_id": ids,
            "outcome": "sunnybrook_composite",
            "timepoint": "baseline",
            "value": baseline,
        }
    )
    follow = base.assign(timepoint="12m", value=baseline + 5 + 4 * combined + rng.normal(0, 5, n))
    return patients, pd.concat([base, follow], ignore_index=True)


def _fit(patients: pd.DataFrame, scores: pd.DataFrame, settings: ModelSettings) -> ModelResults:
    con = duckdb.connect()
    try:
        build_warehouse(con, patients, scores)
        return fit_models(con, settings, data_snapshot="snap", code_version="test")
    finally:
        con.close()


def test_a_data_set_built_to_break_balance_is_flagged_and_keeps_its_numbers() -> None:
    # Prior treatment all but decides the group: the few single-modality patients with it would need
    # weights far above the truncation, so weighting cannot balance it. Baseline overlap is fine.
    rng = np.random.default_rng(3)
    n = 400
    prior = rng.random(n) < 0.3
    combined = np.where(prior, rng.random(n) < 0.97, rng.random(n) < 0.35)
    patients, scores = _patients_with(combined, rng.normal(50, 10, n), prior, 3)
    weighted = row(_fit(patients, scores, CROSS_SECTIONAL), "iptw")
    assert not weighted.diagnostics_ok
    assert "balance fails" in weighted.note and "prior_treatment" in weighted.note
    assert "overlap fails" not in weighted.note
    assert np.isfinite(weighted.estimate) and np.isfinite(weighted.ci_low)


def test_a_data_set_built_to_break_overlap_is_flagged() -> None:
    # The baseline score nearly decides the group: few patients are in equipoise.
    rng = np.random.default_rng(4)
    n = 400
    baseline = rng.normal(50, 15, n)
    combined = rng.random(n) < 1 / (1 + np.exp((baseline - 50) / 2))
    patients, scores = _patients_with(combined, baseline, np.zeros(n, bool), 4)
    results = _fit(patients, scores, CROSS_SECTIONAL)
    weighted = row(results, "iptw")
    assert not weighted.diagnostics_ok
    assert "overlap fails" in weighted.note
    share = results.propensity_diagnostics.iloc[0].equipoise_share
    assert share <= 0.2


def test_a_propensity_model_that_separates_the_groups_is_the_verdict_no_overlap_for_every_method() -> None:
    # A positivity violation: every patient with prior treatment got combined treatment (issue 29: the
    # logistic model did not converge, the gate returned nothing, and no method was flagged).
    rng = np.random.default_rng(5)
    n = 400
    prior = rng.random(n) < 0.3
    combined = np.where(prior, True, rng.random(n) < 0.4)
    patients, scores = _patients_with(combined, rng.normal(50, 10, n), prior, 5)
    settings = ModelSettings(methods=("unadjusted", "ancova", "iptw", "aipw", "mixed"))
    estimates = _fit(patients, scores, settings).model_estimates
    rows = estimates[(estimates.contrast == "combined_vs_single") & np.isfinite(estimates.estimate)]
    assert set(settings.methods) <= set(rows.method)  # responders and House-Brackmann rows too, where present
    assert not rows.diagnostics_ok.any()
    assert rows.note.str.contains("overlap fails for every method: the propensity model did not converge").all()
    doubly_robust = rows[rows.method == "aipw"]  # flagged: no interval or p-value published for it
    assert doubly_robust.ci_low.isna().all() and doubly_robust.p_value.isna().all()


def test_a_data_set_where_the_mixed_model_cannot_converge_is_flagged() -> None:
    # Every patient seen once after treatment: the random intercept cannot be told from the residual.
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        timepoint, days = (("3m", 90), ("6m", 180), ("12m", 365))[i % 3]
        baseline = rng.normal(50, 10)
        rows.append(
            {
                "site_id": "s1",
                "patient_id": f"P{i:03d}",
                "treated": i % 2,
                "baseline_value": baseline,
                "timepoint": timepoint,
                "days_from_t0": days,
                "change": rng.normal(5 + 3 * (i % 2), 5),
                "age_at_onset": 40,
                "sex": "F",
                "etiology": "bell",
                "onset_to_index_days": 300,
                "prior_treatment": False,
            }
        )
    results = mixed(pd.DataFrame(rows), ModelSettings(), ("3m", "6m", "12m"))
    for estimate in results.values():
        assert not estimate.diagnostics_ok
        assert "did not converge" in estimate.note and "numbers shown for completeness only" in estimate.note


def test_the_random_slope_is_used_where_it_converges() -> None:
    results, truth = fit_generated(2, SyntheticParameters(), ModelSettings(methods=("mixed",), mixed_random_slope=True))
    estimate = row(results, "mixed")
    assert "slope" in estimate.note  # either fitted, or said why not
    assert estimate.ci_low < truth < estimate.ci_high


def test_e_value_matches_the_published_examples() -> None:
    # VanderWeele & Ding 2017: RR 3.9 gives an E-value of 7.26; an RR below 1 is turned upside down.
    assert e_value_rr(3.9) == pytest.approx(7.26, abs=0.01)
    assert e_value_rr(1 / 3.9) == pytest.approx(7.26, abs=0.01)
    assert e_value_rr(1.0) == pytest.approx(1.0)
    # A difference of half an SD: RR = exp(0.91 x 0.5), as the R package EValue's evalues.MD does.
    rr = np.exp(0.91 * 0.5)
    point, limit = e_values(5.0, 1.0, 10.0)
    assert point == pytest.approx(rr + np.sqrt(rr * (rr - 1)))
    low = np.exp(0.91 * 0.5 - 1.78 * 0.1)
    assert limit == pytest.approx(low + np.sqrt(low * (low - 1)))
    assert e_values(-5.0, 1.0, 10.0) == pytest.approx((point, limit))  # direction does not matter
    assert e_values(1.0, 2.0, 10.0)[1] == 1.0  # a CI containing 0: no confounding needed


def test_the_minimum_detectable_difference_agrees_with_a_power_calculation() -> None:
    results, _ = fit_generated(1, SyntheticParameters(), CROSS_SECTIONAL)
    crude = row(results, "unadjusted")
    sd = crude.std_error / np.sqrt(1 / crude.n_treated + 1 / crude.n_control)  # pooled SD implied by the SE
    effect = TTestIndPower().solve_power(
        nobs1=crude.n_treated, ratio=crude.n_control / crude.n_treated, alpha=0.05, power=0.8
    )
    assert crude.mdd == pytest.approx(effect * sd, rel=0.02)
    assert minimum_detectable_difference(1.0) == pytest.approx(2.8016, abs=1e-3)
    assert row(results, "ancova").mdd < crude.mdd  # adjusting for baseline buys precision
    assert row(results, "ancova").e_value > 1


def test_every_method_gives_the_same_numbers_twice() -> None:
    settings = ModelSettings(mice_imputations=5)
    first, _ = fit_generated(3, SyntheticParameters(dropout_by_severity=1.0), settings, patients=300)
    second, _ = fit_generated(3, SyntheticParameters(dropout_by_severity=1.0), settings, patients=300)
    pd.testing.assert_frame_equal(first.model_estimates, second.model_estimates)
    pd.testing.assert_frame_equal(first.covariate_balance, second.covariate_balance)
    # Beside the settings' methods, the measures on scales of their own (pipeline/models/measures.py).
    assert set(first.model_estimates["method"]) - set(MEASURES) == set(settings.methods)


@pytest.mark.parametrize("patient_sd", [2.0, 0.0])
def test_the_random_intercept_fit_agrees_with_statsmodels_mixedlm(patient_sd: float) -> None:
    rng = np.random.default_rng(11)
    sizes = rng.integers(1, 4, 400)
    groups = np.repeat(np.arange(400), sizes)
    x = np.column_stack([np.ones(len(groups)), rng.normal(size=(len(groups), 6))])
    y = x @ rng.normal(size=7) + rng.normal(0, patient_sd, 400)[groups] + rng.normal(0, 3, len(groups))
    ours = fit_random_intercept(y, x, groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MixedLM's own boundary warning when patient_sd is 0
        reference = MixedLM(y, x, groups).fit(reml=True)
    assert ours.fe_params == pytest.approx(np.asarray(reference.fe_params), abs=1e-5)
    # MixedLM takes its errors from the full Hessian (variance terms too): within 2% here.
    assert ours.bse_fe == pytest.approx(np.asarray(reference.bse_fe), rel=0.02)
    assert ours.sigma2 == pytest.approx(reference.scale, rel=1e-3)
    assert ours.tau2 == pytest.approx(float(np.asarray(reference.cov_re)[0, 0]), abs=0.05)
    assert ours.converged


def test_rubins_rules_with_barnard_rubin_degrees_of_freedom() -> None:
    pooled, std_error, df = rubin(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0]), complete_df=100)
    # U = 1, B = 1, T = U + (1 + 1/3) B = 7/3; lambda = 4/7; df_old = 2 / lambda^2 = 6.125;
    # df_obs = 101/103 x 100 x (1 - lambda) = 42.03; df = 1 / (1/6.125 + 1/42.03) = 5.346
    assert pooled == pytest.approx(2.0)
    assert std_error == pytest.approx(np.sqrt(7 / 3))
    assert df == pytest.approx(5.346, abs=1e-3)


@pytest.mark.parametrize("sites", [1, 4])
def test_mice_without_missing_follow_up_is_exactly_the_ancova(sites: int) -> None:
    # Nothing to impute: every completed data set is the data, so the pooled result is the ANCOVA's,
    # robust errors (HC3, or cluster-robust with enough sites) and all, computed by statsmodels there.
    patients, scores = simulate(2, 6.0, n_sites=sites)
    settings = ModelSettings(methods=("ancova", "mice"), mice_imputations=3, min_sites_for_cluster=4)
    results = _fit(patients, scores, settings)
    ancova, imputed = row(results, "ancova"), row(results, "mice")
    for column in ("estimate", "std_error", "ci_low", "ci_high", "p_value"):
        assert imputed[column] == pytest.approx(ancova[column], rel=1e-9), column
    assert "0% of changes at 12m imputed" in imputed.note
    assert ("cluster-robust" in imputed.note) == (sites == 4)


def test_mice_mostly_imputed_is_flagged_and_keeps_its_numbers() -> None:
    params = SyntheticParameters(dropout_by_severity=1.5)  # about 40% of the 12-month changes missing
    settings = ModelSettings(methods=("mice",), mice_imputations=5, mice_max_imputed_share=0.3)
    results, _ = fit_generated(0, params, settings, patients=400)
    imputed = row(results, "mice")
    assert not imputed.diagnostics_ok and np.isfinite(imputed.estimate)
    assert imputed.note.startswith("more than 30% of changes imputed")
    assert row(results, "mice", timepoint="6m").diagnostics_ok  # little missing at 6 months


def _spreading_follow_up(seed: int, n: int = 300) -> pd.DataFrame:
    """Follow-up whose errors grow with time and whose patients differ in slope: a random intercept's
    compound symmetry is wrong, so its model-based SE at 12 months is too narrow."""
    rng = np.random.default_rng(seed)
    baseline = rng.normal(50, 15, n)
    treated = (rng.random(n) < 1 / (1 + np.exp((baseline - 50) / 10))).astype(int)
    slope, intercept = rng.normal(0, 6, n), rng.normal(0, 2, n)
    rows = []
    for timepoint, share, day in (("3m", 0.25, 90), ("6m", 0.5, 180), ("12m", 1.0, 365)):
        change = share * (10 - 0.4 * (baseline - 50) + 4 * treated) + intercept + share * slope
        change = change + rng.normal(0, 1 + 3 * share, n)
        frame = pd.DataFrame(
            {
                "site_id": "s0",
                "patient_id": [f"P{i}" for i in range(n)],
                "timepoint": timepoint,
                "days_from_t0": day,
                "treated": treated,
                "baseline_value": baseline,
                "change": change,
            }
        )
        rows.append(frame[rng.random(n) > 0.1])
    return pd.concat(rows, ignore_index=True)


def test_the_mixed_models_sandwich_errors_match_the_spread_of_its_estimates_across_seeds() -> None:
    settings = ModelSettings(covariates=())
    fits = [mixed(_spreading_follow_up(seed), settings, ("3m", "6m", "12m"))["12m"] for seed in range(100, 160)]
    estimates = np.array([f.estimate for f in fits])
    spread = estimates.std(ddof=1)
    robust = np.mean([f.std_error for f in fits])
    model_based = np.mean([float(f.note.split("model-based SE ")[1].split(")")[0]) for f in fits])
    assert 0.85 < robust / spread < 1.2  # the reported SE is the sandwich, and it is right
    assert model_based / spread < 0.8  # what the random intercept alone would have said
    covered = np.mean([f.ci_low <= 4.0 <= f.ci_high for f in fits])
    assert covered >= 0.88
    assert all("patient-clustered sandwich errors" in f.note for f in fits)


def test_the_random_intercept_sandwich_agrees_with_statsmodels_gee() -> None:
    """GEE with an exchangeable working correlation is the same model fitted by moments; its robust
    SE is the same sandwich (without the G / (G - 1) factor)."""
    frame = _spreading_follow_up(7)
    timepoints = ("3m", "6m", "12m")
    x = pd.DataFrame({f"at[{t}]": (frame.timepoint == t).astype(float) for t in timepoints})
    for t in timepoints:
        x[f"treated_at[{t}]"] = ((frame.timepoint == t) & (frame.treated == 1)).astype(float)
        x[f"baseline_at[{t}]"] = frame.baseline_value.where(frame.timepoint == t, 0.0)
    groups = pd.factorize(frame.patient_id)[0]
    ours = fit_random_intercept(frame.change.to_numpy(), x.to_numpy(), groups)
    gee = sm.GEE(frame.change.to_numpy(), x.to_numpy(), groups=groups, cov_struct=sm.cov_struct.Exchangeable()).fit()
    g = len(np.unique(groups))
    assert ours.fe_params == pytest.approx(np.asarray(gee.params), rel=0.01, abs=0.01)
    assert ours.robust_bse / np.sqrt(g / (g - 1)) == pytest.approx(np.asarray(gee.bse), rel=0.01)
    # Clustered by three sites instead of 300 patients: the sites' sums, not the patients'.
    by_site = fit_random_intercept(frame.change.to_numpy(), x.to_numpy(), groups, clusters=groups % 3)
    assert not np.allclose(by_site.robust_bse, ours.robust_bse)


def test_the_tipping_point_shift_brings_the_mice_estimate_to_zero() -> None:
    """Informative drop-out: the poorer the 12-month change, the likelier it is missing. The note's
    shift of either group's imputed changes, applied to them, gives an estimate of 0."""
    rng = np.random.default_rng(11)
    n = 400
    baseline = rng.normal(50, 15, n)
    treated = (rng.random(n) < 0.5).astype(int)
    change_6m = 5 - 0.3 * (baseline - 50) + 3 * treated + rng.normal(0, 5, n)
    change_12m = 1.5 * change_6m + rng.normal(0, 4, n)
    missing = rng.random(n) < 1 / (1 + np.exp(1.0 + (change_12m - change_12m.mean()) / 8))
    wide = pd.DataFrame(
        {
            "site_id": "s0",
            "patient_id": [f"P{i}" for i in range(n)],
            "outcome": "sunnybrook_composite",
            "treated": treated,
            "baseline_value": baseline,
            "change_6m": change_6m,
            "change_12m": np.where(missing, np.nan, change_12m),
        }
    )
    settings = ModelSettings(covariates=(), mice_imputations=5)
    result = mice(wide, settings, "k", ("6m", "12m"))["12m"]
    assert result.estimate > 2
    shifts = [float(v) for v in re.findall(r"group's by ([+-][\d.]+)", result.note)]
    assert len(shifts) == 2 and shifts[0] < 0 < shifts[1]  # the first group worse, or the second better
    exact = {}
    for index, group_shift in enumerate(shifts):
        # The note rounds to 0.1: recompute the exact shift from the estimate's linearity.
        moved = mice(wide, settings, "k", ("6m", "12m"), shift=(1.0, 0.0) if index == 0 else (0.0, 1.0))["12m"]
        exact[index] = -result.estimate / (moved.estimate - result.estimate)
        assert exact[index] == pytest.approx(group_shift, abs=0.051)
    at_tipping = mice(wide, settings, "k", ("6m", "12m"), shift=(exact[0], 0.0))["12m"]
    assert at_tipping.estimate == pytest.approx(0.0, abs=1e-8)


def _site_drift(seed: int, n: int = 600) -> pd.DataFrame:
    """Three sites whose change drifts apart with time (0, 5 and 10 points by 12 months) and whose
    clinicians combine at different rates (75%, 50%, 25%); combined treatment adds 1, 2 and 4 points
    at 3, 6 and 12 months. A site coefficient shared by the timepoints mixes the drift into the
    treatment effect (issue 29: 12 months too low, 3 months too high)."""
    rng = np.random.default_rng(seed)
    site = rng.integers(0, 3, n)
    treated = (rng.random(n) < np.array([0.75, 0.5, 0.25])[site]).astype(int)
    baseline, patient = rng.normal(50, 12, n), rng.normal(0, 3, n)
    rows = []
    for timepoint, share, day in (("3m", 0.25, 90), ("6m", 0.5, 180), ("12m", 1.0, 365)):
        change = np.array([0.0, 5.0, 10.0])[site] * share + 4.0 * share * treated + patient + rng.normal(0, 4, n)
        rows.append(
            pd.DataFrame(
                {
                    "site_id": [f"s{s}" for s in site],
                    "patient_id": [f"P{i:04d}" for i in range(n)],
                    "timepoint": timepoint,
                    "days_from_t0": day,
                    "treated": treated,
                    "baseline_value": baseline,
                    "change": change,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_the_mixed_model_gives_each_covariate_its_own_coefficient_per_timepoint() -> None:
    fits = mixed(_site_drift(0), ModelSettings(covariates=("site_id",)), ("3m", "6m", "12m"))
    # SE about 0.45: the shared-coefficient model's 2.0 at 12 months and 1.7 at 3 months were 4 and 1.5 SEs off.
    for timepoint, truth in (("3m", 1.0), ("6m", 2.0), ("12m", 4.0)):
        fit = fits[timepoint]
        assert fit.ci_low < truth < fit.ci_high, (timepoint, fit.estimate, fit.std_error)
        assert fit.diagnostics_ok, fit.note


def test_the_mixed_model_recovers_the_pooled_effect_of_three_sites_with_different_effects() -> None:
    """Three generated sites (300 patients each) whose true 12-month effects are 2, 6 and 12: the pooled
    truth is the sites' measured truths weighted by their 12-month visits (the same treated share in every
    site, so the conditional effect the model estimates and the average effect agree up to the
    heterogeneity by baseline); it must lie inside the 12-month interval (SE about 0.85)."""
    frames, scores, truths = [], [], []
    for index, effect in enumerate((2.0, 6.0, 12.0)):
        params = SyntheticParameters(combined_effect=effect)
        patient_frame, site_scores, truth = analysis_tables(300, 1 + index, site=f"site{index + 1:02d}", params=params)
        frames.append(patient_frame)
        scores.append(site_scores)
        truths.append((truth, int((site_scores["timepoint"] == "12m").sum())))
    pooled = sum(t * w for t, w in truths) / sum(w for _, w in truths)
    con = duckdb.connect()
    try:
        build_warehouse(con, pd.concat(frames, ignore_index=True), pd.concat(scores, ignore_index=True))
        results = fit_models(con, ModelSettings(methods=("mixed",)), data_snapshot="snap", code_version="test")
    finally:
        con.close()
    estimate = row(results, "mixed")
    assert estimate.ci_low < pooled < estimate.ci_high, (estimate.estimate, estimate.std_error, pooled)
    assert estimate.diagnostics_ok, estimate.note


def test_a_singular_mixed_fit_says_so_in_its_field() -> None:
    # Each patient's deviations sum to zero: no patient-level variance, the fit sits on its boundary.
    rng = np.random.default_rng(1)
    rows = []
    for i in range(60):
        noise, baseline = rng.normal(0, 4, 2), rng.normal(50, 10)
        for (timepoint, days), e in zip((("3m", 90), ("6m", 180), ("12m", 365)), (*noise, -noise.sum()), strict=True):
            rows.append(
                {
                    "site_id": "s1",
                    "patient_id": f"P{i:03d}",
                    "treated": i % 2,
                    "baseline_value": baseline,
                    "timepoint": timepoint,
                    "days_from_t0": days,
                    "change": 5 + 3 * (i % 2) + e,
                    "age_at_onset": 40,
                    "sex": "F",
                    "etiology": "bell",
                    "onset_to_index_days": 300,
                    "prior_treatment": False,
                }
            )
    results = mixed(pd.DataFrame(rows), ModelSettings(), ("3m", "6m", "12m"))
    assert results and all(estimate.boundary for estimate in results.values())
    assert all(np.isfinite(estimate.estimate) for estimate in results.values())  # its numbers stand
