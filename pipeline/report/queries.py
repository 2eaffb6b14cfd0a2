"""The report's reads beyond the model tables: Table 1, treatment order and change over time, BoNT dose by session,
item-level trajectories (the hallmarks of synkinesis) and the quarter's data quality. The SQL is in ``sql/report/``,
one statement per file; every query returns raw counts and statistics (suppression happens in
:mod:`pipeline.report.suppression`)."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd

from pipeline.intervals import mean_interval
from pipeline.sql_files import MACROS_SQL, read_sql

# Hallmark 3, opposing muscles firing together in a smile: the eFACE smile and commissure items.
SMILE_ITEMS = {
    "dyn_commissure_smile": "eFACE oral commissure movement with smile",
    "dyn_nlf_depth_smile": "eFACE nasolabial fold depth with smile",
    "dyn_nlf_orientation_smile": "eFACE nasolabial fold orientation with smile",
}
MAX_SESSION = 6  # BoNT sessions 1 to 5 one by one, then "6 or later"


def report_query(
    con: duckdb.DuckDBPyConnection, name: str, parameters: dict[str, object] | None = None
) -> pd.DataFrame:
    """Run ``sql/report/<name>.sql`` with its named parameters (``$name`` in the file)."""
    return con.execute(read_sql(f"report/{name}.sql"), parameters or {}).df()


def add_ci(frame: pd.DataFrame) -> pd.DataFrame:
    bounds = [
        mean_interval(float(mean), float(sd), int(n))
        for mean, sd, n in zip(frame["mean"], frame["sd"], frame["n"], strict=True)
    ]
    frame = frame.copy()
    frame["ci_low"] = [low for low, _ in bounds]
    frame["ci_high"] = [high for _, high in bounds]
    return frame


def table_one_patients(con: duckdb.DuckDBPyConnection, outcomes: tuple[str, ...]) -> pd.DataFrame:
    """One row per classifiable patient: group, characteristics and baseline scores of ``outcomes``."""
    patients = report_query(con, "table_one_patients")
    baselines = report_query(con, "table_one_baselines", {"outcomes": list(outcomes)})
    wide = (
        baselines.pivot_table(index=["site_id", "patient_id"], columns="outcome", values="value", aggfunc="max")
        if len(baselines)
        else pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=["site_id", "patient_id"]))
    )
    wide = wide.reindex(columns=list(outcomes)).reset_index()
    wide.columns.name = None
    return patients.merge(wide, on=["site_id", "patient_id"], how="left")


def treatment_orders(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per classifiable patient: group and the order in which each modality was first given."""
    return report_query(con, "treatment_orders")


def groups_by_year(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per classifiable patient: the year of the index visit and the group."""
    return report_query(con, "groups_by_year")


def summarise(rows: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """n, mean, SD, median and the 95% CI of the mean of ``value`` per ``by`` (one row per patient each)."""
    if rows.empty:
        return pd.DataFrame(columns=[*by, "n", "mean", "sd", "median", "ci_low", "ci_high"])
    grouped = rows.groupby(by, sort=True)[value]
    frame = pd.DataFrame(
        {"n": grouped.size(), "mean": grouped.mean(), "sd": grouped.std(), "median": grouped.median()}
    ).reset_index()
    return add_ci(frame)


def bont_dose_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """BoNT units by session number for classifiable patients, one row per patient and session."""
    return report_query(con, "bont_dose_rows", {"max_session": MAX_SESSION})


def outcome_score_rows(con: duckdb.DuckDBPyConnection, outcomes: tuple[str, ...]) -> pd.DataFrame:
    """One row per classifiable patient, outcome and timepoint with a score."""
    return report_query(con, "outcome_scores", {"outcomes": list(outcomes)})


def item_score_rows(con: duckdb.DuckDBPyConnection, items: dict[str, str]) -> pd.DataFrame:
    """eFACE item scores by group at baseline and each timepoint, one row per patient, placed on the
    timepoints as ``followup_scores`` places outcome scores (the same macro, the warehouse's design)."""
    con.execute(read_sql(MACROS_SQL))  # a temporary macro: the published file stays read-only
    design = json.loads(con.execute("SELECT design_settings FROM build_info").fetchone()[0])
    return report_query(con, "item_scores", {"items": list(items), "lookback": int(design["baseline_lookback_days"])})


def quarter_quality(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """For drops received in [start, end): the ledger (one row per file), quarantined rows by rule,
    and the rejected or held drops with the reason."""
    window = {"start": start, "end": end}
    return (
        report_query(con, "quarter_ledger", window),
        report_query(con, "quarter_quarantine", window),
        report_query(con, "quarter_refused", window),
    )
