"""Data homes for the report tests, built once per session: real drops from the generator, ingested by the
real pipeline; the first drops' load times are set back into 2026Q3 so that the as-of rule has a past."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.settings import DataHome
from pipeline.stages import ingest
from pipeline.tools.synthetic import generate_drop

Q3_LOAD = datetime(2026, 8, 14, 9, 30)
TIMESTAMPS = {
    "drops": ("received_at", "loaded_at"),
    "load_ledger": ("received_at", "loaded_at"),
    "quarantine": ("quarantined_at",),
}


def backdate(home: DataHome, moment: datetime) -> None:
    """Set every load so far to ``moment``, as if those drops had been loaded then."""
    con = duckdb.connect(str(home.store_path))
    try:
        for table, columns in TIMESTAMPS.items():
            sets = ", ".join(f"{c} = CASE WHEN {c} IS NULL THEN NULL ELSE ?::TIMESTAMP END" for c in columns)
            con.execute(f"UPDATE {table} SET {sets}", [moment] * len(columns))
        for table in ("patients_history", "treatments_history", "assessments_history"):
            con.execute(
                f"UPDATE {table} SET valid_from = ?, valid_to = CASE WHEN valid_to IS NULL THEN NULL ELSE ? END",
                [moment, moment],
            )
    finally:
        con.close()


def make_home(root: Path, sites: list[tuple[str, int, int]]) -> DataHome:
    home = DataHome.resolve(root).ensure()
    for site, patients, seed in sites:
        generate_drop(home.landing / f"{site}-2026-08", patients=patients, seed=seed, site=site)
    ingest(home)
    backdate(home, Q3_LOAD)
    return home


@pytest.fixture(scope="session")
def multisite_home(tmp_path_factory: pytest.TempPathFactory) -> DataHome:
    """Two clinics and a tiny one, all loaded in 2026Q3."""
    return make_home(
        tmp_path_factory.mktemp("multisite"), [("clinic_a", 130, 1), ("clinic_b", 110, 2), ("tiny", 12, 9)]
    )


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> DataHome:
    """One tiny clinic alone: nearly every cell is small."""
    return make_home(tmp_path_factory.mktemp("tiny"), [("tiny", 24, 5)])
