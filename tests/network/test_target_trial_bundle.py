"""Surgery or more injections? across clinics: each site's own clone-censor-weight estimate travels in its
bundle (two-stage only: the censoring weights are the site's model), with the patients followed under each
strategy registered and audited; the coordinator pools them by random effects and the network report answers
the question first. Three generated clinics whose BoNT patients face the decision, with a known effect."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.network.coordinator import network_warehouse
from pipeline.network.report import write_network_report
from pipeline.network.simulate import outbox, simulate
from pipeline.settings import DataHome
from pipeline.stages import run_all
from pipeline.tools.synthetic_surgery import SurgeryParameters, generate_surgery_drop
from pipeline.vocabulary import TARGET_TRIAL_CONTRAST
from pipeline.yardsticks import yardstick

SIZES = {"site01": 300, "site02": 300, "site03": 16}  # the third too small to send its estimate


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("trial-network")
    homes = []
    for seed, (site, size) in enumerate(SIZES.items(), start=40):
        home = DataHome.resolve(root / site).ensure()
        (home.root / "models.json").write_text(json.dumps({"methods": ["ancova"]}), encoding="utf-8")
        generate_surgery_drop(home.landing / f"{site}-2026-11", size, seed, SurgeryParameters(), site=site)
        run_all(home)
        homes.append(home.root)
    coordinator = root / "coordinator"
    simulate(homes, coordinator, now=datetime(2026, 11, 30, 12, tzinfo=UTC))
    return {"homes": homes, "coordinator": coordinator}


def _own(home: Path) -> pd.DataFrame:
    with duckdb.connect(str(DataHome.resolve(home).warehouse_path), read_only=True) as con:
        return con.execute(
            "SELECT outcome, estimate, std_error, n_treated, n_control FROM model_estimates "
            "WHERE method = 'ccw' ORDER BY outcome"
        ).df()


def _bundle(home: Path) -> dict[str, object]:
    (path,) = sorted(p for p in outbox(DataHome.resolve(home)).glob("site*.json"))
    return json.loads(path.read_text(encoding="utf-8"))


def test_each_sites_own_estimate_travels_with_its_followed_patients(network: dict[str, object]) -> None:
    for home in network["homes"][:2]:  # type: ignore[index]
        bundle = _bundle(home)
        sent = [e for e in bundle["estimates"] if e["contrast"] == TARGET_TRIAL_CONTRAST]  # type: ignore[union-attr]
        own = _own(home).set_index("outcome")
        assert [e["outcome"] for e in sent] == ["sunnybrook_composite"]  # the answer's outcome
        assert not [line for line in bundle["left_out"] if TARGET_TRIAL_CONTRAST in line]  # type: ignore[union-attr]
        for entry in sent:
            row = own.loc[entry["outcome"]]
            assert entry["method"] == "ccw"
            assert (entry["estimate"], entry["std_error"]) == (row["estimate"], row["std_error"])
            assert (entry["n_treated"], entry["n_control"]) == (row["n_treated"], row["n_control"])
            assert min(entry["n_treated"], entry["n_control"]) >= 11


def test_a_site_whose_strategy_followed_few_patients_says_so_and_sends_none(network: dict[str, object]) -> None:
    small = _bundle(network["homes"][2])  # type: ignore[index]
    assert not [e for e in small["estimates"] if e["contrast"] == TARGET_TRIAL_CONTRAST]  # type: ignore[union-attr]
    assert [line for line in small["left_out"] if "target-trial estimate" in line]  # type: ignore[union-attr]


def test_the_coordinator_pools_the_sites_and_the_report_answers_first(network: dict[str, object]) -> None:
    coordinator = DataHome.resolve(network["coordinator"])  # type: ignore[arg-type]
    with duckdb.connect(str(network_warehouse(coordinator)), read_only=True) as con:
        pooled = con.execute(
            "SELECT outcome, stage, k_sites, estimate, ci_low, ci_high FROM network_estimates "
            "WHERE contrast = ? AND method = 'ccw' ORDER BY outcome",
            [TARGET_TRIAL_CONTRAST],
        ).df()
    assert list(pooled["outcome"]) == ["sunnybrook_composite"]
    assert list(pooled["stage"]) == ["two-stage"] and list(pooled["k_sites"]) == [2]
    for outcome, group in pooled.groupby("outcome"):
        sites = pd.concat([_own(h) for h in network["homes"][:2]])  # type: ignore[index]
        own = sites[sites["outcome"] == outcome]["estimate"]
        row = group.iloc[0]
        assert own.min() - 1e-9 <= row["estimate"] <= own.max() + 1e-9
        assert row["ci_low"] < row["estimate"] < row["ci_high"]
    report = write_network_report(coordinator).read_text(encoding="utf-8")
    answer = report.split("## The pooled answer")[1].split("##")[0]
    assert "Surgery within 90 days vs more injections (target trial), Sunnybrook composite at 12m (ccw" in answer
    assert "no pooled verdict: 2 sites gave an estimate (at least 3 needed)." in answer
    # No site has a patient on BTX+PT: that model is not pooled, and the others still are.
    assert "BTX+PT vs BTX, Sunnybrook composite at 12m: not estimable (not pooled: over the " in answer
    # The yardstick is the clinic report's (the same rule at every site and in the network), not the agreed SD.
    assert f"against a yardstick of {yardstick('sunnybrook_composite').value:.1f}" in report
