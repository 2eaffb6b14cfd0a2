"""The `synk` command: what a user sees, errors as one sentence and no traceback."""

from __future__ import annotations

import json
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
    from pipeline.stages import ingest, publish_warehouse

    ingest(home)
    publish_warehouse(home)
    out = synk("status", "--home", str(tmp_path)).stdout
    assert "good" in out and "loaded" in out
    assert "bad" in out and "rejected" in out and "different number of fields" in out
    assert "code_set:sex: 1" in out
    assert "patients" in out and "Warehouse:" in out
    docs = home.data_docs_index
    assert f"GX Data Docs (their styles and scripts need the internet): {docs.as_uri()}" in out
    assert "good" in docs.read_text(encoding="utf-8")  # the load's validation results are listed
    assert f"Validation results: {home.validation_page.as_uri()}" in out


def test_generate_writes_a_redcap_export_on_request(tmp_path: Path) -> None:
    result = synk("generate", "--out", str(tmp_path / "rc"), "--patients", "5", "--format", "redcap")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "rc").iterdir()) == [
        "manifest.json",
        "redcap_dictionary.csv",
        "redcap_records.csv",
    ]
    assert '"source": "redcap"' in (tmp_path / "rc" / "manifest.json").read_text()


def test_generate_sets_a_sites_true_effect(tmp_path: Path) -> None:
    # Several sites with different effects (issue 29): each drop its own --effect, in its manifest.
    result = synk("generate", "--out", str(tmp_path / "s2"), "--patients", "5", "--site", "site02", "--effect", "2")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "s2" / "manifest.json").read_text())
    assert manifest["generator"]["params"]["combined_effect"] == 2.0 and manifest["site_id"] == "site02"


HOLD_THE_STORE = """
import sys
from pipeline.settings import DataHome
from pipeline.store.connection import note_activity, open_store, writer_lock

home = DataHome.resolve(sys.argv[1])
with writer_lock(home, activity="looking for new drops"), open_store(home) as con:
    note_activity(home, "ingest of drop second (1 of 1 in landing/)")
    print("holding", flush=True)
    sys.stdin.readline()
"""


def test_status_during_a_load_shows_the_load_and_the_last_published_state(tmp_path: Path) -> None:
    """While a load writes the store (DuckDB lets no one else open it), status says what the load is
    doing and shows the ledger as last published, not just "busy"."""
    home = DataHome.resolve(tmp_path).ensure()
    write_drop_files(home, "first", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    from pipeline.stages import ingest, publish_warehouse

    ingest(home)
    publish_warehouse(home)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_STORE, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert holder.stdout.readline() == "holding\n"
        result = synk("status", "--home", str(tmp_path))
    finally:
        holder.communicate("\n", timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Under way: ingest of drop second (1 of 1 in landing/) (process {holder.pid}, since" in out
    assert "The staging store is busy with the load under way; as last published:" in out
    ledger = out.split("as last published:")[1]
    assert "first" in ledger and "patients.csv" in ledger and "loaded" in ledger
    assert "Warehouse:" in out and "busy" not in out.replace("is busy with the load under way", "")
    # Once the load is over, the store is read again and nothing is under way.
    after = synk("status", "--home", str(tmp_path)).stdout
    assert "Under way" not in after and "Drops:" in after
