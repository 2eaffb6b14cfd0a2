"""Scoring of every instrument, worked by hand: recorded or derived, and the edge cases."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.ingest.drops import ingest_landing
from pipeline.settings import DataHome
from pipeline.warehouse import build_and_publish
from tests.conftest import write_drop_files

EFACE_ITEMS = {
    # static (folded): 150 -> 50, 100 -> 100, 80 -> 80, 120 -> 80: mean 77.5
    "static_brow": 150,
    "static_palpebral_fissure": 100,
    "static_nasolabial_fold": 80,
    "static_oral_commissure": 120,
    # dynamic: mean of 70, 80, 90, 60, 50, 40, 100 = 70
    "dyn_brow_elevation": 70,
    "dyn_gentle_eye_closure": 80,
    "dyn_full_eye_closure": 90,
    "dyn_nlf_depth_smile": 60,
    "dyn_nlf_orientation_smile": 50,
    "dyn_commissure_smile": 40,
    "dyn_lower_lip_eee": 100,
    # synkinesis: mean of 90, 70, 80, 60 = 75
    "syn_ocular": 90,
    "syn_midfacial": 70,
    "syn_mentalis": 80,
    "syn_platysmal": 60,
}  # total: (310 + 490 + 300) / 15 = 73.333...

ASSESSMENTS = [
    *[f"P1,s1,0,eface,{item},{value}" for item, value in EFACE_ITEMS.items()],
    # Recorded totals only: Sunnybrook and eFACE totals are taken as given.
    "P1,s1,30,sunnybrook,composite,61",
    "P1,s1,30,sunnybrook,resting_score,5",
    "P1,s1,30,eface,total,66.5",
    # SAQ: recorded percentage form on day 30, raw form on day 60 (36 / 45 x 100 = 80).
    "P1,s1,30,saq,total_pct,42.2",
    "P1,s1,60,saq,total_raw,36",
    # FaCE, FDI and House-Brackmann are recorded scores.
    "P1,s1,30,face,total,55",
    "P1,s1,30,face,movement,40",
    "P1,s1,30,fdi,physical,70",
    "P1,s1,30,fdi,social,65",
    "P1,s1,30,house_brackmann,grade,3",
    # An incomplete eFACE (one dynamic item only) is kept, flagged, not scored.
    "P1,s1,60,eface,dyn_brow_elevation,50",
]


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> dict[tuple[int, str, str], tuple[float | None, str, str | None]]:
    home = DataHome.resolve(tmp_path_factory.mktemp("scoring")).ensure()
    write_drop_files(home, "d1", ["P1,s1,F,50,L,bell,2020,365"], ["P1,s1,T1,0,botox,20,,"], ASSESSMENTS)
    assert ingest_landing(home).drops[0].rows_quarantined == 0
    path, _ = build_and_publish(home)
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT visit_day, instrument, score, value, provenance, flag FROM instrument_scores"
        ).fetchall()
    finally:
        con.close()
    return {
        (day, instrument, score): (value, provenance, flag) for day, instrument, score, value, provenance, flag in rows
    }


def test_eface_derived_from_items_with_static_folding(scores) -> None:
    assert scores[(0, "eface", "static_score")] == (77.5, "derived", None)
    assert scores[(0, "eface", "dynamic_score")] == (70.0, "derived", None)
    assert scores[(0, "eface", "synkinesis_score")] == (75.0, "derived", None)
    value, provenance, _ = scores[(0, "eface", "total")]
    assert value == pytest.approx(1100 / 15) and provenance == "derived"


def test_recorded_totals_are_the_authority(scores) -> None:
    assert scores[(30, "sunnybrook", "composite")] == (61.0, "recorded", None)
    assert scores[(30, "sunnybrook", "resting_score")] == (5.0, "recorded", None)
    assert scores[(30, "eface", "total")] == (66.5, "recorded", None)


def test_saq_from_either_recorded_form(scores) -> None:
    assert scores[(30, "saq", "total_pct")] == (42.2, "recorded", None)
    assert scores[(60, "saq", "total_pct")] == (80.0, "recorded", None)


def test_face_fdi_and_house_brackmann_as_recorded(scores) -> None:
    assert scores[(30, "face", "total")] == (55.0, "recorded", None)
    assert scores[(30, "face", "movement")] == (40.0, "recorded", None)
    assert scores[(30, "fdi", "physical")] == (70.0, "recorded", None)
    assert scores[(30, "fdi", "social")] == (65.0, "recorded", None)
    assert scores[(30, "house_brackmann", "grade")] == (3.0, "recorded", None)


def test_incomplete_instrument_is_flagged_not_dropped(scores) -> None:
    assert scores[(60, "eface", "dynamic_score")] == (None, "derived", "incomplete_items")
    assert scores[(60, "eface", "total")] == (None, "derived", "incomplete_items")
