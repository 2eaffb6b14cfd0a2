"""The department server of docker-compose.yml without containers: a throw-away PostgreSQL (the
metadata database and Celery's results) and Redis (Celery's broker), both on loopback, then Airflow
with the CeleryExecutor: the API server with the UI, the scheduler, the DAG processor, the triggerer
and two Celery workers, with the project's DAGs and data home. ``make test-cluster`` proves the
compose layout on it; a department can try the layout on one machine before installing Docker.

    python -m pipeline.tools.airflow_cluster [--home DIR] [--port 8781]

The settings, pools and init steps are docker-compose.yml's (tests/tools/test_airflow_cluster.py
reads both); what must differ outside containers is named in ``HERE`` and ``ONLY_HERE``. As in
compose, the DAGs start paused and a component that stops is started again (``restart: always``).
The PostgreSQL cluster and Redis live in a temporary folder removed at the end: the data home
stays, the run history goes. Ctrl-C (or SIGTERM, or ``--stop-after``) stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import psutil

from pipeline.settings import DataHome
from pipeline.tools.airflow_local import configure, migrate
from pipeline.tools.airflow_server import (
    AFTER_API_SERVER,
    SIMPLE_AUTH_MANAGER,
    Components,
    api_server_answers,
    free_port,
    password_file,
)

DEFAULT_PORT = 8781  # beside `make airflow`'s 8780
WORKERS = ("worker-1", "worker-2")
WORKER_COMMAND = ("celery", "worker")  # `airflow celery worker`, as compose's airflow-worker
WORKER_NAME = "SYNK_WORKER_NAME"  # read by worker_hostname in a worker's task processes
STARTUP_TIMEOUT = 240.0  # seconds, for each of PostgreSQL, Redis, the API server and the workers
MAX_RESTARTS = 3  # per component: compose restarts for ever; a fault that repeats here stops the run

# docker-compose.yml's x-airflow-common environment, value for value.
COMPOSE_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "true",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
}
# docker-compose.yml's settings that take another value here, and why.
HERE = {
    "AIRFLOW__CORE__AUTH_MANAGER": "the simple auth manager: FAB's provider cannot be installed beside the "
    "pinned python-dateutil 4 (its Flask-AppBuilder wants <3)",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "the same database and user, on the PostgreSQL of this run on loopback",
    "AIRFLOW__CELERY__RESULT_BACKEND": "the same database and user, on the PostgreSQL of this run on loopback",
    "AIRFLOW__CELERY__BROKER_URL": "the same database 0, on the Redis of this run on loopback",
    "AIRFLOW__CORE__FERNET_KEY": "made for this run (compose: from .env)",
    "AIRFLOW__API_AUTH__JWT_SECRET": "made for this run (compose: from .env)",
    "AIRFLOW__CORE__DAGS_FOLDER": "this checkout's dags/ (compose mounts it at /opt/synk/dags)",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "the API server on loopback",
    "AIRFLOW__API__BASE_URL": "the API server on loopback",
    "SYNK_HOME": "the data home given (compose: the synk-data volume)",
    "DUMB_INIT_SETSID": "the image's dumb-init only: a worker here gets SIGTERM itself and stops warm",
}
# Airflow settings set here and not in docker-compose.yml, and why.
ONLY_HERE = {
    "AIRFLOW_HOME": "the data home's airflow/ (the image has /opt/airflow)",
    "AIRFLOW__API__HOST": "loopback only",
    "AIRFLOW__API__PORT": "a port of this machine (compose publishes the container's 8080)",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": "a free port (each container has its own 8974)",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "a free port (each container has its own 8794)",
    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "workers only: each reports its own name, as each worker container "
    "has its own hostname (the task instances' hostname)",
}
# airflow-init's folders of the data volume (and Airflow's logs), created before anything starts.
INIT_FOLDERS = ("landing/.incoming", "archive", "staging", "warehouse", "published")


def worker_hostname() -> str:
    """Airflow's ``core.hostname_callable`` on the workers here: the worker's name."""
    return os.environ.get(WORKER_NAME) or socket.getfqdn()


HOSTNAME_CALLABLE = "pipeline.tools.airflow_cluster.worker_hostname"  # by name: run with -m, this is __main__


def postgres_bin() -> Path:
    """Debian keeps PostgreSQL's server programs under /usr/lib/postgresql/<major>/bin, off PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if versions:
        return versions[-1].parent
    found = shutil.which("postgres")
    if found is None:
        raise SystemExit("PostgreSQL is not installed: `make test-cluster` installs Debian's postgresql.")
    return Path(found).parent


def answers(port: int, request: bytes, expected: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(request)
            return connection.recv(64).startswith(expected)
    except OSError:
        return False


@dataclass
class Cluster:
    """The processes of one run and the temporary folder of PostgreSQL and Redis."""

    home: DataHome
    port: int
    extra: dict[str, str] = field(default_factory=dict)
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="synk-cluster-")))
    services: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ready: set[str] = field(default_factory=set)
    restarts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.postgres_port, self.redis_port = free_port(), free_port()
        self.password = secrets.token_urlsafe(24)
        self.components = Components({}, on_line=self._watch)
        self.airflow_home = self.home.root / "airflow"
        self.state_file = self.airflow_home / "cluster.json"

    def _watch(self, name: str, line: str) -> None:
        if name.startswith("worker-") and " ready." in line:  # Celery's "celery@<name> ready."
            self.ready.add(name)

    def environment(self) -> dict[str, str]:
        """Every component's environment: compose's settings, and what must differ here."""
        configure(self.home)
        for default in ("SYNK_TASK_RETRIES", "AIRFLOW__LOGGING__LOGGING_LEVEL", "AIRFLOW__CORE__UNIT_TEST_MODE"):
            os.environ.pop(default, None)  # compose leaves them at Airflow's (and the DAGs') defaults
        from cryptography.fernet import Fernet

        database = f"airflow:{self.password}@127.0.0.1:{self.postgres_port}/airflow"
        settings = {
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
            **COMPOSE_SETTINGS,
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{database}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{database}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://:@127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}/",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            **self.extra,
        }
        os.environ.update(settings)
        return dict(os.environ)

    def worker_environment(self, name: str) -> dict[str, str]:
        return {**self.components.environment, "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE, WORKER_NAME: name}

    def _service(self, name: str, command: list[str], user: str | None = None) -> None:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, user=user, cwd=self.scratch
        )
        self.services[name] = process
        threading.Thread(target=self.components.relay, args=(name, process), daemon=True).start()

    def _wait(self, what: str, check: Callable[[], bool], process: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not check():
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start: see its lines above.")
            time.sleep(0.5)

    def start_postgres(self) -> None:
        """A new cluster whose superuser and database are compose's (POSTGRES_USER, POSTGRES_DB: airflow)."""
        user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as Debian's postgres user
            user = "postgres"
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                raise SystemExit("PostgreSQL refuses to run as root and there is no 'postgres' user.") from None
            os.chown(self.scratch, entry.pw_uid, entry.pw_gid)
        data = self.scratch / "postgres"
        secret = self.scratch / "pgpass"
        secret.write_text(self.password)
        if user:
            os.chown(secret, pwd.getpwnam(user).pw_uid, -1)
        secret.chmod(0o600)
        bin_dir = postgres_bin()
        subprocess.run(
            [bin_dir / "initdb", "-D", data, "-U", "airflow", f"--pwfile={secret}", "--auth=scram-sha-256",
             "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, user=user, cwd=self.scratch,
        )  # fmt: skip
        secret.unlink()
        self._service(
            "postgres",
            [str(bin_dir / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1",
             "-c", f"port={self.postgres_port}", "-c", f"unix_socket_directories={self.scratch}", "-c", "fsync=off"],
            user=user,
        )  # fmt: skip
        ready = [shutil.which("pg_isready") or str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1"]
        ready += ["-p", str(self.postgres_port), "-U", "airflow"]
        self._wait("PostgreSQL", lambda: subprocess.run(ready).returncode == 0, self.services["postgres"])
        createdb = [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.postgres_port), "-U", "airflow"]
        subprocess.run([*createdb, "airflow"], check=True, env={**os.environ, "PGPASSWORD": self.password})

    def start_redis(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise SystemExit("Redis is not installed: `make test-cluster` installs Debian's redis-server.")
        self._service(
            "redis",
            [server, "--bind", "127.0.0.1", "--port", str(self.redis_port), "--dir", str(self.scratch),
             "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
        )  # fmt: skip
        check = lambda: answers(self.redis_port, b"PING\r\n", b"+PONG")  # noqa: E731 compose's `redis-cli ping`
        self._wait("Redis", check, self.services["redis"])

    def init(self) -> None:
        """docker-compose.yml's airflow-init: the data volume's folders, the database, the writer pool
        (its admin: the simple auth manager makes one, with the password in its file)."""
        for folder in INIT_FOLDERS:
            (self.home.root / folder).mkdir(parents=True, exist_ok=True)
        (self.airflow_home / "logs").mkdir(parents=True, exist_ok=True)
        migrate()

    def start_airflow(self) -> None:
        self.components.environment = self.environment()
        self.init()
        # As `make airflow`: the scheduler only once the API server answers, or tasks fail reporting to it.
        self.components.start("api-server")
        self._wait("The API server", lambda: api_server_answers(self.port), self.components.processes["api-server"])
        for name in AFTER_API_SERVER:
            self.components.start(name)
        for name in WORKERS:
            self.start_worker(name)
        self._wait("The Celery workers", lambda: self.ready >= set(WORKERS))

    def start_worker(self, name: str) -> None:
        pid_file = self.airflow_home / f"{name}.pid"
        command = [*WORKER_COMMAND, "--celery-hostname", self.celery_hostname(name), "--pid", str(pid_file)]
        command.append("--skip-serve-logs")  # every worker writes the same logs folder: the API server reads it
        self.components.start(name, command, self.worker_environment(name))

    @staticmethod
    def celery_hostname(name: str) -> str:
        return f"{name}@{socket.gethostname()}"

    def write_state(self) -> None:
        """What a test or an operator needs to reach this run: the URL, the workers, the settings (0600)."""
        workers = {
            name: {"pid": self.components.processes[name].pid, "celery_hostname": self.celery_hostname(name)}
            for name in WORKERS
        }
        state = {
            "url": f"http://127.0.0.1:{self.port}",
            "password_file": str(password_file(self.home)),
            "workers": workers,
            "scratch": str(self.scratch),  # PostgreSQL's and Redis's folder, removed at the end
            "environment": {k: v for k, v in self.components.environment.items() if k.startswith(("AIRFLOW", "SYNK"))},
        }
        self.state_file.touch(mode=0o600)
        self.state_file.write_text(json.dumps(state, indent=2))

    def restart_stopped(self) -> str | None:
        """Start again an Airflow component that stopped (compose's restart: always); the name of one
        that stopped too often, or of PostgreSQL or Redis where either stopped."""
        for name, process in self.services.items():
            if process.poll() is not None:
                return name
        for name, process in list(self.components.processes.items()):
            if process.poll() is None:
                continue
            self.restarts[name] = self.restarts.get(name, 0) + 1
            if self.restarts[name] > MAX_RESTARTS:
                return name
            print(f"synk          | {name} stopped (exit {process.returncode}): starting it again.", flush=True)
            if name in WORKERS:
                self.ready.discard(name)
                self.start_worker(name)
            else:
                self.components.start(name)
            self.write_state()
        return None

    def stop(self) -> None:
        """Airflow first (workers finish warm), then Redis and PostgreSQL; every process of the run, then
        the temporary folder."""
        family = psutil.Process().children(recursive=True)
        self.components.stop()
        for name in ("redis", "postgres"):
            process = self.services.get(name)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
        family += psutil.Process().children(recursive=True)
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(family, timeout=10)
        self.state_file.unlink(missing_ok=True)
        shutil.rmtree(self.scratch, ignore_errors=True)


def serve(home: DataHome, port: int, extra: dict[str, str], stop_after: float | None) -> int:
    """Start the cluster and keep it running until Ctrl-C, SIGTERM or ``stop_after`` seconds."""
    stopping = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    cluster = Cluster(home, port, extra)
    deadline = time.monotonic() + stop_after if stop_after else None
    try:
        cluster.start_postgres()
        cluster.start_redis()
        cluster.start_airflow()
        cluster.write_state()
        print(f"Airflow UI: http://127.0.0.1:{port}/  (login: admin; password in {password_file(home)})", flush=True)
        print(f"Data home: {home.root}; workers: {', '.join(WORKERS)}. The DAGs start paused. Stop with Ctrl-C.")
        print("synk          | The cluster is ready.", flush=True)
        while not stopping.is_set():
            stopped = cluster.restart_stopped()
            if stopped:
                print(f"{stopped} stopped: see its lines above; stopping the rest.", file=sys.stderr, flush=True)
                return 1
            if deadline is not None and time.monotonic() > deadline:
                print(f"Stopping after {stop_after:.0f} s, as asked.", flush=True)
                return 0
            stopping.wait(1)
        return 0
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as error:
        output = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else str(error.stderr or "")
        command = " ".join(Path(str(part)).name for part in error.cmd[:3])
        print(f"`{command}` failed (exit {error.returncode}):\n{output[-3000:]}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="data home (default: SYNK_HOME, or data/ in the checkout)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the UI's and API's port on loopback")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a further setting for every component (the cluster test's shorter time-outs)",
    )
    parser.add_argument("--stop-after", type=float, help="stop by itself after this many seconds")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.env)
    home = DataHome.resolve(args.home).ensure()
    return serve(home, args.port, extra, args.stop_after)


if __name__ == "__main__":
    sys.exit(main())
