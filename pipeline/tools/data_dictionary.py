"""Write ``docs/warehouse.md``: the data dictionary, read from the warehouse's own COMMENTs, and
example queries a statistician would run, in SQL, Python and R.

``synk docs`` regenerates it from a published warehouse; a test runs every SQL example as
written against a built warehouse, so the examples cannot drift from the tables.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.warehouse import PUBLISHED_TABLES

# Each example: (title, SQL). The same SQL is shown from the CLI, Python and R.
EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "The primary comparison: combined vs single treatment at 12 months, every method",
        "-- estimate: the difference in change as fitted; benefit: signed so that above 0 the first group did\n"
        "-- better (the report's convention: SAQ, lower is better, has opposite signs in the two)\n"
        "SELECT method, outcome, round(estimate, 2) AS estimate, round(benefit, 2) AS benefit,\n"
        "       round(benefit_ci_low, 2) AS benefit_ci_low, round(benefit_ci_high, 2) AS benefit_ci_high,\n"
        "       p_adjusted, n_treated, n_control, diagnostics_ok, note\n"
        "FROM model_estimates\n"
        "WHERE contrast = 'combined_vs_single' AND timepoint = '12m'\n"
        "  AND run_id = (SELECT run_id FROM model_runs ORDER BY started_at DESC LIMIT 1)\n"
        "ORDER BY outcome, method",
    ),
    (
        "How much each 12-month estimate can bear: diagnostics, E-value, detectable difference",
        "SELECT e.method, e.outcome, round(e.estimate, 2) AS estimate, e.diagnostics_ok,\n"
        "       round(e.e_value, 2) AS e_value, round(e.e_value_ci, 2) AS e_value_ci, round(e.mdd, 2) AS mdd,\n"
        "       round(d.auc, 2) AS propensity_auc, round(d.equipoise_share, 2) AS equipoise,\n"
        "       round(d.max_abs_smd_weighted, 2) AS max_smd\n"
        "FROM model_estimates AS e\n"
        "LEFT JOIN propensity_diagnostics AS d\n"
        "  ON e.method = 'iptw' AND d.run_id = e.run_id AND d.contrast = e.contrast\n"
        "  AND d.outcome = e.outcome AND d.timepoint = e.timepoint\n"
        "WHERE e.contrast = 'combined_vs_single' AND e.timepoint = '12m'\n"
        "  AND e.run_id = (SELECT run_id FROM model_runs ORDER BY started_at DESC LIMIT 1)\n"
        "ORDER BY e.outcome, e.method",
    ),
    (
        "Responders and House-Brackmann as a grade, beside the mean differences, at 12 months",
        "SELECT method, outcome, contrast, round(estimate, 2) AS estimate, round(ci_low, 2) AS ci_low,\n"
        "       round(ci_high, 2) AS ci_high, n_treated, n_control, diagnostics_ok, note\n"
        "FROM model_estimates\n"
        "WHERE method IN ('responder', 'ordinal') AND timepoint = '12m'\n"
        "  AND run_id = (SELECT run_id FROM model_runs ORDER BY started_at DESC LIMIT 1)\n"
        "ORDER BY method, outcome, contrast",
    ),
    (
        "Who gets which combination",
        "SELECT combination, is_combined, count(*) AS patients,\n"
        "       count(*) FILTER (WHERE classifiable) AS classifiable\n"
        "FROM modality_combinations\n"
        "GROUP BY ALL\n"
        "ORDER BY patients DESC",
    ),
    (
        "Mean change in the Sunnybrook composite by group and timepoint",
        "SELECT m.is_combined, f.timepoint, count(*) AS patients,\n"
        "       round(avg(f.change), 1) AS mean_change, round(stddev(f.change), 1) AS sd_change\n"
        "FROM followup_scores AS f\n"
        "JOIN modality_combinations AS m USING (site_id, patient_id)\n"
        "WHERE m.classifiable AND f.outcome = 'sunnybrook_composite' AND f.timepoint <> 'baseline'\n"
        "GROUP BY ALL\n"
        "ORDER BY m.is_combined, f.timepoint",
    ),
    (
        "An analysis frame: one row per classifiable patient, 12-month SAQ change with covariates",
        "SELECT p.site_id, p.patient_id, p.sex, p.age_at_onset, p.etiology, p.onset_to_index_days,\n"
        "       p.prior_treatment, m.combination, m.is_combined, f.baseline_value, f.value, f.change\n"
        "FROM followup_scores AS f\n"
        "JOIN modality_combinations AS m USING (site_id, patient_id)\n"
        "JOIN patients AS p USING (site_id, patient_id)\n"
        "WHERE m.classifiable AND f.outcome = 'saq' AND f.timepoint = '12m' AND f.baseline_value IS NOT NULL",
    ),
    (
        "Scores taken near a BoNT injection's peak effect (2 to 4 weeks after it)",
        "SELECT s.instrument, s.score, count(*) AS visits, round(avg(s.value), 1) AS mean_value\n"
        "FROM instrument_scores AS s\n"
        "JOIN (SELECT DISTINCT site_id, patient_id, visit_day, days_since_last_botox FROM assessments) AS a\n"
        "  USING (site_id, patient_id, visit_day)\n"
        "WHERE a.days_since_last_botox BETWEEN 14 AND 28 AND s.value IS NOT NULL\n"
        "GROUP BY ALL\n"
        "ORDER BY s.instrument, s.score",
    ),
    (
        "Patient flow to the 12-month SAQ analysis",
        "SELECT step, patients, excluded, reason\n"
        "FROM attrition\n"
        "WHERE outcome = 'saq' AND timepoint = '12m'\n"
        "ORDER BY step_order",
    ),
    (
        "What was refused, and why",
        "SELECT l.drop_id, l.file, l.status, l.rows_in, l.rows_loaded, l.rows_quarantined, l.reason\n"
        "FROM load_ledger AS l\n"
        "ORDER BY l.received_at",
    ),
    (
        "Complications after each surgical modality, with exact 95% intervals (contract 1.2)",
        "SELECT group_code AS modality, code, patients_at_risk, patients_with, round(100 * rate, 1) AS per_100,\n"
        "       round(100 * ci_low, 1) AS ci_low, round(100 * ci_high, 1) AS ci_high,\n"
        "       round(100 * share_resolved) AS pct_resolved, median_days_to_resolution\n"
        "FROM complication_rates\n"
        "WHERE grouping = 'modality' AND group_code IN ('SN', 'MY', 'OS') AND patients_with > 0\n"
        "ORDER BY modality, rate DESC",
    ),
)


def python_snippet(sql: str) -> str:
    return (
        "import duckdb\n\n"
        'con = duckdb.connect("warehouse/outcomes.duckdb", read_only=True)\n'
        f'frame = con.sql("""\n{sql}\n""").df()\n'
        "con.close()"
    )


def r_snippet(sql: str) -> str:
    return (
        "library(duckdb)\n\n"
        'con <- dbConnect(duckdb(), "warehouse/outcomes.duckdb", read_only = TRUE)\n'
        f'frame <- dbGetQuery(con, "\n{sql.replace(chr(34), chr(92) + chr(34))}\n")\n'
        "dbDisconnect(con, shutdown = TRUE)"
    )


def render(con: duckdb.DuckDBPyConnection) -> str:
    tables = dict(
        con.execute(
            "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    )
    columns = con.execute(
        "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
        "WHERE database_name = current_database() ORDER BY table_name, column_index"
    ).fetchall()
    out = [
        "# The published warehouse: data dictionary and example queries",
        "",
        "Generated from the warehouse itself (`synk docs`): every table and column below carries this",
        "text as a DuckDB `COMMENT`, so `SELECT * FROM duckdb_columns()` shows it too. The file is",
        "`warehouse/outcomes.duckdb` under the data home, written in DuckDB 1.5 storage so that DuckDB",
        "1.5 and newer (the CLI, Python, R, DBeaver) can open it. Open it read-only: the pipeline",
        "replaces the file whole when it publishes, and a reader keeps the snapshot it opened. A build",
        "recomputes only the patients whose records changed since the published one and copies the",
        "rest; every table is what a build from scratch would give (the tests compare the two). A",
        "session that writes to it (DuckDB opens a file read-write by default) leaves a write-ahead log",
        "beside it, which the next publication moves to `staging/set_aside/` (docs/runbook.md): keep",
        "scratch tables in a database of your own.",
        "",
        "Signs: `model_estimates.estimate` is the difference as fitted (first group minus second, in the",
        "outcome's own direction: for SAQ, lower is better, an improvement is negative); `benefit` (with",
        "`benefit_ci_low`, `benefit_ci_high`) is the same difference signed so that above 0 the first group did",
        "better, the convention of the report (its estimates tables' `benefit` column is this one). Each model",
        "run keeps its rows: select the latest with `run_id = (SELECT run_id FROM model_runs ORDER BY",
        "started_at DESC LIMIT 1)`, as the examples below do.",
        "",
        "## Tables",
        "",
    ]
    for table in PUBLISHED_TABLES:
        out += [f"### `{table}`", "", tables.get(table) or "", "", "| column | type | meaning |", "| --- | --- | --- |"]
        for name, column, data_type, comment in columns:
            if name == table:
                out.append(f"| `{column}` | {data_type} | {(comment or '').replace('|', '/')} |")
        out.append("")
    out += ["## Example queries", "", "Each runs as written from the data home (`data/` by default).", ""]
    for title, sql in EXAMPLES:
        out += [
            f"### {title}",
            "",
            "DuckDB CLI:",
            "",
            "```sql",
            "-- duckdb -readonly warehouse/outcomes.duckdb",
            sql + ";",
            "```",
            "",
            "Python:",
            "",
            "```python",
            python_snippet(sql),
            "```",
            "",
            "R:",
            "",
            "```r",
            r_snippet(sql),
            "```",
            "",
        ]
    return "\n".join(out)


def write_dictionary(warehouse: Path, out: Path) -> Path:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        text = render(con)
    finally:
        con.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
