"""The whole exchange between data homes: four sites (one of about 40 patients) each loaded by its own
``synk run`` from its own generated drop, bundles, requests and answers as files, pooled by the coordinator;
checked against one data home holding every site's patients (statsmodels on the stacked rows, site fixed
effects), to a relative 1e-8 (estimate, model-based SE, and the HC3 SE after the second exchange)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from pipeline.cli import main as synk
from pipeline.errors import PipelineError
from pipeline.network import protocol
from pipeline.network.answer import answer_request
from pipeline.network.coordinator import network_warehouse, pool_landing
from pipeline.network.simulate import outbox, simulate
from pipeline.network.site_frames import model_frames
from pipeline.network.site_weights import site_iptw_weights
from pipeline.report.suppression import SMALL_CELL
from pipeline.settings import DataHome, ModelSettings
from pipeline.tools.synthetic_network import generate_network

SIZES = [40, 80, 120, 160]
TOLERANCE = 1e-8
SITE_METHODS = {"methods": ["ancova", "iptw"]}  # the two-stage methods, fast


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("network")
    # The single clinic's mix of combinations: the small site then has enough patients on one modality.
    sites = generate_network(root / "sites", len(SIZES), seed=10, sizes=SIZES, combined_mix=None)
    homes = [Path(str(s["home"])) for s in sites]
    pooled = root / "pooled"
    for home in homes:
        (home / "models.json").write_text(json.dumps(SITE_METHODS), encoding="utf-8")
        assert synk(["run", "--home", str(home)]) == 0
    for home in homes:  # one data home holding every site's patients: the same drops, together
        for source in sorted((root / "sites").glob(f"{home.name}/landing/*")):
            shutil.copytree(source, pooled / "landing" / source.name)
    (pooled / "models.json").write_text(json.dumps({"methods": ["unadjusted"]}), encoding="utf-8")
    assert synk(["run", "--home", str(pooled)]) == 0
    coordinator = root / "coordinator"
    lines = simulate(homes, coordinator, now=datetime(2026, 11, 30, 12, tzinfo=UTC))
    return {"root": root, "homes": homes, "pooled": pooled, "coordinator": coordinator, "lines": lines}


def _estimates(coordinator: Path) -> pd.DataFrame:
    with duckdb.connect(str(network_warehouse(DataHome.resolve(coordinator))), read_only=True) as con:
        return con.execute("SELECT * FROM network_estimates").df()


def _stacked(pooled: Path, key: str, sites: list[str]) -> sm.regression.linear_model.RegressionModel:
    """The same model on the stacked patients of one data home: site dummies (the first site the
    reference), the protocol's columns; for IPTW each site's own propensity weights (site-stratified)."""
    with duckdb.connect(str(DataHome.resolve(pooled).warehouse_path), read_only=True) as con:
        model = {m.key: m for m in model_frames(con)}[key]
    frame = model.frame[model.frame["site_id"].isin(sites)].reset_index(drop=True)
    x = pd.DataFrame({"const": 1.0}, index=frame.index)
    for site in sites[1:]:
        x[f"site[{site}]"] = (frame["site_id"] == site).astype(float)
    for column in model.columns:
        x[column] = frame[column].astype(float)
    y = frame["change"].to_numpy(dtype=float)
    if model.kind != "iptw":
        return sm.OLS(y, x), list(x.columns)
    weights = np.empty(len(frame))
    for site in sites:
        rows = frame.index[frame["site_id"] == site]
        weights[rows] = site_iptw_weights(
            frame.loc[rows], protocol.PROPENSITY_PREDICTORS, site, truncation=ModelSettings().weight_truncation
        )
    return sm.WLS(y, x, weights=weights), list(x.columns)


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def test_one_stage_equals_one_data_home_with_every_patient(network: dict[str, object]) -> None:
    estimates = _estimates(network["coordinator"])
    one = estimates[estimates["stage"] == "one-stage"]
    assert len(one) >= 3 and set(one["method"]) >= {"ancova", "iptw"}
    robust_checked = 0
    worst = {"estimate": 0.0, "model SE": 0.0, "robust SE": 0.0}
    for row in one.itertuples():
        kind = "synergy" if row.contrast.startswith("synergy:") else row.method
        key = f"{kind}|{row.contrast}|{row.outcome}|{row.timepoint}"
        model, names = _stacked(network["pooled"], key, row.sites.split(","))
        column = names.index(protocol.ESTIMATED[kind])
        plain = model.fit()
        worst["estimate"] = max(worst["estimate"], _relative(row.estimate, np.asarray(plain.params)[column]))
        worst["model SE"] = max(worst["model SE"], _relative(row.std_error_model, np.asarray(plain.bse)[column]))
        if "robust SE from the second exchange" in row.note:
            robust = model.fit(cov_type="HC3")
            worst["robust SE"] = max(worst["robust SE"], _relative(row.std_error, np.asarray(robust.bse)[column]))
            robust_checked += 1
    assert robust_checked >= 1, "no model had every site answer the second exchange"
    small = str(_bundle_of(network["homes"][0])["site"])
    assert one["sites"].str.contains(small).any(), "the premise: the site of about 40 patients contributes"
    print(f"one-stage vs one data home, worst relative difference: {worst}")  # shown with pytest -s
    assert max(worst.values()) < TOLERANCE, worst


def test_both_stages_side_by_side_with_the_flag(network: dict[str, object]) -> None:
    estimates = _estimates(network["coordinator"])
    two = estimates[estimates["stage"] == "two-stage"]
    assert len(two) and (two["k_sites"] >= 3).any()
    several = two[two["k_sites"] >= 2]
    assert several[["tau2", "i2", "pi_low", "pi_high"]].notna().all().all()
    assert two.loc[two["k_sites"] == 1, "tau2"].isna().all()  # one site: no heterogeneity to speak of
    both = estimates.groupby(["method", "contrast"])["stage"].nunique()
    assert (both == 2).any()
    for (_, _), group in estimates.groupby(["method", "contrast"]):
        if group["stage"].nunique() == 2:
            one, two_row = group.set_index("stage").loc[["one-stage", "two-stage"]].itertuples()
            differ = abs(one.estimate - two_row.estimate) > 0.25 * max(one.std_error, two_row.std_error)
            assert bool(one.stages_differ) == differ == bool(two_row.stages_differ)


def _bundle_of(home: Path) -> dict[str, object]:
    (path,) = [p for p in sorted(outbox(DataHome.resolve(home)).glob("*.json")) if not p.name.startswith("answer-")]
    return json.loads(path.read_text(encoding="utf-8"))


def _small(value: float) -> bool:
    return 0 < round(value) < SMALL_CELL


def test_a_site_with_a_category_of_1_to_10_sends_nothing_that_reveals_it(network: dict[str, object]) -> None:
    """An independent reading of the smallest site's bundle file: every count it holds, and every cell of
    every model's X'X (n, each indicator's 1s and 0s, each pair's four cells), is 0 or at least 11; its
    combinations of 1 to 10 patients appear nowhere."""
    home = network["homes"][0]
    with duckdb.connect(str(DataHome.resolve(home).warehouse_path), read_only=True) as con:
        sizes = con.execute(
            "SELECT combination, count(*) FROM modality_combinations WHERE combination IS NOT NULL GROUP BY 1"
        ).fetchall()
    small = [c for c, n in sizes if 0 < n < SMALL_CELL]
    assert small, "the premise: the small site has a combination of 1 to 10 patients"
    bundle = _bundle_of(home)
    sent = {row["group_code"] for row in bundle["complications"] if row["grouping"] == "combination"}
    assert not sent & set(small)
    if set(protocol.SYNERGY.groups) & set(small):
        assert not [m for m in bundle["models"] if m["kind"] == "synergy"]
    for model in bundle["models"]:
        xtx = np.asarray(model["xtx"])
        names = model["names"]
        n = xtx[0, 0] if not model["weighted"] else model["n"]
        assert not _small(model["n"]) and not _small(n)
        indicators = [i for i, name in enumerate(names) if name not in ("const", "baseline_value")]
        for i in indicators:
            ones = model["counts"][names[i]] if model["weighted"] else xtx[i, i]
            assert not _small(ones) and not _small(model["n"] - ones)
        if not model["weighted"]:
            for i in indicators:
                for j in indicators:
                    if i < j:
                        both, a, b = xtx[i, j], xtx[i, i], xtx[j, j]
                        for cell in (both, a - both, b - both, model["n"] - a - b + both):
                            assert not _small(cell), (model["key"], names[i], names[j])
        assert len(names) * 10 <= model["n"]
    for row in bundle["complications"]:
        assert not _small(row["patients_at_risk"])
        if "patients_with" in row:
            assert not _small(row["patients_with"]) and not _small(row["patients_at_risk"] - row["patients_with"])
    for row in bundle["estimates"]:
        assert row["n_treated"] >= SMALL_CELL and row["n_control"] >= SMALL_CELL
    for row in bundle["responders"]:
        for value in (row["n_treated"], row["responders_treated"], row["n_treated"] - row["responders_treated"]):
            assert not _small(value)
    assert bundle["left_out"], "the bundle says what it left out"


def _send_copy(source: Path, landing: Path, name: str, change=None) -> Path:
    payload = json.loads(source.read_text(encoding="utf-8"))
    if change:
        change(payload)
    target = landing / name
    landing.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload), encoding="utf-8")
    shutil.copy2(source.with_name(source.name + ".sha256"), target.with_name(name + ".sha256"))
    return target


def test_an_altered_duplicated_unknown_or_wrong_version_bundle_is_refused(
    network: dict[str, object], tmp_path: Path
) -> None:
    coordinator = DataHome.resolve(tmp_path / "coordinator").ensure()
    sites = [str(_bundle_of(h)["site"]) for h in network["homes"]]
    (coordinator.root / "network.json").write_text(json.dumps({"sites": sites[1:]}), encoding="utf-8")
    box = outbox(DataHome.resolve(network["homes"][1]))
    (source,) = [p for p in box.glob("*.json") if not p.name.startswith("answer-")]
    shutil.copy2(source, coordinator.landing / "a.json")
    shutil.copy2(source.with_name(source.name + ".sha256"), coordinator.landing / "a.json.sha256")
    first = pool_landing(coordinator)
    assert first.received.accepted and not first.refused

    def altered(p: dict) -> None:
        p["models"][0]["yty"] += 1.0

    _send_copy(source, coordinator.landing, "b.json", altered)
    shutil.copy2(source, coordinator.landing / "c.json")  # the same bundle again
    shutil.copy2(source.with_name(source.name + ".sha256"), coordinator.landing / "c.json.sha256")
    small = outbox(DataHome.resolve(network["homes"][0]))
    (unknown,) = [p for p in small.glob("*.json") if not p.name.startswith("answer-")]
    shutil.copy2(unknown, coordinator.landing / "d.json")
    shutil.copy2(unknown.with_name(unknown.name + ".sha256"), coordinator.landing / "d.json.sha256")

    def newer(p: dict) -> None:
        p["version"] = protocol.VERSION + 1

    _send_copy(source, coordinator.landing, "e.json", newer)
    result = pool_landing(coordinator)
    assert not result.received.accepted
    reasons = dict(zip(["b", "c", "d", "e"], result.refused, strict=True))
    assert f"version {protocol.VERSION + 1} is not the network's version {protocol.VERSION}" in reasons["e"]
    assert "b.json refused: it was altered" in reasons["b"]
    assert "a duplicate" in reasons["c"]
    assert f"site {sites[0]} is not one of the network's sites" in reasons["d"]
    for sentence in result.refused:
        assert sentence.endswith(".") and ". " not in sentence and "\n" not in sentence
    assert (coordinator.root / "archive" / "network" / "refused").exists()
    with duckdb.connect(str(coordinator.staging / "network.duckdb"), read_only=True) as con:
        statuses = con.execute("SELECT status, count(*) FROM network_ledger GROUP BY 1 ORDER BY 1").fetchall()
    assert statuses == [("accepted", 1), ("refused", 4)]


def test_a_request_is_answered_once(network: dict[str, object]) -> None:
    coordinator = DataHome.resolve(network["coordinator"])
    home = network["homes"][1]
    site = str(_bundle_of(home)["site"])
    (request,) = sorted((coordinator.root / "requests" / site).glob("*.json"))
    with pytest.raises(PipelineError, match="was answered already"):
        answer_request(DataHome.resolve(home), request, Path(str(network["root"])) / "again.json")


def test_the_coordinators_dag_pools_under_dag_test(
    network: dict[str, object], tmp_path: Path, dags, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pool_network_bundles through Airflow's dag.test(): the sites' bundles copied into a fresh
    coordinator's landing are received, pooled into network_estimates, and each site gets a request."""
    from pipeline.tools.airflow_local import run_dag_tasks

    coordinator = DataHome.resolve(tmp_path / "dag_coordinator").ensure()
    sites, contributing = [], []
    for home in network["homes"]:
        box = outbox(DataHome.resolve(home))
        (bundle,) = [p for p in box.glob("*.json") if not p.name.startswith("answer-")]
        shutil.copy2(bundle, coordinator.landing / bundle.name)
        shutil.copy2(bundle.with_name(bundle.name + ".sha256"), coordinator.landing / (bundle.name + ".sha256"))
        payload = json.loads(bundle.read_text(encoding="utf-8"))
        sites.append(str(payload["site"]))
        if payload["models"]:
            contributing.append(str(payload["site"]))
    (coordinator.root / "network.json").write_text(json.dumps({"sites": sites}), encoding="utf-8")
    monkeypatch.setenv("SYNK_HOME", str(coordinator.root))
    state, tasks = run_dag_tasks(dags["pool_network_bundles"])
    assert state.endswith("success"), tasks
    assert set(tasks.values()) == {"success"}
    assert not any(coordinator.landing.glob("*.json"))
    estimates = _estimates(coordinator.root)
    assert set(estimates["stage"]) == {"one-stage", "two-stage"}
    assert sorted(p.parent.name for p in (coordinator.root / "requests").glob("*/*.json")) == sorted(contributing)


def test_the_network_report_gives_the_answer_first_and_says_why_a_verdict_is_held(
    network: dict[str, object],
) -> None:
    coordinator = DataHome.resolve(network["coordinator"])
    (report,) = (coordinator.published / "network").glob("*/report.md")
    text = report.read_text(encoding="utf-8")
    assert text.index("## The pooled answer") < text.index("![forest plot]") < text.index("## Safety")
    assert "points of improvement (95% CI" in text
    assert "Heterogeneity between clinics" in text and "prediction interval" in text
    assert "Disclosure audit" in text and "0 leak(s)" in text
    estimates = _estimates(coordinator.root)
    few = estimates[(estimates["stage"] == "one-stage") & (estimates["k_sites"] < 3)]
    if len(few):
        assert "no pooled verdict: the pooled model holds" in text
    assert sorted(p.name for p in report.parent.glob("forest-*.png"))
    assert list((coordinator.staging / "releases").glob("network-report-*.register.json.gz"))


def test_the_gate() -> None:
    from pipeline.network.report import gate

    row = pd.Series({"k_sites": 5, "i2": 0.1, "tau2": 1.0})
    assert gate(row, 4.0) == []
    assert gate(pd.Series({"k_sites": 2, "i2": 0.1, "tau2": 1.0}), 4.0)[0].startswith("2 sites")
    assert "I^2 is 0.50" in gate(pd.Series({"k_sites": 5, "i2": 0.5, "tau2": 1.0}), 4.0)[0]
    assert "tau is 3.0 points" in gate(pd.Series({"k_sites": 5, "i2": 0.1, "tau2": 9.0}), 4.0)[0]


def test_a_site_refuses_an_altered_request_and_more_than_its_quarters_answers(
    network: dict[str, object], tmp_path: Path
) -> None:
    coordinator = DataHome.resolve(network["coordinator"])
    home = tmp_path / "site"
    shutil.copytree(network["homes"][2], home)  # the site as it was, with its bundle sent
    site = str(_bundle_of(home)["site"])
    (request,) = sorted((coordinator.root / "requests" / site).glob("*.json"))
    payload = json.loads(request.read_text(encoding="utf-8"))
    payload["models"][0]["beta"][0] += 1.0
    altered = tmp_path / request.name
    altered.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(PipelineError, match="altered after the coordinator wrote it"):
        answer_request(DataHome.resolve(home), altered, tmp_path / "a.json")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    log = home / "staging" / "network" / "answered.jsonl"
    log.write_text(
        "".join(
            json.dumps({"request_id": f"other-{i}", "bundle_id": f"other-{i}", "quarter": "2026Q4"}) + "\n"
            for i in range(protocol.MAX_REQUESTS_PER_QUARTER)
        ),
        encoding="utf-8",
    )
    with pytest.raises(PipelineError, match="answered 4 requests in 2026Q4 already"):
        answer_request(DataHome.resolve(home), request, tmp_path / "b.json", now=now)
    log.write_text("", encoding="utf-8")  # a new quarter's count: the request is answered
    assert answer_request(DataHome.resolve(home), request, tmp_path / "c.json", now=now).exists()
