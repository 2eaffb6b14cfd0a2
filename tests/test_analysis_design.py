"""The design is made in one place (design.json) and reaches every table, model and page: a design with a
24-month timepoint as the primary one and the SAQ as the primary outcome, run through the real stages."""

from __future__ import annotations

import csv
import json
import re
from html import unescape

import duckdb
import pytest

from pipeline.settings import DataHome, DesignSettings, ModelSettings, Timepoint
from pipeline.stages import fit_models, ingest, publish_warehouse, report_quarter
from pipeline.tools.synthetic import SyntheticParameters, generate_drop

QUICK = ModelSettings(methods=("unadjusted", "ancova"))  # the design's reach, not every method, is tested
TIMEPOINTS = [
    {"name": "3m", "target": 90, "low": 60, "high": 120},
    {"name": "6m", "target": 180, "low": 150, "high": 240},
    {"name": "12m", "target": 365, "low": 300, "high": 430},
    {"name": "24m", "target": 730, "low": 640, "high": 820},
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> DataHome:
    home = DataHome.resolve(tmp_path_factory.mktemp("design")).ensure()
    design = {"timepoints": TIMEPOINTS, "primary_timepoint": "24m", "primary_outcome": "saq"}
    (home.root / "design.json").write_text(json.dumps(design), encoding="utf-8")
    params = SyntheticParameters(late_visits=((730, 640, 820),))
    generate_drop(home.landing / "clinic_a-2026-11", patients=500, seed=24, site="clinic_a", params=params)
    ingest(home)
    publish_warehouse(home)
    fit_models(home, QUICK)
    return home


def test_the_warehouse_carries_the_design_as_data(home: DataHome) -> None:
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        timepoints = con.execute(
            "SELECT timepoint, target_days, window_low_days, window_high_days, is_primary FROM design_timepoints "
            'ORDER BY "position"'
        ).fetchall()
        primary_outcome = con.execute("SELECT outcome FROM design_outcomes WHERE is_primary").fetchall()
        placed = {t for (t,) in con.execute("SELECT DISTINCT timepoint FROM followup_scores").fetchall()}
    assert timepoints == [(t["name"], t["target"], t["low"], t["high"], t["name"] == "24m") for t in TIMEPOINTS]
    assert primary_outcome == [("saq",)]
    assert placed == {"baseline", "3m", "6m", "12m", "24m"}


def test_the_models_estimate_at_the_design_s_timepoints(home: DataHome) -> None:
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        fitted = con.execute(
            "SELECT count(*) FROM model_estimates WHERE timepoint = '24m' AND contrast = 'combined_vs_single' "
            "AND outcome = 'saq' AND method = 'ancova' AND estimate IS NOT NULL"
        ).fetchone()[0]
        timepoints = [
            t
            for (t,) in con.execute(
                "SELECT DISTINCT timepoint FROM model_estimates WHERE contrast <> 'after_vs_before_surgery' ORDER BY 1"
            ).fetchall()
        ]
    assert fitted == 1
    assert timepoints == ["12m", "24m", "3m", "6m"]  # BoNT after surgery is over the whole course ('all')


def test_the_report_answers_on_the_design_s_primary_outcome_and_timepoint(home: DataHome) -> None:
    html = report_quarter(home, "2026Q4", provisional=True, settings=QUICK)
    text = unescape(re.sub(r"<[^>]+>", " ", html.read_text(encoding="utf-8")))
    text = re.sub(r"\s+", " ", text)
    assert "Combined vs single modality at 24 months (the primary comparison)" in text
    answer = r"At 24 months, patients on combined treatment improved [\d.]+ points \w+ on the (\w+)"
    first_finding = re.search(answer, text)
    assert first_finding and first_finding.group(1) == "SAQ", text[text.find("Key findings") :][:1500]
    # The SAQ's sentence comes before the Sunnybrook composite's: the design's primary outcome answers first.
    assert text.index("on the SAQ") < text.index("on the Sunnybrook composite")
    # The answer box too: the SAQ (its design's yardstick, half SD 5.8) at 24 months before the Sunnybrook composite.
    assert "On the SAQ at 24 months (the primary outcome; an important difference is taken as 5.8 points, half" in text
    assert text.index("SAQ: important difference 5.8 points (half a reference SD") < text.index(
        "Sunnybrook composite: important difference"
    )
    with html.with_name("estimates_primary.csv").open(encoding="utf-8") as handle:
        primary = list(csv.DictReader(handle))
    assert primary and all(not row.get("timepoint") for row in primary)  # the primary table drops the column
    with html.with_name("estimates.csv").open(encoding="utf-8") as handle:
        labels = {row["timepoint"] for row in csv.DictReader(handle)}
    assert labels == {"3 months", "6 months", "12 months", "24 months"}
    manifest = json.loads(html.with_name("manifest.json").read_text(encoding="utf-8"))
    assert manifest["design_settings"]["primary_outcome"] == "saq"


def test_a_design_that_names_what_it_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="primary_timepoint must be one of the timepoints"):
        DesignSettings(primary_timepoint="24m")
    with pytest.raises(ValueError, match="primary_outcome must be an outcome code"):
        DesignSettings(primary_outcome="smile")
    with pytest.raises(ValueError, match="low <= target <= high"):
        DesignSettings(timepoints=(Timepoint("12m", 365, 400, 430),))
