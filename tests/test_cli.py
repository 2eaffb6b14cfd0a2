"""The `synk` command: what a user sees, errors as one sentence and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeline.settings import DataHome
from tests.conftest import BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows, write_drop_files


def synk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_status_before_anything_is_loaded(tmp_path: Path) -> None:
    result = synk("status", "--home", str(tmp_path))
    assert result.returncode == 0
    assert "Nothing loaded yet" in result.stdout


def test_report_without_data_is_one_clear_sentence(tmp_path: Path) -> None:
    result = synk("report", "--quarter", "2026Q3", "--home", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("synk: No data had been loaded by the end of 2026-Q3 (2026-09-30)")
    assert "Traceback" not in result.stderr


def test_status_shows_ledger_refusals_and_quarantine_by_rule(tmp_path: Path) -> None:
    home = DataHome.resolve(tmp_path).ensure()
    write_drop_files(
        home, "good", BASE_PATIENTS + ["P3,s1,Q,30,R,bell,2021,300"], BASE_TREATMENTS, sunnybrook_rows("P1", 0)
    )
    write_drop_files(home, "bad", ["P9,s1,F,45,L,bell,2020,400,extra"], [], [])
    from pipeline.run import ingest, publish_warehouse

    ingest(home)
    publish_warehouse(home)
    out = synk("status", "--home", str(tmp_path)).stdout
    assert "good" in out and "loaded" in out
    assert "bad" in out and "rejected" in out and "different number of fields" in out
    assert "code_set:sex: 1" in out
    assert "patients" in out and "Warehouse:" in out
    docs = home.data_docs_index
    assert f"GX Data Docs): {docs.as_uri()}" in out
    assert "good" in docs.read_text(encoding="utf-8")  # the load's validation results are listed


def test_generate_writes_a_redcap_export_on_request(tmp_path: Path) -> None:
    result = synk("generate", "--out", str(tmp_path / "rc"), "--patients", "5", "--format", "redcap")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "rc").iterdir()) == [
        "manifest.json",
        "redcap_dictionary.csv",
        "redcap_records.csv",
    ]
    assert '"source": "redcap"' in (tmp_path / "rc" / "manifest.json").read_text()
