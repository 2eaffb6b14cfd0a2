"""Build the warehouse from the staging store and publish it atomically.

The build writes a new file next to the published one (in DuckDB 1.5 storage, which
statisticians' older tools still read), closes it, then ``os.replace``s it over the published
file: a reader holding the old file keeps its snapshot, a reader opening later sees the new one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from pipeline import __version__
from pipeline.build_state import SCOPE_SQL, BuildState, fingerprint, read_state, write_state
from pipeline.checksums import combined_sha256
from pipeline.contract import MODALITY_CODES, OUTCOME_LIST
from pipeline.errors import PipelineError
from pipeline.intervals import clopper_pearson
from pipeline.progress import step
from pipeline.settings import DataHome, DesignSettings
from pipeline.sql_files import (
    COMPLICATION_MACROS_SQL,
    FLOW_MACROS_SQL,
    LAYERS,
    MACROS_SQL,
    TOXIN_PHASE_SQL,
    layer_files,
    read_sql,
)
from pipeline.stale_wal import set_aside
from pipeline.store.connection import open_store
from pipeline.store.ledger import loaded_checksums
from pipeline.yardsticks import yardstick

log = logging.getLogger(__name__)
STORAGE_VERSION = "v1.5.0"
# What a model run writes into the store (and the warehouse then publishes), one row set per run_id.
MODEL_TABLES = (
    "model_runs",
    "model_estimates",
    "covariate_balance",
    "propensity_diagnostics",
    "preference_scores",
    "estimate_patients",
    "target_trial_summary",
)
PUBLISHED_TABLES = (
    "design_timepoints",
    "design_outcomes",
    "modality_codes",
    "patients",
    "treatments",
    "assessments",
    "instrument_scores",
    "modality_combinations",
    "followup_scores",
    "attrition",
    "complications",
    "complication_sites",
    "complication_rates",
    "load_ledger",
    "quarantine",
    "model_runs",
    "model_estimates",
    "covariate_balance",
    "propensity_diagnostics",
    "preference_scores",
    "estimate_patients",
    "target_trial_summary",
    "build_info",
    "botox_intervals",
)


EMPTY_SNAPSHOT = combined_sha256([])  # no file loaded yet


def sql_string(path: Path) -> str:
    """A path as an SQL string literal (ATTACH takes no parameters): a data home may hold a quote."""
    return "'" + str(path).replace("'", "''") + "'"


def data_snapshot(con: duckdb.DuckDBPyConnection, as_of: datetime) -> str:
    """A hash of the loaded inputs: the checksums of every file loaded by the as-of time."""
    return combined_sha256(loaded_checksums(con, as_of, attached_as="store"))


def _set_design(con: duckdb.DuckDBPyConnection, design: DesignSettings) -> None:
    """The design's values as SQL variables, and its lists as temp tables (``seed_*``) that the build reads
    and ``sql/seeds/`` publishes: the one copy of the design the models and the report read."""
    con.execute("SET VARIABLE exposure_window_days = ?", [design.exposure_window_days])
    con.execute("SET VARIABLE baseline_lookback_days = ?", [design.baseline_lookback_days])
    ordered = sorted(design.timepoints, key=lambda t: (t.target, t.name))
    seeds = {
        "seed_timepoints": pd.DataFrame(
            [
                {
                    "timepoint": t.name,
                    "position": position,
                    "target_days": t.target,
                    "window_low_days": t.low,
                    "window_high_days": t.high,
                    "months": t.months,
                    "label": t.label,
                    "is_primary": t.name == design.primary_timepoint,
                }
                for position, t in enumerate(ordered, start=1)
            ]
        ),
        "seed_outcomes": pd.DataFrame(
            [
                {
                    "outcome": o.code,
                    "position": position,
                    "instrument": o.instrument,
                    "score": o.score,
                    "higher_is_better": o.higher_is_better,
                    "is_primary": o.code == design.primary_outcome,
                    **_yardstick_columns(o.code, design),
                }
                for position, o in enumerate(OUTCOME_LIST, start=1)
            ]
        ),
        "seed_modality_codes": pd.DataFrame(
            [
                {"modality": modality, "code": code, "position": position}
                for position, (modality, code) in enumerate(MODALITY_CODES.items(), start=1)
            ]
        ),
    }
    for name, frame in seeds.items():
        con.register(f"{name}_frame", frame)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_frame")
        con.unregister(f"{name}_frame")


def _yardstick_columns(outcome: str, design: DesignSettings) -> dict[str, object]:
    """The outcome's yardstick of a difference between groups, as the design fixes it (pipeline/yardsticks.py)."""
    stick = yardstick(outcome, design.yardsticks.get(outcome))
    return {
        "yardstick": float("nan") if stick.value is None else stick.value,
        "yardstick_kind": stick.kind,
        "yardstick_source": stick.source,
    }


def _clopper_pearson_low(successes: int, trials: int) -> float:
    return clopper_pearson(int(successes), int(trials))[0]


def _clopper_pearson_high(successes: int, trials: int) -> float:
    return clopper_pearson(int(successes), int(trials))[1]


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """The Python functions the build's SQL calls: the exact interval of a proportion (SQL has no beta
    quantile), ``clopper_pearson_low(k, n)`` and ``clopper_pearson_high(k, n)``."""
    for name, function in (
        ("clopper_pearson_low", _clopper_pearson_low),
        ("clopper_pearson_high", _clopper_pearson_high),
    ):
        con.create_function(name, function, ["BIGINT", "BIGINT"], "DOUBLE", side_effects=False)


def write_design_tables(con: duckdb.DuckDBPyConnection, design: DesignSettings) -> None:
    """The design's tables (``sql/seeds/``) in the connection's current database, as a build writes them
    first: for a warehouse put together by hand (the report's tests)."""
    _set_design(con, design)
    for sql_file in layer_files("seeds"):
        con.execute(sql_file.read_text(encoding="utf-8"))


# Tables with one row per patient or fewer (keyed by site_id, patient_id): an incremental build
# recomputes them for the patients in build_scope only. The other tables are rebuilt whole.
PATIENT_TABLES = frozenset(
    {
        "patients",
        "treatments",
        "assessments",
        "instrument_scores",
        "modality_combinations",
        "followup_scores",
        "complications",
    }
)
# An incremental build pays for copying the published file and replacing rows: past this share of
# the patients, a full build costs less.
INCREMENTAL_MAX_SHARE = 0.25
_CREATES = re.compile(r"^CREATE TABLE (\w+)", re.MULTILINE)


def build_warehouse(
    home: DataHome,
    target: Path,
    design: DesignSettings | None = None,
    as_of: datetime | None = None,
    since: BuildState | None = None,
) -> str:
    """Build every published table into ``target`` (a new file). Returns the data snapshot hash.

    With ``since`` (the state of the published warehouse), the build starts from a copy of the
    published file and recomputes only the patients whose records changed after it, where that
    is exact and cheaper; otherwise it computes everything.
    """
    design = design or DesignSettings.for_home(home)
    as_of = as_of or datetime.now(UTC).replace(tzinfo=None)
    if not home.store_path.exists():
        raise PipelineError(f"No staging store at {home.store_path}: nothing has been loaded yet.")
    if target.exists():
        target.unlink()
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {sql_string(home.store_path)} AS store (READ_ONLY)")
        if _store_before_1_2(con):
            # A store not written since contract 1.2 gains its (empty) complications history first; the
            # callers hold the writer lock.
            con.execute("DETACH store")
            with open_store(home):
                pass
            con.execute(f"ATTACH {sql_string(home.store_path)} AS store (READ_ONLY)")
        snapshot = data_snapshot(con, as_of)
        con.execute("SET VARIABLE as_of = ?::TIMESTAMP", [as_of])
        incremental = _scope(con, home, design, as_of, since)
        if incremental:
            shutil.copyfile(home.warehouse_path, target)
            con.execute(f"ATTACH {sql_string(target)} AS warehouse")  # keeps the copied file's storage version
            con.execute("ATTACH ':memory:' AS scoped")
        else:
            con.execute(f"ATTACH {sql_string(target)} AS warehouse (STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("SET VARIABLE built_at = ?::TIMESTAMP", [datetime.now(UTC).replace(tzinfo=None)])
        con.execute("SET VARIABLE data_snapshot = ?", [snapshot])
        con.execute("SET VARIABLE code_version = ?", [__version__])
        con.execute("SET VARIABLE design_settings = ?", [design.to_json()])
        _set_design(con, design)
        register_functions(con)
        con.execute(read_sql(MACROS_SQL))
        con.execute(read_sql(COMPLICATION_MACROS_SQL))
        con.execute(read_sql(TOXIN_PHASE_SQL))
        con.execute(read_sql(FLOW_MACROS_SQL))
        # Temp views (staging, item scores) stay in memory; tables land in the new warehouse file.
        con.execute("USE warehouse")
        for layer in LAYERS:
            for sql_file in layer_files(layer):
                with step(f"build {layer}/{sql_file.stem}"):
                    _run(con, sql_file.read_text(encoding="utf-8"), incremental)
        con.execute("CHECKPOINT warehouse")
    finally:
        con.close()
    return snapshot


def _store_before_1_2(con: duckdb.DuckDBPyConnection) -> bool:
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'store' AND table_name = 'complications_history'"
    ).fetchone()[0]
    return not found


def _scope(
    con: duckdb.DuckDBPyConnection, home: DataHome, design: DesignSettings, as_of: datetime, since: BuildState | None
) -> bool:
    """Fill build_scope; True where the build is incremental (the published file is its start)."""
    usable = (
        since is not None
        and since.fingerprint == fingerprint(design)
        and since.as_of <= as_of
        # The store still holds what that build read (not one restored or rebuilt since) ...
        and data_snapshot(con, since.as_of) == since.data_snapshot
        # ... and the published file is that build (not one restored or built elsewhere).
        and home.warehouse_path.exists()
        and _published_matches(home, since)
    )
    con.execute("SET VARIABLE since = ?::TIMESTAMP", [since.as_of if usable and since else None])
    con.execute(read_sql(SCOPE_SQL))
    if not usable:
        return False
    changed = con.execute("SELECT count(*) FROM build_scope").fetchone()[0]
    current = con.execute("SELECT count(*) FROM store.patients_history WHERE valid_to IS NULL").fetchone()[0]
    if changed <= INCREMENTAL_MAX_SHARE * max(current, 1):
        log.info("Incremental build: %d of %d patients recomputed, the rest copied as published.", changed, current)
        return True
    con.execute("SET VARIABLE since = NULL::TIMESTAMP")
    con.execute(read_sql(SCOPE_SQL))
    return False


def _published_matches(home: DataHome, since: BuildState) -> bool:
    try:
        with duckdb.connect(str(home.warehouse_path), read_only=True) as published:
            row = published.execute("SELECT as_of, data_snapshot FROM build_info").fetchone()
    except duckdb.Error:
        return False
    return row is not None and row[0] == since.as_of and row[1] == since.data_snapshot


def _run(con: duckdb.DuckDBPyConnection, sql: str, incremental: bool) -> None:
    """One SQL file of the build. Incremental: a per-patient table is computed for build_scope's
    patients (in memory) and replaces their rows in the copy; any other table is rebuilt whole."""
    created = _CREATES.search(sql)
    table = created.group(1) if created else None
    if not incremental or table is None:
        con.execute(sql)
    elif table in PATIENT_TABLES:
        # Later per-patient files read this one by name: in the scoped schema they see the scoped rows.
        con.execute("USE scoped")
        con.execute(sql)
        con.execute(
            f"DELETE FROM warehouse.main.{table} AS t USING build_scope AS s "
            "WHERE t.site_id = s.site_id AND t.patient_id = s.patient_id"
        )
        con.execute(f"INSERT INTO warehouse.main.{table} SELECT * FROM scoped.main.{table}")
    else:
        con.execute("USE warehouse")
        con.execute(f"DROP TABLE IF EXISTS warehouse.main.{table}")
        con.execute(sql)


def publish(home: DataHome, built: Path, notes: list[str] | None = None) -> Path:
    """Move a closed, fully built file over the published warehouse in one rename. A write-ahead log beside
    the file replaced (a reader's session that died) would not match the new file: it is set aside first,
    and the sentence saying so appended to ``notes``."""
    with open(built, "rb") as handle:
        os.fsync(handle.fileno())
    moved = set_aside(home, "it belonged to the file this publication replaced")
    os.replace(built, home.warehouse_path)
    if moved and notes is not None:
        notes.append(moved)
    return home.warehouse_path


def _remove_orphan_builds(home: DataHome) -> None:
    """Delete the half-built files of builds whose process is gone (killed mid-build): each is as
    large as the warehouse, and nothing ever reads one."""
    for leftover in home.warehouse_dir.glob(".outcomes.*.building.duckdb*"):
        pid = leftover.name.split(".")[2]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            leftover.unlink(missing_ok=True)
        except PermissionError:
            pass  # a live process of another user


def build_and_publish(
    home: DataHome, design: DesignSettings | None = None, notes: list[str] | None = None
) -> tuple[Path, str]:
    """Build (incrementally where the published warehouse allows) and publish; record what was built.
    ``notes``: gains a sentence for a reader's write-ahead log set aside (pipeline/stale_wal.py)."""
    home.ensure()
    design = design or DesignSettings.for_home(home)
    as_of = datetime.now(UTC).replace(tzinfo=None)
    building = home.warehouse_dir / f".outcomes.{os.getpid()}.building.duckdb"
    _remove_orphan_builds(home)
    try:
        snapshot = build_warehouse(home, building, design, as_of, since=read_state(home))
        path = publish(home, building, notes)
    finally:
        for leftover in (building, building.with_name(building.name + ".wal")):
            if leftover.exists():
                leftover.unlink()
    # After the rename: a crash in between leaves the older state, which no longer matches the
    # published build_info, so the next build is a full one.
    write_state(home, BuildState(fingerprint(design), as_of, snapshot))
    return path, snapshot
