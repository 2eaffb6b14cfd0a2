"""Reliance on BoNT after surgery (pipeline/models/reliance.py) against the generator's truth: 3,000 patients
whose surgery is chosen by indication (worse baselines, which also bring shorter gaps and larger doses, are
likelier combined), doses titrated up over the first sessions whether or not a patient has surgery. The
treatments come straight from the generator (``treatment_tables``) and ``botox_intervals`` from its SQL."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.analysis_design import AnalysisDesign
from pipeline.models.claims import claim_rows
from pipeline.models.reliance import CONTRAST, mixed_change, reliance_rows
from pipeline.settings import ModelSettings
from pipeline.sql_files import SQL_DIR
from pipeline.tools.synthetic import SyntheticParameters, treatment_tables


def warehouse(params: SyntheticParameters, seed: int, patients: int = 3000) -> duckdb.DuckDBPyConnection:
    _, treatments, visits = treatment_tables(patients, seed, params=params)
    con = duckdb.connect()
    con.register("treatments_frame", treatments)
    con.register("visits_frame", visits)
    con.execute("CREATE TABLE treatments AS SELECT * FROM treatments_frame")
    con.execute("CREATE TABLE assessments AS SELECT * FROM visits_frame")
    con.execute((SQL_DIR / "marts" / "11_botox_intervals.sql").read_text(encoding="utf-8"))
    return con


DESIGN = AnalysisDesign(
    timepoints=("12m",),
    months={"baseline": 0, "12m": 12},
    labels={"baseline": "baseline", "12m": "12 months"},
    primary_timepoint="12m",
    outcomes=("sunnybrook_composite",),
    higher_is_better={"sunnybrook_composite": True},
    primary_outcome="sunnybrook_composite",
)


def fitted(params: SyntheticParameters, seed: int) -> dict[tuple[str, str], dict[str, object]]:
    """Every reliance row as the models DAG writes it (``claim_rows``: p_adjusted too), by outcome and method."""
    con = warehouse(params, seed)
    warnings: list[str] = []
    try:
        # No patient with scores: the synergy part has nothing to fit, the reliance part reads botox_intervals.
        population = pd.DataFrame({"site_id": [], "patient_id": [], "combination": [], "is_combined": []})
        changes = pd.DataFrame(columns=["site_id", "patient_id", "outcome", "timepoint", "baseline_value", "change"])
        frame = claim_rows(con, population, changes, DESIGN, ModelSettings(), warnings)
    finally:
        con.close()
    rows = frame.to_dict("records")
    assert {r["contrast"] for r in rows} == {CONTRAST} and {r["timepoint"] for r in rows} == {"all"}
    return {(r["outcome"], r["method"]): r for r in rows}


@pytest.fixture(scope="module")
def truth_45_days() -> dict[tuple[str, str], dict[str, object]]:
    return fitted(SyntheticParameters(surgery_interval_days=45.0, surgery_dose_factor=0.75), seed=0)


@pytest.fixture(scope="module")
def no_change() -> dict[tuple[str, str], dict[str, object]]:
    return fitted(SyntheticParameters(surgery_interval_days=0.0, surgery_dose_factor=1.0), seed=1)


def test_the_change_in_days_between_injections_is_recovered_within_ten_percent(truth_45_days) -> None:
    # The raw-scale sensitivity rows: completed gaps only.
    for method in ("mixed", "mixed_vs_bont_alone"):
        row = truth_45_days[("botox_interval_days", method)]
        assert abs(row["estimate"] - 45.0) < 4.5, (method, row["estimate"])
        assert row["diagnostics_ok"] and row["n_treated"] >= 11 and row["n_control"] >= 11
    within = truth_45_days[("botox_interval_days", "mixed")]
    assert "MixedLM" in within["note"] and "BoNT alone" in within["note"]


def test_the_hazard_of_the_next_injection_falls_after_surgery_and_doses_shrink(truth_45_days) -> None:
    for method in ("phreg", "phreg_vs_bont_alone"):
        row = truth_45_days[("time_to_next_botox", method)]
        assert row["ci_high"] < 1, (method, row)  # a hazard ratio: the next injection comes later
        assert "cluster-robust" in row["note"]
    for method in ("mixed", "mixed_vs_bont_alone"):
        assert truth_45_days[("botox_units_per_session", method)]["ci_high"] < 0
    for method in ("mixed_log", "mixed_log_vs_bont_alone"):
        assert truth_45_days[("botox_units_per_session", method)]["ci_high"] < 1  # a ratio of units
    # Titration up over the first sessions hides part of the smaller doses from the within-patient comparison;
    # the comparison with patients on BoNT alone over the same session numbers takes it out.
    within = truth_45_days[("botox_units_per_session", "mixed_log")]["estimate"]
    against = truth_45_days[("botox_units_per_session", "mixed_log_vs_bont_alone")]["estimate"]
    assert against < within


def test_with_no_change_after_surgery_nothing_is_found_and_the_drift_is_taken_out(no_change) -> None:
    for method in ("mixed", "mixed_vs_bont_alone"):
        row = no_change[("botox_interval_days", method)]
        assert row["ci_low"] < 0 < row["ci_high"], (method, row)
    hazard = no_change[("time_to_next_botox", "phreg")]
    assert hazard["ci_low"] < 1 < hazard["ci_high"], hazard
    # Doses rise with the session number anyway: within the surgery patients alone that looks like larger
    # doses after surgery; over the same session numbers as patients on BoNT alone it goes away.
    within = no_change[("botox_units_per_session", "mixed")]
    against = no_change[("botox_units_per_session", "mixed_vs_bont_alone")]
    assert within["ci_low"] > 2
    assert against["ci_low"] < 0 < against["ci_high"], against
    ratio = no_change[("botox_units_per_session", "mixed_log_vs_bont_alone")]
    assert ratio["ci_low"] < 1 < ratio["ci_high"], ratio
    for method in ("aft", "aft_vs_bont_alone"):
        row = no_change[("botox_interval_days", method)]
        assert row["ci_low"] < 1 < row["ci_high"], (method, row)


def test_the_three_answers_of_one_kind_of_fit_are_one_holm_family(truth_45_days) -> None:
    for methods, size in (
        (("aft", "mixed_log", "phreg"), 3),
        (("aft_vs_bont_alone", "mixed_log_vs_bont_alone", "phreg_vs_bont_alone"), 3),
        (("mixed",), 2),
        (("mixed_vs_bont_alone",), 2),
    ):
        family = sorted((r for (_, m), r in truth_45_days.items() if m in methods), key=lambda r: r["p_value"])
        assert len(family) == size
        assert family[-1]["p_adjusted"] == pytest.approx(max(r["p_value"] for r in family))
        assert family[0]["p_adjusted"] == pytest.approx(min(1.0, max(size * family[0]["p_value"], 0.0)))


def test_too_few_surgery_patients_give_rows_without_numbers() -> None:
    con = warehouse(SyntheticParameters(), seed=3, patients=25)
    try:
        rows = reliance_rows(con, ModelSettings())
    finally:
        con.close()
    assert len(rows) == 10  # five fits, each within the surgery patients and against BoNT alone
    assert all(math.isnan(r["estimate"]) and not r["diagnostics_ok"] for r in rows)
    assert all(r["note"].startswith("not estimated: fewer than 11") for r in rows), [r["note"] for r in rows]


def test_a_mixed_model_on_its_boundary_keeps_its_numbers_and_says_it_did_not_converge_cleanly() -> None:
    # Each patient's noise sums to zero: no patient variance at all, the REML fit sits on its boundary.
    rng = np.random.default_rng(0)
    after = np.concatenate([[0, 0, 1, 1] if i % 2 else [0, 1, 1, 1] for i in range(40)]).astype(float)
    frame = pd.DataFrame({"site_id": "s1", "patient_id": np.repeat([f"P{i}" for i in range(40)], 4), "after": after})
    noise = pd.Series(rng.normal(0, 10, len(frame)))
    frame["days"] = 90 + 40 * after + noise - noise.groupby(frame["patient_id"]).transform("mean")
    result = mixed_change(frame, "days", drift=False)
    assert not result.diagnostics_ok and not result.converged
    assert result.note.startswith("did not converge cleanly: ") and "boundary" in result.note
    assert abs(result.estimate - 40) < 2  # the numbers are kept


def test_the_hazard_rows_say_whether_proportional_hazards_hold(truth_45_days, no_change) -> None:
    # 45 days added to every gap after surgery shifts the gap times: the hazard ratio changes with time.
    for method in ("phreg", "phreg_vs_bont_alone"):
        assert "proportional hazards fail (Schoenfeld" in truth_45_days[("time_to_next_botox", method)]["note"]
    assert "proportional hazards hold" in no_change[("time_to_next_botox", "phreg")]["note"]


def test_units_per_session_are_answered_as_a_ratio_on_the_log_scale(truth_45_days) -> None:
    # 0.75 times the units after surgery: the drift-guarded fit's ratio is within 3% of it (a bias of about
    # -1.5% remains: the generator titrates from a patient's first injection ever, the windows count from the
    # index visit; bench/results/claims_recovery.md).
    row = truth_45_days[("botox_units_per_session", "mixed_log_vs_bont_alone")]
    assert abs(row["estimate"] / 0.75 - 1) < 0.03, row
    assert row["diagnostics_ok"]
    assert "log units" in row["note"] and math.isnan(row["mdd"])
    raw = truth_45_days[("botox_units_per_session", "mixed_vs_bont_alone")]["note"]
    assert "the answer is the ratio on the log scale (mixed_log_vs_bont_alone: 0." in raw, raw


def test_the_censored_gap_time_model_recovers_the_longer_gaps_after_surgery(truth_45_days, no_change) -> None:
    # About 90 days before, 135 after: a gap about 1.5 times as long; with no change, 1.
    answer = truth_45_days[("botox_interval_days", "aft_vs_bont_alone")]
    assert 1.35 < answer["estimate"] < 1.65 and answer["diagnostics_ok"], answer
    assert 0.93 < no_change[("botox_interval_days", "aft_vs_bont_alone")]["estimate"] < 1.07
    assert "each open last gap censored" in answer["note"]
    # The open last gaps count: the censored model's patients after surgery include those whose only gap after
    # it is still open, whom the completed-gap rows leave out.
    raw = truth_45_days[("botox_interval_days", "mixed_vs_bont_alone")]
    assert answer["n_treated"] >= raw["n_treated"]
    assert "the answer is the censored gap-time model (aft_vs_bont_alone: 1." in raw["note"], raw["note"]
