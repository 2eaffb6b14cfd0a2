"""The warehouse build on hand-made patients whose right answers were worked out by hand."""

import duckdb
import pytest

from pipeline.ingest.drops import ingest_landing
from pipeline.settings import DataHome, DesignSettings
from pipeline.warehouse import build_and_publish
from tests.conftest import SUNNYBROOK_ITEMS, sunnybrook_rows, write_drop_files

PATIENTS = [f"P{i},s1,F,50,L,bell,2020,365" for i in range(1, 6)]
TREATMENTS = [
    # P1: prior BoNT at day -30, t0 = day 0 (BoNT), PT on day 180 (in window), myectomy on day 181 (outside).
    "P1,s1,A,-30,botox,20,,",
    "P1,s1,B,0,botox,25,,",
    "P1,s1,C,180,physical_therapy,,10,",
    "P1,s1,D,181,selective_myectomy,,,",
    "P1,s1,E,90,botox,30,,",
    # P2: PT alone from day 10; followed only to day 100 (before the landmark).
    "P2,s1,A,10,physical_therapy,,8,",
    # P3: BoNT alone at day 0.
    "P3,s1,A,0,botox,25,,",
    "P3,s1,B,95,botox,25,,",
    # P5: no treatment at all.
]


def saq_items(patient: str, day: int, value: int) -> list[str]:
    return [f"{patient},s1,{day},saq,q{i},{value}" for i in range(1, 10)]


ASSESSMENTS = [
    # P1 baseline candidates: day -100 (outside [t0-90, t0]) and day -10 (the latest inside).
    *saq_items("P1", -100, 5),
    *saq_items("P1", -10, 4),
    # 3m window [60, 120] around target 90: days 80 and 100 are equidistant, the earlier wins.
    *saq_items("P1", 80, 3),
    *saq_items("P1", 100, 2),
    # Day 121 is just outside the 3m window and before the 6m one: used for neither.
    *saq_items("P1", 121, 1),
    # 12m from the raw SAQ form: 27 / 45 x 100 = 60.
    "P1,s1,365,saq,total_raw,27",
    *sunnybrook_rows("P1", 0),
    *sunnybrook_rows("P1", 370),
    *saq_items("P2", 10, 3),
    *saq_items("P2", 100, 2),
    # P3: a negative composite (voluntary 20, resting 15, synkinesis 15 -> -10) and an incomplete SAQ.
    *sunnybrook_rows(
        "P3",
        0,
        {
            **{k: 1 for k in SUNNYBROOK_ITEMS if k.startswith("vm_")},
            "rest_eye": 1,
            "rest_cheek": 1,
            "rest_mouth": 1,
            **{k: 3 for k in SUNNYBROOK_ITEMS if k.startswith("syn_")},
        },
    ),
    "P3,s1,0,saq,q1,2",
    "P3,s1,0,saq,q2,2",
    # eFACE items for P4: static items folded (130 -> 70, 90 -> 90).
    "P4,s1,0,eface,static_brow,130",
    "P4,s1,0,eface,static_palpebral_fissure,90",
    "P4,s1,0,eface,static_nasolabial_fold,100",
    "P4,s1,0,eface,static_oral_commissure,100",
    "P4,s1,0,eface,total,77",
    "P3,s1,200,saq,total_pct,40",
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    home = DataHome.resolve(tmp_path_factory.mktemp("warehouse")).ensure()
    write_drop_files(home, "d1", PATIENTS, TREATMENTS, ASSESSMENTS)
    summary = ingest_landing(home)
    assert summary.drops[0].rows_quarantined == 0, summary.lines()
    path, _ = build_and_publish(home, DesignSettings())
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def one(con, sql: str):
    return con.execute(sql).fetchall()


def test_modality_combinations_follow_the_design(warehouse) -> None:
    rows = one(
        warehouse,
        "SELECT patient_id, t0_day, combination, n_modalities, is_combined, followup_days, "
        "classifiable, exclusion_reason FROM modality_combinations ORDER BY patient_id",
    )
    assert rows == [
        ("P1", 0, "BTX+PT", 2, True, 370, True, None),  # myectomy on day 181 is outside the window
        ("P2", 10, "PT", 1, False, 90, False, "follow-up ends before the 180-day landmark"),
        ("P3", 0, "BTX", 1, False, 200, True, None),
        ("P4", None, None, None, None, None, False, "no treatment on or after day 0"),
        ("P5", None, None, None, None, None, False, "no treatment on or after day 0"),
    ]
    assert one(warehouse, "SELECT patient_id FROM patients WHERE prior_treatment") == [("P1",)]


def test_followup_scores_nearest_in_window_with_the_earlier_on_a_tie(warehouse) -> None:
    rows = one(
        warehouse,
        "SELECT timepoint, visit_day, value, baseline_value, change FROM followup_scores "
        "WHERE patient_id = 'P1' AND outcome = 'saq' ORDER BY days_from_t0",
    )
    assert rows == [
        ("baseline", -10, 80.0, 80.0, None),  # 36 / 45 x 100
        ("3m", 80, 60.0, 80.0, -20.0),
        ("12m", 365, 60.0, 80.0, -20.0),
    ]
    composite = one(
        warehouse,
        "SELECT timepoint, value, change FROM followup_scores "
        "WHERE patient_id = 'P1' AND outcome = 'sunnybrook_composite' ORDER BY days_from_t0",
    )
    assert composite == [("baseline", 53.0, None), ("12m", 53.0, 0.0)]


def test_instrument_scores_recorded_derived_and_flagged(warehouse) -> None:
    p1 = dict(
        ((s, p), v)
        for s, v, p in one(
            warehouse,
            "SELECT score, value, provenance FROM instrument_scores WHERE patient_id = 'P1' "
            "AND visit_day = 0 AND instrument = 'sunnybrook'",
        )
    )
    assert p1 == {
        ("composite", "derived"): 53.0,
        ("resting_score", "derived"): 10.0,
        ("voluntary_score", "derived"): 68.0,
        ("synkinesis_score", "derived"): 5.0,
    }
    p3 = one(
        warehouse,
        "SELECT instrument, score, value, flag FROM instrument_scores WHERE patient_id = 'P3' "
        "AND visit_day = 0 AND flag IS NOT NULL ORDER BY instrument",
    )
    assert p3 == [
        ("saq", "total_pct", None, "incomplete_items"),
        ("sunnybrook", "composite", -10.0, "negative_composite"),
    ]
    raw = one(warehouse, "SELECT value, provenance FROM instrument_scores WHERE patient_id = 'P1' AND visit_day = 365")
    assert raw == [(60.0, "recorded")]
    # eFACE: the recorded total is the authority; the static score is derived from folded items.
    eface = dict(one(warehouse, "SELECT score, value FROM instrument_scores WHERE patient_id = 'P4'"))
    assert eface == {"total": 77.0, "static_score": pytest.approx((70 + 90 + 100 + 100) / 4)}


def test_days_since_last_botox(warehouse) -> None:
    rows = one(
        warehouse,
        "SELECT DISTINCT visit_day, days_since_last_botox FROM assessments WHERE patient_id = 'P1' ORDER BY visit_day",
    )
    # Injections on days -30, 0 and 90; a visit on an injection day counts the injection before it.
    assert rows == [(-100, None), (-10, 20), (0, 30), (80, 80), (100, 10), (121, 31), (365, 275), (370, 280)]


def test_build_records_its_design_and_is_readable_as_duckdb_1_5_storage(warehouse) -> None:
    settings = one(warehouse, "SELECT design_settings->>'exposure_window_days' FROM build_info")
    assert settings == [("180",)]
    tags = one(warehouse, "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'outcomes'")
    assert tags[0][0].startswith("v1.5.0")


def test_every_published_table_and_column_has_a_comment(warehouse) -> None:
    from pipeline.warehouse import PUBLISHED_TABLES

    tables = dict(one(warehouse, "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = 'outcomes'"))
    assert set(tables) == set(PUBLISHED_TABLES)
    assert all(tables.values()), [t for t, c in tables.items() if not c]
    missing = one(
        warehouse,
        "SELECT table_name || '.' || column_name FROM duckdb_columns() "
        "WHERE database_name = 'outcomes' AND (comment IS NULL OR comment = '')",
    )
    assert missing == []


def test_attrition_from_received_to_analysable(warehouse) -> None:
    rows = one(
        warehouse,
        "SELECT step, patients, excluded FROM attrition WHERE outcome = 'saq' AND timepoint = '3m' ORDER BY step_order",
    )
    # P1..P5 received; P4, P5 untreated; P2 followed too briefly; P1 and P3 classifiable; only P1 has a SAQ
    # baseline (P3's was incomplete) and a 3m score.
    assert rows == [
        ("received", 5, 0),
        ("treated on or after day 0", 3, 2),
        ("classifiable", 2, 1),
        ("with a baseline score", 1, 1),
        ("analysable", 1, 0),
    ]
    twelve = one(
        warehouse, "SELECT patients FROM attrition WHERE outcome = 'saq' AND timepoint = '12m' AND step = 'analysable'"
    )
    assert twelve == [(1,)]


def test_data_dictionary_documents_every_table_and_its_examples_run(warehouse) -> None:
    from pipeline.tools.data_dictionary import EXAMPLES, render

    text = render(warehouse)
    for table in ("patients", "followup_scores", "model_estimates", "attrition"):
        assert f"### `{table}`" in text
    assert "| `days_since_last_botox` | INTEGER | Days since the last BoNT injection" in text
    for _, sql in EXAMPLES:
        warehouse.execute(sql).fetchall()  # every example runs as written


def test_duckdb_1_5_cli_opens_the_published_file(warehouse) -> None:
    """Statisticians' tools lag: the DuckDB 1.5 CLI, a separate binary, reads the file the 2.x build wrote."""
    import subprocess
    import sys
    from pathlib import Path

    path = warehouse.execute("SELECT path FROM duckdb_databases() WHERE database_name = 'outcomes'").fetchone()[0]
    cli = Path(sys.executable).with_name("duckdb")
    version = subprocess.run([str(cli), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v1.5.")
    out = subprocess.run(
        [
            str(cli),
            "-readonly",
            "-csv",
            path,
            "SELECT count(*) FROM patients; SELECT combination FROM modality_combinations WHERE patient_id = 'P1';",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["count_star()", "5", "combination", "BTX+PT"]


def test_design_values_are_settings_and_each_build_records_them(tmp_path) -> None:
    home = DataHome.resolve(tmp_path).ensure()
    write_drop_files(home, "d1", PATIENTS, TREATMENTS, ASSESSMENTS)
    ingest_landing(home)
    (home.root / "design.json").write_text('{"exposure_window_days": 365, "baseline_lookback_days": 5}')
    path, _ = build_and_publish(home)
    con = duckdb.connect(str(path), read_only=True)
    try:
        recorded = con.execute(
            "SELECT design_settings->>'exposure_window_days', design_settings->>'baseline_lookback_days' "
            "FROM build_info"
        ).fetchone()
        # With a 365-day window P1 (370 days of follow-up) stays classifiable and P3 (200 days) no longer is;
        # P1's SAQ baseline on day -10 falls outside a 5-day lookback.
        classifiable = con.execute(
            "SELECT patient_id FROM modality_combinations WHERE classifiable ORDER BY patient_id"
        ).fetchall()
        baselines = con.execute(
            "SELECT count(*) FROM followup_scores WHERE patient_id = 'P1' AND outcome = 'saq' "
            "AND timepoint = 'baseline'"
        ).fetchone()
    finally:
        con.close()
    assert recorded == ("365", "5")
    assert classifiable == [("P1",)]
    assert baselines == (0,)


def test_python_examples_of_the_data_dictionary_run_as_written(warehouse) -> None:
    """Each Python snippet of docs/warehouse.md, run from the data home in a separate interpreter."""
    import subprocess
    import sys
    from pathlib import Path

    from pipeline.tools.data_dictionary import EXAMPLES, python_snippet

    path = Path(warehouse.execute("SELECT path FROM duckdb_databases() WHERE database_name = 'outcomes'").fetchone()[0])
    script = "\n\n".join(python_snippet(sql) + "\nassert frame is not None" for _, sql in EXAMPLES)
    out = subprocess.run([sys.executable, "-c", script], cwd=path.parent.parent, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_benefit_is_the_estimate_signed_so_that_above_0_is_better() -> None:
    """model_estimates keeps the estimate as fitted and gives the report's convention beside it, by name."""
    from pipeline.sql_files import read_sql

    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS store")
    con.execute(
        """CREATE TABLE store.model_estimates AS SELECT * FROM (VALUES
        ('r', 'ancova', 'saq', '12m', 'combined_vs_single', -6.25, 0.9, -8.0, -4.5, 0.001, 0.001, 130, 126, false,
         true, '', 2.0, 1.5, 2.5, 'conditional', 'primary', NULL),
        ('r', 'ancova', 'sunnybrook_composite', '12m', 'combined_vs_single', 7.4, 1.4, 4.7, 10.0, 0.001, 0.001, 141,
         148, true, true, '', 2.0, 1.5, 4.0, 'conditional', 'primary', NULL),
        ('r', 'ordinal', 'house_brackmann', '12m', 'combined_vs_single', 1.6, 0.2, 1.1, 2.3, 0.01, 0.01, 80, 76,
         true, true, '', NULL, NULL, NULL, 'conditional', 'sensitivity', NULL)
        ) AS t(run_id, method, outcome, timepoint, contrast, estimate, std_error, ci_low, ci_high, p_value,
               p_adjusted, n_treated, n_control, higher_is_better, diagnostics_ok, note, e_value, e_value_ci, mdd,
               estimand, "role", site_spread)"""
    )
    for column in ("converged", "boundary", "balance_ok", "overlap_ok"):  # as the store's schema adds them
        con.execute(f"ALTER TABLE store.model_estimates ADD COLUMN {column} BOOLEAN")
    con.execute(read_sql("marts/06_model_estimates.sql"))
    rows = con.execute(
        "SELECT outcome, estimate::DOUBLE, benefit::DOUBLE, benefit_ci_low::DOUBLE, benefit_ci_high::DOUBLE "
        "FROM model_estimates ORDER BY outcome"
    ).fetchall()
    assert rows == [
        ("house_brackmann", 1.6, None, None, None),  # a ratio: no benefit on a difference scale
        ("saq", -6.25, 6.25, 4.5, 8.0),  # lower is better: as fitted -6.25, benefit +6.25
        ("sunnybrook_composite", 7.4, 7.4, 4.7, 10.0),
    ]
    con.close()
