"""The stresses of issue 17, small: one covariate set for every outcome, overlap for every method.
Simulated cohorts with a known effect; the heavy version is bench/coverage_study.py."""

from __future__ import annotations

import json
import re

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.models import ModelResults, fit_models
from pipeline.models.measures import MEASURES
from pipeline.settings import ModelSettings
from tests.models.test_fit import build_warehouse

ALL = ModelSettings(mice_imputations=5)


def _cohort(seed: int, n: int, steepness: float, saq_effect: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Worse baseline Sunnybrook: more often combined; SAQ change depends on baseline Sunnybrook
    (not only on baseline SAQ), and a quarter of patients have no eFACE at all."""
    rng = np.random.default_rng(seed)
    sunny = rng.normal(50, 15, n)
    saq = 60 - 0.3 * (sunny - 50) + rng.normal(0, 10, n)
    eface = 0.6 * sunny + rng.normal(30, 8, n)
    combined = rng.random(n) < 1 / (1 + np.exp(steepness * (sunny - 50) / 15))
    patients = pd.DataFrame(
        {
            "site_id": "s0",
            "patient_id": [f"P{i:04d}" for i in range(n)],
            "combination": np.where(combined, "BTX+PT", "BTX"),
            "age_at_onset": rng.integers(20, 80, n),
        }
    )
    ids = patients[["site_id", "patient_id"]]
    has_eface = rng.random(n) < 0.75
    rows = []
    for timepoint, share in (("3m", 0.5), ("6m", 0.8), ("12m", 1.0)):
        sunny_change = share * (10 - 0.4 * (sunny - 50) + 5 * combined) + rng.normal(0, 5, n)
        saq_change = share * (-5 + 0.15 * (sunny - 50) - 0.2 * (saq - 60) + saq_effect * combined)
        saq_change = saq_change + rng.normal(0, 5, n)
        eface_change = share * (6 - 0.3 * (eface - 60)) + rng.normal(0, 5, n)
        rows += [
            ids.assign(outcome="sunnybrook_composite", timepoint=timepoint, value=sunny + sunny_change),
            ids.assign(outcome="saq", timepoint=timepoint, value=saq + saq_change),
            ids[has_eface].assign(outcome="eface_total", timepoint=timepoint, value=(eface + eface_change)[has_eface]),
        ]
    rows += [
        ids.assign(outcome="sunnybrook_composite", timepoint="baseline", value=sunny),
        ids.assign(outcome="saq", timepoint="baseline", value=saq),
        ids[has_eface].assign(outcome="eface_total", timepoint="baseline", value=eface[has_eface]),
    ]
    return patients, pd.concat(rows, ignore_index=True)


def _fit(patients: pd.DataFrame, scores: pd.DataFrame, settings: ModelSettings) -> ModelResults:
    con = duckdb.connect()
    try:
        build_warehouse(con, patients, scores)
        return fit_models(con, settings, data_snapshot="snap", code_version="test", workers=1)
    finally:
        con.close()


def _at_12m(results: ModelResults, outcome: str) -> pd.DataFrame:
    e = results.model_estimates
    keep = (e.contrast == "combined_vs_single") & (e.timepoint == "12m") & (e.outcome == outcome)
    return e[keep].set_index("method")


@pytest.mark.parametrize("seed", [0, 1])
def test_every_outcome_is_adjusted_for_every_baseline_severity_measure(seed: int) -> None:
    """SAQ change depends on baseline Sunnybrook: adjusting SAQ for its own baseline alone was 0.9
    off in issue 17. With every severity measure in every model, each adjusted method covers -4."""
    results = _fit(*_cohort(seed, 500, 1.2, -4.0), ALL)
    saq = _at_12m(results, "saq")
    for method in ("ancova", "iptw", "mixed", "mice"):
        assert saq.loc[method, "ci_low"] <= -4.0 <= saq.loc[method, "ci_high"], method
    assert not saq.loc["unadjusted", "ci_low"] <= -4.0 <= saq.loc["unadjusted", "ci_high"]
    assert saq.loc["unadjusted", "note"].startswith("confounded: the groups differ at baseline")
    # The same covariate set in every outcome's propensity model: the own baseline and the others.
    d = results.propensity_diagnostics
    d = d[(d.contrast == "combined_vs_single") & (d.timepoint == "12m")].set_index("outcome")
    sets = {o: set(json.loads(d.loc[o, "covariates"])) for o in ("sunnybrook_composite", "saq", "eface_total")}
    assert {"severity[sunnybrook_composite]", "severity[eface_total]", "missing[eface_total]"} <= sets["saq"]
    assert {"severity[saq]", "severity[eface_total]", "missing[eface_total]"} <= sets["sunnybrook_composite"]
    assert {"severity[sunnybrook_composite]", "severity[saq]"} <= sets["eface_total"]
    for covariates in sets.values():
        assert "baseline_value" in covariates


def test_without_overlap_no_method_is_diagnostics_ok_and_each_says_why() -> None:
    """Treatment all but decided by baseline Sunnybrook: issue 17 found ancova, mice and the mixed
    model marked ok with no note (ancova covering 1 time in 3). Now the contrast's overlap is attached
    to every method's estimate."""
    results = _fit(*_cohort(2, 500, 8.0, -4.0), ALL)
    for outcome in ("sunnybrook_composite", "saq", "eface_total"):
        rows = _at_12m(results, outcome)
        # Every method, and the measures beside them (responders): none is ok without overlap.
        assert set(rows.index) - set(MEASURES) == set(ALL.methods)
        assert not rows.diagnostics_ok.any(), outcome
        estimated = rows[np.isfinite(rows.estimate)]  # a measure may not be estimable (every patient responded)
        assert set(ALL.methods) <= set(estimated.index)  # the numbers are kept
        assert estimated.note.str.startswith("overlap fails for every method").all()


def test_with_overlap_every_method_carries_the_contrasts_overlap() -> None:
    results = _fit(*_cohort(3, 400, 1.0, -4.0), ALL)
    rows = _at_12m(results, "sunnybrook_composite")
    assert rows.loc["ancova", "diagnostics_ok"] and rows.loc["mixed", "diagnostics_ok"]
    shares = rows.note.str.extract(r"overlap: (\d+)% of the contrast's patients in equipoise")[0]
    assert shares.notna().all() and shares.nunique() == 1  # computed once, the same for every method
    assert int(shares.iloc[0]) > 20


def _sites(seed: int, effects: tuple[float, ...], per_site: int = 200) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = per_site * len(effects)
    site = np.repeat(np.arange(len(effects)), per_site)
    sunny = rng.normal(50, 15, n)
    combined = rng.random(n) < 1 / (1 + np.exp((sunny - 50) / 15))
    effect = np.asarray(effects)[site]
    patients = pd.DataFrame(
        {
            "site_id": [f"s{s}" for s in site],
            "patient_id": [f"P{i:04d}" for i in range(n)],
            "combination": np.where(combined, "BTX+PT", "BTX"),
        }
    )
    ids = patients[["site_id", "patient_id"]]
    change = 10 - 0.4 * (sunny - 50) + effect * combined + rng.normal(0, 5, n)
    rows = [
        ids.assign(outcome="sunnybrook_composite", timepoint="baseline", value=sunny),
        ids.assign(outcome="sunnybrook_composite", timepoint="12m", value=sunny + change),
    ]
    return patients, pd.concat(rows, ignore_index=True)


SITE_ESTIMATE = r"(s\d) [-\d.]+ \(([-\d.]+) to ([-\d.]+)\)"


def test_sites_with_different_effects_are_visible_in_the_ancova_note() -> None:
    """Three sites with true effects of 2, 6 and 12 gave one pooled number and no sign of it."""
    note = _at_12m(_fit(*_sites(4, (2.0, 6.0, 12.0)), ModelSettings(methods=("ancova",))), "sunnybrook_composite")
    text = note.loc["ancova", "note"]
    assert "heterogeneous across sites: site by group interaction p 0.000 (3 sites)" in text
    by_site = {site: (float(low), float(high)) for site, low, high in re.findall(SITE_ESTIMATE, text)}
    assert set(by_site) == {"s0", "s1", "s2"}
    for site, truth in (("s0", 2.0), ("s1", 6.0), ("s2", 12.0)):
        assert by_site[site][0] <= truth <= by_site[site][1], site
    same = _at_12m(_fit(*_sites(4, (6.0, 6.0, 6.0)), ModelSettings(methods=("ancova",))), "sunnybrook_composite")
    assert (
        "heterogeneous" not in same.loc["ancova", "note"]
        and "site by group interaction p" in same.loc["ancova", "note"]
    )


def test_the_overlap_weighted_sensitivity_recovers_the_effect_where_iptw_cannot_be_trusted() -> None:
    """Treatment all but decided by baseline: IPTW is flagged; its note carries the overlap-weighted (ATO)
    estimate, whose weights stay bounded, and with an effect the same for everyone it covers the truth (5)."""
    results = _fit(*_cohort(4, 600, 4.0, -4.0), ModelSettings(methods=("unadjusted", "iptw")))
    row = _at_12m(results, "sunnybrook_composite").loc["iptw"]
    assert not row.diagnostics_ok
    found = re.search(r"overlap-weighted \(ATO\) sensitivity (-?[\d.]+) \(95% CI (-?[\d.]+) to (-?[\d.]+)\)", row.note)
    assert found, row.note
    estimate, low, high = (float(value) for value in found.groups())
    assert low <= 5.0 <= high and abs(estimate - 5.0) < 1.5, found.group(0)
