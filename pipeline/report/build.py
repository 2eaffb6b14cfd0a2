"""Write the quarterly report from the published warehouse.

``write_report(warehouse, quarter, out_root)`` opens the warehouse read-only, reads what the report
needs, closes it, and writes ``out_root/<YYYY>-Q<n>/``: ``report.html`` (self-contained: inline CSS,
figures as data URIs), each figure as PNG and each table as CSV. Every published number goes
through the small-cell rule of :mod:`pipeline.report.tables`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import jinja2
import pandas as pd
from scipy import stats

from pipeline.contract import MODALITY_CODES, OUTCOMES
from pipeline.models.fit import ESTIMATE_COLUMNS
from pipeline.report import figures
from pipeline.report.tables import (
    FOLLOWUP_TIMEPOINTS,
    METHOD_LABELS,
    SMALL_CELL,
    counts_table,
    estimates_table,
    flow_table,
    format_count,
    ledger_table,
    outcome_label,
    shown_estimate,
    too_small,
    trajectory_table,
)

QUARTER_PATTERN = re.compile(r"^(\d{4})Q([1-4])$")
COVARIATE_WORDS = {
    "age_at_onset": "age at onset",
    "sex": "sex",
    "etiology": "cause of the palsy",
    "onset_to_index_days": "time from onset to the index visit",
    "prior_treatment": "earlier treatment",
    "site_id": "site",
    "side": "affected side",
    "index_year": "year of the index visit",
}
DEFAULT_COVARIATES = ("age_at_onset", "sex", "etiology", "onset_to_index_days", "prior_treatment", "site_id")
TRAJECTORY_OUTCOMES = ("sunnybrook_composite", "saq")
KEY_OUTCOMES = ("sunnybrook_composite", "saq")
PRIMARY_TIMEPOINT = "12m"
PRIMARY_CONTRAST = "combined_vs_single"
METHOD_ORDER = tuple(METHOD_LABELS)
TEMPLATES = Path(__file__).resolve().parent / "templates"


def parse_quarter(quarter: str) -> tuple[int, int]:
    match = QUARTER_PATTERN.match(str(quarter).strip())
    if not match:
        raise ValueError(f"Quarter {quarter!r} is not of the form YYYYQn, e.g. 2026Q4 (a year, 'Q', then 1 to 4).")
    return int(match.group(1)), int(match.group(2))


# --- reading the warehouse -------------------------------------------------------------------------------


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


@dataclass
class WarehouseData:
    build: dict[str, object] = field(default_factory=dict)
    flow: list[tuple[str, int]] = field(default_factory=list)
    exclusions: pd.DataFrame = field(default_factory=pd.DataFrame)
    combinations: pd.DataFrame = field(default_factory=pd.DataFrame)
    trajectories: pd.DataFrame = field(default_factory=pd.DataFrame)
    run: dict[str, object] = field(default_factory=dict)
    estimates: pd.DataFrame = field(default_factory=pd.DataFrame)
    ledger: pd.DataFrame = field(default_factory=pd.DataFrame)
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)


def _combination_key(combination: str) -> tuple[int, ...]:
    order = {code: rank for rank, code in enumerate(MODALITY_CODES.values())}
    return tuple(order.get(code, len(order)) for code in str(combination).split("+"))


def _trajectories(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    placeholders = ", ".join("?" for _ in TRAJECTORY_OUTCOMES)
    frame = con.execute(
        "SELECT f.outcome, CASE WHEN m.is_combined THEN 'combined' ELSE 'single modality' END AS \"group\", "
        'f.timepoint, count(*) AS n, avg(f."value") AS mean, stddev_samp(f."value") AS sd '
        "FROM followup_scores AS f INNER JOIN modality_combinations AS m USING (site_id, patient_id) "
        f'WHERE m.classifiable AND f."value" IS NOT NULL AND f.outcome IN ({placeholders}) '
        "GROUP BY ALL ORDER BY ALL",
        list(TRAJECTORY_OUTCOMES),
    ).df()
    half = [
        stats.t.ppf(0.975, n - 1) * sd / n**0.5 if n > 1 and pd.notna(sd) else float("nan")
        for n, sd in zip(frame["n"], frame["sd"], strict=True)
    ]
    frame["ci_low"] = frame["mean"] - half
    frame["ci_high"] = frame["mean"] + half
    order = {"baseline": 0, **{t: i + 1 for i, t in enumerate(FOLLOWUP_TIMEPOINTS)}}
    keys = [
        (TRAJECTORY_OUTCOMES.index(o), g, order.get(t, 9))
        for o, g, t in zip(frame["outcome"], frame["group"], frame["timepoint"], strict=True)
    ]
    return frame.iloc[sorted(range(len(frame)), key=keys.__getitem__)].reset_index(drop=True)


def _estimates(con: duckdb.DuckDBPyConnection, tables: set[str]) -> tuple[dict[str, object], pd.DataFrame]:
    if not {"model_runs", "model_estimates"} <= tables:
        return {}, pd.DataFrame()
    runs = con.execute(
        "SELECT run_id, started_at, settings FROM model_runs ORDER BY started_at DESC, run_id LIMIT 1"
    ).fetchall()
    if not runs:
        return {}, pd.DataFrame()
    run_id, started_at, settings = runs[0]
    estimates = con.execute("SELECT * FROM model_estimates WHERE run_id = ?", [run_id]).df()
    contrasts = sorted(set(estimates["contrast"]), key=lambda c: (c != PRIMARY_CONTRAST, c))
    outcomes = list(OUTCOMES)
    keys = [
        (
            contrasts.index(c),
            outcomes.index(o) if o in outcomes else 99,
            FOLLOWUP_TIMEPOINTS.index(t) if t in FOLLOWUP_TIMEPOINTS else 9,
            METHOD_ORDER.index(m) if m in METHOD_ORDER else 99,
        )
        for c, o, t, m in zip(
            estimates["contrast"], estimates["outcome"], estimates["timepoint"], estimates["method"], strict=True
        )
    ]
    estimates = estimates.iloc[sorted(range(len(estimates)), key=keys.__getitem__)].reset_index(drop=True)
    settings_dict = json.loads(settings) if isinstance(settings, str) and settings else {}
    return {"run_id": run_id, "started_at": started_at, "settings": settings_dict}, estimates


def read_warehouse(con: duckdb.DuckDBPyConnection) -> WarehouseData:
    tables = _tables(con)
    data = WarehouseData()
    if "build_info" in tables:
        info = con.execute("SELECT * FROM build_info").df()
        if len(info):
            data.build = info.iloc[0].to_dict()
    received, treated, classifiable = con.execute(
        "SELECT (SELECT count(*) FROM patients), "
        "count(*) FILTER (WHERE t0_day IS NOT NULL), count(*) FILTER (WHERE classifiable) "
        "FROM modality_combinations"
    ).fetchone()
    with_12m = con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT f.site_id, f.patient_id FROM followup_scores AS f "
        "INNER JOIN modality_combinations AS m USING (site_id, patient_id) "
        'WHERE m.classifiable AND f.timepoint = ? AND f."value" IS NOT NULL AND f.baseline_value IS NOT NULL)',
        [PRIMARY_TIMEPOINT],
    ).fetchone()[0]
    data.flow = [
        ("Patients received (current records)", received),
        ("with an index treatment on or after the index visit", treated),
        ("classifiable: followed up to the end of the exposure window", classifiable),
        ("with a 12-month score and a baseline score (any outcome)", with_12m),
    ]
    data.exclusions = con.execute(
        "SELECT coalesce(exclusion_reason, 'not classifiable') AS reason, count(*) AS patients "
        "FROM modality_combinations WHERE NOT coalesce(classifiable, false) GROUP BY ALL ORDER BY reason"
    ).df()
    combinations = con.execute(
        "SELECT CASE WHEN is_combined THEN 'combined' ELSE 'single modality' END AS \"group\", combination, "
        "count(*) AS patients FROM modality_combinations WHERE classifiable GROUP BY ALL"
    ).df()
    keys = [
        (g != "single modality", -n, _combination_key(c))
        for g, c, n in zip(combinations["group"], combinations["combination"], combinations["patients"], strict=True)
    ]
    data.combinations = combinations.iloc[sorted(range(len(keys)), key=keys.__getitem__)].reset_index(drop=True)
    data.trajectories = _trajectories(con)
    data.run, data.estimates = _estimates(con, tables)
    if "load_ledger" in tables:
        data.ledger = con.execute(
            "SELECT drop_id, file, status, received_at, rows_loaded, rows_quarantined "
            "FROM load_ledger ORDER BY received_at, drop_id, file"
        ).df()
    if "quarantine" in tables:
        data.quarantine = con.execute(
            'SELECT trim(r) AS rule, count(*) AS "rows" FROM '
            "(SELECT unnest(string_split(rule, '; ')) AS r FROM quarantine) GROUP BY ALL ORDER BY rule"
        ).df()
    return data


# --- words ---------------------------------------------------------------------------------------------


def _pick(
    estimates: pd.DataFrame,
    method: str,
    outcome: str,
    timepoint: str = PRIMARY_TIMEPOINT,
    contrast: str = PRIMARY_CONTRAST,
) -> pd.Series | None:
    if estimates.empty:
        return None
    match = estimates[
        (estimates["method"] == method)
        & (estimates["outcome"] == outcome)
        & (estimates["timepoint"] == timepoint)
        & (estimates["contrast"] == contrast)
    ]
    return None if match.empty else match.iloc[0]


def _improvement(row: pd.Series) -> tuple[float, float, float]:
    """The difference in improvement (first minus second group) and its CI, whatever the direction."""
    sign = 1.0 if bool(row["higher_is_better"]) else -1.0
    low, high = sorted((sign * float(row["ci_low"]), sign * float(row["ci_high"])))
    return sign * float(row["estimate"]), low, high


def finding_sentence(row: pd.Series | None, outcome: str, timepoint_words: str = "12 months") -> str:
    name = outcome_label(outcome)
    if row is None:
        return f"No comparison on the {name} at {timepoint_words} yet: no patient has that score with a baseline."
    if too_small(row):
        return (
            f"Too few patients to compare treatments on the {name} at {timepoint_words} "
            f"(each group needs at least {SMALL_CELL})."
        )
    if not shown_estimate(row):
        return (
            f"The adjusted comparison on the {name} at {timepoint_words} is not shown: the model did not fit "
            "or its diagnostics did not pass (see the estimates table)."
        )
    better, low, high = _improvement(row)
    direction = "more" if better >= 0 else "less"
    if better < 0:
        low, high = -high, -low
    scale = "" if bool(row["higher_is_better"]) else " (on which a lower score is better)"
    sentence = (
        f"At {timepoint_words}, patients on combined treatment improved {abs(better):.1f} points {direction} "
        f"on the {name}{scale} than those on a single modality (95% CI {low:.1f} to {high:.1f}), "
        "after adjustment for baseline severity and patient characteristics."
    )
    if low < 0 < high:
        sentence += " The interval includes zero: the data are compatible with no difference."
    return sentence


def summary_sentences(data: WarehouseData, flow_shown: list[str]) -> list[str]:
    sentences = [
        f"The warehouse holds {flow_shown[0]} patients; {flow_shown[2]} could be classified by the "
        f"treatments they started in the exposure window, and {flow_shown[3]} of these have a 12-month "
        "score with a baseline."
    ]
    if data.estimates.empty:
        sentences.append("No comparative model has been run on this warehouse yet.")
        return sentences
    for outcome in KEY_OUTCOMES:
        sentences.append(finding_sentence(_pick(data.estimates, "ancova", outcome), outcome))
    adjusted = _pick(data.estimates, "ancova", KEY_OUTCOMES[0])
    crude = _pick(data.estimates, "unadjusted", KEY_OUTCOMES[0])
    if adjusted is not None and crude is not None and shown_estimate(adjusted) and shown_estimate(crude):
        sentences.append(
            f"Before adjustment the {outcome_label(KEY_OUTCOMES[0])} difference was "
            f"{crude['estimate']:.1f} points (95% CI {crude['ci_low']:.1f} to {crude['ci_high']:.1f}); "
            "the adjusted figure is the one to use, because patients are not given combined "
            "treatment at random: those with worse scores at baseline more often are."
        )
    return sentences


# --- output ----------------------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _table_payload(frame: pd.DataFrame) -> dict[str, object]:
    return {"columns": list(frame.columns), "rows": frame.astype(str).values.tolist()}


def _build(data: WarehouseData, quarter: str) -> tuple[dict[str, pd.DataFrame], list[Figure], dict[str, object]]:
    flow = flow_table(data.flow)
    tables = {
        "patient_flow": flow,
        "exclusions": counts_table(data.exclusions, "patients")
        if len(data.exclusions)
        else pd.DataFrame(columns=["reason", "patients"]),
        "combinations": counts_table(data.combinations, "patients")
        if len(data.combinations)
        else pd.DataFrame(columns=["group", "combination", "patients"]),
        "trajectories": trajectory_table(data.trajectories),
        "estimates": estimates_table(data.estimates)
        if len(data.estimates)
        else estimates_table(pd.DataFrame(columns=list(ESTIMATE_COLUMNS))),
        "load_ledger": ledger_table(data.ledger)
        if len(data.ledger)
        else pd.DataFrame(columns=["drop", "file", "status", "received", "rows loaded", "rows quarantined"]),
        "quarantine_by_rule": counts_table(data.quarantine, "rows")
        if len(data.quarantine)
        else pd.DataFrame(columns=["rule", "rows"]),
    }
    primary = pd.DataFrame()
    if len(data.estimates):
        mask = [shown_estimate(r) for r in data.estimates.itertuples(index=False)]
        primary = data.estimates[
            pd.Series(mask, index=data.estimates.index) & (data.estimates["timepoint"] == PRIMARY_TIMEPOINT)
        ]
    figs = [
        Figure(
            "trajectories",
            "Score trajectories by treatment group",
            "Mean score with its 95% confidence interval at baseline and at 3, 6 and 12 months, among classifiable "
            "patients with a score at that time (not always the same patients at each time). Points based on "
            f"fewer than {SMALL_CELL} patients are not shown.",
            figures.trajectory_figure(data.trajectories, TRAJECTORY_OUTCOMES),
        ),
        Figure(
            "forest_12m",
            "Estimated treatment differences at 12 months",
            "Each line is one estimate with its 95% confidence interval: the difference in change from "
            "baseline between the first and the second group of the comparison. Where a lower score is better "
            "(SAQ, Sunnybrook resting and synkinesis, House-Brackmann) the sign is reversed, so right of zero "
            "always means the first group (combined treatment) improved more. A line crossing zero is compatible "
            "with no difference.",
            figures.forest_figure(primary, "12 months"),
        ),
    ]
    settings = data.run.get("settings", {}) if data.run else {}
    design = data.build.get("design_settings") if data.build else None
    design_dict = json.loads(design) if isinstance(design, str) else (design or {})
    quality = {
        # Files and drops are listed one by one in the ledger table: their numbers are not small cells.
        "files": len(data.ledger),
        "drops": data.ledger["drop_id"].nunique() if len(data.ledger) else 0,
        "rows_loaded": format_count(int(data.ledger["rows_loaded"].sum())) if len(data.ledger) else "0",
        "rows_quarantined": format_count(int(data.ledger["rows_quarantined"].sum())) if len(data.ledger) else "0",
    }
    context = {
        "quarter": quarter,
        "year_quarter": f"{quarter[:4]} Q{quarter[-1]}",
        "generated": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "built_at": f"{data.build['built_at']:%Y-%m-%d %H:%M} UTC" if data.build.get("built_at") else "",
        "data_snapshot": str(data.build.get("data_snapshot", ""))[:12],
        "run_id": data.run.get("run_id", "") if data.run else "",
        "summary": summary_sentences(data, flow["patients"].tolist()),
        "tables": {name: _table_payload(frame) for name, frame in tables.items()},
        "quality": quality,
        "small_cell": SMALL_CELL,
        "min_group_size": settings.get("min_group_size", SMALL_CELL),
        "covariates": ", ".join(COVARIATE_WORDS.get(c, c) for c in settings.get("covariates", DEFAULT_COVARIATES)),
        "min_sites_for_cluster": settings.get("min_sites_for_cluster", 10),
        "exposure_window_days": design_dict.get("exposure_window_days", 180),
        "baseline_lookback_days": design_dict.get("baseline_lookback_days", 90),
        "has_estimates": bool(len(data.estimates)),
        "csv_files": [f"{name}.csv" for name in tables],
    }
    return tables, figs, context


def render(context: dict[str, object], figs: list[Figure]) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("report.html.j2").render(figures={f.name: f for f in figs}, **context)


def write_report(warehouse: Path, quarter: str, out_root: Path) -> Path:
    """Write ``out_root/<YYYY>-Q<n>/report.html`` with its PNG figures and CSV tables; return the html path."""
    year, number = parse_quarter(quarter)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        data = read_warehouse(con)
    finally:
        con.close()
    tables, figs, context = _build(data, f"{year}Q{number}")
    folder = Path(out_root) / f"{year}-Q{number}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    for fig in figs:
        (folder / f"{fig.name}.png").write_bytes(fig.png)
    html = folder / "report.html"
    html.write_text(render(context, figs), encoding="utf-8")
    return html
