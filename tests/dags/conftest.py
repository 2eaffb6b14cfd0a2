"""An embedded Airflow for the DAG tests: SQLite metadata in a temporary data home.

Airflow reads its configuration when first imported, so the session fixture configures the
environment before any test imports it (no test module imports airflow at collection).
"""

from __future__ import annotations

import pytest

from pipeline.settings import DataHome


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> DataHome:
    from pipeline.tools import airflow_local

    home = DataHome.resolve(tmp_path_factory.mktemp("airflow_data")).ensure()
    airflow_local.configure(home)
    airflow_local.migrate()
    return home


@pytest.fixture(scope="session")
def dags(airflow_home: DataHome) -> dict[str, object]:
    from pipeline.tools import airflow_local

    return airflow_local.load_dags()
