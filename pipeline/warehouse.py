"""Build the warehouse from the staging store and publish it atomically.

The build writes a new file next to the published one (in DuckDB 1.5 storage, which
statisticians' older tools still read), closes it, then ``os.replace``s it over the published
file: a reader holding the old file keeps its snapshot, a reader opening later sees the new one.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from pipeline import __version__
from pipeline.errors import PipelineError
from pipeline.progress import step
from pipeline.settings import DataHome, DesignSettings
from pipeline.sql_files import LAYERS, layer_files

STORAGE_VERSION = "v1.5.0"
PUBLISHED_TABLES = (
    "patients",
    "treatments",
    "assessments",
    "instrument_scores",
    "modality_combinations",
    "followup_scores",
    "attrition",
    "load_ledger",
    "quarantine",
    "model_runs",
    "model_estimates",
    "covariate_balance",
    "propensity_diagnostics",
    "build_info",
)


def data_snapshot(con: duckdb.DuckDBPyConnection, as_of: datetime) -> str:
    """A hash of the loaded inputs: the checksums of every file loaded by the as-of time."""
    rows = con.execute(
        "SELECT sha256 FROM store.load_ledger WHERE status = 'loaded' AND loaded_at <= ? ORDER BY sha256", [as_of]
    ).fetchall()
    return hashlib.sha256("".join(sha for (sha,) in rows).encode()).hexdigest()


def _set_design(con: duckdb.DuckDBPyConnection, design: DesignSettings) -> None:
    con.execute("SET VARIABLE exposure_window_days = ?", [design.exposure_window_days])
    con.execute("SET VARIABLE baseline_lookback_days = ?", [design.baseline_lookback_days])
    timepoints = pd.DataFrame([t.__dict__ for t in design.timepoints]).rename(columns={"name": "timepoint"})
    con.register("timepoints_frame", timepoints)
    con.execute("CREATE OR REPLACE TEMP TABLE design_timepoints AS SELECT * FROM timepoints_frame")
    con.unregister("timepoints_frame")


def build_warehouse(
    home: DataHome, target: Path, design: DesignSettings | None = None, as_of: datetime | None = None
) -> str:
    """Build every published table into ``target`` (a new file). Returns the data snapshot hash."""
    design = design or DesignSettings.for_home(home)
    as_of = as_of or datetime.now(UTC).replace(tzinfo=None)
    if not home.store_path.exists():
        raise PipelineError(f"No staging store at {home.store_path}: nothing has been loaded yet.")
    if target.exists():
        target.unlink()
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{home.store_path}' AS store (READ_ONLY)")
        con.execute(f"ATTACH '{target}' AS warehouse (STORAGE_VERSION '{STORAGE_VERSION}')")
        snapshot = data_snapshot(con, as_of)
        con.execute("SET VARIABLE as_of = ?::TIMESTAMP", [as_of])
        con.execute("SET VARIABLE built_at = ?::TIMESTAMP", [datetime.now(UTC).replace(tzinfo=None)])
        con.execute("SET VARIABLE data_snapshot = ?", [snapshot])
        con.execute("SET VARIABLE code_version = ?", [__version__])
        con.execute("SET VARIABLE design_settings = ?", [design.to_json()])
        _set_design(con, design)
        # Temp views (staging, item scores) stay in memory; tables land in the new warehouse file.
        con.execute("USE warehouse")
        for layer in LAYERS:
            for sql_file in layer_files(layer):
                with step(f"build {layer}/{sql_file.stem}"):
                    con.execute(sql_file.read_text(encoding="utf-8"))
        con.execute("CHECKPOINT warehouse")
    finally:
        con.close()
    return snapshot


def publish(home: DataHome, built: Path) -> Path:
    """Move a closed, fully built file over the published warehouse in one rename."""
    with open(built, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(built, home.warehouse_path)
    return home.warehouse_path


def build_and_publish(home: DataHome, design: DesignSettings | None = None) -> tuple[Path, str]:
    home.ensure()
    building = home.warehouse_dir / f".outcomes.{os.getpid()}.building.duckdb"
    try:
        snapshot = build_warehouse(home, building, design)
        return publish(home, building), snapshot
    finally:
        for leftover in (building, building.with_name(building.name + ".wal")):
            if leftover.exists():
                leftover.unlink()
