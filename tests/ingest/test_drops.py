"""Ingest end to end on hand-made drops: ledger, quarantine, history, snapshots, refusals."""

import logging
import os
import shutil

import duckdb

from pipeline.ingest.drops import ingest_landing
from pipeline.ingest.receive import refused_id
from pipeline.settings import DataHome
from tests.conftest import BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows


def store_rows(home: DataHome, sql: str) -> list[tuple]:
    con = duckdb.connect(str(home.store_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_valid_drop_loads_and_the_ledger_accounts_for_every_row(home, write_drop) -> None:
    write_drop("d1", BASE_PATIENTS + ["P3,s1,Q,30,R,bell,2021,300"], BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    summary = ingest_landing(home)
    assert [(d.drop_id, d.status) for d in summary.drops] == [("d1", "loaded")]
    ledger = store_rows(
        home, "SELECT file, rows_in, rows_loaded, rows_quarantined, status FROM load_ledger ORDER BY file"
    )
    assert ledger == [
        ("assessments.csv", 13, 13, 0, "loaded"),
        ("patients.csv", 3, 2, 1, "loaded"),
        ("treatments.csv", 3, 3, 0, "loaded"),
    ]
    assert store_rows(home, "SELECT row_number, rule FROM quarantine") == [(4, "code_set:sex")]
    assert all((home.archive / "d1").rglob("patients.csv"))
    assert summary.drops[0].quarantine_by_rule == {"code_set:sex": 1}


def test_rerun_loads_nothing_twice_and_a_copied_file_loads_as_its_new_drop(home, write_drop) -> None:
    write_drop("d1", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    ingest_landing(home)
    assert [d.status for d in ingest_landing(home).drops] == ["unchanged"]
    # The same files again under a new drop name: loaded (its rows counted), and no record changes.
    shutil.copytree(home.landing / "d1", home.landing / "d2")
    assert [d.status for d in ingest_landing(home).drops] == ["unchanged", "loaded"]
    assert store_rows(
        home, "SELECT file, status, rows_in, rows_loaded FROM load_ledger WHERE drop_id = 'd2' ORDER BY file"
    ) == [("assessments.csv", "loaded", 13, 13), ("patients.csv", "loaded", 2, 2), ("treatments.csv", "loaded", 3, 3)]
    assert store_rows(home, "SELECT count(*) FROM patients_history") == [(2,)]


def test_a_later_row_replaces_an_earlier_one_and_history_keeps_both(home, write_drop) -> None:
    write_drop("d1", BASE_PATIENTS, BASE_TREATMENTS, [])
    ingest_landing(home)
    write_drop("d2", ["P1,s1,F,46,L,bell,2020,400"], [], [], manifest={"snapshot": "incremental"})
    ingest_landing(home)
    versions = store_rows(
        home,
        "SELECT age_at_onset, drop_id, valid_to IS NULL, ended_by_drop, end_reason "
        "FROM patients_history WHERE patient_id = 'P1' ORDER BY valid_from",
    )
    assert versions == [(45, "d1", False, "d2", "replaced"), (46, "d2", True, None, None)]
    # Incremental: P2 is not retired.
    assert store_rows(home, "SELECT count(*) FROM patients_history WHERE valid_to IS NULL") == [(2,)]


def test_full_snapshot_retires_missing_records_and_holds_a_large_retirement(home, write_drop) -> None:
    patients = [f"P{i},s1,F,40,L,bell,2020,100" for i in range(1, 11)]
    write_drop("d1", patients, [], [])
    ingest_landing(home)
    # Dropping 2 of 10 (20%) is allowed: they are retired, not deleted.
    write_drop("d2", patients[:8], [], [])
    assert ingest_landing(home).drops[-1].status == "loaded"
    retired = store_rows(home, "SELECT patient_id, end_reason FROM patients_history WHERE ended_by_drop = 'd2'")
    assert sorted(retired) == [("P10", "retired"), ("P9", "retired")]
    # Dropping 3 of the 8 left (37.5%) is held, and nothing of it is loaded.
    write_drop("d3", patients[:5], [], [])
    result = ingest_landing(home).drops[-1]
    assert result.status == "held"
    assert "retire 3 of site s1's 8 current patients" in result.message
    assert store_rows(home, "SELECT DISTINCT status FROM load_ledger WHERE drop_id = 'd3'") == [("held",)]
    assert store_rows(home, "SELECT count(*) FROM patients_history WHERE valid_to IS NULL") == [(8,)]
    # Confirmed, it loads; the ledger keeps the held attempt beside the loaded one.
    assert ingest_landing(home, confirm_retire=True).drops[-1].status == "loaded"
    assert store_rows(home, "SELECT count(*) FROM patients_history WHERE valid_to IS NULL") == [(5,)]
    attempts = store_rows(home, "SELECT status, count(*) FROM load_ledger WHERE drop_id = 'd3' GROUP BY ALL ORDER BY 1")
    assert attempts == [("held", 3), ("loaded", 3)]


def test_a_rejected_drop_loads_nothing_and_says_where_never_what(home, write_drop, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    write_drop("d1", BASE_PATIENTS, ["P1,s1,T1,0,botox,25,,seen 2024-03-05"], [])
    result = ingest_landing(home).drops[0]
    assert "2024-03-05" not in caplog.text  # no log line carries a cell of a rejected drop
    assert result.status == "rejected"
    assert "treatments.csv, column target: calendar date (row 2)" in result.message
    assert "2024-03-05" not in result.message
    assert store_rows(home, "SELECT count(*) FROM patients_history") == [(0,)]
    ledger = store_rows(home, "SELECT status, rows_in, rows_loaded, rows_quarantined FROM load_ledger ORDER BY file")
    assert ledger == [("rejected", 0, 0, 0), ("rejected", 2, 0, 2), ("rejected", 1, 0, 1)]


def test_unsafe_landing_entries_are_refused_once(home, write_drop, tmp_path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, home.landing / "linked")
    first = ingest_landing(home).drops
    assert [(d.drop_id, d.status) for d in first] == [(refused_id("linked"), "rejected")]
    assert "symbolic link" in first[0].message
    assert [d.status for d in ingest_landing(home).drops] == ["unchanged"]


def test_a_loaded_drop_sent_again_with_other_content_is_refused_once_and_stays_loaded(home, write_drop) -> None:
    write_drop("d1", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    ingest_landing(home)
    write_drop("d1", ["P1,s1,F,47,L,bell,2020,400"], BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    refused = ingest_landing(home).drops[0]
    assert refused.status == "rejected" and "loaded before with other content" in refused.message
    # Its rows are loaded and stay so: the drop is still "loaded"; the refused re-send is in the ledger.
    assert store_rows(home, "SELECT status, loaded_at IS NOT NULL FROM drops WHERE drop_id = 'd1'") == [
        ("loaded", True)
    ]
    assert store_rows(
        home, "SELECT status, count(*) FROM load_ledger WHERE drop_id = 'd1' GROUP BY status ORDER BY status"
    ) == [("loaded", 3), ("rejected", 3)]
    assert store_rows(home, "SELECT age_at_onset FROM patients_history WHERE patient_id = 'P1'") == [(45,)]
    # Told once: the same re-send on the next run is not refused again.
    assert [d.status for d in ingest_landing(home).drops] == ["unchanged"]


def test_a_drop_folder_named_as_a_loaded_one_plus_a_newline_is_refused(home, write_drop) -> None:
    """Python's `$` matches before a final newline: "d1\\n" passed the drop-id rule and loaded as new."""
    write_drop("d1", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    ingest_landing(home)
    shutil.copytree(home.landing / "d1", home.landing / "d1\n")
    drops = {d.drop_id: d for d in ingest_landing(home).drops}
    stand_in = refused_id("d1\n")
    assert drops["d1"].status == "unchanged" and drops[stand_in].status == "rejected" and "\n" not in stand_in
    assert "its folder name breaks the drop-id rule" in drops[stand_in].message
    assert "\n" not in drops[stand_in].message
    assert store_rows(home, "SELECT DISTINCT drop_id FROM load_ledger WHERE status = 'loaded'") == [("d1",)]


def test_an_id_with_a_trailing_newline_in_its_cell_is_no_look_alike(home, write_drop) -> None:
    """A cell "P1\n" (a spreadsheet's Alt+Enter) is trimmed as every cell is: it is P1, never a second patient
    beside P1 (the id patterns also refuse it whole: tests/validation/test_suites.py)."""
    patients = ['"P1\n",s1,F,45,L,bell,2020,400', 'P2,"s1\n",M,60,R,ramsay_hunt,2021,300']
    write_drop("d1", patients, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    (result,) = ingest_landing(home).drops
    assert result.status == "loaded"
    ids = store_rows(home, "SELECT DISTINCT site_id, patient_id FROM patients_history ORDER BY patient_id")
    assert ids == [("s1", "P1"), ("s1", "P2")]
