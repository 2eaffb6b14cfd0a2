"""The optional complications file (contract 1.2) end to end on hand-made drops: a drop without it loads as
before, one with it loads, quarantines or is refused like the other files, in the contract's spellings."""

from __future__ import annotations

import gzip

import duckdb
import pytest

from pipeline.ingest.drops import ingest_landing
from pipeline.settings import DataHome
from pipeline.stages import publish_warehouse
from pipeline.status import status_lines
from tests.conftest import BASE_PATIENTS, BASE_TREATMENTS, csv_text, sunnybrook_rows, write_drop_files

HEADER = "patient_id,site_id,complication_id,treatment_id,day,code,grade,resolved_day"
# P1 had BoNT (T1) and physical therapy (T2); P2 had BoNT (T1); P3 had a selective myectomy (T3).
PATIENTS = [*BASE_PATIENTS, "P3,s1,F,50,L,bell,2022,200"]
TREATMENTS = [*BASE_TREATMENTS, "P3,s1,T3,0,selective_myectomy,,,mentalis"]


def store_rows(home: DataHome, sql: str) -> list[tuple]:
    con = duckdb.connect(str(home.store_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def warehouse_rows(home: DataHome, sql: str) -> list[tuple]:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def write_complications(folder, rows: list[str], header: str = HEADER) -> None:
    (folder / "complications.csv").write_text(csv_text(header, rows), encoding="utf-8")


def test_a_drop_without_the_file_loads_as_before_and_keeps_what_earlier_drops_brought(home, write_drop) -> None:
    write_drop("d1", PATIENTS, TREATMENTS, sunnybrook_rows("P1", 0)[:1])
    summary = ingest_landing(home)
    assert [d.status for d in summary.drops] == ["loaded"], summary.lines()
    assert store_rows(home, "SELECT file, rows_in, rows_loaded FROM load_ledger ORDER BY file") == [
        ("assessments.csv", 1, 1),
        ("patients.csv", 3, 3),
        ("treatments.csv", 4, 4),
    ]
    assert store_rows(home, "SELECT count(*) FROM complications_history") == [(0,)]
    publish_warehouse(home)
    assert warehouse_rows(home, "SELECT count(*) FROM complications") == [(0,)]
    assert warehouse_rows(home, "SELECT count(*) FROM complication_rates") == [(0,)]

    # An incremental drop of complications alone, then a full snapshot without the file: it retires none.
    folder = write_drop("d2", [], [], [], manifest={"snapshot": "incremental"})
    for name in ("patients.csv", "treatments.csv", "assessments.csv"):
        (folder / name).unlink()
    write_complications(folder, ["P1,s1,1,T1,20,eyelid_ptosis,,50", "P3,s1,1,T3,2,oral_incompetence,2,"])
    assert [d.status for d in ingest_landing(home).drops if d.drop_id == "d2"] == ["loaded"]
    write_drop("d3", PATIENTS, TREATMENTS, sunnybrook_rows("P1", 0)[:1])
    assert [d.status for d in ingest_landing(home).drops if d.drop_id == "d3"] == ["loaded"]
    assert store_rows(
        home, "SELECT patient_id, complication_id, drop_id, valid_to IS NULL FROM complications_history ORDER BY ALL"
    ) == [("P1", "1", "d2", True), ("P3", "1", "d2", True)]
    publish_warehouse(home)
    assert warehouse_rows(
        home,
        "SELECT patient_id, code, treatment_modality, days_after_treatment, resolved, days_to_resolution "
        "FROM complications ORDER BY ALL",
    ) == [
        ("P1", "eyelid_ptosis", "botox", 20, True, 30),
        ("P3", "oral_incompetence", "selective_myectomy", 2, False, None),
    ]
    assert any(line.split() == ["complications", "2", "rows"] for line in status_lines(home))  # `synk status`

    # A full snapshot with the file retires the complications it no longer holds (confirmed: one of two).
    folder = write_drop("d4", PATIENTS, TREATMENTS, sunnybrook_rows("P1", 0)[:1], manifest={"confirm_retire": True})
    write_complications(folder, ["P1,s1,1,T1,20,eyelid_ptosis,,50"])
    assert [d.status for d in ingest_landing(home).drops if d.drop_id == "d4"] == ["loaded"]
    assert store_rows(home, "SELECT patient_id, end_reason FROM complications_history WHERE valid_to IS NOT NULL") == [
        ("P3", "retired")
    ]


# Each row rule once, with the row number the coordinator sees (the header is row 1).
BAD_ROWS = {
    3: ("P1,s1,C 2!,,20,dry_eye,,", "pattern:complication_id"),
    4: ("P9,s1,C3,,20,dry_eye,,", "unknown_patient"),
    5: ("P2,s1,C4,T2,20,dry_eye,,", "unknown_treatment"),
    6: ("P1,s1,C5,,9999,dry_eye,,", "range:day"),
    7: ("P1,s1,C6,,20,sneezing,,", "code_set:code"),
    8: ("P1,s1,C7,,20,dry_eye,7,", "range:grade"),
    9: ("P1,s1,C8,,20,dry_eye,,17", "resolved_before_day"),
    10: ("P1,s1,C9,T2,20,revision_surgery,2,", "code_needs_surgery"),
    11: ("P2,s1,C10,,5,dry_eye,,", "duplicate_key"),
    12: ("P2,s1,C10,,6,dry_eye,,", "duplicate_key"),
    13: ("P1,s1,C11,,2.5,dry_eye,,", "type_integer:day"),
    14: ("P1,s1,C12,,,dry_eye,,", "required:day"),
    15: ("P1,s1,C13,T1,20,eyelid_ptosis,,-3", "resolved_before_day"),
    16: ("P3,s1,C15,T3,-10,haematoma,2,", "day_before_treatment"),  # 10 days before the myectomy it names
}
VALUES = ("C 2!", "P9", "9999", "sneezing", "C10", "2.5", "-3")


def test_each_row_rule_quarantines_its_row_by_number_and_without_its_cells(home, write_drop) -> None:
    folder = write_drop("d1", PATIENTS, TREATMENTS, [])
    good = ["P1,s1,C1,T1,20,eyelid_ptosis,,50", "P3,s1,C14,T3,3,revision_surgery,3,40"]
    write_complications(folder, [good[0], *(row for row, _ in BAD_ROWS.values()), good[1]])
    summary = ingest_landing(home)
    assert [d.status for d in summary.drops] == ["loaded"], summary.lines()
    quarantined = store_rows(home, "SELECT row_number, rule, columns FROM quarantine ORDER BY row_number")
    assert [(n, rule) for n, rule, _ in quarantined] == [(n, rule) for n, (_, rule) in BAD_ROWS.items()]
    assert store_rows(home, "SELECT complication_id FROM complications_history ORDER BY ALL") == [("C1",), ("C14",)]
    ledger = store_rows(
        home, "SELECT rows_in, rows_loaded, rows_quarantined FROM load_ledger WHERE file = 'complications.csv'"
    )
    assert ledger == [(2 + len(BAD_ROWS), 2, len(BAD_ROWS))]
    # What a coordinator reads (the run's lines, the rule and column names) names no cell of the rows.
    said = " ".join(summary.lines()) + " ".join(f"{rule} {columns}" for _, rule, columns in quarantined)
    assert not [value for value in VALUES if value in said]


def test_a_complication_dated_before_its_treatment_is_quarantined_and_not_counted(home, write_drop) -> None:
    folder = write_drop("d1", PATIENTS, TREATMENTS, sunnybrook_rows("P1", 0)[:1])
    # P2's BoNT (T1) was on day 5: an eyelid ptosis 3,000 days before it; P3's myectomy (T3) on day 0: a
    # haematoma 10 days before it. The same day as the treatment is after it.
    rows = [
        "P1,s1,C1,T1,20,eyelid_ptosis,,50",
        "P2,s1,C1,T1,-2995,eyelid_ptosis,,",
        "P3,s1,C1,T3,-10,haematoma,2,",
        "P3,s1,C2,T3,0,infection,2,",
    ]
    write_complications(folder, rows)
    summary = ingest_landing(home)
    assert [d.status for d in summary.drops] == ["loaded"], summary.lines()
    assert summary.drops[0].quarantine_by_rule == {"day_before_treatment": 2}
    assert store_rows(home, "SELECT file, row_number, rule, columns FROM quarantine ORDER BY row_number") == [
        ("complications.csv", 3, "day_before_treatment", "day, treatment_id"),
        ("complications.csv", 4, "day_before_treatment", "day, treatment_id"),
    ]
    publish_warehouse(home)
    counted = warehouse_rows(
        home,
        "SELECT group_code, code, patients_with FROM complication_rates "
        "WHERE grouping = 'modality' AND patients_with > 0 ORDER BY ALL",
    )
    assert counted == [("BTX", "eyelid_ptosis", 1), ("MY", "infection", 1)]
    assert warehouse_rows(home, "SELECT count(*) FROM complications WHERE code = 'haematoma'") == [(0,)]
    assert "-2995" not in " ".join(summary.lines())


def test_the_contract_spellings_load(home, write_drop) -> None:
    """A byte-order mark, CRLF line ends, quoted cells, integers written 3.0, gzip."""
    folder = write_drop("d1", PATIENTS, TREATMENTS, [])
    text = "\ufeff" + "\r\n".join(
        [HEADER, '"P1","s1","1","T1","3.0","eyelid_ptosis","","40.00"', "P3,s1,2,T3,2,haematoma,2.0,"]
    )
    (folder / "complications.csv.gz").write_bytes(gzip.compress((text + "\r\n").encode("utf-8")))
    summary = ingest_landing(home)
    assert [d.status for d in summary.drops] == ["loaded"], summary.lines()
    assert summary.drops[0].rows_quarantined == 0
    assert store_rows(
        home, 'SELECT patient_id, "day", grade, resolved_day FROM complications_history ORDER BY ALL'
    ) == [
        ("P1", 3, None, 40),
        ("P3", 2, 2, None),
    ]
    assert store_rows(home, "SELECT file FROM load_ledger WHERE file LIKE 'complications%'") == [
        ("complications.csv.gz",)
    ]


@pytest.mark.parametrize(
    ("header", "row", "expected"),
    [
        (
            HEADER + ",notes",
            "P1,s1,1,T1,20,dry_eye,,,x",
            "complications.csv has column(s) the contract does not know: notes",
        ),
        (HEADER.replace(",code", ""), "P1,s1,1,T1,20,,", "complications.csv lacks required column(s): code"),
    ],
)
def test_an_unknown_or_missing_column_refuses_the_drop(home, write_drop, header: str, row: str, expected: str) -> None:
    folder = write_drop("d1", PATIENTS, TREATMENTS, [])
    write_complications(folder, [row], header)
    summary = ingest_landing(home)
    assert [d.status for d in summary.drops] == ["rejected"]
    assert expected in summary.drops[0].message
    assert store_rows(home, "SELECT count(*) FROM patients_history") == [(0,)]
    # Every file kept with its checksum, the refused file's rows counted.
    assert store_rows(home, "SELECT rows_in, status FROM load_ledger WHERE file = 'complications.csv'") == [
        (1, "rejected")
    ]


def test_the_other_files_load_identically_with_or_without_complications(tmp_path) -> None:
    """The same export with and without complications.csv: the same rows of the other files, quarantined alike."""
    homes = {}
    for name in ("without", "with"):
        home = DataHome.resolve(tmp_path / name).ensure()
        folder = write_drop_files(home, "d1", [*PATIENTS, "P4,s1,Q,30,R,bell,2021,300"], TREATMENTS, [])
        if name == "with":
            write_complications(folder, ["P1,s1,1,T1,20,eyelid_ptosis,,50"])
        assert [d.status for d in ingest_landing(home).drops] == ["loaded"]
        homes[name] = home
    for table in ("patients_history", "treatments_history", "quarantine"):
        moment = "quarantined_at" if table == "quarantine" else "valid_from"
        sql = f"SELECT * EXCLUDE ({moment}) FROM {table} ORDER BY ALL"
        assert store_rows(homes["with"], sql) == store_rows(homes["without"], sql), table
    ledger = "SELECT file, sha256, rows_in, rows_loaded, rows_quarantined FROM load_ledger ORDER BY ALL"
    assert [r for r in store_rows(homes["with"], ledger) if r[0] != "complications.csv"] == store_rows(
        homes["without"], ledger
    )
