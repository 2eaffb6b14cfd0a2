"""The data home's own settings files (design.json, models.json, ingest.json, report.json), written as a
careless operator writes them: each is refused when read, with one sentence naming the file, the key and
the rule, and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.settings import DataHome, DesignSettings, IngestSettings, ModelSettings, ReportSettings

SETTINGS = {
    "design.json": DesignSettings,
    "models.json": ModelSettings,
    "ingest.json": IngestSettings,
    "report.json": ReportSettings,
}
TIMEPOINT = {"name": "6m", "target": 180, "low": 150, "high": 240}


def synk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def refusal(home: DataHome, name: str, text: str | bytes) -> str:
    path = home.root / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(PipelineError) as caught:
        SETTINGS[name].for_home(home)
    message = str(caught.value)
    assert message.startswith(f"{path} is not a valid ") and "docs/runbook.md, 'Settings files'" in message
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ({"exposure_window_days": 0}, "exposure_window_days must be a whole number of days above 0"),
        ({"exposure_window_days": -30}, "exposure_window_days must be a whole number of days above 0"),
        ({"exposure_window_days": "180"}, "exposure_window_days must be a whole number"),
        ({"baseline_lookback_days": -5}, "baseline_lookback_days must be a whole number of days, 0 or more"),
        ({"outcome_phase_min_days": -1}, "outcome_phase_min_days must be a whole number of days, 0 or more"),
        ({"outcome_phase_min_days": "90"}, "outcome_phase_min_days must be a whole number"),
        (
            {"timepoints": [{**TIMEPOINT, "target": "180"}], "primary_timepoint": "6m"},
            "target, low and high must be whole numbers",
        ),
        (  # 6m's window reaches into 12m's: a visit on day 320 would count under both
            {"timepoints": [{**TIMEPOINT, "high": 330}, {"name": "12m", "target": 365, "low": 300, "high": 430}]},
            "no visit counts under two timepoints",
        ),
        (
            {"timepoints": [{"name": "12m", "target": 365, "low": 300, "high": 430}, TIMEPOINT]},
            "listed earliest first",
        ),
        (
            {"timepoints": [{**TIMEPOINT, "name": "6m<b onmouseover=alert(1)>"}], "primary_timepoint": "6m"},
            "each timepoint name must be 1 to 16 lower-case letters",
        ),
        ({"timepoints": [{**TIMEPOINT, "name": "6/m"}], "primary_timepoint": "6/m"}, "each timepoint name must"),
        ({"timepoints": [{**TIMEPOINT, "weeks": 26}]}, "timepoints must be a list of objects"),
        ({"timepoints": None}, "timepoints must be a list of objects"),
    ],
)
def test_a_design_that_breaks_a_rule_is_refused_naming_the_key(home: DataHome, values: dict, rule: str) -> None:
    message = refusal(home, "design.json", json.dumps(values))
    assert rule in message


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ({"methods": None}, "methods must be some of unadjusted"),
        ({"methods": []}, "methods must be some of unadjusted"),
        ({"covariates": ["bmi"]}, "covariates must be a list of some of age_at_onset"),
        ({"covariates": "sex"}, "covariates must be a list"),
        ({"weight_truncation": 0}, "weight_truncation must be a number above 1"),
        ({"weight_truncation": -1}, "weight_truncation must be a number above 1"),
        ({"mice_imputations": 0}, "mice_imputations must be a whole number of at least 2"),
        ({"equipoise_bounds": [0.3]}, "equipoise_bounds must be two numbers"),
        ({"equipoise_bounds": [0.7, 0.3]}, "equipoise_bounds must be two numbers, low then high"),
        ({"min_group_size": 0}, "min_group_size must be a whole number of at least 11"),
        ({"min_group_size": 10}, "min_group_size must be a whole number of at least 11"),
        ({"severity_measures": ["hads"]}, "severity_measures must be a list of outcome codes"),
        ({"power": 80}, "power must be a number between 0 and 1"),
        ({"spline_knots": 9}, "spline_knots must be 0 (no splines) or one of 3, 4, 5"),
        ({"mixed_random_slope": "yes"}, "mixed_random_slope must be true or false"),
        ({"imputations": 5}, "unknown key(s) imputations"),
    ],
)
def test_model_settings_that_would_fail_or_leak_are_refused(home: DataHome, values: dict, rule: str) -> None:
    assert rule in refusal(home, "models.json", json.dumps(values))


def test_report_and_ingest_settings_are_checked(home: DataHome) -> None:
    assert "page_size must be one of Letter, A4" in refusal(home, "report.json", '{"page_size": "A5"}')
    assert "not valid UTF-8 JSON (JSONDecodeError)" in refusal(home, "report.json", '{"page_size": "A')
    rule = "max_cell_chars must be a whole number of at least 1"
    assert rule in refusal(home, "ingest.json", '{"max_cell_chars": 0}')
    assert "not a JSON object" in refusal(home, "ingest.json", "[1, 2]")


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_settings_file_is_read_like_a_manifest(home: DataHome, name: str) -> None:
    """Nested 100,000 deep: refused as a manifest is, not a RecursionError; with a byte-order mark
    (Windows Notepad): read, as a manifest is."""
    assert "not valid UTF-8 JSON (RecursionError)" in refusal(home, name, "[" * 100_000 + "]" * 100_000)
    sample = {"design.json": '{"exposure_window_days": 150}', "models.json": '{"mice_imputations": 5}'}
    sample |= {"ingest.json": '{"max_cell_chars": 300}', "report.json": '{"page_size": "A4"}'}
    (home.root / name).write_bytes(b"\xef\xbb\xbf" + sample[name].encode("utf-8"))
    assert SETTINGS[name].for_home(home) != SETTINGS[name]()


def test_a_text_where_a_number_belongs_stops_the_run_with_the_sentence(home: DataHome) -> None:
    """Today's main: "stopped by BinderException ... Run again with --verbose"."""
    (home.root / "design.json").write_text('{"baseline_lookback_days": "ninety"}', encoding="utf-8")
    result = synk("run", "--home", str(home.root))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"synk: {home.root / 'design.json'} is not a valid design file: baseline_lookback_days must be a whole "
        "number of days, 0 or more; correct it (each setting's rule is in docs/runbook.md, 'Settings files') and "
        "run again."
    )


def test_a_broken_report_json_is_refused_before_any_work(home: DataHome) -> None:
    (home.root / "report.json").write_text('{"page_size": "A', encoding="utf-8")
    result = synk("report", "--quarter", "2026Q3", "--home", str(home.root))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "report.json is not a valid report settings file" in result.stderr
    assert not (home.staging / "as_of").exists()
