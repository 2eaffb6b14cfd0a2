"""An incremental build (the published file plus the patients changed since) publishes exactly what
a full build from the store would."""

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.build_state import read_state, state_path
from pipeline.ingest.drops import ingest_landing
from pipeline.settings import DataHome, DesignSettings
from pipeline.tools.synthetic import generate_drop
from pipeline.warehouse import PUBLISHED_TABLES, build_and_publish, build_warehouse

INCREMENTAL = "Incremental build"


def _drop(home: DataHome, name: str, patients: int, seed: int, snapshot: str, prefix: str) -> Path:
    """A generated drop of site s1 whose patient and treatment ids start with ``prefix``."""
    folder = home.root / "work" / name
    generate_drop(folder, patients=patients, seed=seed, site="s1", snapshot=snapshot)
    for file in ("patients.csv", "treatments.csv", "assessments.csv"):
        path = folder / file
        path.write_text(path.read_text().replace("P0", prefix + "0").replace("T0", prefix + "T0"))
    return folder


def _land(home: DataHome, folder: Path) -> None:
    shutil.move(str(folder), home.landing / folder.name)


def _tables(path: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").df() for t in PUBLISHED_TABLES if t != "build_info"}
        tables["build_info"] = con.execute("SELECT as_of, data_snapshot, design_settings FROM build_info").df()
    return tables


def _assert_same_as_a_full_build(home: DataHome, tmp_path: Path) -> None:
    state = read_state(home)
    assert state is not None
    full = tmp_path / "full.duckdb"
    build_warehouse(home, full, as_of=state.as_of)  # no state given: a full build
    published, rebuilt = _tables(home.warehouse_path), _tables(full)
    for table in published:
        pd.testing.assert_frame_equal(published[table], rebuilt[table], obj=table)
    full.unlink()


def test_incremental_builds_publish_what_a_full_build_would(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = DataHome.resolve(tmp_path / "home").ensure()
    first = _drop(home, "d1-full", 60, 1, "full", "A")
    _land(home, first)
    ingest_landing(home)
    with caplog.at_level(logging.INFO, logger="pipeline.warehouse"):
        build_and_publish(home)
    assert INCREMENTAL not in caplog.text  # no published warehouse yet: a full build

    # New patients, and one already loaded whose record and assessments changed.
    second = _drop(home, "d2-new-and-changed", 8, 2, "incremental", "B")
    original = pd.read_csv(next((home.archive / "d1-full").rglob("patients.csv")), dtype=str)
    changed = original.iloc[[0]].assign(age_at_onset="77")
    added = pd.read_csv(second / "patients.csv", dtype=str)
    pd.concat([added, changed]).to_csv(second / "patients.csv", index=False)
    # Two more loaded patients change only in their treatments or assessments: a new treatment, and a
    # new visit (one instrument's rows of a visit again, a day later).
    archived = home.archive / "d1-full"
    treatments = pd.read_csv(next(archived.rglob("treatments.csv")), dtype=str)
    extra_treatment = treatments[treatments["patient_id"] == original["patient_id"].iloc[1]].iloc[[0]]
    extra_treatment = extra_treatment.assign(treatment_id="EXTRA1", day="400")
    new_treatments = pd.read_csv(second / "treatments.csv", dtype=str)
    pd.concat([new_treatments, extra_treatment]).to_csv(second / "treatments.csv", index=False)
    assessments = pd.read_csv(next(archived.rglob("assessments.csv")), dtype=str)
    third_patient = assessments[assessments["patient_id"] == original["patient_id"].iloc[2]]
    first_visit = third_patient[
        (third_patient["visit_day"] == third_patient["visit_day"].iloc[0])
        & (third_patient["instrument"] == third_patient["instrument"].iloc[0])
    ]
    extra_visit = first_visit.assign(visit_day=(first_visit["visit_day"].astype(int) + 1).astype(str))
    new_assessments = pd.read_csv(second / "assessments.csv", dtype=str)
    pd.concat([new_assessments, extra_visit]).to_csv(second / "assessments.csv", index=False)
    _land(home, second)
    summary = ingest_landing(home)
    assert summary.drops[-1].rows_quarantined == 0, summary.lines()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.warehouse"):
        build_and_publish(home)
    assert f"{INCREMENTAL}: 11 of 68 patients recomputed" in caplog.text
    _assert_same_as_a_full_build(home, tmp_path)

    # A full snapshot (the first drop without three of its patients) retires those three, and the
    # incremental drop's eight new patients, which it does not hold either.
    third = tmp_path / "d3-full-retires"
    third.mkdir()
    for archived in (home.archive / "d1-full").rglob("*.*"):
        shutil.copyfile(archived, third / archived.name)
    kept = pd.read_csv(third / "patients.csv", dtype=str)
    gone = set(kept["patient_id"].iloc[-3:])
    kept[~kept["patient_id"].isin(gone)].to_csv(third / "patients.csv", index=False)
    for file in ("treatments.csv", "assessments.csv"):
        rows = pd.read_csv(third / file, dtype=str)
        rows[~rows["patient_id"].isin(gone)].to_csv(third / file, index=False)
    _land(home, third)
    summary = ingest_landing(home)
    assert summary.loaded, summary.lines()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.warehouse"):
        build_and_publish(home)
    assert INCREMENTAL in caplog.text
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM patients WHERE patient_id IN ?", [list(gone)]).fetchone()[0] == 0
        storage = con.execute("SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'outcomes'")
        assert storage.fetchone()[0].startswith("v1.5.0")  # the copy keeps the published file's storage
    cli = Path(sys.executable).with_name("duckdb")  # DuckDB 1.5, as statisticians' tools may be
    out = subprocess.run(
        [str(cli), "-readonly", "-csv", "-noheader", str(home.warehouse_path), "SELECT count(*) FROM patients"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "57"  # 68 less the 3 left out and the 8 of the incremental drop
    _assert_same_as_a_full_build(home, tmp_path)


def test_a_full_build_where_the_state_does_not_describe_the_published_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = DataHome.resolve(tmp_path / "home").ensure()
    _land(home, _drop(home, "d1-full", 30, 3, "full", "A"))
    ingest_landing(home)
    build_and_publish(home)
    _land(home, _drop(home, "d2-new", 3, 4, "incremental", "B"))
    ingest_landing(home)

    # Other design settings shape every patient's rows: all are recomputed.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.warehouse"):
        build_and_publish(home, DesignSettings(exposure_window_days=120))
    assert INCREMENTAL not in caplog.text

    # A state that does not match the published build_info (a restored file, say): a full build.
    state_path(home).write_text(state_path(home).read_text().replace('"data_snapshot": "', '"data_snapshot": "x'))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.warehouse"):
        build_and_publish(home, DesignSettings(exposure_window_days=120))
    assert INCREMENTAL not in caplog.text

    # With the state written by that build, nothing changed since: only the global tables are rebuilt.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.warehouse"):
        build_and_publish(home, DesignSettings(exposure_window_days=120))
    assert f"{INCREMENTAL}: 0 of 33 patients recomputed" in caplog.text


def test_a_full_build_after_an_older_store_is_restored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A store restored from a backup does not hold what the published build read: the next build
    computes every patient, so no patient the restored store lacks lingers in the warehouse."""
    home = DataHome.resolve(tmp_path / "home").ensure()
    _land(home, _drop(home, "d1-full", 20, 5, "full", "A"))
    ingest_landing(home)
    build_and_publish(home)
    backup = tmp_path / "store-backup.duckdb"
    shutil.copyfile(home.store_path, backup)
    _land(home, _drop(home, "d2-new", 4, 6, "incremental", "B"))
    ingest_landing(home)
    build_and_publish(home)
    shutil.copyfile(backup, home.store_path)  # back to the store before the second drop
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.warehouse"):
        build_and_publish(home)
    assert INCREMENTAL not in caplog.text
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM patients").fetchone()[0] == 20


def test_complications_alone_recompute_their_patients(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A drop of complications only (contract 1.2) changes those patients: the incremental build recomputes
    them, and publishes what a full build would."""
    home = DataHome.resolve(tmp_path / "home").ensure()
    _land(home, _drop(home, "d1-full", 30, 3, "full", "A"))
    ingest_landing(home)
    build_and_publish(home)
    treatments = pd.read_csv(next((home.archive / "d1-full").rglob("treatments.csv")), dtype=str)
    first = treatments.drop_duplicates("patient_id").iloc[:2]
    folder = home.landing / "d2-complications"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"snapshot": "incremental"}')
    rows = [
        f"{r.patient_id},s1,1,{r.treatment_id},{int(r.day) + 5},eyelid_ptosis,,{int(r.day) + 40}"
        for r in first.itertuples(index=False)
    ]
    header = "patient_id,site_id,complication_id,treatment_id,day,code,grade,resolved_day"
    (folder / "complications.csv").write_text("\n".join([header, *rows]) + "\n")
    summary = ingest_landing(home)
    assert [d.status for d in summary.drops if d.drop_id == "d2-complications"] == ["loaded"], summary.lines()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pipeline.warehouse"):
        build_and_publish(home)
    assert f"{INCREMENTAL}: 2 of 30 patients recomputed" in caplog.text
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM complications").fetchone()[0] == 2
        assert (
            con.execute("SELECT sum(patients_with) FROM complication_rates WHERE grouping = 'combination'").fetchone()[
                0
            ]
            == 2
        )
    _assert_same_as_a_full_build(home, tmp_path)
