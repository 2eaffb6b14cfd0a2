"""The department server's docker-compose.yml and Dockerfile, checked statically (no Docker engine
runs here): they parse, follow Airflow 3's compose layout, run the pinned Airflow, mount the
project and the data volume, and hold no secret."""

from __future__ import annotations

import re

import yaml

from pipeline.settings import PROJECT_ROOT, STORE_WRITER_POOL

SERVICES = (
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
)
SECRET_KEY = re.compile(r"PASSWORD|FERNET|SECRET|TOKEN", re.IGNORECASE)


def compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def pinned_airflow() -> str:
    pins = (PROJECT_ROOT / "constraints.txt").read_text()
    return re.search(r"^apache-airflow==(\S+)$", pins, re.MULTILINE).group(1)


def test_the_image_extends_the_official_airflow_image_of_the_pinned_version() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    version = pinned_airflow()
    assert re.search(rf"^FROM apache/airflow:{re.escape(version)}-python3\.1\d$", dockerfile, re.MULTILINE)
    assert f'"apache-airflow=={version}"' in dockerfile and "-c constraints.txt" in dockerfile
    assert compose()["x-airflow-common"]["image"].endswith(f":{version}")


def test_every_service_of_the_layout_is_present_with_a_health_check() -> None:
    services = compose()["services"]
    assert set(SERVICES) <= set(services)
    for name in SERVICES:
        if name != "airflow-init":  # a one-shot job: the others wait for it to complete
            assert services[name]["healthcheck"]["test"], name
    environment = services["airflow-worker"]["environment"]
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert environment["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert services["airflow-scheduler"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_the_project_and_the_data_volume_are_mounted_and_the_writer_pool_created() -> None:
    document = compose()
    assert "synk-data" in document["volumes"]
    for name in SERVICES[2:]:
        service = document["services"][name]
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
        assert mounts["/opt/synk-data"] == "synk-data", name
        assert service["environment"]["SYNK_HOME"] == "/opt/synk-data", name
        for folder in ("dags", "pipeline", "sql", "expectations"):
            assert mounts[f"/opt/synk/{folder}"] == f"./{folder}", (name, folder)
            assert (PROJECT_ROOT / folder).is_dir()
        assert service["environment"]["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/synk/dags"
    init = " ".join(document["services"]["airflow-init"]["command"])
    assert f"exec /entrypoint airflow pools set {STORE_WRITER_POOL} 1" in init


def test_the_init_creates_the_admin_through_the_images_entrypoint_as_the_official_file_does() -> None:
    """_AIRFLOW_WWW_USER_* are read by the image's /entrypoint only, with FAB's auth manager (whose
    `airflow users create` it calls); an init that bypasses the entrypoint creates no one."""
    document = compose()
    init = document["services"]["airflow-init"]
    assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert "/entrypoint airflow" in init["command"][1] and init["user"] == "0:0"
    auth = document["x-airflow-common"]["environment"]["AIRFLOW__CORE__AUTH_MANAGER"]
    assert auth == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    header = (PROJECT_ROOT / "docker-compose.yml").read_text().split("x-airflow-common")[0]
    assert "DAGs start paused" in header and "docker compose cp" in header


def test_no_secret_is_written_in_the_compose_file_the_dockerfile_or_the_example() -> None:
    def walk(node: object, path: str = "") -> list[tuple[str, str]]:
        if isinstance(node, dict):
            return [pair for key, value in node.items() for pair in walk(value, f"{path}.{key}")]
        if isinstance(node, list):
            return [pair for index, value in enumerate(node) for pair in walk(value, f"{path}[{index}]")]
        return [(path, str(node))]

    for path, value in walk(compose()):
        if SECRET_KEY.search(path.rsplit(".", 1)[-1]):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value), path  # only a reference to .env
        for password in re.findall(r"://[^:@/]*:([^@]*)@", value):  # user:password@host
            assert password == "" or password.startswith("${"), path  # Redis on the private network: none
    assert not re.search(r"(PASSWORD|SECRET|FERNET_KEY)\S*\s*=", (PROJECT_ROOT / "Dockerfile").read_text())
    example = (PROJECT_ROOT / ".env.example").read_text().splitlines()
    for line in example:
        key, _, value = line.partition("=")
        if SECRET_KEY.search(key) and not line.startswith("#"):
            assert value == "", key  # placeholders only
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()
