"""Publishing is atomic: a reader in another process never fails and never sees a mix of builds."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from pipeline.ingest.drops import ingest_landing
from pipeline.settings import DataHome
from pipeline.warehouse import build_and_publish
from tests.conftest import write_drop_files

# Opens, reads and closes the warehouse in a loop; with "hold", keeps one connection open throughout
# instead (DuckDB shares one instance per path within a process, so the two kinds run apart).
READER = """
import json, pathlib, sys, time, duckdb
path, stop, hold = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3] == "hold"
seen, errors, con, deadline = [], [], None, time.time() + 120
while time.time() < deadline and not stop.exists():
    try:
        if con is None or not hold:
            con = duckdb.connect(path, read_only=True)
        snapshot = con.execute("SELECT data_snapshot FROM build_info").fetchone()[0]
        patients = con.execute("SELECT count(*) FROM patients").fetchone()[0]
        ledger = con.execute("SELECT count(DISTINCT drop_id) FROM load_ledger").fetchone()[0]
        seen.append([snapshot, patients, ledger])
        if not hold:
            con.close()
    except Exception as exc:
        errors.append(type(exc).__name__ + ": " + str(exc))
    time.sleep(0.01)
print(json.dumps({"seen": seen, "errors": errors}))
"""


def test_readers_see_whole_builds_only_and_do_not_block_publication(tmp_path: Path) -> None:
    home = DataHome.resolve(tmp_path).ensure()
    write_drop_files(home, "d0", ["P0,s1,F,50,L,bell,2020,365"], [], [], manifest={"snapshot": "incremental"})
    ingest_landing(home)
    build_and_publish(home)

    stop = tmp_path / "stop-reading"
    readers = {
        mode: subprocess.Popen(
            [sys.executable, "-c", READER, str(home.warehouse_path), str(stop), mode], stdout=subprocess.PIPE, text=True
        )
        for mode in ("reopen", "hold")
    }
    time.sleep(2)
    expected: dict[str, tuple[int, int]] = {}
    for drop in range(1, 6):
        patients = [f"P{drop}{i},s1,F,50,L,bell,2020,365" for i in range(drop * 50)]
        write_drop_files(home, f"d{drop}", patients, [], [], manifest={"snapshot": "incremental"})
        ingest_landing(home)
        _, snapshot = build_and_publish(home)
        con = duckdb.connect(str(home.warehouse_path), read_only=True)
        expected[snapshot] = con.execute(
            "SELECT (SELECT count(*) FROM patients), (SELECT count(DISTINCT drop_id) FROM load_ledger)"
        ).fetchone()
        con.close()
    time.sleep(1)  # let the readers open the newest build before they stop
    stop.touch()
    results = {mode: json.loads(reader.communicate(timeout=60)[0]) for mode, reader in readers.items()}

    reopened, held = results["reopen"], results["hold"]
    assert reopened["errors"] == held["errors"] == []
    first = reopened["seen"][0]
    # A reader opening during the rebuilds sees whole builds, each with its own counts, and the newest at the end.
    assert {tuple(s) for s in reopened["seen"]} - {tuple(first)} <= {(s, *c) for s, c in expected.items()}
    assert len({s for s, *_ in reopened["seen"]}) > 2
    assert reopened["seen"][-1][0] == list(expected)[-1]
    # A reader that holds the old file open keeps its consistent snapshot to the end.
    assert {tuple(s) for s in held["seen"]} == {tuple(first)}
