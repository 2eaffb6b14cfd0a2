"""Write the quarterly report from the published warehouse.

``write_report(warehouse, quarter, out_root)`` opens the warehouse read-only, reads what the report
needs, closes it, and writes ``out_root/<YYYY>-Q<n>/``: ``report.html`` (self-contained: inline CSS,
figures as data URIs), each figure as PNG and each table as CSV. Every published number goes
through the small-cell rule of :mod:`pipeline.report.tables`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import jinja2
import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.csv_safety import write_csv
from pipeline.quarters import parse_quarter, quarter_bounds, release_name
from pipeline.report import figures, queries
from pipeline.report.answer import VERDICT_RULES, AnswerRow, answer_rows, caught_up_sentence, lead_sentences
from pipeline.report.disclosure import protect
from pipeline.report.published_counts import (
    Members,
    apply_register,
    estimate_members,
    fill_register,
    read_patients,
    without_hidden_spread,
    year_cells_shown,
)
from pipeline.report.register import Register
from pipeline.report.suppression import (
    SMALL_CELL,
    audit_table,
    format_count,
    mark_shown,
    safe_summary,
    shown_estimate,
    too_small,
)
from pipeline.report.tables import (
    GROUPS,
    METHOD_LABELS,
    OUTCOME_LABELS,
    SEX_WORDS,
    by_year_table,
    contrast_label,
    counts_table,
    dose_table,
    estimates_table,
    flow_table,
    footnoted,
    grouped_counts,
    ledger_table,
    outcome_label,
    quarter_refusals_table,
    rows_loaded_total,
    table_one,
    trajectory_table,
)

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
MAIN_OUTCOMES = ("sunnybrook_composite", "eface_total", "saq", "face_total")
# Forest plot families: (key, title, which outcomes), over the warehouse's outcomes.
FOREST_FAMILIES = (
    ("sunnybrook", "Sunnybrook", ("sunnybrook",)),
    ("eface_hb", "eFACE and House-Brackmann", ("eface", "house_brackmann")),
    ("patient", "patient-reported (SAQ, FaCE, FDI)", ("saq", "face_total", "fdi")),
)


def family_outcomes(design: AnalysisDesign, prefixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(o for o in design.outcomes if o.startswith(prefixes))


HALLMARKS = (
    (
        "hallmark_synkinesis",
        "Involuntary movement with voluntary movement: the synkinesis scores",
        ("sunnybrook_synkinesis", "eface_synkinesis"),
    ),
    (
        "hallmark_rest",
        "Tightness at rest: Sunnybrook resting asymmetry and eFACE static",
        ("sunnybrook_resting", "eface_static"),
    ),
    (
        "hallmark_smile",
        "Opposing muscles firing together in a smile: the eFACE smile and commissure items",
        tuple(queries.SMILE_ITEMS),
    ),
)
TRAJECTORY_OUTCOMES = (
    *MAIN_OUTCOMES,
    "sunnybrook_synkinesis",
    "eface_synkinesis",
    "sunnybrook_resting",
    "eface_static",
)
ALL_TRAJECTORIES = (*TRAJECTORY_OUTCOMES, *queries.SMILE_ITEMS)
# The report's answer: the design's primary outcome, then the patient-reported SAQ (or, where the
# SAQ is primary, the Sunnybrook composite).
SECOND_KEY_OUTCOMES = ("saq", "sunnybrook_composite")
PRIMARY_CONTRAST = "combined_vs_single"
METHOD_ORDER = tuple(METHOD_LABELS)
PAGE_SIZES = ("Letter", "A4")  # the printed report's paper: Letter by default, A4 where departments use it
TEMPLATES = Path(__file__).resolve().parent / "templates"


# --- reading the warehouse -------------------------------------------------------------------------------


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


@dataclass
class WarehouseData:
    design: AnalysisDesign | None = None  # the warehouse's own design: timepoints, outcomes, primary ones
    build: dict[str, object] = field(default_factory=dict)
    flow: list[tuple[str, int]] = field(default_factory=list)
    exclusions: pd.DataFrame = field(default_factory=pd.DataFrame)
    trajectories: pd.DataFrame = field(default_factory=pd.DataFrame)
    run: dict[str, object] = field(default_factory=dict)
    estimates: pd.DataFrame = field(default_factory=pd.DataFrame)
    ledger: pd.DataFrame = field(default_factory=pd.DataFrame)
    quarantine: pd.DataFrame = field(default_factory=pd.DataFrame)
    table_one: pd.DataFrame = field(default_factory=pd.DataFrame)
    orders: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_year: pd.DataFrame = field(default_factory=pd.DataFrame)
    doses: pd.DataFrame = field(default_factory=pd.DataFrame)
    balance: pd.DataFrame = field(default_factory=pd.DataFrame)
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    refused: pd.DataFrame = field(default_factory=pd.DataFrame)
    flow_reasons: list[str] = field(default_factory=list)
    # Patient-level rows behind the counts (the register's populations).
    members: Members = field(default_factory=Members)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    dose_rows: pd.DataFrame = field(default_factory=pd.DataFrame)


def _score_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per classifiable patient, outcome (and smile item) and timepoint with a score."""
    placeholders = ", ".join("?" for _ in TRAJECTORY_OUTCOMES)
    scores = con.execute(
        "SELECT f.site_id, f.patient_id, f.outcome, "
        "CASE WHEN m.is_combined THEN 'combined' ELSE 'single modality' END AS \"group\", f.timepoint, f.\"value\" "
        "FROM followup_scores AS f INNER JOIN modality_combinations AS m USING (site_id, patient_id) "
        f'WHERE m.classifiable AND f."value" IS NOT NULL AND f.outcome IN ({placeholders}) '
        'ORDER BY f.outcome, "group", f.timepoint, f.site_id, f.patient_id',
        list(TRAJECTORY_OUTCOMES),
    ).df()
    items = queries.item_score_rows(con, queries.SMILE_ITEMS)
    return pd.concat([scores, items[scores.columns]], ignore_index=True) if len(items) else scores


def _trajectories(scores: pd.DataFrame, design: AnalysisDesign) -> pd.DataFrame:
    frame = queries.summarise(scores, ["outcome", "group", "timepoint"], "value").drop(columns="median")
    order = {"baseline": 0, **{t: i + 1 for i, t in enumerate(design.timepoints)}}
    keys = [
        (ALL_TRAJECTORIES.index(o), g, order.get(t, 9))
        for o, g, t in zip(frame["outcome"], frame["group"], frame["timepoint"], strict=True)
    ]
    return frame.iloc[sorted(range(len(frame)), key=keys.__getitem__)].reset_index(drop=True)


def _sort_estimates(estimates: pd.DataFrame, design: AnalysisDesign) -> pd.DataFrame:
    if estimates.empty:
        return estimates
    contrasts = sorted(set(estimates["contrast"]), key=lambda c: (c != PRIMARY_CONTRAST, c))
    outcomes, timepoints = list(design.outcomes), list(design.timepoints)
    keys = [
        (
            contrasts.index(c),
            outcomes.index(o) if o in outcomes else 99,
            timepoints.index(t) if t in timepoints else 9,
            METHOD_ORDER.index(m) if m in METHOD_ORDER else 99,
        )
        for c, o, t, m in zip(
            estimates["contrast"], estimates["outcome"], estimates["timepoint"], estimates["method"], strict=True
        )
    ]
    return estimates.iloc[sorted(range(len(estimates)), key=keys.__getitem__)].reset_index(drop=True)


def _run_info(runs: pd.DataFrame) -> dict[str, object]:
    if runs.empty:
        return {}
    run = runs.sort_values(["started_at", "run_id"], ascending=[False, True]).iloc[0]
    settings, packages = run["settings"], run.get("packages")
    return {
        "run_id": str(run["run_id"]),
        "settings": json.loads(settings) if isinstance(settings, str) and settings else {},
        "packages": json.loads(packages) if isinstance(packages, str) and packages else {},
        "data_snapshot": str(run.get("data_snapshot") or ""),
        "code_version": str(run.get("code_version") or ""),
    }


def _model_frames(con: duckdb.DuckDBPyConnection, tables: set[str]) -> dict[str, pd.DataFrame]:
    """The warehouse's latest model run (an as-of warehouse holds one, pipeline/as_of.py). Tables read
    empty keep their columns."""
    names = ("model_runs", "model_estimates", "covariate_balance", "propensity_diagnostics")
    frames = {n: con.execute(f"SELECT * FROM {n} LIMIT 0").df() if n in tables else pd.DataFrame() for n in names}
    if "model_runs" not in tables:
        return frames
    frames["model_runs"] = con.execute("SELECT * FROM model_runs ORDER BY started_at DESC, run_id LIMIT 1").df()
    if frames["model_runs"].empty:
        return frames
    run_id = str(frames["model_runs"]["run_id"].iloc[0])
    for name in names[1:]:
        if name in tables:
            frames[name] = con.execute(f"SELECT * FROM {name} WHERE run_id = ?", [run_id]).df()
    return frames


def read_warehouse(con: duckdb.DuckDBPyConnection, window: tuple[datetime, datetime] | None = None) -> WarehouseData:
    """Everything the report needs, raw (suppression comes later). ``window``: the quarter's
    [start, end) for its data-quality section."""
    tables = _tables(con)
    design = AnalysisDesign.read(con)
    data = WarehouseData(design=design)
    if "build_info" in tables:
        info = con.execute("SELECT * FROM build_info").df()
        if len(info):
            data.build = info.iloc[0].to_dict()
    # The flow and the exclusions are counted from the patients the register names (one read, one truth).
    patients = read_patients(con, design.primary_timepoint)
    month = f"{design.months[design.primary_timepoint]}-month"
    data.flow = [
        ("Patients received (current records)", len(patients)),
        ("with an index treatment on or after the index visit", int(patients["treated"].sum())),
        ("classifiable: followed up to the end of the exposure window", int(patients["classifiable"].sum())),
        (f"with a {month} score and a baseline score (any outcome)", int(patients["with_primary"].sum())),
    ]
    excluded = patients[patients["in_combinations"] & ~patients["classifiable"]]
    data.exclusions = excluded.groupby("reason", sort=True).size().reset_index(name="patients")
    data.flow_reasons = [
        "",
        "no treatment on or after the index visit",
        "followed up for less than the exposure window",
        f"no {month} score with a baseline",
    ]
    data.scores = _score_rows(con)
    data.trajectories = _trajectories(data.scores, design)
    data.table_one = queries.table_one_patients(con, MAIN_OUTCOMES)
    data.orders = queries.treatment_orders(con)
    data.by_year = queries.groups_by_year(con)
    data.dose_rows = queries.bont_dose_rows(con)
    data.doses = queries.summarise(data.dose_rows, ["session"], "units")
    models = _model_frames(con, tables)
    data.run = _run_info(models["model_runs"])
    data.estimates = _sort_estimates(models["model_estimates"], design)
    minimum = int(data.run.get("settings", {}).get("min_group_size", SMALL_CELL)) if data.run else SMALL_CELL
    data.members = Members(patients, estimate_members(con, data.estimates, minimum))
    data.balance = models["covariate_balance"]
    data.diagnostics = models["propensity_diagnostics"]
    start, end = window or (datetime(1900, 1, 1), datetime(9999, 1, 1))
    data.ledger, data.quarantine, data.refused = queries.quarter_quality(con, start, end)
    return data


# --- words ---------------------------------------------------------------------------------------------


def _pick(
    estimates: pd.DataFrame,
    method: str,
    outcome: str,
    timepoint: str,
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


def finding_sentence(row: pd.Series | None, outcome: str, timepoint_words: str) -> str:
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


def key_outcomes(design: AnalysisDesign) -> tuple[str, str]:
    """The report's answer: the design's primary outcome first."""
    second = next(o for o in SECOND_KEY_OUTCOMES if o != design.primary_outcome)
    return design.primary_outcome, second


def summary_sentences(data: WarehouseData, flow_shown: list[str], answer: list[AnswerRow] | None = None) -> list[str]:
    design = data.design
    assert design is not None
    answer = answer or []
    at = design.primary_timepoint
    sentences = [
        f"The data hold {flow_shown[0]} patients; {flow_shown[2]} could be classified by the "
        f"treatments they started in the exposure window, and {flow_shown[3]} of these have a "
        f"{design.months[at]}-month score with a baseline."
    ]
    if data.estimates.empty:
        sentences.append("No comparative model has been run on this warehouse yet.")
        return sentences
    keys = key_outcomes(design)
    for outcome in keys:
        sentence = finding_sentence(_pick(data.estimates, "ancova", outcome, at), outcome, design.label(at))
        row = next((r for r in answer if r.contrast == PRIMARY_CONTRAST and r.outcome == outcome), None)
        if row is not None and row.better is not None:
            sentence += " " + caught_up_sentence(row, design.higher_is_better.get(outcome, True))
        sentences.append(sentence.strip())
    adjusted = _pick(data.estimates, "ancova", keys[0], at)
    crude = _pick(data.estimates, "unadjusted", keys[0], at)
    if adjusted is not None and crude is not None and shown_estimate(adjusted) and shown_estimate(crude):
        sentences.append(
            f"Before adjustment the {outcome_label(keys[0])} difference was "
            f"{crude['estimate']:.1f} points (95% CI {crude['ci_low']:.1f} to {crude['ci_high']:.1f}); "
            "the adjusted figure is the one to use, because patients are not given combined "
            "treatment at random: those with worse scores at baseline more often are."
        )
    if adjusted is not None and shown_estimate(adjusted) and pd.notna(adjusted.get("e_value", float("nan"))):
        limit = adjusted.get("e_value_ci", float("nan"))
        sentences.append(
            f"Unmeasured confounding: to explain away the {outcome_label(keys[0])} difference, a factor not "
            f"in the data would have to raise both the chance of combined treatment and of a better outcome by a "
            f"risk ratio of {adjusted['e_value']:.1f} each (E-value"
            + (f"; {limit:.1f} to move the confidence interval to include no difference)." if pd.notna(limit) else ").")
        )
    sentences += weighted_sentences(data.estimates, data.diagnostics, keys, at)
    return sentences


def weighted_sentences(
    estimates: pd.DataFrame, diagnostics: pd.DataFrame, outcomes: tuple[str, ...], at: str
) -> list[str]:
    """Whether the weighted (IPTW) check passed, said per outcome: passing on one outcome says nothing of
    another (each has its own patients, so its own balance)."""
    passed, failed = [], []
    for outcome in outcomes:
        weighted = _pick(estimates, "iptw", outcome, at)
        if weighted is None or too_small(weighted):
            continue
        if shown_estimate(weighted):
            passed.append(
                f"the {outcome_label(outcome)} ({weighted['estimate']:.1f} points, 95% CI "
                f"{weighted['ci_low']:.1f} to {weighted['ci_high']:.1f})"
            )
        else:
            worst = ""
            if diagnostics is not None and len(diagnostics):
                match = diagnostics[
                    (diagnostics["contrast"] == PRIMARY_CONTRAST)
                    & (diagnostics["outcome"] == outcome)
                    & (diagnostics["timepoint"] == at)
                ]
                if len(match) and pd.notna(match["max_abs_smd_weighted"].iloc[0]):
                    worst = f", max |SMD| {float(match['max_abs_smd_weighted'].iloc[0]):.2f}"
            failed.append(f"the {outcome_label(outcome)}{worst}")
    sentences = []
    if passed:
        sentences.append(
            "The weighted (IPTW) comparison passed its balance and overlap checks for " + " and ".join(passed) + "."
        )
    if failed:
        sentences.append(
            "It did not pass them for "
            + " and ".join(failed)
            + ": that weighted estimate is not shown; read the adjusted result there with that in mind."
            if passed
            else "The weighted (IPTW) comparison did not pass its balance or overlap checks for "
            + " and ".join(failed)
            + ", so it is not shown; read the adjusted results with that in mind."
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


def _forest_row(row: AnswerRow) -> dict[str, object]:
    return {
        "label": outcome_label(row.outcome),
        "n": f"{row.n_first} vs {row.n_second}" if row.n_first and row.n_second else "not shown",
        "better": row.better,
        "low": row.low,
        "high": row.high,
        "threshold": row.yardstick.value,
        "verdict": row.verdict,
    }


def _answer_groups(rows: list[AnswerRow]) -> list[dict[str, object]]:
    """The answer rows by outcome, in the order made (primary outcome first)."""
    groups: dict[str, dict[str, object]] = {}
    for row in rows:
        group = groups.setdefault(
            row.outcome, {"outcome": outcome_label(row.outcome), "yardstick": row.yardstick.words, "rows": []}
        )
        group["rows"].append(_answer_payload(row))  # type: ignore[attr-defined]
    return list(groups.values())


def _answer_payload(row: AnswerRow) -> dict[str, str]:
    return {
        "outcome": outcome_label(row.outcome),
        "comparison": row.comparison,
        "n": f"{row.n_first} vs {row.n_second}" if row.n_first and row.n_second else "",
        "journey": row.journey_words,
        "estimate": row.estimate_words,
        "yardstick": row.yardstick.words,
        "verdict": row.verdict,
        "verdict_class": row.verdict.split(",")[0].split(";")[0].replace(" ", "-"),
    }


def _table_payload(frame: pd.DataFrame) -> dict[str, object]:
    return {"columns": list(frame.columns), "rows": frame.astype(str).values.tolist()}


def _figure_labels(outcomes: tuple[str, ...], design: AnalysisDesign) -> dict[str, tuple[str, str, bool]]:
    """Name, scale and direction; the eFACE smile items, not outcomes of the design, are higher-is-better."""
    return {o: (*OUTCOME_LABELS.get(o, (o, "")), design.higher_is_better.get(o, True)) for o in outcomes}


def _balance_for_plot(data: WarehouseData, design: AnalysisDesign) -> tuple[pd.DataFrame, str]:
    """The primary comparison's balance (primary timepoint, first outcome with rows), as a Love plot draws it."""
    balance = data.balance
    if balance is None or balance.empty:
        return pd.DataFrame(), ""
    at = design.primary_timepoint
    rows = balance[balance["contrast"] == PRIMARY_CONTRAST] if "contrast" in balance else balance
    if "timepoint" in rows and (rows["timepoint"] == at).any():
        rows = rows[rows["timepoint"] == at]
    if rows.empty:
        return pd.DataFrame(), ""
    outcome = next((o for o in design.outcomes if o in set(rows["outcome"])), str(rows["outcome"].iloc[0]))
    rows = rows[rows["outcome"] == outcome].drop_duplicates("covariate")
    return rows, f"Balance, combined vs single, {outcome_label(outcome)} at {design.label(at)} (IPTW)"


def _ess_share(ess: object, n: object) -> str:
    """An effective sample size as a share of its group: an ESS is not a count (docs/disclosure.md)."""
    if pd.isna(ess) or pd.isna(n) or int(n) < SMALL_CELL:  # type: ignore[arg-type,call-overload]
        return ""
    return f"{100 * float(ess) / int(n):.0f}%"  # type: ignore[arg-type,call-overload]


def _diagnostics_table(diagnostics: pd.DataFrame, estimates: pd.DataFrame, design: AnalysisDesign) -> pd.DataFrame:
    columns = [
        "contrast",
        "outcome",
        "timepoint",
        "AUC",
        "equipoise",
        "ESS, % of first group",
        "ESS, % of second group",
        "max |SMD| weighted",
        "passed",
        "note",
    ]
    if diagnostics is None or diagnostics.empty:
        return pd.DataFrame(columns=columns)
    keys = ["contrast", "outcome", "timepoint"]
    sizes = (
        estimates.loc[estimates["method"] == "iptw", [*keys, "n_treated", "n_control"]]
        if len(estimates)
        else pd.DataFrame(columns=[*keys, "n_treated", "n_control"])
    )
    diagnostics = diagnostics.merge(sizes, on=keys, how="left")
    rows = []
    for r in diagnostics.itertuples(index=False):
        rows.append(
            [
                contrast_label(str(r.contrast)),
                outcome_label(str(r.outcome)),
                design.label(str(r.timepoint)),
                "" if pd.isna(r.auc) else f"{r.auc:.2f}",
                "" if pd.isna(r.equipoise_share) else f"{100 * r.equipoise_share:.0f}%",
                _ess_share(r.ess_treated, r.n_treated),
                _ess_share(r.ess_control, r.n_control),
                "" if pd.isna(r.max_abs_smd_weighted) else f"{r.max_abs_smd_weighted:.3f}",
                "yes" if bool(r.diagnostics_ok) else "no",
                "" if pd.isna(r.note) else str(r.note),
            ]
        )
    return pd.DataFrame(rows, columns=columns)


def _flow_steps(data: WarehouseData, table: pd.DataFrame) -> list[dict[str, str]]:
    shown, excluded = table["patients"].tolist(), table["excluded at this step"].tolist()
    return [
        {"label": label, "patients": shown[i], "excluded": excluded[i], "reason": data.flow_reasons[i]}
        for i, (label, _) in enumerate(data.flow)
    ]


# When the audit must hide or coarsen a count, the first of these tables that can lose one does: the
# detail tables before the ones a reader starts from (flow, Table 1, combinations).
GIVE_UP_FIRST = (
    "estimates",
    "trajectories",
    "bont_dose_by_session",
    "treatment_order",
    "groups_by_year",
    "exclusions",
    "table1",
    "combinations",
    "patient_flow",
)
OTHER_ORDERS = f"other orders (each fewer than {SMALL_CELL} patients)"
TABLE1_CATEGORICAL = {
    "Sex": ("sex", SEX_WORDS),
    "Cause of the palsy": ("etiology", {}),
    "Treated before the index visit": ("prior", {}),
}


def published_register(
    data: WarehouseData, tables: dict[str, pd.DataFrame], release: str, primary: pd.DataFrame
) -> Register:
    """Every patient count of the tables, with its patients, as the tables print it."""
    design = data.design
    assert design is not None
    register = Register(release)
    fill_register(
        register,
        tables,
        data.members,
        {
            "orders": data.orders,
            "table_one": data.table_one,
            "years": data.by_year,
            "doses": data.dose_rows,
            "scores": data.scores,
            "estimates": data.estimates,
        },
        {
            "other_orders": OTHER_ORDERS,
            "table1_categorical": TABLE1_CATEGORICAL,
            "outcome_of": {outcome_label(o): o for o in ALL_TRAJECTORIES}
            | {outcome_label(o): o for o in design.outcomes},
            "timepoint_of": {label: t for t, label in design.labels.items()},
            "primary_rows": primary,
        },
    )
    return register


def printed_tables(data: WarehouseData) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Every table as its own rule prints it (before the release-wide audit), and the primary estimates."""
    design = data.design
    assert design is not None
    labels = design.labels
    by_year_counts = data.by_year.groupby(["year", "group"]).size().reset_index(name="patients")
    orders = data.orders.rename(columns={"order": "order received"})
    classifiable = data.members.patients[data.members.patients["classifiable"]]
    primary = (
        data.estimates[
            (data.estimates["contrast"] == PRIMARY_CONTRAST) & (data.estimates["timepoint"] == design.primary_timepoint)
        ]
        if len(data.estimates)
        else data.estimates
    )
    tables = {
        "patient_flow": flow_table(data.flow),
        "exclusions": counts_table(data.exclusions, "patients")
        if len(data.exclusions)
        else pd.DataFrame(columns=["reason", "patients"]),
        "table1": table_one(data.table_one, MAIN_OUTCOMES, design.higher_is_better),
        "combinations": grouped_counts(classifiable, "combination")
        if len(classifiable)
        else pd.DataFrame(columns=["group", "combination", "patients"]),
        "treatment_order": grouped_counts(orders, "order received", SMALL_CELL, OTHER_ORDERS),
        "groups_by_year": by_year_table(by_year_counts)[0],
        "bont_dose_by_session": dose_table(data.doses, queries.MAX_SESSION),
        "trajectories": trajectory_table(data.trajectories, labels),
        "estimates": estimates_table(data.estimates, labels),
        "estimates_primary": estimates_table(primary, labels).drop(columns=["contrast", "timepoint"]),
        "propensity_diagnostics": _diagnostics_table(data.diagnostics, data.estimates, design),
        "quarter_load_ledger": ledger_table(data.ledger)
        if len(data.ledger)
        else pd.DataFrame(columns=["drop", "file", "status", "received", "rows loaded", "rows quarantined"]),
        "quarter_quarantine_by_rule": counts_table(data.quarantine, "rows")
        if len(data.quarantine)
        else pd.DataFrame(columns=["rule", "rows"]),
        "quarter_refused_drops": quarter_refusals_table(data.refused),
    }
    return tables, primary


def _build(
    data: WarehouseData,
    quarter: str,
    as_of_words: str = "",
    provisional: bool = False,
    release: str = "",
    earlier: list[Register] | None = None,
    page_size: str = "Letter",
) -> tuple[dict[str, pd.DataFrame], list[Figure], dict[str, object], Register]:
    design = data.design
    assert design is not None
    at, at_words = design.primary_timepoint, design.primary_label
    when = _timepoint_words(design)
    tables, primary = printed_tables(data)
    _, years, shares = by_year_table(data.by_year.groupby(["year", "group"]).size().reset_index(name="patients"))
    # Every patient count goes through the register; the audit reads it with the earlier releases' and
    # may hide more before anything is written.
    register = published_register(data, tables, release or quarter, primary)
    disclosure = protect(register, earlier, GIVE_UP_FIRST)
    apply_register(register, tables)
    # The answer prints the estimates' own register cells, so after the audit has had its say.
    answer = answer_rows(data.estimates, data.scores, data.members, register, design, MAIN_OUTCOMES)
    # Figures draw only what the tables print: no interval where the audit hid the count it rests on.
    trajectories = without_hidden_spread(
        safe_summary(data.trajectories),
        [
            f"trajectories|{o}|{g}|{t}"
            for o, g, t in zip(
                data.trajectories["outcome"], data.trajectories["group"], data.trajectories["timepoint"], strict=True
            )
        ],
        register,
    )
    doses = without_hidden_spread(
        safe_summary(data.doses), [f"bont_dose|{int(s)}" for s in data.doses["session"]], register
    )
    doses["label"] = [f"{s}+" if s >= queries.MAX_SESSION else str(s) for s in doses["session"]]
    flow = tables["patient_flow"]
    drawn = [(y, s) for y, s in zip(years, shares, strict=True) if year_cells_shown(register, y, [*GROUPS, "all"])]
    years, shares = [y for y, _ in drawn], [s for _, s in drawn]
    for name, frame in tables.items():
        audit_table(name, frame)
    marked = mark_shown(data.estimates) if len(data.estimates) else data.estimates
    primary_rows = marked[marked["contrast"] == PRIMARY_CONTRAST] if len(marked) else marked
    other_rows = marked[marked["contrast"] != PRIMARY_CONTRAST] if len(marked) else marked
    balance, balance_title = _balance_for_plot(data, design)
    hallmark_figs = [
        Figure(
            key,
            title,
            f"Mean and 95% confidence interval by treatment group at baseline and at {when}, among classifiable "
            f"patients with that score at that time. Points based on fewer than {SMALL_CELL} patients are not shown.",
            figures.trajectory_figure(trajectories, outcomes, _figure_labels(outcomes, design), design.months),
        )
        for key, title, outcomes in HALLMARKS
    ]
    # The primary forest plot: every outcome at the primary timepoint, the adjusted comparison, each outcome
    # on its own axis with its yardstick.
    forest_rows = answer_rows(data.estimates, data.scores, data.members, register, design, design.outcomes)
    primary_forest = figures.primary_forest(
        [_forest_row(r) for r in forest_rows if r.contrast == PRIMARY_CONTRAST],
        f"Combined vs single modality at {at_words}, adjusted (ANCOVA), with 95% CI",
    )
    forest_figs = [
        Figure(
            "forest_primary",
            f"Combined vs single modality at {at_words}: every outcome",
            "Each row is one outcome on its own axis: the adjusted difference in improvement from baseline "
            "(combined minus single modality) with its 95% confidence interval; right of zero, combined treatment "
            "improved more, also where a lower score is better. The dashed line is the outcome's important-change "
            "yardstick (minimal important change, or smallest detectable change where none is published); no line: "
            "none is published. At the left the number of patients in each group; at the right the estimate, its "
            "interval and the verdict.",
            figures.png_bytes(primary_forest),
        )
    ]
    # Appendix: the other timepoints, every method, by family of outcomes; then each combination that was
    # run (one with no estimate shown at all is not drawn).
    forest_figs += [
        Figure(
            f"forest_{timepoint}_{family}",
            f"Combined vs single modality at {design.label(timepoint)}: {family_title}",
            "Each line is one estimate with its 95% confidence interval: the difference in change from "
            "baseline between the first and the second group of the comparison. Where a lower score is better "
            "the sign is reversed, so right of zero always means the first group (combined treatment) improved "
            "more. At the right: the E-value of an adjusted estimate, or why an estimate is not drawn.",
            figures.forest_figure(
                primary_rows[
                    (primary_rows["timepoint"] == timepoint)
                    & primary_rows["outcome"].isin(family_outcomes(design, prefixes))
                ]
                if len(primary_rows)
                else primary_rows,
                f"{design.label(timepoint)}: {family_title}",
            ),
        )
        for timepoint in design.timepoints
        if timepoint != at
        for family, family_title, prefixes in FOREST_FAMILIES
    ]
    combination_rows = (
        other_rows[(other_rows["timepoint"] == at) & other_rows["outcome"].isin(MAIN_OUTCOMES)]
        if len(other_rows)
        else other_rows
    )
    combination_contrasts = [
        c
        for c in dict.fromkeys(combination_rows["contrast"] if len(combination_rows) else [])
        if combination_rows.loc[combination_rows["contrast"] == c, "shown"].astype(bool).any()
    ]
    forest_figs += [
        Figure(
            f"forest_combinations_{at}_{index + 1}",
            f"{contrast_label(contrast)} at {at_words}",
            "As above, for a combination against its single-modality reference, on the main outcomes, every method.",
            figures.forest_figure(combination_rows[combination_rows["contrast"] == contrast], at_words),
        )
        for index, contrast in enumerate(combination_contrasts)
    ]
    figs = [
        Figure(
            "groups_by_year",
            "Combined treatment over time",
            "Share of classifiable patients on combined treatment by the year of their index visit; years with a "
            f"cell of fewer than {SMALL_CELL} patients are left out.",
            figures.share_figure(years, shares, "% of patients on combined treatment", "Too few patients per year."),
        ),
        Figure(
            "bont_dose",
            "BoNT dose by session number",
            "Mean botulinum toxin units per session, with 95% confidence interval, by session number from the index "
            f"treatment ({queries.MAX_SESSION}+: that session or later, averaged per patient). Sessions with fewer "
            f"than {SMALL_CELL} patients are not shown.",
            figures.series_figure(
                doses,
                "session",
                "Session number",
                "Units per session",
                "BoNT units by session",
                "Too few patients to show.",
            ),
        ),
        Figure(
            "trajectories",
            "Main outcomes by treatment group",
            f"Mean score with its 95% confidence interval at baseline and at {when}, among classifiable "
            "patients with a score at that time (not always the same patients at each time). Points based on "
            f"fewer than {SMALL_CELL} patients are not shown.",
            figures.trajectory_figure(
                trajectories, MAIN_OUTCOMES, _figure_labels(MAIN_OUTCOMES, design), design.months
            ),
        ),
        *hallmark_figs,
        *forest_figs,
        Figure(
            "balance",
            "Covariate balance",
            "Absolute standardized mean difference of each covariate between the groups, before (open circles) "
            "and after (diamonds) inverse-probability weighting; below 0.1 after weighting is the pass mark.",
            figures.balance_figure(balance, balance_title),
        ),
    ]
    settings = data.run.get("settings", {}) if data.run else {}
    recorded = data.build.get("design_settings") if data.build else None
    design_dict = json.loads(recorded) if isinstance(recorded, str) else (recorded or {})
    quality = {
        "files": len(data.ledger),
        "drops": data.ledger["drop_id"].nunique() if len(data.ledger) else 0,
        "rows_loaded": format_count(rows_loaded_total(data.ledger)) if len(data.ledger) else "0",
        "rows_quarantined": format_count(int(data.ledger["rows_quarantined"].sum())) if len(data.ledger) else "0",
        "refused": len(data.refused),
    }
    # In print, a note in full on every row made these tables pages long: numbered notes under each.
    primary_footnoted, primary_notes = footnoted(tables["estimates_primary"])
    diagnostics = tables["propensity_diagnostics"]
    diagnostics_footnoted, diagnostics_notes = footnoted(
        diagnostics[diagnostics["contrast"] == contrast_label(PRIMARY_CONTRAST)]
    )
    year, number = quarter[:4], quarter[-1]
    context = {
        "estimate_notes": primary_notes,
        "diagnostics_notes": diagnostics_notes,
        "quarter": quarter,
        "page_size": page_size,
        "year_quarter": f"{year} Q{number}",
        "provisional": provisional,
        "as_of": as_of_words,
        "data_snapshot": str(data.build.get("data_snapshot", ""))[:12],
        "run_id": data.run.get("run_id", "") if data.run else "",
        "summary": summary_sentences(data, flow["patients"].tolist(), answer),
        "answer": _answer_groups(answer),
        "answer_lead": lead_sentences(answer, design),
        "verdict_rules": VERDICT_RULES,
        "flow_steps": _flow_steps(data, flow),
        "tables": {
            **{name: _table_payload(frame) for name, frame in tables.items()},
            "estimates_primary": _table_payload(primary_footnoted),
            "propensity_diagnostics_primary": _table_payload(diagnostics_footnoted),
        },
        "quality": quality,
        "small_cell": SMALL_CELL,
        "min_group_size": settings.get("min_group_size", SMALL_CELL),
        "covariates": ", ".join(COVARIATE_WORDS.get(c, c) for c in settings.get("covariates", DEFAULT_COVARIATES)),
        "min_sites_for_cluster": settings.get("min_sites_for_cluster", 10),
        "weight_truncation": settings.get("weight_truncation", 10),
        "max_smd": settings.get("max_smd", 0.1),
        "equipoise_bounds": settings.get("equipoise_bounds", (0.3, 0.7)),
        "min_equipoise_share": settings.get("min_equipoise_share", 0.2),
        "mice_imputations": settings.get("mice_imputations", 20),
        "exposure_window_days": design_dict.get("exposure_window_days", 180),
        "baseline_lookback_days": design_dict.get("baseline_lookback_days", 90),
        "timepoints": design_dict.get("timepoints", []),
        "primary_timepoint_words": at_words,
        "primary_outcome": outcome_label(design.primary_outcome),
        "timepoint_words": when,
        "has_estimates": bool(len(data.estimates)),
        "hallmarks": [(key, title) for key, title, _ in HALLMARKS],
        "forest_names": [f.name for f in forest_figs[1:]],
        "csv_files": [f"{name}.csv" for name in tables],
    }
    context["disclosure"] = disclosure
    return tables, figs, context, register


def _timepoint_words(design: AnalysisDesign, leave_out: str = "") -> str:
    """The follow-up timepoints in words, e.g. '3, 6 and 12 months'."""
    months = [str(design.months[t]) for t in design.timepoints if t != leave_out]
    listed = ", ".join(months[:-1]) + " and " + months[-1] if len(months) > 1 else "".join(months)
    return f"{listed} months"


def render(context: dict[str, object], figs: list[Figure]) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("report.html.j2").render(figures={f.name: f for f in figs}, **context)


def write_report(
    warehouse: Path,
    quarter: str,
    out_root: Path,
    *,
    folder: Path | None = None,
    as_of: datetime | None = None,
    provisional: bool = False,
    earlier: list[Register] | None = None,
    register_out: Path | None = None,
    page_size: str = "Letter",
) -> Path:
    """Write ``out_root/<YYYY>-Q<n>/report.html`` (or into ``folder``) with its PNG figures and CSV tables;
    return the html path. The model run reported is the warehouse's latest. ``as_of``: the data's cut-off, for
    the data-quality window and the header."""
    year, number = parse_quarter(quarter)
    start, end = quarter_bounds(quarter)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        data = read_warehouse(con, window=(start, min(end, as_of) if as_of else end))
    finally:
        con.close()
    as_of_words = f"{as_of:%Y-%m-%d %H:%M} UTC" if as_of else ""
    release = release_name(quarter, provisional)
    if page_size not in PAGE_SIZES:
        raise ValueError(f"page size {page_size!r}: use one of {', '.join(PAGE_SIZES)}")
    tables, figs, context, register = _build(
        data, f"{year}Q{number}", as_of_words, provisional, release, earlier, page_size
    )
    if register_out is not None:  # kept in the data home for the next release's audit, never published
        register.save(register_out / "register.json.gz")
        (register_out / "disclosure.json").write_text(json.dumps(context["disclosure"], indent=2), encoding="utf-8")
    folder = Path(folder) if folder else Path(out_root) / f"{year}-Q{number}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        write_csv(frame, folder / f"{name}.csv")  # no cell read as a formula
    for fig in figs:
        (folder / f"{fig.name}.png").write_bytes(fig.png)
    html = folder / "report.html"
    html.write_text(render(context, figs), encoding="utf-8")
    return html
