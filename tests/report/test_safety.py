"""The Safety section: complication rates in plain words first, and the n<11 rule on rare complications (no count
from 1 to 10 printed or derivable from the section's other numbers), on a real warehouse and on made-up counts."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.report.build import write_report
from pipeline.report.disclosure import protect
from pipeline.report.published_counts import apply_register
from pipeline.report.register import Register
from pipeline.report.safety import (
    COMPLICATION_WORDS,
    MODALITY_WORDS,
    SafetyData,
    finish_safety,
    read_safety,
    register_safety,
    safety_table,
)
from pipeline.report.suppression import SMALL_CELL, audit_table
from pipeline.settings import DataHome
from pipeline.stages import ingest, publish_warehouse
from pipeline.tools.synthetic import SyntheticParameters, generate_drop
from pipeline.tools.synthetic_complications import ComplicationRate

# Common enough to show after myectomy and BoNT; rare after neurectomy (a handful of some 30 patients).
RATES = (
    ComplicationRate("selective_myectomy", "oral_incompetence", 0.35, 0.5, 60),
    ComplicationRate("selective_neurectomy", "incomplete_eye_closure", 0.1, 1.0, 90),
    ComplicationRate("botox", "eyelid_ptosis", 0.07, 1.0, 30),
)
SMALL = re.compile(r"^(?:[1-9]|10)$")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = DataHome.resolve(tmp_path_factory.mktemp("safety")).ensure()
    params = SyntheticParameters(complications=RATES)
    generate_drop(home.landing / "site01-2026-11", patients=300, seed=7, site="site01", params=params)
    ingest(home)
    publish_warehouse(home)
    return home.warehouse_path


def section(data: SafetyData) -> tuple[pd.DataFrame, list[str], dict[str, object]]:
    """The section as the report makes it: its table, registered, audited, then its words."""
    table = safety_table(data)
    register = Register("2026Q4")
    register_safety(register, table, data)
    audit = protect(register, None, ("safety",))
    apply_register(register, {"safety": table, "table1": pd.DataFrame({"characteristic": []})})
    sentences = finish_safety(table, data, register)
    audit_table("safety", table)
    return table, sentences, audit


def counts_of(text: str) -> str:
    return str(text).split(" (")[0].strip()


def test_rare_complications_print_as_fewer_than_11_with_no_rate(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        data = read_safety(con)
        rates = con.execute("SELECT * FROM complication_rates WHERE grouping = 'modality'").df()
    assert data is not None
    table, sentences, audit = section(data)
    assert audit["passed"]
    words = {
        (MODALITY_WORDS[g][0], COMPLICATION_WORDS[c]): n
        for g, c, n in zip(data.rates["group_code"], data.rates["code"], data.rates["patients_with"], strict=True)
    }
    rare = [0 < words[(t, c)] < SMALL_CELL for t, c in zip(table["treatment"], table["complication"], strict=True)]
    assert any(rare) and not all(rare), data.rates
    for i, small in enumerate(rare):
        row, sentence = table.iloc[i], sentences[i]
        for column in ("patients at risk", "patients with it", "patients resolved"):
            assert not SMALL.match(counts_of(row[column])), row.to_dict()
        if small:
            assert row["patients with it"] == "<11" and row["rate per 100 (95% CI)"] == "", row.to_dict()
            # Its bounds, as the table's "<11" and the group's n give them: never "too few to give a rate".
            at_risk = int(row["patients at risk"])
            assert sentence.startswith(f"1 to 10 of the {at_risk} patients "), sentence
            assert f", {100 / at_risk:.0f}% to {1000 / at_risk:.0f}% (" in sentence, sentence
            assert "too few" not in sentence and not re.search(r"\d+ of every 100", sentence)
    from pipeline.report.safety import _bounds

    assert _bounds(1, 10, 35) == "3% to 29%"  # the 1 to 10 of 35 after selective neurectomy
    # The myectomy rate, in words first, with its interval as the warehouse has it.
    mart = rates.set_index(["group_code", "code"]).loc[("MY", "oral_incompetence")]
    expected = (
        f"{100 * mart['rate']:.0f} of every 100 patients after selective myectomy had oral incompetence "
        f"(95% CI {100 * mart['ci_low']:.0f} to {100 * mart['ci_high']:.0f}; {mart['patients_with']} of "
        f"{mart['patients_at_risk']} patients)"
    )
    assert any(s.startswith(expected) for s in sentences), sentences


def made_up(at_risk: int, with_it: int, resolved: int) -> SafetyData:
    """One modality and one code with these counts: patients P1.. at risk, the first ones with it and resolved."""
    patients = [("s1", f"P{i}") for i in range(at_risk)]
    events = pd.DataFrame(
        {
            "group_code": "SN",
            "code": "incomplete_eye_closure",
            "site_id": "s1",
            "patient_id": [p for _, p in patients[:with_it]],
            "resolved": [i < resolved for i in range(with_it)],
        }
    )
    rates = pd.DataFrame(
        [
            {
                "group_code": "SN",
                "code": "incomplete_eye_closure",
                "patients_at_risk": at_risk,
                "patients_with": with_it,
                "rate": with_it / at_risk,
                "ci_low": 0.1,
                "ci_high": 0.5,
                "patients_resolved": resolved,
                "median_days_to_resolution": 80.0,
            }
        ]
    )
    return SafetyData(rates, {"SN": patients}, events)


@pytest.mark.parametrize(
    ("at_risk", "with_it", "resolved", "rate_shown", "share_shown"),
    [
        (60, 20, 20, True, True),  # all resolved: nothing small
        (60, 20, 15, True, False),  # 5 not resolved: the share (and the count beside 20) would give it
        (60, 55, 30, False, False),  # 5 without it: the count and rate would give it
        (60, 4, 4, False, False),  # 4 with it: <11, no rate
        (8, 0, 0, False, False),  # 8 at risk: no rate on fewer than 11
    ],
)
def test_no_count_from_1_to_10_can_be_worked_out(
    at_risk: int, with_it: int, resolved: int, rate_shown: bool, share_shown: bool
) -> None:
    data = made_up(at_risk, with_it, resolved)
    table, sentences, audit = section(data)
    assert audit["passed"]
    row = table.iloc[0]
    assert bool(row["rate per 100 (95% CI)"]) == rate_shown, row.to_dict()
    assert ("%" in row["patients resolved"]) == share_shown, row.to_dict()
    assert bool(row["median days to resolution"]) == share_shown, row.to_dict()
    printed = [counts_of(row[c]) for c in ("patients at risk", "patients with it", "patients resolved")]
    assert not [p for p in printed if SMALL.match(p)], printed
    # What can be read from the row: every difference of two printed exact counts is 0 or 11 or more.
    exact = [int(p) for p in printed if p.isdigit()]
    assert not [a - b for a in exact for b in exact if 0 < a - b < SMALL_CELL], row.to_dict()
    assert ("of every 100" in sentences[0]) == rate_shown, sentences


def test_the_report_carries_the_section_and_its_table(warehouse: Path, tmp_path: Path) -> None:
    html = write_report(warehouse, "2026Q4", tmp_path)
    text = html.read_text(encoding="utf-8")
    assert 'id="safety"' in text and 'href="#safety"' in text
    assert "of every 100 patients after selective myectomy had oral incompetence" in text
    csv = pd.read_csv(html.parent / "safety.csv", dtype=str, keep_default_na=False)
    assert len(csv) == 3
    for column in ("patients at risk", "patients with it", "patients resolved"):
        assert not [v for v in csv[column] if SMALL.match(counts_of(v))], csv


def test_the_section_says_when_a_site_sends_no_complications(warehouse: Path, tmp_path: Path) -> None:
    """A second clinic without the complications file: its patients are not at risk, and the section says so."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        one_site = read_safety(con)
    assert one_site is not None and (one_site.sites_reporting, one_site.sites) == (1, 1)
    assert not [s for s in section(one_site)[1] if "sites that report complications" in s]
    home = DataHome.resolve(tmp_path / "two").ensure()
    params = SyntheticParameters(complications=RATES)
    generate_drop(home.landing / "site01-2026-11", patients=300, seed=7, site="site01", params=params)
    generate_drop(home.landing / "site02-2026-11", patients=300, seed=8, site="site02")
    ingest(home)
    publish_warehouse(home)
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        two_sites = read_safety(con)
    assert two_sites is not None and (two_sites.sites_reporting, two_sites.sites) == (1, 2)
    assert two_sites.at_risk == one_site.at_risk
    sentences = section(two_sites)[1]
    assert sentences[0].startswith("Counted at the 1 of 2 sites that report complications")
