"""Faults a load must survive: being killed at any point, and two loads at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from pipeline.settings import DataHome
from tests.conftest import SUNNYBROOK_ITEMS, write_drop_files

INGEST = (
    "import sys; from pipeline.settings import DataHome; from pipeline.ingest.drops import ingest_landing; "
    "s = ingest_landing(DataHome.resolve(sys.argv[1])); print([d.status for d in s.drops])"
)


def big_drop(home: DataHome, drop_id: str, patients: int, visits: int) -> int:
    """A valid drop large enough that a load takes a few seconds; returns its assessment rows."""
    patient_rows = [f"P{i},s1,F,50,L,bell,2020,365" for i in range(patients)]
    treatments = [f"P{i},s1,T1,0,botox,25,," for i in range(patients)]
    assessments = [
        f"P{i},s1,{day * 30},sunnybrook,{item},{value}"
        for i in range(patients)
        for day in range(visits)
        for item, value in SUNNYBROOK_ITEMS.items()
    ]
    write_drop_files(home, drop_id, patient_rows, treatments, assessments)
    return len(assessments)


def ingest_process(home: DataHome) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", INGEST, str(home.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def store_state(home: DataHome) -> dict[str, object]:
    con = duckdb.connect(str(home.store_path), read_only=True)
    try:
        return {
            "ledger": con.execute(
                "SELECT file, rows_in, rows_loaded, rows_quarantined, status FROM load_ledger ORDER BY file"
            ).fetchall(),
            "assessments": con.execute("SELECT count(*) FROM assessments_history WHERE valid_to IS NULL").fetchone()[0],
            "versions": con.execute("SELECT count(*) FROM assessments_history").fetchone()[0],
            "drops": con.execute("SELECT drop_id, status FROM drops").fetchall(),
        }
    finally:
        con.close()


def has_ledger(home: DataHome) -> bool:
    con = duckdb.connect(str(home.store_path), read_only=True)
    try:
        return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'load_ledger'").fetchone()[0])
    finally:
        con.close()


def test_a_load_killed_at_any_point_is_all_or_nothing_and_a_rerun_finishes_it(tmp_path: Path) -> None:
    reference = DataHome.resolve(tmp_path / "reference").ensure()
    rows = big_drop(reference, "big", patients=200, visits=3)
    started = time.perf_counter()
    assert ingest_process(reference).wait(timeout=300) == 0
    full_load = time.perf_counter() - started
    expected = store_state(reference)
    assert expected["assessments"] == rows

    # Kill at several points through the load (start-up, parse, validate, the write), then rerun.
    for fraction in (0.5, 0.9):
        home = DataHome.resolve(tmp_path / f"killed-{fraction}").ensure()
        big_drop(home, "big", patients=200, visits=3)
        process = ingest_process(home)
        time.sleep(full_load * fraction)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        if home.store_path.exists() and has_ledger(home):  # killed while the store's schema was being made: nothing
            state = store_state(home)
            # Either nothing of the drop or all of it: never a part.
            assert state["assessments"] in (0, rows), (fraction, state)
            assert (state["ledger"] == []) == (state["assessments"] == 0), (fraction, state)
        assert ingest_process(home).wait(timeout=300) == 0
        assert store_state(home) == expected, fraction
        assert not list(home.archive.rglob(".*.partial"))  # a partial copy is rewritten, never kept


def test_two_loads_at_once_are_serialized(tmp_path: Path) -> None:
    home = DataHome.resolve(tmp_path / "home").ensure()
    rows = big_drop(home, "big", patients=100, visits=3)
    first, second = ingest_process(home), ingest_process(home)
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == second.returncode == 0, outputs
    statuses = sorted(out.strip() for out, _ in outputs)
    assert statuses == ["['loaded']", "['unchanged']"]  # one loaded it, the other waited, then found it done
    state = store_state(home)
    assert state["assessments"] == state["versions"] == rows
    assert [s for *_, s in state["ledger"]] == ["loaded"] * 3
    assert os.path.exists(home.lock_path)
