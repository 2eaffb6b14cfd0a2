"""write_report on a small warehouse file, and the small-cell suppression helpers by hand."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.models import fit_models
from pipeline.quarters import parse_quarter
from pipeline.report import write_report
from pipeline.report.build import _build
from pipeline.report.reading import read_warehouse
from pipeline.report.tables import estimates_table, flow_counts, format_count, hide_small, suppress_counts
from pipeline.settings import DesignSettings
from pipeline.warehouse import MODEL_TABLES, write_design_tables
from tests.report.helpers import light_settings

SCHEMA = """
CREATE TABLE patients (site_id VARCHAR, patient_id VARCHAR, sex VARCHAR, age_at_onset INTEGER, side VARCHAR,
    etiology VARCHAR, index_year INTEGER, onset_to_index_days INTEGER, prior_treatment BOOLEAN,
    first_drop_id VARCHAR, last_drop_id VARCHAR);
CREATE TABLE modality_combinations (site_id VARCHAR, patient_id VARCHAR, t0_day INTEGER, combination VARCHAR,
    n_modalities INTEGER, is_combined BOOLEAN, btx BOOLEAN, pt BOOLEAN, sn BOOLEAN, my BOOLEAN, os BOOLEAN,
    followup_days INTEGER, classifiable BOOLEAN, exclusion_reason VARCHAR);
CREATE TABLE followup_scores (site_id VARCHAR, patient_id VARCHAR, outcome VARCHAR, timepoint VARCHAR,
    visit_day INTEGER, days_from_t0 INTEGER, value DOUBLE, baseline_value DOUBLE, change DOUBLE);
CREATE TABLE load_ledger (drop_id VARCHAR, file VARCHAR, sha256 VARCHAR, rows_in BIGINT, rows_loaded BIGINT,
    rows_quarantined BIGINT, status VARCHAR, reason VARCHAR, received_at TIMESTAMP, loaded_at TIMESTAMP);
CREATE TABLE quarantine (drop_id VARCHAR, file VARCHAR, row_number BIGINT, rule VARCHAR, columns VARCHAR,
    "row" JSON);
CREATE TABLE build_info AS SELECT TIMESTAMP '2026-12-31 08:00:00' AS built_at, TIMESTAMP '2026-12-31 08:00:00' AS as_of,
    'abc123def4567890' AS data_snapshot, '0.1.0' AS code_version,
    '{"exposure_window_days": 180, "baseline_lookback_days": 90}'::JSON AS design_settings;
CREATE TABLE treatments (site_id VARCHAR, patient_id VARCHAR, treatment_id VARCHAR, "day" INTEGER,
    modality VARCHAR, botox_units DOUBLE, pt_sessions INTEGER, target VARCHAR);
CREATE TABLE assessments (site_id VARCHAR, patient_id VARCHAR, visit_day INTEGER, instrument VARCHAR, item VARCHAR,
    "value" DOUBLE, days_since_last_botox INTEGER);
"""
DAYS = {"baseline": -10, "3m": 90, "6m": 180, "12m": 365}


def populate(con: duckdb.DuckDBPyConnection, seed: int = 11, n: int = 160) -> None:
    con.execute(SCHEMA)
    write_design_tables(con, DesignSettings())
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(n)]
    baseline = rng.normal(50, 15, n)
    combined = rng.random(n) < 1 / (1 + np.exp((baseline - 50) / 8))
    combination = np.where(combined, "BTX+PT", np.where(rng.random(n) < 0.7, "BTX", "PT")).astype(object)
    combination[:3] = "BTX+PT+SN"  # a rare combination: 3 patients, shown as <11
    classifiable = np.ones(n, dtype=bool)
    classifiable[3:7] = False  # 4 patients not followed to the landmark: a small cell
    patients = pd.DataFrame(
        {
            "site_id": "s1",
            "patient_id": ids,
            "sex": np.where(rng.random(n) < 0.6, "F", "M"),
            "age_at_onset": rng.integers(20, 80, n),
            "side": "L",
            "etiology": "bell",
            "index_year": 2022,
            "onset_to_index_days": rng.integers(100, 900, n),
            "prior_treatment": rng.random(n) < 0.2,
            "first_drop_id": "d1",
            "last_drop_id": "d1",
        }
    )
    con.register("p", patients)
    con.execute("INSERT INTO patients SELECT * FROM p")
    combos = pd.DataFrame(
        {"site_id": "s1", "patient_id": ids, "combination": combination, "classifiable": classifiable}
    )
    con.register("c", combos)
    con.execute("""INSERT INTO modality_combinations SELECT site_id, patient_id, 0, combination,
        len(string_split(combination, '+')), len(string_split(combination, '+')) >= 2, contains(combination, 'BTX'),
        contains(combination, 'PT'), contains(combination, 'SN'), false, false,
        CASE WHEN classifiable THEN 400 ELSE 100 END, classifiable,
        CASE WHEN NOT classifiable THEN 'follow-up ends before the 180-day landmark' END FROM c""")
    rows = []
    for outcome, base, slope, sign in (
        ("sunnybrook_composite", baseline, -0.4, 1.0),
        ("saq", rng.normal(60, 12, n), -0.3, -1.0),
    ):
        rows.append(pd.DataFrame({"patient_id": ids, "outcome": outcome, "timepoint": "baseline", "value": base}))
        for timepoint, share in (("3m", 0.5), ("6m", 0.8), ("12m", 1.0)):
            change = share * (sign * 8 + slope * (base - base.mean()) + sign * 6 * combined) + rng.normal(0, 6, n)
            keep = rng.random(n) < 0.9  # some loss to follow-up
            rows.append(
                pd.DataFrame({"patient_id": ids, "outcome": outcome, "timepoint": timepoint, "value": base + change})[
                    keep
                ]
            )
    scores = pd.concat(rows, ignore_index=True).assign(site_id="s1")
    scores["visit_day"] = scores["timepoint"].map(DAYS)
    con.register("s", scores)
    con.execute("""INSERT INTO followup_scores SELECT f.site_id, f.patient_id, f.outcome, f.timepoint, f.visit_day,
        f.visit_day, f.value, b.value, CASE WHEN f.timepoint <> 'baseline' THEN f.value - b.value END
        FROM s AS f LEFT JOIN (SELECT * FROM s WHERE timepoint = 'baseline') AS b
        USING (site_id, patient_id, outcome)""")
    received, loaded = pd.Timestamp("2026-11-01 10:00"), pd.Timestamp("2026-11-01 10:01")
    con.executemany(
        "INSERT INTO load_ledger VALUES (?, ?, ?, ?, ?, ?, 'loaded', NULL, ?, ?)",
        [
            ("d1", "patients.csv", "aa", 165, 160, 5, received, loaded),
            ("d1", "treatments.csv", "bb", 400, 380, 20, received, loaded),
            ("d1", "assessments.csv", "cc", 2000, 1970, 30, received, loaded),
        ],
    )
    quarantine = [("d1", "patients.csv", i + 2, "range:age_at_onset", "age_at_onset", "{}") for i in range(5)]
    quarantine += [("d1", "treatments.csv", i + 2, "unknown_patient", "patient_id", "{}") for i in range(20)]
    quarantine += [("d1", "assessments.csv", i + 2, "range:value; unknown_patient", "value", "{}") for i in range(30)]
    con.executemany("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?)", quarantine)
    results = fit_models(con, light_settings(), data_snapshot="abc123def4567890", code_version="0.1.0")
    for table in MODEL_TABLES:
        frame = getattr(results, table, None)
        if frame is not None:
            con.register("r", frame)
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM r")
            con.unregister("r")


def build_populated(folder: Path) -> tuple[Path, dict]:
    """A populated warehouse in ``folder``, read and built as the report builds it (nothing written): the
    warehouse and the tables, figures (by name), template context and register."""
    warehouse = folder / "outcomes.duckdb"
    con = duckdb.connect(str(warehouse))
    populate(con)
    con.close()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        data = read_warehouse(con)
    finally:
        con.close()
    tables, figs, context, register = _build(data, "2026Q4")
    return warehouse, {"tables": tables, "figures": {f.name: f for f in figs}, "context": context, "register": register}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    warehouse = folder / "outcomes.duckdb"
    con = duckdb.connect(str(warehouse))
    populate(con)
    con.close()
    return write_report(warehouse, "2026Q4", folder / "published")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_report_is_written_where_expected_with_its_files(report: Path) -> None:
    assert report.name == "report.html" and report.parent.name == "2026-Q4" and report.exists()
    pngs = ("trajectories.png", "forest_primary.png", "forest_6m_sunnybrook.png", "bont_dose.png", "balance.png")
    for name in (*pngs, "hallmark_smile.png"):
        assert (report.parent / name).read_bytes().startswith(b"\x89PNG")
    for name in (
        "patient_flow",
        "exclusions",
        "combinations",
        "trajectories",
        "estimates",
        "quarter_load_ledger",
        "quarter_quarantine_by_rule",
        "table1",
        "treatment_order",
        "groups_by_year",
        "bont_dose_by_session",
    ):
        assert (report.parent / f"{name}.csv").exists(), name


def test_report_has_the_sections_in_order_and_embedded_figures(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    # The main body, then the appendix.
    headings = [
        "Does adding a modality help?",
        "Contents",
        "Key findings",
        "The comparison on every outcome",
        "Patient flow",
        "Who the patients are",
        "Score trajectories",
        "Methods",
        "Limitations",
        "Appendix",
        "Treatment combinations",
        "BoNT dose by session number",
        "The three hallmarks",
        "Comparative estimates",
        "Balance and overlap",
        "Data quality",
    ]
    positions = [html.index(f">{heading}") for heading in headings]
    assert positions == sorted(positions)
    assert html.count('src="data:image/png;base64,') == len(list(report.parent.glob("*.png")))
    assert "<script" not in html and 'rel="stylesheet"' not in html  # self-contained
    assert 'name="viewport"' in html and "max-width" in html and "@media print" in html
    assert "patients on combined treatment improved" in html and "Sunnybrook composite" in html
    assert "after adjustment for baseline severity" in html


def test_published_counts_are_suppressed(report: Path) -> None:
    combinations = {row["combination"]: row["patients"] for row in read_csv(report.parent / "combinations.csv")}
    assert combinations["BTX+PT+SN"] == "<11"
    flow = [row["patients"] for row in read_csv(report.parent / "patient_flow.csv")]
    # 160 received, 156 classifiable, 147 in the primary analysis: 4 and 9 lost are small cells. The primary
    # analysis and its groups (the answer's n) are the headline, printed exactly; the audit gives up the
    # classifiable count (and the received one is a range) instead.
    assert flow[0] == "157 to 166" and flow[2] == "suppressed" and flow[4] == "147"
    answer = read_csv(report.parent / "answer.csv")
    assert (answer[0]["n first group"], answer[0]["n second group"]) == ("79", "68")
    assert [row["excluded at this step"] for row in read_csv(report.parent / "patient_flow.csv")][1:3] == [
        "suppressed",
        "<11",
    ]
    exclusions = read_csv(report.parent / "exclusions.csv")
    assert [row["patients"] for row in exclusions] == ["<11"]
    ledger = read_csv(report.parent / "quarter_load_ledger.csv")
    assert [row["file"] for row in ledger] == ["assessments.csv", "patients.csv", "treatments.csv"]
    assert [row["rows quarantined"] for row in ledger] == ["30", "<11", "suppressed"]  # 5, and 20 hidden with it
    # patients.csv's rows loaded are the 160 patients received: shown, they would undo the flow's range.
    assert [row["rows loaded"] for row in ledger] == ["1,970", "in the patient flow", "380"]
    words = " ".join(report.read_text(encoding="utf-8").split())
    assert "2,350 rows loaded (patient records are counted in the patient flow)" in words  # the total too
    rules = {row["rule"]: row["rows"] for row in read_csv(report.parent / "quarter_quarantine_by_rule.csv")}
    assert rules == {"range:age_at_onset": "<11", "range:value": "suppressed", "unknown_patient": "50"}
    for name in (
        "combinations",
        "exclusions",
        "patient_flow",
        "quarter_load_ledger",
        "quarter_quarantine_by_rule",
        "trajectories",
    ):
        for row in read_csv(report.parent / f"{name}.csv"):
            for column in ("patients", "rows", "rows loaded", "rows quarantined", "n first group", "n second group"):
                if column in row:
                    assert not re.fullmatch(r"[1-9]|10", row[column]), (name, row)
    for row in read_csv(report.parent / "estimates.csv"):
        assert not re.fullmatch(r"[1-9]|10", row["n first group"]) and not re.fullmatch(
            r"[1-9]|10", row["n second group"]
        )
        if row["n first group"] == "<11" or row["n second group"] == "<11":
            assert row["benefit"] == "" and row["95% CI"] == "" and "fewer than 11" in row["note"]


def test_trajectory_means_on_fewer_than_11_patients_are_hidden(report: Path) -> None:
    rows = read_csv(report.parent / "trajectories.csv")
    assert rows and all(row["mean"] not in ("", "hidden (n<11)") for row in rows if row["patients"] not in ("<11",))
    assert {row["outcome"] for row in rows} == {"Sunnybrook composite", "SAQ"}  # the only scores in this warehouse


def test_warehouse_is_opened_read_only_and_closed(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    populate(con, n=60)
    con.close()
    html = write_report(warehouse, "2027Q1", tmp_path / "out")
    assert html == tmp_path / "out" / "2027-Q1" / "report.html"
    writer = duckdb.connect(str(warehouse))  # would fail if the report still held the file
    writer.close()


@pytest.mark.parametrize("bad", ["2026Q5", "26Q1", "Q4 2026", ""])  # 2026-Q4 is taken (the folders' spelling)
def test_a_malformed_quarter_is_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="YYYYQn"):
        write_report(tmp_path / "missing.duckdb", bad, tmp_path)
    assert parse_quarter("2026Q4") == (2026, 4)


def test_count_formatting() -> None:
    assert [format_count(n) for n in (0, 1, 5, 10, 11, 250, 1234)] == ["0", "<11", "<11", "<11", "11", "250", "1,234"]
    assert format_count(None) == "" and format_count(float("nan")) == ""


def test_complementary_suppression() -> None:
    # One small cell in a column with a published total: the next smallest is hidden too.
    assert suppress_counts([120, 4, 30, 45]) == ["120", "<11", "suppressed", "45"]
    # Two small cells adding to less than 11 (2 + 3): a third is hidden so the hidden sum is at least 11.
    assert suppress_counts([2, 3, 50, 40]) == ["<11", "<11", "50", "suppressed"]
    # Two small cells already adding to 11 or more, and zeros shown.
    assert suppress_counts([6, 7, 0, 90]) == ["<11", "<11", "0", "90"]
    assert suppress_counts([50, 40, 0]) == ["50", "40", "0"]
    # Without a published total only the small cells go.
    assert suppress_counts([120, 4, 30], complementary=False) == ["120", "<11", "30"]


def test_flow_counts_hide_small_losses() -> None:
    assert flow_counts([300, 250, 200]) == ["300", "250", "200"]
    # 300 -> 295: 5 lost. 295 is shown as a range; 280 is 20 from the last exact step and shown.
    assert flow_counts([300, 295, 280]) == ["300", "290 to 299", "280"]
    assert flow_counts([300, 300, 8, 0]) == ["300", "300", "<11", "0"]
    # Anchored on the third step: 305 -> 300 -> 296 lose 5 and 4, so both earlier steps are ranges.
    assert flow_counts([305, 300, 296, 250], anchor=2) == ["297 to 306", "297 to 306", "296", "250"]


def test_hide_small() -> None:
    assert hide_small(12.345, 11) == "12.3"
    assert hide_small(12.345, 10) == "hidden (n<11)"
    assert hide_small(12.345, None) == "hidden (n<11)"


def test_estimates_table_hides_small_and_failed_estimates() -> None:
    base = {
        "contrast": "combined_vs_single",
        "method": "ancova",
        "outcome": "sunnybrook_composite",
        "timepoint": "12m",
        "estimate": 6.04,
        "std_error": 1.0,
        "ci_low": 4.0,
        "ci_high": 8.1,
        "p_value": 0.0001,
        "p_adjusted": 0.0004,
        "n_treated": 40,
        "n_control": 50,
        "higher_is_better": True,
        "diagnostics_ok": True,
        "note": "HC3 robust errors",
    }
    rows = pd.DataFrame(
        [
            base,
            {**base, "n_treated": 7},
            {**base, "diagnostics_ok": False, "note": "no overlap"},
            {**base, "estimate": float("nan"), "note": "fit failed: singular"},
        ]
    )
    table = estimates_table(rows, {"12m": "12 months"})
    assert table.loc[0, ["benefit", "95% CI", "p", "p (Holm)", "n first group"]].tolist() == [
        "6.0",
        "4.0 to 8.1",
        "<0.001",
        "<0.001",
        "40",
    ]
    assert table.loc[1, ["benefit", "95% CI", "p", "n first group"]].tolist() == ["", "", "", "<11"]
    assert table.loc[1, "note"] == "not estimated: fewer than 11 patients in a group"
    assert table.loc[2, "benefit"] == "" and table.loc[2, "note"] == "not shown, diagnostics did not pass: no overlap"
    assert table.loc[3, "benefit"] == "" and table.loc[3, "note"] == "fit failed: singular"
    assert table.loc[0, "outcome"] == "Sunnybrook composite (higher is better)"


def test_notes_are_numbered_once_under_the_primary_table() -> None:
    from pipeline.report.tables import footnoted

    frame = pd.DataFrame(
        {
            "method": ["a", "b", "c", "d"],
            "note": ["HC3 robust errors; sex levels pooled", "sex levels pooled; HC3 robust errors", "", "REML"],
        }
    )
    numbered, notes = footnoted(frame)
    assert notes == ["HC3 robust errors", "sex levels pooled", "REML"]
    assert numbered["note"].tolist() == ["1, 2", "1, 2", "", "3"]  # ascending within a cell
    assert numbered["method"].tolist() == frame["method"].tolist()


def test_the_report_prints_each_estimate_note_once(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    section = html[html.index("(the primary comparison)") : html.index("Balance and overlap")]
    notes = re.findall(r"<li>(.*?)</li>", section)
    assert notes and len(notes) == len(set(notes))
    for note in notes:
        assert section.count(note) == 1  # in the list, not again in the table's cells
