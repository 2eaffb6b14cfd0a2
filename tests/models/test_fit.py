"""fit_models on small in-memory warehouses built from a seeded simulation with a known effect."""

from __future__ import annotations

import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from pipeline.contract import OUTCOMES
from pipeline.models import ModelResults, fit_models
from pipeline.models.design_matrix import covariate_matrix
from pipeline.models.estimators import holm
from pipeline.models.fit import ESTIMATE_COLUMNS
from pipeline.models.measures import MEASURES
from pipeline.settings import DesignSettings, ModelSettings
from pipeline.warehouse import write_design_tables

TABLES = {
    "patients": "site_id VARCHAR, patient_id VARCHAR, sex VARCHAR, age_at_onset INTEGER, side VARCHAR, "
    "etiology VARCHAR, index_year INTEGER, onset_to_index_days INTEGER, prior_treatment BOOLEAN, "
    "first_drop_id VARCHAR, last_drop_id VARCHAR",
    "modality_combinations": "site_id VARCHAR, patient_id VARCHAR, t0_day INTEGER, combination VARCHAR, "
    "n_modalities INTEGER, is_combined BOOLEAN, btx BOOLEAN, pt BOOLEAN, sn BOOLEAN, "
    "my BOOLEAN, os BOOLEAN, followup_days INTEGER, classifiable BOOLEAN, "
    "exclusion_reason VARCHAR",
    "followup_scores": "site_id VARCHAR, patient_id VARCHAR, outcome VARCHAR, timepoint VARCHAR, visit_day INTEGER, "
    "days_from_t0 INTEGER, value DOUBLE, baseline_value DOUBLE, change DOUBLE",
}
# The methods these tests are about; test_methods.py covers the other three.
QUICK = ModelSettings(methods=("unadjusted", "ancova"))
TIMEPOINT_DAYS = {"baseline": -10, "3m": 90, "6m": 180, "12m": 365}


def build_warehouse(con: duckdb.DuckDBPyConnection, patients: pd.DataFrame, scores: pd.DataFrame) -> None:
    """Create the tables the models read (and the design's). ``patients``: site_id, patient_id, combination and
    covariates; ``scores``: site_id, patient_id, outcome, timepoint, value (baseline rows included)."""
    for table, columns in TABLES.items():
        con.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
    write_design_tables(con, DesignSettings())
    p = patients.copy()
    for column, default in (
        ("sex", "F"),
        ("side", "L"),
        ("etiology", "bell"),
        ("age_at_onset", 50),
        ("index_year", 2020),
        ("onset_to_index_days", 300),
        ("prior_treatment", False),
        ("classifiable", True),
    ):
        if column not in p:
            p[column] = default
    p["first_drop_id"] = "d1"
    p["last_drop_id"] = "d1"
    con.register("p_frame", p)
    con.execute(
        "INSERT INTO patients SELECT site_id, patient_id, sex, age_at_onset, side, etiology, index_year, "
        "onset_to_index_days, prior_treatment, first_drop_id, last_drop_id FROM p_frame"
    )
    con.execute("""
        INSERT INTO modality_combinations
        SELECT site_id, patient_id, 0, combination, len(string_split(combination, '+')),
               len(string_split(combination, '+')) >= 2,
               contains(combination, 'BTX'), contains(combination, 'PT'), contains(combination, 'SN'),
               contains(combination, 'MY'), contains(combination, 'OS'),
               CASE WHEN classifiable THEN 400 ELSE 100 END, classifiable,
               CASE WHEN NOT classifiable THEN 'follow-up ends before the 180-day landmark' END
        FROM p_frame""")
    s = scores.assign(visit_day=scores["timepoint"].map(TIMEPOINT_DAYS))
    con.register("s_frame", s)
    con.execute("""
        INSERT INTO followup_scores
        SELECT f.site_id, f.patient_id, f.outcome, f.timepoint, f.visit_day, f.visit_day, f.value,
               b.value, CASE WHEN f.timepoint <> 'baseline' THEN f.value - b.value END
        FROM s_frame AS f
        LEFT JOIN (SELECT * FROM s_frame WHERE timepoint = 'baseline') AS b USING (site_id, patient_id, outcome)""")
    con.unregister("p_frame")
    con.unregister("s_frame")


def simulate(seed: int, effect: float, n: int = 300, n_sites: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Confounding by indication: a worse (lower) Sunnybrook baseline makes combined treatment more
    likely AND brings more improvement; combined treatment adds ``effect`` points of change."""
    rng = np.random.default_rng(seed)
    baseline = rng.normal(50, 15, n)
    combined = rng.random(n) < 1 / (1 + np.exp((baseline - 50) / 8))
    single = np.where(rng.random(n) < 0.7, "BTX", "PT")
    combination = np.where(combined, np.where(rng.random(n) < 0.97, "BTX+PT", "BTX+PT+SN"), single)
    age = rng.integers(20, 80, n)
    sex = np.where(rng.random(n) < 0.6, "F", "M")
    etiology = rng.choice(["bell", "ramsay_hunt", "trauma"], n, p=[0.7, 0.27, 0.03])
    patients = pd.DataFrame(
        {
            "site_id": [f"s{i % n_sites}" for i in range(n)],
            "patient_id": [f"P{i:04d}" for i in range(n)],
            "combination": combination,
            "sex": sex,
            "age_at_onset": age,
            "etiology": etiology,
            "onset_to_index_days": rng.integers(100, 1500, n),
            "prior_treatment": rng.random(n) < 0.2,
        }
    )
    rows = []
    for timepoint, share in (("3m", 0.5), ("6m", 0.8), ("12m", 1.0)):
        change = share * (10 - 0.4 * (baseline - 50) + effect * combined + 0.05 * (age - 50)) + rng.normal(0, 6, n)
        rows.append(
            patients[["site_id", "patient_id"]].assign(
                outcome="sunnybrook_composite", timepoint=timepoint, value=baseline + change
            )
        )
    rows.append(
        patients[["site_id", "patient_id"]].assign(outcome="sunnybrook_composite", timepoint="baseline", value=baseline)
    )
    return patients, pd.concat(rows, ignore_index=True)


def fit(
    patients: pd.DataFrame, scores: pd.DataFrame, settings: ModelSettings | None = None, workers: int | None = None
) -> ModelResults:
    con = duckdb.connect()
    try:
        build_warehouse(con, patients, scores)
        return fit_models(con, settings or QUICK, data_snapshot="snap", code_version="test", workers=workers)
    finally:
        con.close()


def row(
    results: ModelResults,
    method: str,
    outcome: str = "sunnybrook_composite",
    timepoint: str = "12m",
    contrast: str = "combined_vs_single",
) -> pd.Series:
    e = results.model_estimates
    match = e[(e.method == method) & (e.outcome == outcome) & (e.timepoint == timepoint) & (e.contrast == contrast)]
    assert len(match) == 1, match
    return match.iloc[0]


@pytest.mark.parametrize("seed", [1, 2])
def test_ancova_recovers_the_effect_the_unadjusted_comparison_misses(seed: int) -> None:
    truth = 6.0
    results = fit(*simulate(seed, truth))
    ancova, crude = row(results, "ancova"), row(results, "unadjusted")
    assert ancova.ci_low < truth < ancova.ci_high
    assert abs(ancova.estimate - truth) < 2
    assert crude.ci_low > truth  # confounded by indication: biased upwards, CI excludes the truth
    assert ancova.diagnostics_ok
    # A description, never an effect (issue 29): not diagnostics_ok, and its note says why first.
    assert not crude.diagnostics_ok and crude.note.endswith("descriptive: no adjustment for how the groups differ")
    assert (ancova.role, ancova.estimand, crude.role, crude.estimand) == (
        "primary",
        "conditional",
        "descriptive",
        "crude",
    )
    assert "HC3" in ancova.note
    assert ancova.higher_is_better
    assert list(results.model_estimates.columns) == list(ESTIMATE_COLUMNS)
    assert ancova.n_treated + ancova.n_control == 300


@pytest.mark.parametrize("seed", [4, 5])
def test_no_effect_gives_an_ancova_estimate_near_zero(seed: int) -> None:
    ancova = row(fit(*simulate(seed, 0.0)), "ancova")
    assert ancova.ci_low < 0 < ancova.ci_high
    assert abs(ancova.estimate) < 1.5


def test_combination_contrast_against_the_most_common_single_modality() -> None:
    results = fit(*simulate(1, 6.0))
    contrasts = set(results.model_estimates["contrast"])
    assert contrasts == {"combined_vs_single", "BTX+PT_vs_BTX"}  # BTX+PT+SN is too rare for its own contrast
    assert any("BTX+PT+SN" in w and "fewer than 11" in w for w in results.warnings)
    specific = row(results, "ancova", contrast="BTX+PT_vs_BTX")
    assert specific.ci_low < 6.0 < specific.ci_high
    assert specific.n_treated + specific.n_control < 300


def test_covariates_single_levels_dropped_rare_levels_pooled() -> None:
    n = 40
    frame = pd.DataFrame(
        {
            "sex": ["F"] * n,
            "etiology": ["bell"] * 18 + ["ramsay_hunt"] * 11 + ["trauma"] * 6 + ["tumor"] * 5,  # 6 + 5 pooled = 11
            "site_id": ["a"] * 30 + ["b"] * 6 + ["c"] * 4,  # b + c pooled = 10, still < 11: joins 'a'
            "age_at_onset": np.arange(n),
            "prior_treatment": [True, False] * 20,
        }
    )
    columns, notes = covariate_matrix(frame, ("sex", "etiology", "site_id", "age_at_onset", "prior_treatment"), 11)
    assert list(columns.columns) == ["etiology[other]", "etiology[ramsay_hunt]", "age_at_onset", "prior_treatment"]
    assert columns["etiology[other]"].sum() == 11
    assert "sex dropped (a single level)" in notes
    assert "site_id dropped (a single level)" in notes
    assert any(note.startswith("site_id levels") and "with 'a'" in note for note in notes)


def test_cluster_robust_errors_with_enough_sites() -> None:
    results = fit(*simulate(1, 6.0, n_sites=4), ModelSettings(min_sites_for_cluster=4, methods=QUICK.methods))
    assert "cluster-robust errors by site (4 sites)" in row(results, "ancova").note


def test_unadjusted_matches_a_hand_computation() -> None:
    treated = [4, 6, 8, 10, 12, 14] * 2  # mean 9, sum of squares about the mean 140
    control = [1, 2, 3, 4, 5, 6] * 2  # mean 3.5, sum of squares about the mean 35
    ids = [f"T{i:02d}" for i in range(12)] + [f"C{i:02d}" for i in range(12)]
    patients = pd.DataFrame(
        {
            "site_id": "s1",
            "patient_id": ids,
            "combination": ["BTX+PT"] * 12 + ["BTX"] * 12,
            "age_at_onset": range(30, 54),
        }
    )
    baseline = pd.DataFrame(
        {"site_id": "s1", "patient_id": ids, "outcome": "saq", "timepoint": "baseline", "value": 60.0}
    )
    followup = baseline.assign(timepoint="12m", value=[60.0 + c for c in treated + control])
    results = fit(patients, pd.concat([baseline, followup]))
    crude = row(results, "unadjusted", outcome="saq")
    se = np.sqrt(140 / 11 / 12 + 35 / 11 / 12)  # Welch: sqrt(s1²/n1 + s0²/n0) = sqrt(175/132)
    a, b = 140 / 132, 35 / 132
    df = (a + b) ** 2 / (a**2 / 11 + b**2 / 11)  # Welch–Satterthwaite, about 16.18
    assert crude.estimate == pytest.approx(5.5)
    assert crude.std_error == pytest.approx(se)
    assert crude.ci_low == pytest.approx(5.5 - stats.t.ppf(0.975, df) * se)
    assert crude.ci_high == pytest.approx(5.5 + stats.t.ppf(0.975, df) * se)
    assert crude.p_value == pytest.approx(2 * stats.t.sf(5.5 / se, df))
    assert (crude.n_treated, crude.n_control) == (12, 12)
    assert not crude.higher_is_better  # SAQ: lower is better
    # SAQ alone: a secondary outcome without the design's primary to open its gate has no confirmatory test.
    assert np.isnan(crude.p_adjusted)
    assert "collinear term(s) dropped: baseline_value" in row(results, "ancova", outcome="saq").note  # all 60


def test_a_small_group_gets_a_row_without_an_estimate_and_a_reason() -> None:
    ids = [f"P{i:02d}" for i in range(38)]
    patients = pd.DataFrame({"site_id": "s1", "patient_id": ids, "combination": ["BTX+PT"] * 8 + ["BTX"] * 30})
    rng = np.random.default_rng(0)
    baseline = pd.DataFrame(
        {
            "site_id": "s1",
            "patient_id": ids,
            "outcome": "sunnybrook_composite",
            "timepoint": "baseline",
            "value": rng.normal(50, 10, 38),
        }
    )
    followup = baseline.assign(timepoint="12m", value=baseline["value"] + rng.normal(5, 5, 38))
    results = fit(patients, pd.concat([baseline, followup]), ModelSettings())
    for method in ModelSettings().methods:  # no method is fitted on a group of fewer than 11
        small = row(results, method)
        assert np.isnan(small.estimate) and np.isnan(small.ci_low) and np.isnan(small.p_adjusted)
        assert not small.diagnostics_ok
        assert "fewer than 11 patients in the combined group" in small.note
        assert (small.n_treated, small.n_control) == (8, 30)
    assert any(
        "combined_vs_single, sunnybrook_composite at 12m" in w and "fewer than 11" in w for w in results.warnings
    )
    assert not any("8" in w for w in results.warnings)  # warnings never print a small count


def test_unclassifiable_patients_are_left_out() -> None:
    patients, scores = simulate(1, 6.0)
    patients["classifiable"] = [i % 10 != 0 for i in range(len(patients))]
    ancova = row(fit(patients, scores), "ancova")
    assert ancova.n_treated + ancova.n_control == 270


def test_holm_matches_statsmodels() -> None:
    adjusted = holm(pd.Series([0.01, 0.04, np.nan, 0.03]))
    # sorted 0.01, 0.03, 0.04 over m = 3: 3*0.01 = 0.03; max(0.03, 2*0.03) = 0.06; max(0.06, 1*0.04) = 0.06
    assert adjusted.tolist()[:2] == pytest.approx([0.03, 0.06]) and adjusted[3] == pytest.approx(0.06)
    assert np.isnan(adjusted[2])
    p_values = np.array([0.2, 0.001, 0.04, 0.012, 0.5, 0.03, 0.03])
    assert holm(pd.Series(p_values)).to_numpy() == pytest.approx(multipletests(p_values, method="holm")[1])


def _by_hand_holm(p: pd.Series) -> pd.Series:
    p = p.sort_values()
    out, running = {}, 0.0
    for rank, (name, value) in enumerate(p.items()):
        running = max(running, min(1.0, (len(p) - rank) * value))
        out[name] = running
    return pd.Series(out)


def test_primary_first_then_holm_over_secondaries_and_each_composites_own_subscores() -> None:
    """One family per method, contrast and timepoint: the design's primary outcome (Sunnybrook
    composite) alone at full level; the secondaries (eFACE total, SAQ, FDI physical) by Holm and gated
    by the primary; the composite's subscores by Holm among themselves, gated by the composite."""
    patients, scores = simulate(4, 3.0)
    rng = np.random.default_rng(5)
    combined = patients["combination"].str.contains(r"\+").to_numpy()
    extra = []
    shifts = {
        "eface_total": 4.0,
        "saq": -4.0,
        "fdi_physical": 0.0,
        "sunnybrook_voluntary": 3.0,
        "sunnybrook_synkinesis": 0.5,
    }
    for outcome, shift in shifts.items():
        base = scores[scores.timepoint == "baseline"].assign(outcome=outcome, value=rng.normal(60, 10, 300))
        follow = base.assign(timepoint="12m", value=base["value"] + shift * combined + rng.normal(0, 8, 300))
        extra += [base, follow]
    results = fit(patients, pd.concat([scores, *extra], ignore_index=True))
    e = results.model_estimates
    family = e[(e.method == "ancova") & (e.contrast == "combined_vs_single") & (e.timepoint == "12m")]
    family = family.set_index("outcome")
    p, adjusted = family["p_value"], family["p_adjusted"]
    primary = "sunnybrook_composite"
    assert adjusted[primary] == pytest.approx(p[primary])  # tested first, alone
    secondaries = ["eface_total", "saq", "fdi_physical"]
    for outcome, value in _by_hand_holm(p[secondaries]).items():
        assert adjusted[outcome] == pytest.approx(max(value, p[primary]))
    subscores = ["sunnybrook_voluntary", "sunnybrook_synkinesis"]
    for outcome, value in _by_hand_holm(p[subscores]).items():
        assert adjusted[outcome] == pytest.approx(max(value, p[primary]))
    # The composite's subscores are not in the secondaries' family: Holm over all five would differ.
    assert not np.allclose(adjusted[secondaries], _by_hand_holm(p[secondaries + subscores])[secondaries])


def test_a_closed_gate_and_non_converged_rows_stay_outside_every_family() -> None:
    from pipeline.models.multiplicity import adjusted_p_values, family_adjusted

    parents = {"sunnybrook_voluntary": "sunnybrook_composite", "eface_static": "eface_total"}
    p = pd.Series({"sunnybrook_composite": 0.2, "saq": 0.001, "eface_total": 0.01, "eface_static": 0.02})
    adjusted = family_adjusted(p, "sunnybrook_composite", parents)
    assert adjusted["sunnybrook_composite"] == 0.2  # the primary fails...
    assert adjusted[["saq", "eface_total"]].tolist() == [0.2, 0.2]  # ...so no secondary can be claimed
    assert adjusted["eface_static"] == 0.2  # nor a subscore of a secondary composite
    without_primary = family_adjusted(p.drop("sunnybrook_composite"), "sunnybrook_composite", parents)
    assert without_primary.isna().all()  # no gate, no confirmatory test

    rows = pd.DataFrame(
        {
            "method": "mixed",
            "contrast": "c",
            "timepoint": "12m",
            "outcome": ["sunnybrook_composite", "saq", "eface_total", "fdi_physical"],
            "p_value": [0.001, 0.01, 0.02, 0.03],
        }
    )
    converged = pd.Series([True, True, True, False])
    result = adjusted_p_values(rows, converged, "sunnybrook_composite", parents)
    # fdi_physical did not converge: outside the family, which is then Holm over two secondaries, not three.
    assert np.isnan(result[3])
    assert result[:3].tolist() == pytest.approx([0.001, 0.02, 0.02])


def test_fitting_twice_gives_identical_estimates_and_run_id() -> None:
    patients, scores = simulate(7, 6.0)
    first, second = fit(patients, scores), fit(patients, scores)
    pd.testing.assert_frame_equal(first.model_estimates, second.model_estimates)
    assert first.model_runs["run_id"].iloc[0] == second.model_runs["run_id"].iloc[0]
    assert first.warnings == second.warnings
    other = fit(patients, scores, ModelSettings(min_group_size=12, methods=QUICK.methods))
    assert other.model_runs["run_id"].iloc[0] != first.model_runs["run_id"].iloc[0]


def test_worker_processes_give_the_estimates_of_one_process(caplog: pytest.LogCaptureFixture) -> None:
    """Every method (mice's chains included) fitted on two forked workers, as a large registry is,
    gives what one process gives, warnings and their order too."""
    patients, scores = simulate(11, 6.0, n=240)
    settings = ModelSettings(mice_imputations=3)
    serial, parallel = fit(patients, scores, settings, workers=1), fit(patients, scores, settings, workers=2)
    assert set(serial.model_estimates["method"]) - set(MEASURES) == set(settings.methods)
    assert serial.model_estimates["estimate"].notna().sum() > 0
    pd.testing.assert_frame_equal(serial.model_estimates, parallel.model_estimates)
    pd.testing.assert_frame_equal(serial.covariate_balance, parallel.covariate_balance)
    pd.testing.assert_frame_equal(serial.propensity_diagnostics, parallel.propensity_diagnostics)
    pd.testing.assert_frame_equal(serial.preference_scores, parallel.preference_scores)
    assert serial.warnings == parallel.warnings
    assert "worker processes failed" not in caplog.text  # the workers ran, not the one-process fallback


def test_model_runs_records_settings_and_package_versions() -> None:
    results = fit(*simulate(1, 6.0))
    run = results.model_runs.iloc[0]
    assert list(results.model_runs.columns) == [
        "run_id",
        "started_at",
        "data_snapshot",
        "code_version",
        "settings",
        "packages",
    ]
    assert run.data_snapshot == "snap" and run.code_version == "test"
    assert '"min_group_size": 11' in run.settings
    assert all(name in run.packages for name in ("numpy", "pandas", "statsmodels", "duckdb"))
    assert set(results.model_estimates["run_id"]) == {run.run_id}
    assert list(results.covariate_balance.columns) == [
        "run_id",
        "contrast",
        "outcome",
        "timepoint",
        "covariate",
        "smd_unweighted",
        "smd_weighted",
    ]
    # Only the simulated outcome has data; the others are listed once as missing.
    assert set(results.model_estimates["outcome"]) == {"sunnybrook_composite"}
    assert any("No follow-up score with a baseline at any timepoint" in w and "saq" in w for w in results.warnings)
    assert set(OUTCOMES) >= set(results.model_estimates["outcome"])


def test_results_insert_into_the_contract_tables() -> None:
    results = fit(*simulate(1, 6.0), ModelSettings(methods=("unadjusted", "ancova", "iptw")))
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE model_estimates (run_id VARCHAR, method VARCHAR, outcome VARCHAR, timepoint VARCHAR, "
        "contrast VARCHAR, estimate DOUBLE, std_error DOUBLE, ci_low DOUBLE, ci_high DOUBLE, p_value DOUBLE, "
        "p_adjusted DOUBLE, n_treated BIGINT, n_control BIGINT, higher_is_better BOOLEAN, "
        "diagnostics_ok BOOLEAN, note VARCHAR, e_value DOUBLE, e_value_ci DOUBLE, mdd DOUBLE, "
        "estimand VARCHAR, role VARCHAR, site_spread DOUBLE, "
        "converged BOOLEAN, boundary BOOLEAN, balance_ok BOOLEAN, overlap_ok BOOLEAN)"
    )
    con.register("frame", results.model_estimates)
    con.execute("INSERT INTO model_estimates SELECT * FROM frame")
    assert con.execute("SELECT count(*) FROM model_estimates WHERE note IN ('None', 'nan', '')").fetchone()[0] == 0
    # The diagnostics as fields: every fitted row has its contrast's overlap verdict, only iptw a balance one.
    fields = con.execute(
        "SELECT method, bool_and(overlap_ok IS NOT NULL), bool_and(balance_ok IS NULL), bool_and(converged) "
        "FROM model_estimates WHERE estimate IS NOT NULL AND NOT isnan(estimate) GROUP BY method"
    ).fetchall()
    assert fields and all(overlap and converged for _, overlap, _, converged in fields)
    assert {method for method, _, no_balance, _ in fields if not no_balance} == {"iptw"}
    # A weighted fit whose balance fails says so in its field, whatever its note's wording.
    failing = con.execute("SELECT count(*) FROM model_estimates WHERE method = 'iptw' AND NOT balance_ok").fetchone()[0]
    in_note = con.execute(
        "SELECT count(*) FROM model_estimates WHERE method = 'iptw' AND note LIKE '%balance fails%'"
    ).fetchone()[0]
    assert failing == in_note
    # Every method's note carries the contrast's overlap, the unadjusted one too (after why it is confounded).
    notes = con.execute("SELECT note FROM model_estimates WHERE method = 'unadjusted'").fetchall()
    assert notes and all(note.startswith("confounded: ") and "overlap: " in note for (note,) in notes)
    con.close()


def test_preference_scores_are_those_behind_each_contrasts_overlap_verdict() -> None:
    """One row per patient of each contrast's overlap model; the share in equipoise the estimates' notes print is
    the share of these scores in the equipoise range."""
    patients, scores = simulate(4, 6.0, n=200)
    results = fit(patients, scores)
    stored = results.preference_scores
    primary = stored[stored["contrast"] == "combined_vs_single"]
    assert len(primary) and not primary.duplicated(["site_id", "patient_id"]).any()
    assert primary["preference_score"].between(0, 1).all() and set(primary["first_group"]) == {True, False}
    low, high = QUICK.equipoise_bounds
    share = primary["preference_score"].between(low, high).mean()
    assert f"overlap: {share:.0%} of the contrast's patients in equipoise" in row(results, "ancova")["note"]


@pytest.mark.parametrize("workers", [1, 2])
def test_numerical_warnings_of_the_fits_are_caught_and_kept_not_raised(workers: int) -> None:
    """A small clinic (80 patients, every combined patient female) makes a propensity model overflow
    (numpy's RuntimeWarning) in a small contrast. Under "error" a warning that escaped would fail that fit
    (its note would name it); caught, the estimates stand and each warning is kept, with its cell, on one
    process or on workers."""
    patients, scores = simulate(7, 6.0, n=80)
    patients.loc[patients["combination"].str.contains("+", regex=False), "sex"] = "F"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = fit(patients, scores, ModelSettings(), workers=workers)
    caught = results.numerical_warnings
    assert caught and all(": RuntimeWarning: " in w or "Warning: " in w for w in caught), caught
    assert any(w.startswith("BTX+PT_vs_BTX, sunnybrook_composite: RuntimeWarning: ") for w in caught), caught
    estimates = results.model_estimates
    assert estimates["estimate"].notna().any()
    assert not estimates["note"].fillna("").str.contains("Warning").any()


def test_each_estimates_patients_are_written_and_match_its_group_sizes() -> None:
    """estimate_patients: who is in each comparative estimate, so the report never chooses them again; each
    group's patients number the estimate's n_treated and n_control (mixed: every timepoint fitted)."""
    results = fit(*simulate(2, 6.0), ModelSettings(methods=("unadjusted", "ancova", "mixed")))
    patients = results.estimate_patients
    assert not patients.duplicated(["contrast", "outcome", "timepoint", "method", "site_id", "patient_id"]).any()
    sizes = (
        patients.groupby(["contrast", "outcome", "timepoint", "method"])["first_group"]
        .agg(n_treated="sum", n_control=lambda s: int((~s.astype(bool)).sum()))
        .reset_index()
    )
    estimates = results.model_estimates
    merged = estimates.merge(sizes, on=["contrast", "outcome", "timepoint", "method"], suffixes=("", "_written"))
    assert len(merged) == len(estimates) and {"mixed", "ancova"} <= set(merged["method"])
    assert (merged["n_treated"] == merged["n_treated_written"]).all()
    assert (merged["n_control"] == merged["n_control_written"]).all()
    # mixed takes the patients of every timepoint fitted: more than any one timepoint's ancova.
    mixed_n = merged.loc[merged["method"] == "mixed", "n_treated"].max()
    assert mixed_n >= merged.loc[merged["method"] == "ancova", "n_treated"].max()


def test_a_site_offering_only_one_group_is_left_out_of_that_comparison() -> None:
    """A fourth clinic whose 120 patients all have BoNT alone (it offers no PT), with a much worse course:
    its site would decide the group (a structural positivity violation), so it informs neither comparison
    of BTX-only patients; the three sites that offer both still recover the effect, and the rows say so."""
    patients, scores = simulate(1, 6.0, n=300, n_sites=3)
    rng = np.random.default_rng(7)
    extra = patients.iloc[:120].copy()
    extra["site_id"], extra["patient_id"], extra["combination"] = "s9", [f"Q{i:04d}" for i in range(120)], "BTX"
    extra_scores = scores[scores["patient_id"].isin(patients["patient_id"].iloc[:120])].copy()
    renamed = dict(zip(patients["patient_id"], extra["patient_id"], strict=False))  # the first 120 only
    extra_scores["patient_id"] = extra_scores["patient_id"].map(renamed)
    extra_scores["site_id"] = "s9"
    later = extra_scores["timepoint"] != "baseline"
    extra_scores.loc[later, "value"] -= 15 + rng.normal(0, 2, int(later.sum()))
    results = fit(pd.concat([patients, extra]), pd.concat([scores, extra_scores]))
    for contrast in ("combined_vs_single", "BTX+PT_vs_BTX"):
        ancova = row(results, "ancova", contrast=contrast)
        assert ancova["note"].startswith("1 site of 4 left out: no patient in one of the groups there")
        members = results.estimate_patients
        chosen = members[(members["contrast"] == contrast) & (members["method"] == "ancova")]
        assert not chosen.empty and not chosen["site_id"].eq("s9").any()
    ancova = row(results, "ancova")
    assert ancova["ci_low"] < 6.0 < ancova["ci_high"]
    # Without the fourth site, nothing is left out and nothing is said.
    alone = fit(patients, scores)
    assert "left out" not in str(row(alone, "ancova")["note"])
