"""The report's reads beyond the original ones: Table 1, treatment order and change over time, BoNT dose by
session, item-level trajectories (the hallmarks of synkinesis) and the quarter's data quality. Every
query returns raw counts and statistics; suppression happens in :mod:`pipeline.report.suppression`."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd

from pipeline.intervals import mean_interval
from pipeline.sql_files import MACROS_SQL, read_sql

GROUP_SQL = "CASE WHEN m.is_combined THEN 'combined' ELSE 'single modality' END"
# Hallmark 3, opposing muscles firing together in a smile: the eFACE smile and commissure items.
SMILE_ITEMS = {
    "dyn_commissure_smile": "eFACE oral commissure movement with smile",
    "dyn_nlf_depth_smile": "eFACE nasolabial fold depth with smile",
    "dyn_nlf_orientation_smile": "eFACE nasolabial fold orientation with smile",
}
MAX_SESSION = 6  # BoNT sessions 1 to 5 one by one, then "6 or later"


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
    pivots = ", ".join(
        f"max(f.\"value\") FILTER (WHERE f.outcome = '{o}' AND f.timepoint = 'baseline') AS \"{o}\"" for o in outcomes
    )
    return con.execute(
        f'SELECT p.site_id, p.patient_id, {GROUP_SQL} AS "group", p.age_at_onset, p.sex, p.etiology, '
        f"p.onset_to_index_days, p.prior_treatment, {pivots} "
        "FROM modality_combinations AS m INNER JOIN patients AS p USING (site_id, patient_id) "
        "LEFT JOIN followup_scores AS f USING (site_id, patient_id) "
        "WHERE m.classifiable GROUP BY ALL ORDER BY p.site_id, p.patient_id"
    ).df()


def treatment_orders(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per classifiable patient: group and the order in which each modality was first given
    (from t0 on, over all follow-up), e.g. 'PT → BTX → SN'; modalities started the same day are joined by '+'."""
    return con.execute(
        f"""
        WITH firsts AS (
            SELECT t.site_id, t.patient_id, c.code, c."position", min(t."day") AS first_day
            FROM treatments AS t INNER JOIN modality_combinations AS m USING (site_id, patient_id)
            INNER JOIN modality_codes AS c USING (modality)
            WHERE m.classifiable AND t."day" >= m.t0_day
            GROUP BY ALL
        ),
        days AS (
            SELECT site_id, patient_id, first_day, string_agg(code, '+' ORDER BY "position") AS codes
            FROM firsts GROUP BY ALL
        )
        SELECT d.site_id, d.patient_id, {GROUP_SQL} AS "group",
            string_agg(d.codes, ' → ' ORDER BY d.first_day) AS "order"
        FROM days AS d INNER JOIN modality_combinations AS m USING (site_id, patient_id)
        GROUP BY ALL ORDER BY d.site_id, d.patient_id
        """
    ).df()


def groups_by_year(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per classifiable patient: the year of the index visit and the group."""
    return con.execute(
        f'SELECT p.site_id, p.patient_id, p.index_year AS year, {GROUP_SQL} AS "group" '
        "FROM modality_combinations AS m INNER JOIN patients AS p USING (site_id, patient_id) "
        "WHERE m.classifiable ORDER BY p.site_id, p.patient_id"
    ).df()


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
    """BoNT units by session number (1 = first injection from t0 on) for classifiable patients, one row per
    patient and session; sessions from MAX_SESSION on pooled (their mean per patient)."""
    return con.execute(
        f"""
        WITH sessions AS (
            SELECT t.site_id, t.patient_id, t.botox_units,
                row_number() OVER (PARTITION BY t.site_id, t.patient_id ORDER BY t."day", t.treatment_id) AS session
            FROM treatments AS t INNER JOIN modality_combinations AS m USING (site_id, patient_id)
            WHERE m.classifiable AND t.modality = 'botox' AND t."day" >= m.t0_day
        )
        SELECT site_id, patient_id, least(session, {MAX_SESSION}) AS session, avg(botox_units) AS units
        FROM sessions WHERE botox_units IS NOT NULL GROUP BY ALL ORDER BY site_id, patient_id, session
        """
    ).df()


def item_score_rows(con: duckdb.DuckDBPyConnection, items: dict[str, str]) -> pd.DataFrame:
    """eFACE item scores by group at baseline and each timepoint, one row per patient, placed on the
    timepoints as ``followup_scores`` places outcome scores (the same macro, the warehouse's design)."""
    con.execute(read_sql(MACROS_SQL))  # a temporary macro: the published file stays read-only
    design = json.loads(con.execute("SELECT design_settings FROM build_info").fetchone()[0])
    names = ", ".join("?" for _ in items)
    return con.execute(
        f"""
        WITH scores AS (
            SELECT a.site_id, a.patient_id, a.item AS outcome, a.visit_day, a.visit_day - m.t0_day AS days_from_t0,
                a."value"
            FROM assessments AS a INNER JOIN modality_combinations AS m USING (site_id, patient_id)
            WHERE m.classifiable AND a.instrument = 'eface' AND a.item IN ({names}) AND a."value" IS NOT NULL
        )
        SELECT p.site_id, p.patient_id, p.outcome, {GROUP_SQL} AS "group", p.timepoint, p."value"
        FROM placed_on_timepoints('scores', 'design_timepoints', ?) AS p
        INNER JOIN modality_combinations AS m USING (site_id, patient_id)
        ORDER BY p.outcome, "group", p.timepoint, p.site_id, p.patient_id
        """,
        [*items, int(design["baseline_lookback_days"])],
    ).df()


def quarter_quality(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """For drops received in [start, end): the ledger (one row per file), quarantined rows by rule,
    and the rejected or held drops with the reason."""
    ledger = con.execute(
        "SELECT drop_id, file, status, received_at, rows_loaded, rows_quarantined FROM load_ledger "
        "WHERE received_at >= ? AND received_at < ? ORDER BY received_at, drop_id, file",
        [start, end],
    ).df()
    quarantine = con.execute(
        'SELECT trim(r) AS rule, count(*) AS "rows" FROM '
        "(SELECT unnest(string_split(q.rule, '; ')) AS r FROM quarantine AS q "
        " WHERE q.drop_id IN (SELECT drop_id FROM load_ledger WHERE received_at >= ? AND received_at < ?)) "
        "GROUP BY ALL ORDER BY rule",
        [start, end],
    ).df()
    refused = con.execute(
        "SELECT drop_id, status, min(reason) AS reason, min(received_at) AS received_at "
        "FROM load_ledger WHERE status IN ('rejected', 'held') AND received_at >= ? AND received_at < ? "
        "GROUP BY drop_id, status ORDER BY received_at, drop_id",
        [start, end],
    ).df()
    return ledger, quarantine, refused
