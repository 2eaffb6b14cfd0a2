"""The warehouse and its model results as of an instant: what a quarter's report renders.

``build_as_of(home, as_of)`` rebuilds the warehouse from the staging history as it stood at ``as_of``
(so a report written again later gives the same numbers) into ``staging/as_of/<name>.duckdb``, and
puts exactly one model run in it: the published warehouse's run where it was fitted on these very
data, design, settings and code (the fit is deterministic, so fitting again would give the same
numbers), else a run fitted now. The report then only renders that file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import duckdb

from pipeline import __version__
from pipeline.checksums import combined_sha256
from pipeline.errors import NothingToReport
from pipeline.progress import step
from pipeline.settings import DataHome, DesignSettings, ModelSettings
from pipeline.store.connection import writer_lock
from pipeline.store.ledger import last_received, loaded_checksums
from pipeline.warehouse import MODEL_TABLES, build_warehouse


@dataclass(frozen=True)
class AsOfWarehouse:
    path: Path  # a closed warehouse file holding one model run
    as_of: datetime
    data_snapshot: str
    model_run_id: str | None


def as_of_path(home: DataHome, name: str) -> Path:
    """Where the as-of warehouse of a release is kept (the data home's staging area: never published)."""
    return home.staging / "as_of" / f"{name.replace('/', '-')}.duckdb"


def _loaded_files(home: DataHome, as_of: datetime) -> int:
    if not home.store_path.exists():
        return 0
    with duckdb.connect(str(home.store_path), read_only=True) as con:
        return len(loaded_checksums(con, as_of))


def loaded_by(home: DataHome, as_of: datetime) -> tuple[str, datetime | None]:
    """The data snapshot a build as of ``as_of`` would have (the hash of the files loaded by then), and
    when the store last received anything (a drop loaded or refused): a release can be judged unchanged
    without building. The caller holds the writer lock."""
    with duckdb.connect(str(home.store_path), read_only=True) as con:
        return combined_sha256(loaded_checksums(con, as_of)), last_received(con)[1]


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def stored_results(
    home: DataHome, snapshot: str, design_json: object, settings: ModelSettings
) -> SimpleNamespace | None:
    """The published warehouse's model run on exactly these data (same snapshot and design), settings and
    code, if there is one."""
    if not home.warehouse_path.exists():
        return None
    wanted = json.loads(json.dumps(settings.as_dict()))
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        tables = {n for (n,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if not {"build_info", "model_runs", "model_estimates"} <= tables:
            return None
        built_snapshot, built_design = con.execute("SELECT data_snapshot, design_settings FROM build_info").fetchone()
        if built_snapshot != snapshot or _json(built_design) != _json(design_json):
            return None
        runs = con.execute(
            "SELECT * FROM model_runs WHERE data_snapshot = ? AND code_version = ? ORDER BY started_at DESC, run_id",
            [snapshot, __version__],
        ).df()
        runs = runs[[_json(value) == wanted for value in runs["settings"]]].head(1)
        if runs.empty:
            return None
        run_id = str(runs["run_id"].iloc[0])
        frames = {"model_runs": runs.reset_index(drop=True)}
        for name in MODEL_TABLES[1:]:
            if name in tables:
                frames[name] = con.execute(f"SELECT * FROM {name} WHERE run_id = ?", [run_id]).df()
        return SimpleNamespace(**frames)


def _keep_one_run(con: duckdb.DuckDBPyConnection, results: object) -> None:
    """The as-of file's model tables hold this run only (the build copied every stored run)."""
    for table in MODEL_TABLES:
        con.execute(f"DELETE FROM {table}")
        frame = getattr(results, table, None)
        if frame is not None and not frame.empty:
            con.register("results_frame", frame)
            columns = ", ".join(f'"{c}"' for c in frame.columns)
            con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM results_frame")
            con.unregister("results_frame")


def build_as_of(
    home: DataHome,
    as_of: datetime,
    name: str,
    settings: ModelSettings | None = None,
    design: DesignSettings | None = None,
    reuse_stored: bool = True,
    by_words: str = "",
) -> AsOfWarehouse:
    """The warehouse as loaded by ``as_of``, with one model run, in ``staging/as_of/<name>.duckdb`` (see the
    module). Nothing loaded by then raises NothingToReport (``by_words``: that moment in its words)."""
    from pipeline.models.fit import fit_models  # statsmodels loads only when a model is fitted

    # Under the writer lock: DuckDB lets no one open the store while a load writes it.
    with writer_lock(home, activity=f"checking what was loaded by {as_of:%Y-%m-%d %H:%M}"):
        loaded = _loaded_files(home, as_of)
    if loaded == 0:
        raise NothingToReport(
            f"No data had been loaded by {by_words or f'{as_of:%Y-%m-%d %H:%M} UTC'}: "
            "there is nothing to report on that quarter."
        )
    settings = settings or ModelSettings.for_home(home)  # as `synk run` fits
    target = as_of_path(home, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f".{target.stem}.{os.getpid()}.building.duckdb")
    try:
        with writer_lock(home), step(f"build the warehouse as of {as_of:%Y-%m-%d %H:%M}"):
            snapshot = build_warehouse(home, building, design, as_of=as_of)
        with duckdb.connect(str(building)) as con:
            design_json = con.execute("SELECT design_settings FROM build_info").fetchone()[0]
            results = stored_results(home, snapshot, design_json, settings) if reuse_stored else None
            if results is None:
                with step(f"fit the models on the data as of {as_of:%Y-%m-%d %H:%M}"):
                    results = fit_models(con, settings, data_snapshot=snapshot, code_version=__version__)
            _keep_one_run(con, results)
            con.execute("CHECKPOINT")
        os.replace(building, target)
    finally:
        for leftover in (building, building.with_name(building.name + ".wal")):
            leftover.unlink(missing_ok=True)
    runs = results.model_runs
    return AsOfWarehouse(target, as_of, snapshot, str(runs["run_id"].iloc[0]) if len(runs) else None)
