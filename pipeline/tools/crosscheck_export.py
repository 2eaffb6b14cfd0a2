"""``synk crosscheck-export``: refit the models on the published warehouse with every fit recorded
(pipeline/models/fit_record.py), for the cross-check against R (tests/crosscheck/, docs/crosscheck.md).

Writes ``staging/crosscheck/<run_id>/``: one folder per method of frames and specifications, the
refit's ``estimates.csv`` (model_estimates, every column) and ``run.json`` (its settings), the published
``published.csv`` of the same run (so the check can see the refit is the published run) and
``complication_rates.csv``. It holds patient rows, so it stays in ``staging/`` (never published); a
run's folder is replaced whole each time.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb

from pipeline import __version__
from pipeline.errors import PipelineError
from pipeline.settings import DataHome, ModelSettings

CROSSCHECK = "crosscheck"


def export_fits(home: DataHome, settings: ModelSettings | None = None) -> Path:
    """Refit with every fit recorded; return the folder written."""
    from pipeline.models.fit import fit_models
    from pipeline.models.fit_record import DirectoryRecorder, recording

    settings = settings or ModelSettings.for_home(home)
    if not home.warehouse_path.exists():
        raise PipelineError(f"No published warehouse at {home.warehouse_path}: run a load first.")
    root = home.staging / CROSSCHECK
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        snapshot = con.execute("SELECT data_snapshot FROM build_info").fetchone()[0]
        with recording(DirectoryRecorder(scratch)):
            results = fit_models(con, settings, data_snapshot=snapshot, code_version=__version__)
        run_id = str(results.model_runs["run_id"].iloc[0])
        results.model_estimates.to_csv(scratch / "estimates.csv", index=False, float_format="%.17g")
        (scratch / "run.json").write_text(str(results.model_runs["settings"].iloc[0]) + "\n")  # the settings
        published = con.execute("SELECT * FROM model_estimates WHERE run_id = ?", [run_id]).df()
        published.to_csv(scratch / "published.csv", index=False, float_format="%.17g")
        rates = con.execute("SELECT * FROM complication_rates").df() if _has(con, "complication_rates") else None
        if rates is not None:
            rates.to_csv(scratch / "complication_rates.csv", index=False, float_format="%.17g")
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        con.close()
    target = root / run_id
    if target.exists():
        shutil.rmtree(target)
    scratch.rename(target)
    return target


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    query = "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?"
    return bool(con.execute(query, [table]).fetchall()[0][0])
