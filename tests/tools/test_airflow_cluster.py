"""The department server's topology, run: docker-compose.yml's layout without containers
(pipeline/tools/airflow_cluster.py: PostgreSQL and Redis from Debian, CeleryExecutor, two Celery
workers, scheduler, DAG processor, API server, triggerer), with the three DAGs end to end on it.

The first test reads the compose file and the script (it runs in `make test`); the others share one
cluster, in order (`make test-cluster`): the hourly ingest loads a drop and the models fit on the
warehouse Asset; a second drop, loaded on the other worker while the first worker's fit holds the
store, waits for it; a worker killed mid-load is retried and nothing is lost; the quarterly report
publishes; everything stops by itself.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psutil
import pytest
import yaml

from pipeline.settings import PROJECT_ROOT, DataHome
from pipeline.tools import airflow_cluster
from pipeline.tools.airflow_local import POOLS
from pipeline.tools.airflow_server import AFTER_API_SERVER, free_port
from pipeline.tools.synthetic import generate_drop
from tests.tools.test_airflow_server import wait_for

DAGS = ("ingest_clinic_exports", "fit_outcome_models", "publish_quarterly_report")
WRITERS = {"ingest_drops", "publish_warehouse", "fit_models", "build_as_of"}  # the tasks in the writer pool
# (drop id, site, patients, seed): A loads first, B on the other worker, C's worker is killed mid-load.
DROPS = {
    "A": ("clinic_a-2026-11", "clinic_a", 300, 1),
    "B": ("clinic_b-2026-11", "clinic_b", 200, 2),
    "C": ("clinic_c-2026-11", "clinic_c", 600, 3),
}
HEARTBEAT_TIMEOUT = 30  # seconds before the scheduler gives up on a task whose worker died (Airflow: 300)
QUEUE = "default"  # Airflow's default Celery queue: every task goes to it


def compose_environment() -> tuple[dict[str, str], dict[str, str]]:
    document = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    return document["x-airflow-common"]["environment"], document["services"]["airflow-worker"]["environment"]


def test_the_script_and_the_compose_file_have_the_same_settings_pools_and_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common, worker = compose_environment()
    here = airflow_cluster.HERE
    assert set(common) == set(airflow_cluster.COMPOSE_SETTINGS) | (set(here) - {"DUMB_INIT_SETSID"})
    assert set(worker) - set(common) <= set(here)  # the worker's own: named too
    for key, value in airflow_cluster.COMPOSE_SETTINGS.items():
        assert str(common[key]) == value, key
    # The environment the script gives every component: compose's values, the named differences, and
    # only the named settings besides.
    cluster = airflow_cluster.Cluster(DataHome.resolve(tmp_path / "data").ensure(), free_port())
    saved = dict(os.environ)
    try:
        environment = cluster.environment()
        worker_environment = cluster.worker_environment("worker-1")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        cluster.scratch.rmdir()
    for key in common:
        assert key in environment, key
    for key, value in airflow_cluster.COMPOSE_SETTINGS.items():
        assert environment[key] == value, key
    allowed = set(common) | set(airflow_cluster.ONLY_HERE)
    # A worker's task instances carry its name (Airflow imports the callable by this path).
    module, _, name = worker_environment["AIRFLOW__CORE__HOSTNAME_CALLABLE"].rpartition(".")
    monkeypatch.setenv(airflow_cluster.WORKER_NAME, worker_environment[airflow_cluster.WORKER_NAME])
    assert getattr(importlib.import_module(module), name)() == "worker-1"
    assert {k for k in worker_environment if k.startswith("AIRFLOW")} <= allowed
    # The same database and drivers, another host.
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
        scheme = lambda url: url.split("://")[0]  # noqa: E731
        assert scheme(environment[key]) == scheme(common[key]), key
        assert environment[key].endswith("/airflow") and common[key].endswith("/airflow"), key
    assert environment["AIRFLOW__CELERY__BROKER_URL"].endswith("/0") and common["AIRFLOW__CELERY__BROKER_URL"].endswith(
        "/0"
    )
    # The same pools, folders and init steps as airflow-init.
    document = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    init = document["services"]["airflow-init"]
    script = init["command"][1]
    for name, slots, description in POOLS:
        assert f'airflow pools set {name} {slots} "{description}"' in script
    folders = re.search(r"mkdir -p (.*)", script).group(1).split()
    assert {f.removeprefix("/opt/synk-data/") for f in folders if f.startswith("/opt/synk-data/")} == set(
        airflow_cluster.INIT_FOLDERS
    )
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"  # the script's init migrates too (migrate())
    # Every Airflow service of the compose file is a component here, and no other.
    commands = {
        " ".join(service["command"]) if isinstance(service["command"], list) else service["command"]
        for name, service in document["services"].items()
        if name.startswith("airflow-") and name != "airflow-init"
    }
    assert commands == {"api-server", *AFTER_API_SERVER, " ".join(airflow_cluster.WORKER_COMMAND)}


@dataclass
class Running:
    """A cluster under test: its data home, its log, the script's process and the REST API's token."""

    home: DataHome
    log: Path
    process: subprocess.Popen[bytes]
    state: dict
    outbox: Path  # the drops not yet delivered
    token: str = ""
    seen: dict[str, dict] = field(default_factory=dict)  # task instances one test leaves to the next

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.state['url']}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read() or b"{}")

    def wait(self, what: str, check, timeout: float):  # type: ignore[no-untyped-def]
        return wait_for(what, check, timeout, self.log)

    def runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries"
        return self.call("GET", path)["task_instances"]

    def trigger(self, dag_id: str, conf: dict) -> str:
        run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return run["dag_run_id"]

    def finished(self, dag_id: str, run_id: str, timeout: float) -> str:
        def state() -> str | None:
            found = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return found if found in ("success", "failed") else None

        return self.wait(f"the run {run_id} of {dag_id}", state, timeout)

    def running_on(self, dag_id: str, task_id: str, run_id: str | None = None) -> dict | None:
        """A running instance of the task (of the run, if given) once it has a worker."""
        for run in self.runs(dag_id):
            if run_id in (None, run["dag_run_id"]) and run["state"] == "running":
                ti = self.task(dag_id, run["dag_run_id"], task_id)
                if ti["state"] == "running" and ti["hostname"]:
                    return ti
        return None

    def celery(self, action: str, worker: str) -> None:
        """Stop or start a worker taking tasks (Celery's cancel_consumer / add_consumer), through the broker."""
        from celery import Celery

        app = Celery(broker=self.state["environment"]["AIRFLOW__CELERY__BROKER_URL"])
        destination = [self.state["workers"][worker]["celery_hostname"]]
        control = app.control.cancel_consumer if action == "stop" else app.control.add_consumer
        replies = control(QUEUE, destination=destination, reply=True, timeout=10)
        assert replies and all("ok" in reply for answer in replies for reply in answer.values()), replies
        app.close()

    def reload_state(self) -> None:
        self.state = json.loads((self.home.root / "airflow" / "cluster.json").read_text())


def drop_path(outbox: Path, key: str) -> Path:
    return outbox / DROPS[key][0]


def deliver(home: DataHome, outbox: Path, key: str) -> None:
    """Into landing/ in one rename, as the runbook's two steps do."""
    drop_path(outbox, key).rename(home.landing / DROPS[key][0])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("cluster")
    home = DataHome.resolve(root / "data").ensure()
    (home.root / "models.json").write_text('{"methods": ["unadjusted"], "spline_knots": 0}')  # a quick fit
    outbox = root / "outbox"
    for drop_id, site, patients, seed in DROPS.values():
        generate_drop(outbox / drop_id, patients=patients, seed=seed, site=site)
    deliver(home, outbox, "A")  # waiting for the first hourly run
    log = root / "cluster.log"
    command = [sys.executable, "-m", "pipeline.tools.airflow_cluster", "--home", str(home.root)]
    command += ["--port", str(free_port()), "--stop-after", "1200"]  # a net: the last test stops it
    command += ["--env", f"AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT={HEARTBEAT_TIMEOUT}"]
    command += ["--env", "SYNK_TASK_RETRY_DELAY=5"]
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SYNK"))},
        )
    try:
        wait_for("the cluster", lambda: process.poll() is None and "The cluster is ready." in log.read_text(), 420, log)
        state = json.loads((home.root / "airflow" / "cluster.json").read_text())
        running = Running(home, log, process, state, outbox)
        password = json.loads(Path(state["password_file"]).read_text())["admin"]
        running.token = running.call("POST", "/auth/token", {"username": "admin", "password": password})["access_token"]
        for dag_id in DAGS:
            running.wait(f"the DAG {dag_id}", lambda dag_id=dag_id: running.call("GET", f"/api/v2/dags/{dag_id}"), 180)
        yield running
    finally:
        if process.poll() is None:  # the last test did not get to stop it: the script stops the rest
            family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
            process.send_signal(signal.SIGTERM)
            _, alive = psutil.wait_procs(family, timeout=90)
            for member in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.kill()
            psutil.wait_procs(alive, timeout=10)
        with contextlib.suppress(OSError, ValueError):
            shutil.rmtree(json.loads((home.root / "airflow" / "cluster.json").read_text())["scratch"])


def utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=None)


def drop_times(home: DataHome) -> dict[str, tuple[datetime, datetime]]:
    """Each drop's receipt and load times, as the store recorded them (in the published copy of its ledger)."""
    if not home.warehouse_path.exists():
        return {}
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        rows = con.execute("SELECT drop_id, min(received_at), max(loaded_at) FROM load_ledger GROUP BY 1").fetchall()
    return {drop_id: (received, loaded) for drop_id, received, loaded in rows}


def attempts(cluster: Running, task_ids: set[str]) -> list[dict]:
    """Every attempt of these tasks in every run of the three DAGs, with its run."""
    found = []
    for dag_id in DAGS:
        for run in cluster.runs(dag_id):
            for task_id in task_ids:
                with contextlib.suppress(urllib.error.HTTPError):  # a DAG without that task
                    for attempt in cluster.tries(dag_id, run["dag_run_id"], task_id):
                        found.append({**attempt, "run": run})
    return found


def loaded_by(cluster: Running, key: str, timeout: float = 300) -> dict:
    """The load task attempt that loaded the drop (an hourly run may take it before the one triggered
    for it): the one whose span holds the store's receipt and load times of the drop."""
    drop_id = DROPS[key][0]
    published = lambda: drop_times(cluster.home).get(drop_id)  # noqa: E731
    received, done = cluster.wait(f"the drop {drop_id} published", published, timeout)
    for attempt in attempts(cluster, {"ingest_drops"}):
        span = (utc(attempt["start_date"]), utc(attempt["end_date"])) if attempt["end_date"] else None
        if attempt["state"] == "success" and span and span[0] <= received <= done <= span[1]:
            return attempt
    pytest.fail(f"no load task's span holds the store's times of {drop_id}")


@pytest.mark.cluster
def test_the_hourly_ingest_loads_a_drop_and_the_models_fit_on_the_asset(cluster: Running) -> None:
    cluster.celery("stop", "worker-2")  # the first drop's tasks on worker-1
    for dag_id in ("fit_outcome_models", "publish_quarterly_report", "ingest_clinic_exports"):
        cluster.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})  # as the compose file's header says
    load = loaded_by(cluster, "A")
    assert load["run"]["run_type"] == "scheduled" and load["hostname"] == "worker-1"
    cluster.seen["first load"] = load
    # The publication's Asset event queued the models; their fit is on worker-1, holding the store.
    fit = cluster.wait("the fit on the Asset", lambda: cluster.running_on("fit_outcome_models", "fit_models"), 120)
    assert fit["hostname"] == "worker-1"
    cluster.seen["fit"] = fit
    models_run = next(r for r in cluster.runs("fit_outcome_models") if r["dag_run_id"] == fit["dag_run_id"])
    assert models_run["run_type"] == "asset_triggered"


@pytest.mark.cluster
def test_two_drops_loaded_on_different_workers_never_write_the_store_at_once(cluster: Running) -> None:
    fit = cluster.seen["fit"]
    # While worker-1 fits, the second drop comes in and is loaded on worker-2.
    cluster.celery("start", "worker-2")
    cluster.celery("stop", "worker-1")
    deliver(cluster.home, cluster.outbox, "B")
    cluster.trigger("ingest_clinic_exports", {"drop": DROPS["B"][0], "confirm_retire": False})
    load = loaded_by(cluster, "B")
    cluster.celery("start", "worker-1")
    assert load["hostname"] == "worker-2"
    assert cluster.finished("fit_outcome_models", fit["dag_run_id"], 300) == "success"
    fitted = cluster.task("fit_outcome_models", fit["dag_run_id"], "fit_models")
    # The load was ready while the fit held the store, on the other worker, and waited for its end.
    ready = load["scheduled_when"] or load["run"]["start_date"]
    assert utc(ready) < utc(fitted["end_date"]) <= utc(load["start_date"]), (ready, fitted, load)
    assert {fitted["hostname"], load["hostname"]} == {"worker-1", "worker-2"}
    # The two drops: loaded on different workers, one after the other.
    first = cluster.seen["first load"]
    assert first["hostname"] != load["hostname"] and utc(first["end_date"]) <= utc(load["start_date"])
    assert_writers_one_at_a_time(cluster)


def assert_writers_one_at_a_time(cluster: Running) -> None:
    """Every attempt of every task that writes the store, on either worker, in one line: none overlaps."""
    spans = []
    for attempt in attempts(cluster, WRITERS):
        if attempt["start_date"] and attempt["state"] != "skipped":
            end = attempt["end_date"] or datetime.now(UTC).isoformat()
            spans.append((utc(attempt["start_date"]), utc(end), attempt["task_id"], attempt["hostname"]))
    spans.sort()
    assert len({host for *_, host in spans}) == 2, spans  # both workers wrote the store
    for before, after in itertools.pairwise(spans):
        assert before[1] <= after[0], (before, after)


@pytest.mark.cluster
def test_a_worker_killed_mid_load_is_retried_and_nothing_is_lost(cluster: Running) -> None:
    from pipeline.store.connection import load_under_way

    deliver(cluster.home, cluster.outbox, "C")
    cluster.trigger("ingest_clinic_exports", {"drop": DROPS["C"][0], "confirm_retire": False})
    deadline = time.monotonic() + 300
    while not ((holder := load_under_way(cluster.home)) and DROPS["C"][0] in holder.activity):
        assert time.monotonic() < deadline, "the third drop's load never held the store"
        time.sleep(0.2)
    # The task loading it (the run triggered, or an hourly one that came first).
    load = cluster.wait("the load's task", lambda: cluster.running_on("ingest_clinic_exports", "ingest_drops"), 30)
    worker = load["hostname"]
    cluster.reload_state()
    main = psutil.Process(cluster.state["workers"][worker]["pid"])
    family = [main, *main.children(recursive=True)]
    assert holder.pid in {member.pid for member in family}  # the writer is the killed worker's
    for member in family:  # kill -9, the whole worker at once, as a container's end
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(family, timeout=10)

    assert cluster.finished("ingest_clinic_exports", load["dag_run_id"], HEARTBEAT_TIMEOUT + 300) == "success"
    tries = cluster.tries("ingest_clinic_exports", load["dag_run_id"], "ingest_drops")
    assert [a["try_number"] for a in tries] == [1, 2], tries
    assert tries[0]["hostname"] == worker and tries[1]["state"] == "success"
    assert loaded_by(cluster, "C")["try_number"] == 2  # the retry loaded it
    assert "starting it again" in cluster.log.read_text()  # the script restarted the worker (restart: always)

    # Nothing lost: the three drops' ledger and current rows as a plain load of the same drops gives them
    # (in the published warehouse, which carries a copy of the ledger: the store is the writers' alone).
    from pipeline.stages import ingest, publish_warehouse

    reference = DataHome.resolve(cluster.log.parent / "reference").ensure()
    for drop_id, site, patients, seed in DROPS.values():
        generate_drop(reference.landing / drop_id, patients=patients, seed=seed, site=site)
        ingest(reference, only_drop=drop_id)
    publish_warehouse(reference)
    assert published_rows(cluster.home) == published_rows(reference)
    assert not list(cluster.home.archive.rglob(".*.partial"))


def published_rows(home: DataHome) -> tuple[list, list]:
    ledger = "SELECT drop_id, file, sha256, rows_in, rows_loaded, rows_quarantined, status FROM load_ledger"
    tables = ("patients", "treatments", "assessments", "quarantine")
    counts = " UNION ALL ".join(f"SELECT '{table}', count(*) FROM {table}" for table in tables)
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        return sorted(con.execute(ledger).fetchall()), sorted(con.execute(counts).fetchall())


@pytest.mark.cluster
def test_the_quarterly_report_publishes(cluster: Running) -> None:
    from pipeline.quarters import current_quarter

    def fits_done() -> list[dict] | None:  # the third drop's publication queued one more
        runs = [r for r in cluster.runs("fit_outcome_models") if r["run_type"] == "asset_triggered"]
        return runs if len(runs) >= 3 and all(r["state"] in ("success", "failed") for r in runs) else None

    cluster.wait("the models fitted on the last publication", fits_done, 420)
    quarter = current_quarter()
    run_id = cluster.trigger("publish_quarterly_report", {"quarter": quarter, "provisional": True})
    assert cluster.finished("publish_quarterly_report", run_id, 420) == "success"
    folder = cluster.home.published / "provisional" / f"{quarter[:4]}-Q{quarter[-1]}"
    assert "data:image/png;base64" in (folder / "report.html").read_text(encoding="utf-8")
    assert (folder / "report.pdf").stat().st_size > 10_000
    # Every models run the Asset made succeeded; the report is on the three drops' data, with the model
    # run fitted on the Asset (reused, not refitted).
    runs = fits_done()
    assert runs and all(r["state"] == "success" for r in runs), runs
    manifest = json.loads((folder / "manifest.json").read_text())
    with duckdb.connect(str(cluster.home.warehouse_path), read_only=True) as con:
        snapshot = con.execute("SELECT data_snapshot FROM build_info").fetchone()[0]
        model_runs = {row[0] for row in con.execute("SELECT run_id FROM model_runs").fetchall()}
    assert manifest["provisional"] is True and manifest["data_snapshot"] == snapshot
    assert manifest["model_run_id"] in model_runs
    ledger = (folder / "quarter_load_ledger.csv").read_text()
    assert all(drop_id in ledger for drop_id, *_ in DROPS.values())
    assert_writers_one_at_a_time(cluster)


@pytest.mark.cluster
def test_everything_stops_by_itself(cluster: Running) -> None:
    family = [psutil.Process(cluster.process.pid), *psutil.Process(cluster.process.pid).children(recursive=True)]
    assert len(family) > 8  # PostgreSQL, Redis, the five components and their processes
    cluster.process.send_signal(signal.SIGTERM)
    assert cluster.process.wait(timeout=120) == 0
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, alive
    assert not Path(cluster.state["scratch"]).exists()
    assert not (cluster.home.root / "airflow" / "cluster.json").exists()
