"""The `synk` command: what a user sees, errors as one sentence and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_quarter_is_taken_as_the_tool_writes_it_and_a_year_out_of_range_is_a_sentence(tmp_path: Path) -> None:
    """`2026-Q3` (the published folders' spelling) was refused; `0000Q1` ended in a traceback."""
    for spelling in ("2026-Q3", "2026q3"):
        result = synk("report", "--quarter", spelling, "--home", str(tmp_path))
        assert result.stderr.startswith("synk: No data had been loaded by the end of 2026-Q3 (2026-09-30)")
    result = synk("report", "--quarter", "0000Q1", "--home", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == (
        "synk: The quarter's year 0 is outside 2000 to 2099; give the year of the data, e.g. 2026Q4.\n"
    )


def test_run_with_a_drop_not_in_landing_says_so_and_fails(tmp_path: Path) -> None:
    """A typo while confirming a held snapshot said "Loaded 0 new drop(s)" and exited 0."""
    home = DataHome.resolve(tmp_path).ensure()
    write_drop_files(home, "clinic_a-2026-11", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    result = synk("run", "--home", str(tmp_path), "--drop", "clinic_a-2026-1", "--confirm-retire")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == (
        f"synk: No drop folder named clinic_a-2026-1 is in {home.landing}; check the name against the folders "
        "there (`synk status` lists the drops received) and run again.\n"
    )
    assert "clinic_a-2026-11" not in synk("status", "--home", str(tmp_path)).stdout  # nothing loaded


def test_status_drop_lists_row_ranges_never_values_and_counts_a_patients_row_once(tmp_path: Path) -> None:
    """Two bad cells in patients.csv quarantine their patients' treatments and assessments too
    (unknown_patient): one cause each, told with the patients row; a truly unknown patient stays its own."""
    home = DataHome.resolve(tmp_path).ensure()
    write_drop_files(
        home,
        "good",
        BASE_PATIENTS + ["P3,s1,QX,30,R,bell,2021,300", "P4,s1,F,-37,R,bell,2021,300"],
        BASE_TREATMENTS + ["P3,s1,T1,0,botox,25,,", "P9,s1,T1,0,botox,25,,"],
        sunnybrook_rows("P1", 0) + sunnybrook_rows("P3", 0) + sunnybrook_rows("P4", 0),
    )
    write_drop_files(home, "bad", ["P9,s1,F,45,L,bell,2020,400,extra"], [], [])
    from pipeline.stages import ingest

    ingest(home)
    result = synk("status", "--home", str(tmp_path), "--drop", "good")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Drop good: loaded" in out and "30 rows quarantined" in out
    assert "    code_set:sex (sex): row 4\n" in out and "    range:age_at_onset (age_at_onset): row 5\n" in out
    # P3's and P4's 26 assessments (rows 15-40), P3's treatment (row 5): one cause, with their patients row.
    assert "26 rows of 2 patients whose patients.csv row was quarantined (unknown_patient): rows 15-40" in out
    assert "1 row of 1 patient whose patients.csv row was quarantined (unknown_patient): row 5" in out
    assert "    unknown_patient (patient_id, site_id): row 6\n" in out  # P9: not in the drop at all
    assert "Causes: 3 rows broke a rule; the other 27 were quarantined only because" in out
    for value in ("QX", "-37", "P3", "P4", "P9", "botox"):  # never a cell value (nor a patient's key)
        assert value not in out, value

    refused = synk("status", "--home", str(tmp_path), "--drop", "bad").stdout
    assert "Drop bad: rejected" in refused and "different number of fields" in refused
    assert "No row of it was loaded or quarantined" in refused
    everything = synk("status", "--home", str(tmp_path)).stdout
    assert "unknown_patient: 28 (27 of them only because their patient's own row was quarantined)" in everything
    # The alert (mostly quarantined) counts that cause once too, and says where the rows are listed.
    assert "by rule: unknown_patient 26 (26 only because their patient's own row was quarantined);" in everything
    assert "unknown_patient 2 (1 only because their patient's own row was quarantined)" in everything
    assert "`synk status --drop good` lists the rows by file and rule" in everything
    ledger = [row for row in (line.split() for line in everything.splitlines()) if row[:1] == ["bad"]]
    ledger = [row for row in ledger if row[1].endswith(".csv")]
    assert ledger and all(row[-2:] == ["-", "rejected"] for row in ledger), ledger  # not "quarantined"
    page = home.validation_page.read_text(encoding="utf-8")
    assert "<h2>Refused drops</h2>" in page and "bad</td><td" in page and "different number of fields" in page

    missing = synk("status", "--home", str(tmp_path), "--drop", "nope")
    assert missing.returncode == 1 and missing.stderr.startswith("synk: No drop named nope has been received")
    assert "Traceback" not in missing.stderr


def test_row_ranges_are_compressed() -> None:
    from pipeline.status import RANGES_SHOWN, row_ranges

    assert row_ranges([12, 4, 5, 6, 7, 8, 9]) == "rows 4-9, 12"
    assert row_ranges([7]) == "row 7"
    many = row_ranges(list(range(2, 2 * RANGES_SHOWN + 12, 2)))
    assert many.endswith("and 5 more in 5 ranges (the store's quarantine table has them all)")


def test_each_subcommands_help_says_what_it_does_and_its_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import build_parser

    helps = {}
    for command in ("generate", "run", "report", "status", "docs"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        helps[command] = " ".join(capsys.readouterr().out.split())
    assert "Write one synthetic, de-identified drop" in helps["generate"]
    assert "patients to generate (default: 200)" in helps["generate"] and "(default: site01)" in helps["generate"]
    assert "(default: False)" not in " ".join(helps.values()) and "(default: None)" not in " ".join(helps.values())
    assert "Ingest every new drop in the landing folder" in helps["run"]
    assert "--drop ID show one drop instead" in helps["status"]
    for command, text in helps.items():
        description = text.split(" options: ")[0].split("] ", 1)[-1]
        assert len(description) > 60, (command, description)  # a sentence, not only the usage line
