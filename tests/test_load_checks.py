"""A load that went through but went wrong is loud: its last line, `synk status` first, a failed check.

Real stores and warehouses in a temporary data home; the CLI runs as a user runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.ingest.drops import ingest_landing
from pipeline.settings import DataHome, IngestSettings, ModelSettings
from pipeline.stages import publish_warehouse, raise_refusals
from pipeline.status import status_lines
from pipeline.tools.synthetic import generate_drop
from tests.conftest import BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows, write_drop_files


def synk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, cwd=Path(__file__).parent.parent
    )


def spelled_badly(rows: list[str], every: int) -> list[str]:
    """Every ``every``-th assessment's value with a decimal comma, quoted as a spreadsheet writes it."""
    return [
        row.rsplit(",", 1)[0] + ',"' + row.rsplit(",", 1)[1] + ',0"' if i % every == 0 else row
        for i, row in enumerate(rows)
    ]


def test_a_file_mostly_quarantined_raises_an_alert_with_rule_count_share_and_fix(home: DataHome) -> None:
    assessments = spelled_badly(sunnybrook_rows("P1", 0) + sunnybrook_rows("P2", 0), every=2)  # 13 of 26
    write_drop_files(home, "d1", BASE_PATIENTS, BASE_TREATMENTS, assessments)
    summary = ingest_landing(home)
    [result] = summary.drops
    assert result.status == "loaded" and result.rows_quarantined == 13
    assert result.alert.startswith("Drop d1 loaded, but assessments.csv had 13 of 26 rows quarantined (50.0%")
    assert "above the 5% limit" in result.alert
    assert "by rule: item_integer:sunnybrook 13, type_number:value 13" in result.alert
    assert "To fix:" in result.alert and "send it again as a new drop" in result.alert
    assert result.alert in summary.lines()
    assert "3,0" not in result.alert  # a rule and a count, never a cell
    with pytest.raises(PipelineError) as check:
        raise_refusals(summary.as_dict())
    assert "assessments.csv had 13 of 26 rows quarantined" in str(check.value)


def test_a_share_at_or_under_the_limit_is_quiet_and_the_limit_is_a_setting(home: DataHome) -> None:
    rows = sunnybrook_rows("P1", 0) + sunnybrook_rows("P2", 0)
    write_drop_files(home, "d1", BASE_PATIENTS, BASE_TREATMENTS, spelled_badly(rows, every=26))  # 1 of 26: 3.8%
    assert ingest_landing(home).drops[0].alert == ""
    (home.root / "ingest.json").write_text(json.dumps({"max_quarantine_share": 0.01}))
    assert IngestSettings.for_home(home).max_quarantine_share == 0.01
    write_drop_files(home, "d2", BASE_PATIENTS, BASE_TREATMENTS, spelled_badly(rows, every=25))  # 2 of 26
    assert "(7.7%, above the 1% limit)" in ingest_landing(home).drops[-1].alert
    (home.root / "ingest.json").write_text(json.dumps({"max_quarantine_share": "lots"}))
    with pytest.raises(PipelineError, match="max_quarantine_share must be between 0 and 1"):
        ingest_landing(home)


def test_status_shows_a_standing_alert_first_until_a_later_drop_of_the_site_loads(home: DataHome) -> None:
    rows = sunnybrook_rows("P1", 0) + sunnybrook_rows("P2", 0)
    write_drop_files(home, "d1", BASE_PATIENTS, BASE_TREATMENTS, spelled_badly(rows, every=2))
    ingest_landing(home)
    publish_warehouse(home)
    lines = status_lines(home)
    assert lines[2] == "Needs attention:"
    assert "Drop d1 loaded, but assessments.csv had 13 of 26 rows quarantined" in lines[3]
    assert lines.index("Drops:") > 3
    # The corrected export, delivered as a new drop of the same site, answers it.
    write_drop_files(home, "d2", BASE_PATIENTS, BASE_TREATMENTS, rows)
    assert ingest_landing(home).drops[0].alert == ""
    assert "Needs attention:" not in status_lines(home)


def _analysable(home: DataHome) -> int:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        return con.execute(
            "SELECT patients FROM attrition WHERE step = 'analysable' AND outcome = 'sunnybrook_composite' "
            "AND timepoint = '12m'"
        ).fetchone()[0]
    finally:
        con.close()


def test_a_warehouse_with_fewer_analysable_patients_than_before_raises_an_alert(home: DataHome) -> None:
    folder = home.landing / "full-1"
    generate_drop(folder, patients=60, seed=5, site="clinic_a")
    ingest_landing(home)
    first = publish_warehouse(home)
    assert first["alert"] == "" and first["analysable_patients_before"] is None
    assert first["analysable_patients"] >= _analysable(home) > 20
    # The next full export lost its follow-up visits (an export cut at the index visit): every row is
    # valid, nothing is quarantined, but no patient keeps a follow-up score.
    second = home.landing / "full-2"
    second.mkdir()
    for name in ("patients.csv", "treatments.csv"):
        (second / name).write_bytes((folder / name).read_bytes())
    # Confirmed: a full snapshot retiring this many assessments is otherwise held (issue 21), and this
    # test is of what gets through.
    manifest = json.loads((folder / "manifest.json").read_text())
    (second / "manifest.json").write_text(json.dumps({**manifest, "confirm_retire": True}))
    assessments = pd.read_csv(folder / "assessments.csv", dtype=str, keep_default_na=False)
    assessments[assessments["visit_day"].astype(int) <= 30].to_csv(second / "assessments.csv", index=False)
    summary = ingest_landing(home)
    assert [(d.drop_id, d.status, d.alert) for d in summary.drops][-1] == ("full-2", "loaded", "")
    published = publish_warehouse(home)
    assert published["analysable_patients"] == 0
    assert published["alert"].startswith(
        f"The warehouse published now has 0 analysable patients (classifiable, with a baseline and a follow-up "
        f"score), {first['analysable_patients']} fewer than the {first['analysable_patients']} before this load."
    )
    with pytest.raises(PipelineError, match="0 analysable patients"):
        raise_refusals(summary.as_dict(), published)
    assert any("0 analysable patients" in line for line in status_lines(home)[:4])
    # Told once: the next publication of the same data is quiet.
    assert publish_warehouse(home)["alert"] == ""


def test_a_run_that_fits_no_estimate_exits_non_zero_and_says_why(home: DataHome) -> None:
    # Two patients with a baseline only: nothing to compare.
    write_drop_files(home, "d1", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    (home.root / "models.json").write_text(json.dumps({"methods": ["unadjusted"]}))
    result = synk("run", "--home", str(home.root))
    assert result.returncode == 1
    assert "(0 comparing treatments)" in result.stdout and "(0 analysable patients)" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("synk: The model run fitted no estimate: no patient is analysable")
    assert "Traceback" not in result.stderr
    assert "The model run fitted no estimate" in "\n".join(status_lines(home))


def test_a_mostly_quarantined_load_ends_the_run_non_zero_with_its_sentence_last(home: DataHome) -> None:
    generate_drop(home.landing / "clinic-a", patients=40, seed=3, site="clinic_a")
    assessments = home.landing / "clinic-a" / "assessments.csv"
    frame = pd.read_csv(assessments, dtype=str, keep_default_na=False)
    saq = frame["instrument"] == "saq"
    frame.loc[saq, "value"] = frame.loc[saq, "value"] + ",0"  # a decimal comma, quoted by to_csv
    frame.to_csv(assessments, index=False)
    (home.root / "models.json").write_text(json.dumps({"methods": ["unadjusted"]}))
    result = synk("run", "--home", str(home.root))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("synk: Drop clinic-a loaded, but assessments.csv had ")
    assert f"{int(saq.sum()):,} of {len(frame):,} rows quarantined" in last
    assert "type_number:value" in last and "item_integer:saq" in last


def test_no_estimate_is_told_once_to_the_dag_and_every_time_to_the_cli(home: DataHome) -> None:
    from pipeline.stages import fit_models, raise_no_estimates

    write_drop_files(home, "d1", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    ingest_landing(home)
    publish_warehouse(home)
    quick = ModelSettings(methods=("unadjusted",))
    first = fit_models(home, quick)
    assert first["comparisons"] == 0 and not first["told_before"]
    with pytest.raises(PipelineError, match="fitted no estimate: no patient is analysable"):
        raise_no_estimates(first, once=True)
    # The hourly publication refits the same data: the DAG's check stays green, `synk run` does not.
    again = fit_models(home, quick)
    assert again["told_before"]
    raise_no_estimates(again, once=True)
    with pytest.raises(PipelineError, match="fitted no estimate"):
        raise_no_estimates(again)
    assert sum("fitted no estimate" in line for line in status_lines(home)) == 1
    # A later drop of the site answers the alert: a run still without estimates is told again.
    # (A full snapshot: it keeps P1's scores, or it would be held for retiring them all.)
    write_drop_files(home, "d2", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0) + sunnybrook_rows("P2", 0))
    ingest_landing(home)
    publish_warehouse(home)
    assert not fit_models(home, quick)["told_before"]


def test_a_method_whose_every_fit_failed_is_an_alert_not_a_quiet_success(home: DataHome) -> None:
    """Today's main: every iptw estimate "fit failed" and the run is green. (A truncation of 0 is refused
    in models.json now; given in code it still breaks the method, as a setting or data yet unforeseen may.)"""
    from pipeline.stages import raise_no_estimates, run_all

    generate_drop(home.landing / "clinic_a-2026-11", patients=120, seed=3, site="clinic_a")
    result = run_all(home, settings=ModelSettings(methods=("unadjusted", "iptw"), weight_truncation=0))
    assert result.models is not None and result.models["estimates"] > 0
    with pytest.raises(PipelineError, match=r"fitted no estimate of iptw \(\d+ of its \d+ estimates failed to fit\)"):
        raise_no_estimates(result.models)
    lines = status_lines(home)
    attention = lines.index("Needs attention:")
    assert "fitted no estimate of iptw" in lines[attention + 1] and "unadjusted" not in lines[attention + 1]
