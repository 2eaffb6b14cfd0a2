"""When the warehouse is republished, and when the models have new data to fit (the Asset)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.cli import main as synk
from pipeline.settings import DataHome
from pipeline.stages import fit_models, ingest, publish_warehouse
from pipeline.stale_wal import set_aside_folder, wal_of
from pipeline.status import status_lines
from pipeline.tools.synthetic import generate_drop
from tests.conftest import BASE_PATIENTS, BASE_TREATMENTS, WriteDrop, sunnybrook_rows
from tests.report.helpers import light_settings


def test_publication_follows_what_the_store_received(home: DataHome, write_drop: WriteDrop) -> None:
    # Nothing received yet (an hourly run on a new installation): nothing to publish.
    ingest(home)
    assert publish_warehouse(home) | {"warehouse": ""} == {
        "warehouse": "",
        "data_snapshot": None,
        "published": False,
        "data_changed": False,
        "analysable_patients": 0,
        "analysable_patients_before": 0,
        "alert": "",
        "set_aside": [],
    }
    assert not home.warehouse_path.exists()

    write_drop("first", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    ingest(home)
    first = publish_warehouse(home)
    assert first["published"] and first["data_changed"]
    built = home.warehouse_path.stat().st_mtime_ns

    # The next hourly run, nothing new: the file is left alone and the models get no event.
    ingest(home)
    again = publish_warehouse(home)
    assert (again["published"], again["data_changed"]) == (False, False)
    assert again["data_snapshot"] == first["data_snapshot"]
    assert home.warehouse_path.stat().st_mtime_ns == built

    # A refused drop: the ledger changed, so it is republished, but the loaded data did not.
    write_drop("bad", ["P9,s1,F,45,L,bell,2020,400,extra"], [], [])
    ingest(home)
    refused = publish_warehouse(home)
    assert (refused["published"], refused["data_changed"]) == (True, False)

    # Another analysis design changes what the models read: a refit is due.
    (home.root / "design.json").write_text(json.dumps({"exposure_window_days": 120}))
    redesigned = publish_warehouse(home)
    assert (redesigned["published"], redesigned["data_changed"]) == (True, True)

    # New data: published and new for the models.
    write_drop("second", ["P3,s1,F,50,R,bell,2021,200"], [], [], manifest={"snapshot": "incremental"})
    ingest(home)
    second = publish_warehouse(home)
    assert second["published"] and second["data_changed"]
    assert second["data_snapshot"] != first["data_snapshot"]


# --- a reader's session, crashed or live, never wedges the publication -------------------------------

CRASHED_SESSION = """
import duckdb, os, sys
con = duckdb.connect(sys.argv[1])  # read-write: DuckDB's own clients open a file so by default
con.execute("SET checkpoint_threshold = '10GB'")
con.execute("PRAGMA disable_checkpoint_on_shutdown")
con.execute("CREATE TABLE scratch AS SELECT * FROM patients")
os._exit(9)  # dies before any checkpoint: the scratch table is only in the write-ahead log
"""

LIVE_READER = """
import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM patients").fetchone()[0], flush=True)
sys.stdin.readline()  # held open while the warehouse is published again
print(con.execute("SELECT count(*) FROM patients").fetchone()[0], flush=True)
"""


def generated_home(tmp_path: Path) -> DataHome:
    home = DataHome.resolve(tmp_path / "home").ensure()
    light = light_settings().as_dict() | {"methods": ["unadjusted", "ancova"]}
    (home.root / "models.json").write_text(json.dumps(light))
    generate_drop(home.landing / "clinic_a-2026-10", patients=40, seed=3, site="clinic_a")
    return home


def patients_by_site(home: DataHome) -> dict[str, int]:
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        return dict(con.execute("SELECT site_id, count(*) FROM patients GROUP BY ALL").fetchall())


def test_a_crashed_read_write_session_is_set_aside_and_the_next_run_publishes_and_refits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = generated_home(tmp_path)
    synk(["run", "--home", str(home.root)])
    first_run = duckdb.connect(str(home.warehouse_path), read_only=True)
    first_run_id = first_run.execute("SELECT run_id FROM model_runs").fetchone()[0]
    first_run.close()
    crashed = subprocess.run([sys.executable, "-c", CRASHED_SESSION, str(home.warehouse_path)], check=False)
    assert crashed.returncode == 9 and wal_of(home.warehouse_path).exists()
    capsys.readouterr()

    generate_drop(home.landing / "clinic_b-2026-11", patients=15, seed=4, site="clinic_b")
    assert synk(["run", "--home", str(home.root)]) == 0
    out = capsys.readouterr().out
    aside = list(set_aside_folder(home).glob("outcomes.duckdb.*.wal"))
    assert len(aside) == 1 and not wal_of(home.warehouse_path).exists()
    assert f"was moved to {aside[0]}" in out and "Loaded 1 new drop(s)" in out
    # The new data is published and readable, and the models were fitted on it.
    assert patients_by_site(home) == {"clinic_a": 40, "clinic_b": 15}
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        runs = con.execute("SELECT r.run_id FROM model_runs r JOIN build_info b USING (data_snapshot)").fetchall()
        assert runs and runs[0][0] != first_run_id
        assert "scratch" not in {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "cannot" not in "\n".join(status_lines(home))


def test_a_home_wedged_by_a_stale_log_says_so_and_recovers_by_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = generated_home(tmp_path)
    synk(["run", "--home", str(home.root)])
    subprocess.run([sys.executable, "-c", CRASHED_SESSION, str(home.warehouse_path)], check=False)
    # As an earlier version left it: the log of the file replaced, beside the new one.
    stale = tmp_path / "stale.wal"
    wal_of(home.warehouse_path).rename(stale)
    generate_drop(home.landing / "clinic_b-2026-11", patients=15, seed=4, site="clinic_b")
    synk(["run", "--home", str(home.root)])
    shutil.copyfile(stale, wal_of(home.warehouse_path))
    with pytest.raises(duckdb.Error, match="WAL"):
        duckdb.connect(str(home.warehouse_path), read_only=True)
    status = "\n".join(status_lines(home))
    assert "cannot be opened now: the write-ahead log beside it (outcomes.duckdb.wal)" in status
    assert "the next publication replaces it" not in status
    capsys.readouterr()

    assert synk(["run", "--home", str(home.root)]) == 0  # nothing new: the log is set aside, nothing else
    out = capsys.readouterr().out
    assert "was moved to" in out and "warehouse unchanged" in out
    assert patients_by_site(home) == {"clinic_a": 40, "clinic_b": 15}
    assert "cannot" not in "\n".join(status_lines(home))
    # The models DAG runs on its own (after a publication a log slipped in beside): it clears the log too.
    shutil.copyfile(stale, wal_of(home.warehouse_path))
    fitted = fit_models(home)
    assert len(fitted["set_aside"]) == 1 and "was moved to" in fitted["set_aside"][0]
    assert len(list(set_aside_folder(home).glob("*.wal"))) == 2 and not wal_of(home.warehouse_path).exists()


def test_a_publication_that_fails_after_a_load_says_the_drop_stays_loaded(
    home: DataHome, write_drop: WriteDrop, capsys: pytest.CaptureFixture[str]
) -> None:
    write_drop("first", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    home.warehouse_path.mkdir()  # the file cannot be put in place: the machine's fault, after the load
    assert synk(["run", "--home", str(home.root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "synk: stopped by IsADirectoryError reading or writing the data home; 1 new drop(s) had been loaded before "
        "it stopped, and stay loaded; nothing half-done was kept."
    )
    home.warehouse_path.rmdir()
    synk(["run", "--home", str(home.root)])  # the next run publishes what was loaded (two patients: no estimate)
    out, err = capsys.readouterr()
    assert "Loaded 0 new drop(s); warehouse published" in out and "stopped by" not in err
    assert patients_by_site(home) == {"s1": 2}


def test_a_live_read_only_reader_keeps_reading_through_a_publication(home: DataHome, write_drop: WriteDrop) -> None:
    write_drop("first", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    ingest(home)
    publish_warehouse(home)
    reader = subprocess.Popen(
        [sys.executable, "-c", LIVE_READER, str(home.warehouse_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "2"
        write_drop("second", ["P3,s1,F,50,R,bell,2021,200"], [], [], manifest={"snapshot": "incremental"})
        ingest(home)
        published = publish_warehouse(home)
        assert published["published"] and published["set_aside"] == []
        out, _ = reader.communicate("\n", timeout=60)
    finally:
        reader.kill()
    assert out.strip() == "2" and reader.returncode == 0  # the file it opened, whole
    assert patients_by_site(home) == {"s1": 3}
