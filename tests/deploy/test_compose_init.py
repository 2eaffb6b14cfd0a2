"""docker-compose.yml's airflow-init script and a service's command, run outside Docker the way the
containers would (no Docker engine here): the compose file read with a filled-in .env, the init
script as root on a fresh data volume (a directory owned by root, as Docker creates a named volume),
then the ingest DAG as the services' user (AIRFLOW_UID, group 0) with the services' environment.

What cannot run here is swapped, each named in ``HERE``: PostgreSQL and Redis (SQLite instead), the
FAB auth manager (not installed here), and the image's /entrypoint, whose part used by airflow-init
(``_AIRFLOW_DB_MIGRATE``, then the command) ``ENTRYPOINT`` does; its admin creation
(``_AIRFLOW_WWW_USER_CREATE``, FAB's ``airflow users create``) is checked for its inputs only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipeline.settings import PROJECT_ROOT, STORE_WRITER_POOL
from pipeline.tools.synthetic import generate_drop

UID = 50000
DOT_ENV = {  # .env as .env.example asks for it
    "POSTGRES_PASSWORD": "pg-secret",
    "AIRFLOW__CORE__FERNET_KEY": "uLUJ6sJ3aKdIAH9-w8kY2fGqrvXXvmMTyX8JjYx2TcA=",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret",
    "_AIRFLOW_WWW_USER_USERNAME": "admin",
    "_AIRFLOW_WWW_USER_PASSWORD": "first-admin-password",
    "AIRFLOW_UID": str(UID),
}
ENTRYPOINT = """#!/bin/bash
# The official image's /entrypoint, the part airflow-init uses: migrate, the admin's inputs, the command.
set -e
if [[ "${_AIRFLOW_DB_MIGRATE}" == "true" ]]; then airflow db migrate >/dev/null; fi
if [[ "${_AIRFLOW_WWW_USER_CREATE}" == "true" ]]; then
  test -n "${_AIRFLOW_WWW_USER_USERNAME}" && test -n "${_AIRFLOW_WWW_USER_PASSWORD}"
  echo "${_AIRFLOW_WWW_USER_USERNAME}" > "${ADMIN_RECORD}"
fi
if [[ "$1" == "airflow" ]]; then shift; fi
exec airflow "$@"
"""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR:?error}, and $$ for $."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        value = env.get(name, "")
        if operator == ":?" and not value:
            raise AssertionError(f"compose would refuse to start: {name}: {argument}")
        return value or (argument if operator == ":-" else "")

    text = re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", substitute, text)
    return text.replace("$$", "$")


def as_user(uid: int, gid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A scratch directory the services' user can reach (pytest's own is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="synk-compose-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def checkout_reachable() -> Iterator[None]:
    """The services' user runs this checkout's Airflow, as the image's is readable by all: where a parent
    folder of the checkout is private (a clone under `mktemp -d`), let the services pass through it (search only,
    not list) for the test, and put it back."""
    changed = []
    venv_bin = Path(sys.executable).absolute().parent  # not resolved: the venv, not the interpreter it links to
    for folder in [venv_bin, *venv_bin.parents]:
        mode = folder.stat().st_mode
        if os.geteuid() == 0 and mode & 0o011 != 0o011:  # the services run in group 0, root's: group bits apply
            folder.chmod(mode | 0o011)
            changed.append((folder, mode))
    yield
    for folder, mode in changed:
        folder.chmod(mode)


AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="runs the init as root and the services as AIRFLOW_UID (util-linux's setpriv)",
)


@AS_ROOT
def test_the_init_script_then_a_load_as_the_services_user_on_a_fresh_volume(tmp_path: Path) -> None:
    document = yaml.safe_load(interpolate((PROJECT_ROOT / "docker-compose.yml").read_text(), DOT_ENV))
    init = document["services"]["airflow-init"]
    worker = document["services"]["airflow-worker"]
    assert init["user"] == "0:0" and worker["user"] == f"{UID}:0"

    volume = tmp_path / "synk-data"  # a fresh named volume: empty, owned by root
    volume.mkdir(mode=0o755)
    logs = tmp_path / "airflow-logs"
    metadata = tmp_path / "metadata"  # stands for PostgreSQL
    metadata.mkdir()
    entrypoint = tmp_path / "entrypoint"
    entrypoint.write_text(ENTRYPOINT)
    entrypoint.chmod(0o755)
    paths = {"/opt/synk-data": str(volume), "/opt/airflow/logs": str(logs), "/entrypoint": str(entrypoint)}
    paths |= {
        f"/opt/synk/{folder}": str(PROJECT_ROOT / folder) for folder in ("dags", "pipeline", "sql", "expectations")
    }

    def here(text: str) -> str:
        for container_path, local in paths.items():
            text = text.replace(container_path, local)
        return text

    here_settings = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{metadata / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW_HOME": str(metadata),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(logs),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(metadata),
        "USER": "airflow",  # the image has a passwd entry for AIRFLOW_UID; this machine has none
        "ADMIN_RECORD": str(tmp_path / "admin"),
    }

    def environment(service: dict) -> dict[str, str]:
        values = {**DOT_ENV, **{k: here(str(v)) for k, v in service["environment"].items()}}
        return values | here_settings

    # The init job, as root (user "0:0"): its script exactly as compose hands it to bash.
    script = here(init["command"][1])
    done = subprocess.run(
        ["/bin/bash", "-c", script], env=environment(init), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for folder in ("landing", "landing/.incoming", "archive", "staging", "warehouse", "published"):
        assert (volume / folder).stat().st_uid == UID, folder
    assert volume.stat().st_uid == UID and logs.stat().st_uid == UID
    assert (tmp_path / "admin").read_text().strip() == "admin"  # the entrypoint had the admin's name and password
    pools = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "pools", "get", STORE_WRITER_POOL],
        env=environment(init),
        capture_output=True,
        text=True,
    )
    assert pools.returncode == 0 and STORE_WRITER_POOL in pools.stdout

    # A coordinator's drop, copied in as root (as `docker compose cp` does), then moved into landing/.
    generate_drop(volume / "landing" / ".incoming" / "clinic_a-2026-11", patients=40, seed=2, site="clinic_a")
    (volume / "landing" / ".incoming" / "clinic_a-2026-11").rename(volume / "landing" / "clinic_a-2026-11")
    # PostgreSQL's part: the metadata is the services' to write.
    subprocess.run(["chown", "-R", f"{UID}:0", str(metadata)], check=True)

    # A worker's task runs as AIRFLOW_UID with the worker's environment: the ingest DAG, whole.
    service_env = environment(worker) | {"SYNK_TASK_RETRIES": "0"}  # report a failure at once
    airflow = str(Path(sys.executable).with_name("airflow"))
    run = subprocess.run(
        [*as_user(UID, 0), airflow, "dags", "test", "ingest_clinic_exports"],
        env=service_env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "Permission denied" not in output
    archived = list((volume / "archive" / "clinic_a-2026-11").rglob("patients.csv"))
    assert archived and archived[0].stat().st_uid == UID
    assert (volume / "warehouse" / "outcomes.duckdb").stat().st_uid == UID


@AS_ROOT
def test_without_the_init_the_services_user_cannot_write_the_volume(tmp_path: Path) -> None:
    """Why the init gives the volume away: as Docker creates it, the services' user cannot archive a file."""
    volume = tmp_path / "synk-data"
    volume.mkdir(mode=0o755)
    attempt = subprocess.run([*as_user(UID, 0), "mkdir", str(volume / "archive")], capture_output=True, text=True)
    assert attempt.returncode != 0 and "Permission denied" in attempt.stderr
