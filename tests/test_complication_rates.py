"""complication_rates on a generated site with known rates per modality: each rate inside its exact interval,
nothing where the truth is nothing, resolution as generated, and the interval Clopper-Pearson's."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from pipeline.contract import MODALITY_CODES
from pipeline.settings import DataHome
from pipeline.stages import ingest, publish_warehouse
from pipeline.tools.synthetic import SyntheticParameters, generate_drop
from pipeline.tools.synthetic_complications import ComplicationRate
from tests.conftest import BASE_PATIENTS, BASE_TREATMENTS

TRUTH = (
    ComplicationRate("selective_neurectomy", "incomplete_eye_closure", 0.3, 0.8, 90),
    ComplicationRate("selective_myectomy", "oral_incompetence", 0.25, 0.75, 60),
    ComplicationRate("selective_myectomy", "lower_lip_weakness", 0.15, 0.5, 120),
    ComplicationRate("botox", "eyelid_ptosis", 0.08, 1.0, 30),
)


@pytest.fixture(scope="module")
def rates(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    home = DataHome.resolve(tmp_path_factory.mktemp("rates")).ensure()
    params = SyntheticParameters(complications=TRUTH)
    generate_drop(home.landing / "site01-2026-11", patients=500, seed=19, site="site01", params=params)
    assert [d["status"] for d in ingest(home)["drops"]] == ["loaded"]
    publish_warehouse(home)
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        return con.execute("SELECT * FROM complication_rates").df()


def test_each_known_rate_is_inside_its_interval(rates: pd.DataFrame) -> None:
    by_modality = rates[rates["grouping"] == "modality"].set_index(["group_code", "code"])
    for truth in TRUTH:
        row = by_modality.loc[(MODALITY_CODES[truth.modality], truth.code)]
        assert row["patients_at_risk"] >= 30, truth
        assert row["ci_low"] <= truth.rate <= row["ci_high"], (truth, row.to_dict())
        assert row["ci_low"] <= row["rate"] <= row["ci_high"]


def test_no_rate_where_the_truth_is_none(rates: pd.DataFrame) -> None:
    """A code generated for one modality only is never counted under another (its events name their
    treatment), and its interval still says how high the rate could be."""
    modality = rates[rates["grouping"] == "modality"]
    generated = {(MODALITY_CODES[t.modality], t.code) for t in TRUTH}
    none = modality[[(g, c) not in generated for g, c in zip(modality["group_code"], modality["code"], strict=True)]]
    assert len(none) >= 8
    assert (none["patients_with"] == 0).all(), none
    assert (none["ci_low"] == 0).all() and (none["ci_high"] > 0).all()


def test_resolution_is_recovered(rates: pd.DataFrame) -> None:
    by_modality = rates[rates["grouping"] == "modality"].set_index(["group_code", "code"])
    medians = 0
    for truth in TRUTH:
        row = by_modality.loc[(MODALITY_CODES[truth.modality], truth.code)]
        low, high = proportion_confint(row["patients_resolved"], row["patients_with"], alpha=0.05, method="beta")
        assert low - 1e-9 <= truth.resolved_share <= high + 1e-9, (truth, row.to_dict())
        # Resolution takes a log-normal number of days with the set median (spread 0.4 on the log scale): the
        # median of 12 or more is within 40% of it (about 2.5 standard errors on the log scale).
        if row["patients_resolved"] >= 12:
            medians += 1
            assert abs(row["median_days_to_resolution"] / truth.median_days_to_resolution - 1) < 0.4, truth
    assert medians >= 2


def test_the_interval_is_clopper_pearsons_and_rates_add_up(rates: pd.DataFrame) -> None:
    for row in rates.itertuples(index=False):
        low, high = proportion_confint(row.patients_with, row.patients_at_risk, alpha=0.05, method="beta")
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-9), row
        assert row.rate == pytest.approx(row.patients_with / row.patients_at_risk)
        assert row.patients_resolved <= row.patients_with <= row.patients_at_risk
    # Every patient of a combination is in it once: the combinations' sizes add up to the patients treated.
    combinations = rates[rates["grouping"] == "combination"].drop_duplicates("group_code")
    modalities = rates[rates["grouping"] == "modality"].drop_duplicates("group_code")
    assert combinations["patients_at_risk"].sum() <= modalities["patients_at_risk"].sum()


def test_a_store_made_before_contract_1_2_builds(home: DataHome, write_drop) -> None:
    """A store whose last write predates complications (no complications_history) still builds, with none."""
    write_drop("d1", BASE_PATIENTS, BASE_TREATMENTS, [])
    ingest(home)
    with duckdb.connect(str(home.store_path)) as con:
        con.execute("DROP TABLE complications_history")
    publish_warehouse(home)
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM patients").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM complications").fetchone()[0] == 0


def test_a_site_that_sends_no_complications_is_not_counted_at_risk(tmp_path) -> None:
    """A second clinic exports no complications file: it has not recorded none, so its 300 patients would
    cut every rate by more than half. Only the reporting site's patients are at risk; its rates are the
    ones it has alone; the second site is counted at risk once a drop of it carries the file."""
    params = SyntheticParameters(complications=TRUTH)
    alone = DataHome.resolve(tmp_path / "alone").ensure()
    generate_drop(alone.landing / "site01-2026-11", patients=300, seed=19, site="site01", params=params)
    both = DataHome.resolve(tmp_path / "both").ensure()
    generate_drop(both.landing / "site01-2026-11", patients=300, seed=19, site="site01", params=params)
    generate_drop(both.landing / "site02-2026-11", patients=300, seed=20, site="site02")
    columns = "grouping, group_code, code, patients_at_risk, patients_with"
    found = {}
    for name, home in (("alone", alone), ("both", both)):
        ingest(home)
        publish_warehouse(home)
        with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
            found[name] = con.execute(f"SELECT {columns} FROM complication_rates ORDER BY ALL").df()
            sites = con.execute("SELECT site_id FROM complication_sites").fetchall()
    assert sites == [("site01",)]
    pd.testing.assert_frame_equal(found["alone"], found["both"])
    # site02 now sends the file (with no event yet): its patients are at risk from then on.
    drop = both.landing / "site02-2026-12"
    generate_drop(drop, patients=300, seed=20, site="site02", params=SyntheticParameters(complications=TRUTH))
    (drop / "complications.csv").write_text(
        (drop / "complications.csv").read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8"
    )
    ingest(both)
    publish_warehouse(both)
    with duckdb.connect(str(both.warehouse_path), read_only=True) as con:
        later = con.execute(f"SELECT {columns} FROM complication_rates ORDER BY ALL").df()
        assert con.execute("SELECT count(*) FROM complication_sites").fetchone()[0] == 2
    at_risk = later.merge(found["alone"], on=["grouping", "group_code", "code"], suffixes=("", "_alone"))
    assert (at_risk["patients_at_risk"] > at_risk["patients_at_risk_alone"]).any()
    assert (at_risk["patients_with"] == at_risk["patients_with_alone"]).all()
