"""A real Airflow on loopback (`make airflow`'s server: API server, then scheduler, DAG processor,
triggerer; SQLite, LocalExecutor): it picks up the DAGs, runs the ingest DAG when triggered through
its REST API with the trigger form's empty parameters, and the warehouse Asset then triggers the
models DAG."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from pipeline.settings import PROJECT_ROOT, DataHome
from pipeline.tools.airflow_server import free_port, password_file
from pipeline.tools.synthetic import generate_drop

T = TypeVar("T")


def process_of(pid: int) -> psutil.Process:
    return psutil.Process(pid)


def call(url: str, token: str | None = None, body: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(what: str, check: Callable[[], T], timeout: float, log: Path) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            result = None
        if result:
            return result
        time.sleep(2)
    pytest.fail(f"timed out waiting for {what}; server log:\n{log.read_text()[-3000:]}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[DataHome, str, Path]]:
    home = DataHome.resolve(tmp_path / "data").ensure()
    # Enough patients for the model fits to run on worker processes forked inside the Airflow task.
    generate_drop(home.landing / "clinic-a-2026-11", patients=1500, seed=1, site="clinic_a")
    (home.root / "models.json").write_text('{"methods": ["unadjusted", "ancova"]}')  # a quick fit
    port = free_port()
    log = tmp_path / "airflow.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.tools.airflow_server", "--home", str(home.root), "--port", str(port)],
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole below
            env={k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        )
    try:
        yield home, f"http://127.0.0.1:{port}", log
    finally:
        # standalone's components start processes of their own (some in new sessions): stop every
        # descendant, not only the process group.
        family = [process_of(process.pid), *process_of(process.pid).children(recursive=True)]
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(family, timeout=30)
        for member in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(alive, timeout=10)


@pytest.mark.server
def test_a_run_triggered_through_the_rest_api_loads_the_drop_and_the_asset_triggers_the_models(server) -> None:
    home, base, log = server
    wait_for("the API server", lambda: call(f"{base}/api/v2/version")["version"], 120, log)
    password = wait_for("the admin password", lambda: json.loads(password_file(home).read_text())["admin"], 60, log)
    token = call(f"{base}/auth/token", body={"username": "admin", "password": password})["access_token"]
    # Both DAGs must be parsed before the run: an Asset event only queues runs of DAGs already known.
    for dag_id in ("ingest_clinic_exports", "fit_outcome_models"):
        wait_for(
            f"the DAG {dag_id}", lambda dag_id=dag_id: call(f"{base}/api/v2/dags/{dag_id}", token)["dag_id"], 120, log
        )
    # The trigger form's schema: `drop` may be left empty (null), so the Trigger button is enabled.
    details = call(f"{base}/api/v2/dags/ingest_clinic_exports/details", token)
    assert details["params"]["drop"]["schema"]["type"] == ["null", "string"]
    # As the form sends it with every field left empty.
    conf = {"drop": None, "confirm_retire": False}
    run = call(f"{base}/api/v2/dags/ingest_clinic_exports/dagRuns", token, body={"logical_date": None, "conf": conf})

    def run_state() -> str | None:
        state = call(f"{base}/api/v2/dags/ingest_clinic_exports/dagRuns/{run['dag_run_id']}", token)["state"]
        return state if state in ("success", "failed") else None

    assert wait_for("the ingest run", run_state, 300, log) == "success"

    def models_succeeded() -> bool:
        runs = call(f"{base}/api/v2/dags/fit_outcome_models/dagRuns", token)["dag_runs"]
        return any(r["state"] == "success" and r["run_type"] == "asset_triggered" for r in runs)

    assert wait_for("the models run triggered by the warehouse Asset", models_succeeded, 300, log)
    assert (home.warehouse_path).exists()
    # Each task ran once: the scheduler started after the API server answered, so no first attempt
    # died reporting to it.
    for dag_id in ("ingest_clinic_exports", "fit_outcome_models"):
        instances = call(f"{base}/api/v2/dags/{dag_id}/dagRuns/~/taskInstances", token)["task_instances"]
        assert instances and all(ti["try_number"] == 1 for ti in instances), [
            (ti["task_id"], ti["try_number"]) for ti in instances
        ]
    lines = log.read_text().splitlines()
    answered = next(i for i, line in enumerate(lines) if "The API server answers" in line)
    assert not any(line.startswith(("scheduler ", "dag-processor ")) for line in lines[:answered])

    # The quarterly report scheduled for the quarter just ended, before any data: skipped, not failed.
    def report_runs_finished() -> list[dict] | None:
        runs = call(f"{base}/api/v2/dags/publish_quarterly_report/dagRuns", token)["dag_runs"]
        return runs if runs and all(r["state"] in ("success", "failed") for r in runs) else None

    report_runs = wait_for("the scheduled report run", report_runs_finished, 300, log)
    for report_run in report_runs:
        assert report_run["state"] == "success", report_run
        instances = call(
            f"{base}/api/v2/dags/publish_quarterly_report/dagRuns/{report_run['dag_run_id']}/taskInstances", token
        )["task_instances"]
        assert [ti["state"] for ti in instances] == ["skipped", "skipped"]  # build_as_of, then write_report
    task_logs = "".join(
        path.read_text(errors="replace") for path in (home.root / "airflow" / "logs").rglob("*.log") if path.is_file()
    )
    # The fits ran on worker processes, with progress lines (counts, then the total time).
    assert "Fitting the models on" in task_logs and "worker processes failed" not in task_logs
    assert re.search(r"Fitting the models on \d worker processes: (\d+) of \1 jobs done in", task_logs)
    assert "model notes" in task_logs


def test_the_local_executor_runs_one_worker_per_core_and_the_dags_come_up_unpaused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.models.parallel import available_cores
    from pipeline.tools.airflow_server import server_environment

    monkeypatch.setattr(os, "environ", dict(os.environ))  # the settings it exports stay in this test
    environment = server_environment(DataHome.resolve(tmp_path).ensure(), free_port())
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert environment["AIRFLOW__CORE__PARALLELISM"] == str(available_cores())  # not 32 idle workers
    assert environment["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"


@pytest.mark.server
def test_ctrl_c_stops_every_component_and_ends_with_0(tmp_path: Path) -> None:
    """As a terminal's Ctrl-C: SIGINT to the whole foreground process group, the server and its
    components at once, and again while they stop. `make airflow` must not end with "Error 1"."""
    home = DataHome.resolve(tmp_path / "data").ensure()
    port = free_port()
    log = tmp_path / "airflow.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.tools.airflow_server", "--home", str(home.root), "--port", str(port)],
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        )
    try:
        wait_for("the scheduler's start", lambda: "Stop with Ctrl-C." in log.read_text(), 240, log)

        def everyone() -> list[psutil.Process]:
            return [process_of(process.pid), *process_of(process.pid).children(recursive=True)]

        def executor_workers() -> list[psutil.Process]:
            return [p for p in everyone() if "LocalExecutor" in " ".join(p.cmdline())]

        # LocalExecutor's workers ignore SIGTERM: they must not outlive the scheduler that started them.
        wait_for("LocalExecutor's workers", executor_workers, 120, log)
        family = everyone()
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):  # impatient, as people are: a second Ctrl-C while it stops
            os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=90) == 0, log.read_text()[-3000:]
        _, alive = psutil.wait_procs(family, timeout=30)
        assert not alive, alive
        text = log.read_text()
        assert "synk          | Airflow stopped." in text and "stopping the rest" not in text
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
