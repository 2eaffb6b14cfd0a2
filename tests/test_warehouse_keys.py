"""Every published table's key, declared beside its SQL (``-- key: ...``), holds on a real build: unique and
never null (as dbt keeps ``unique`` and ``not_null`` tests beside each model). The incremental build relies on it."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.settings import DataHome
from pipeline.sql_files import declared_keys
from pipeline.stages import fit_models, ingest, publish_warehouse
from pipeline.tools.synthetic import SyntheticParameters, generate_drop
from pipeline.tools.synthetic_complications import DEMO_COMPLICATIONS
from pipeline.warehouse import PUBLISHED_TABLES
from tests.report.helpers import light_settings


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    home = DataHome.resolve(tmp_path_factory.mktemp("keys")).ensure()
    params = SyntheticParameters(complications=DEMO_COMPLICATIONS)
    generate_drop(home.landing / "clinic_a-2026-11", patients=150, seed=5, site="clinic_a", params=params)
    generate_drop(home.landing / "clinic_b-2026-11", patients=60, seed=6, site="clinic_b")
    # A treatment of a patient the drop does not have: quarantined, so the quarantine table has a row to key.
    treatments = home.landing / "clinic_b-2026-11" / "treatments.csv"
    with treatments.open("a", encoding="utf-8") as handle:
        handle.write("P999999,clinic_b,T999999-01,0,botox,20,,orbicularis_oculi\n")
    ingest(home)
    publish_warehouse(home)
    fit_models(home, light_settings())
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    yield con
    con.close()


def test_every_published_table_declares_its_key() -> None:
    assert set(PUBLISHED_TABLES) <= set(declared_keys())


@pytest.mark.parametrize("table", PUBLISHED_TABLES)
def test_the_declared_key_is_unique_and_never_null(published: duckdb.DuckDBPyConnection, table: str) -> None:
    key = declared_keys()[table]
    rows = published.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    assert rows > 0, f"{table} is empty: the key would hold trivially"
    if not key:  # one row
        assert rows == 1
        return
    columns = ", ".join(f'"{c}"' for c in key)
    distinct = published.execute(f"SELECT count(*) FROM (SELECT DISTINCT {columns} FROM {table})").fetchone()[0]
    nulls = published.execute(
        f"SELECT count(*) FROM {table} WHERE {' OR '.join(f'{c} IS NULL' for c in columns.split(', '))}"
    ).fetchone()[0]
    assert (distinct, nulls) == (rows, 0), f"{table}: {rows} rows, {distinct} distinct keys, {nulls} with a null"
