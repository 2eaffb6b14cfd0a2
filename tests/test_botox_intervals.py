"""``botox_intervals`` (sql/marts/11_botox_intervals.sql) on a hand-made ``treatments`` table: one row per
injection after a patient's first, with its gap, units, and the surgery that came before it."""

from __future__ import annotations

import duckdb
import pandas as pd

from pipeline.sql_files import SQL_DIR

TREATMENTS = [
    # A: BoNT, then a neurectomy, BoNT again, a myectomy on the day of the last injection.
    ("s1", "A", "A-1", 0, "botox", 20.0),
    ("s1", "A", "A-2", 30, "physical_therapy", None),
    ("s1", "A", "A-3", 90, "botox", 26.0),
    ("s1", "A", "A-4", 120, "selective_neurectomy", None),
    ("s1", "A", "A-5", 250, "botox", 18.0),
    ("s1", "A", "A-6", 400, "botox", 15.0),
    ("s1", "A", "A-7", 400, "selective_myectomy", None),
    # B: BoNT alone, one injection before the index visit; listed out of day order.
    ("s1", "B", "B-2", 100, "botox", 30.0),
    ("s1", "B", "B-1", -50, "botox", 25.0),
    # C: a single injection: no row.
    ("s1", "C", "C-1", 10, "botox", 20.0),
    # D (another site, same pseudonym as A): BoNT and physical therapy only.
    ("s2", "A", "D-1", 0, "botox", 10.0),
    ("s2", "A", "D-2", 5, "physical_therapy", None),
    ("s2", "A", "D-3", 95, "botox", 12.0),
]


def build(treatments: list[tuple]) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        frame = pd.DataFrame(
            treatments, columns=["site_id", "patient_id", "treatment_id", "day", "modality", "botox_units"]
        )
        con.register("frame", frame)
        con.execute("CREATE TABLE treatments AS SELECT * FROM frame")
        con.execute((SQL_DIR / "marts" / "11_botox_intervals.sql").read_text(encoding="utf-8"))
        return con.execute("SELECT * FROM botox_intervals ORDER BY ALL").df()
    finally:
        con.close()


def test_one_row_per_injection_after_the_first_with_its_gap_units_and_prior_surgery() -> None:
    rows = build(TREATMENTS)
    got = [
        (
            r.site_id,
            r.patient_id,
            r.treatment_id,
            r.injection_number,
            r.previous_treatment_id,
            r.days_since_previous,
            r.days_since_first,
            r.botox_units,
            bool(r.surgery_before),
            None if pd.isna(r.surgery) else r.surgery,
            None if pd.isna(r.surgery_day) else int(r.surgery_day),
            r.interval_phase,
            r.patient_group,
        )
        for r in rows.itertuples()
    ]
    assert got == [
        ("s1", "A", "A-3", 2, "A-1", 90, 90, 26.0, False, None, 120, "before_surgery", "surgery"),
        ("s1", "A", "A-5", 3, "A-3", 160, 250, 18.0, True, "SN", 120, "spans_surgery", "surgery"),
        ("s1", "A", "A-6", 4, "A-5", 150, 400, 15.0, True, "SN+MY", 120, "after_surgery", "surgery"),
        ("s1", "B", "B-2", 2, "B-1", 150, 150, 30.0, False, None, None, "no_surgery", "bont_alone"),
        ("s2", "A", "D-3", 2, "D-1", 95, 95, 12.0, False, None, None, "no_surgery", "other"),
    ]


def test_a_patient_without_botox_or_with_one_injection_has_no_row() -> None:
    rows = build([("s1", "E", "E-1", 0, "selective_myectomy", None), ("s1", "C", "C-1", 10, "botox", 20.0)])
    assert rows.empty
