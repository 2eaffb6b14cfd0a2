"""What the report reads from an as-of warehouse, raw (suppression and the register come later): the design,
the patient flow, scores and trajectories, the latest model run's estimates and diagnostics, and the quarter's
data quality."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.report import queries
from pipeline.report.claims import split_claims
from pipeline.report.flow import FlowStep, flow_steps, step_patients
from pipeline.report.published_counts import (
    Members,
    estimate_members,
    read_patients,
)
from pipeline.report.sections import SECTIONS
from pipeline.report.tables import (
    METHOD_LABELS,
)
from pipeline.vocabulary import PRIMARY_CONTRAST

MAIN_OUTCOMES = ("sunnybrook_composite", "eface_total", "saq", "face_total")
TRAJECTORY_OUTCOMES = (
    *MAIN_OUTCOMES,
    "sunnybrook_synkinesis",
    "eface_synkinesis",
    "sunnybrook_resting",
    "eface_static",
)
ALL_TRAJECTORIES = (*TRAJECTORY_OUTCOMES, *queries.SMILE_ITEMS)
METHOD_ORDER = tuple(METHOD_LABELS)


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
    preference: pd.DataFrame = field(default_factory=pd.DataFrame)  # the primary contrast's preference scores
    primary_changes: pd.DataFrame = field(default_factory=pd.DataFrame)  # change at the primary timepoint
    refused: pd.DataFrame = field(default_factory=pd.DataFrame)
    flow_reasons: list[str] = field(default_factory=list)
    flow_steps: list[FlowStep] = field(default_factory=list)
    # Patient-level rows behind the counts (the register's populations).
    members: Members = field(default_factory=Members)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    dose_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    # What surgeons claim (issue 19): their model_estimates rows and the patients behind their counts.
    claims: pd.DataFrame = field(default_factory=pd.DataFrame)
    # What each self-contained section read (pipeline/report/sections.py), by its name.
    sections: dict[str, object] = field(default_factory=dict)


def _score_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per classifiable patient, outcome (and smile item) and timepoint with a score."""
    scores = queries.outcome_score_rows(con, TRAJECTORY_OUTCOMES)
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
    names = (
        "model_runs",
        "model_estimates",
        "covariate_balance",
        "propensity_diagnostics",
        "preference_scores",
        "estimate_patients",
    )
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
    patients = read_patients(con, design.primary_timepoint, design.primary_outcome)
    data.flow_steps = flow_steps(design)
    data.flow = [
        (step.label, len(chosen))
        for step, chosen in zip(data.flow_steps, step_patients(patients, data.flow_steps), strict=True)
    ]
    excluded = patients[patients["in_combinations"] & ~patients["classifiable"]]
    data.exclusions = excluded.groupby("reason", sort=True).size().reset_index(name="patients")
    data.flow_reasons = [step.reason for step in data.flow_steps]
    data.scores = _score_rows(con)
    data.primary_changes = queries.report_query(con, "primary_changes", {"timepoint": design.primary_timepoint})
    data.trajectories = _trajectories(data.scores, design)
    data.table_one = queries.table_one_patients(con, MAIN_OUTCOMES)
    data.orders = queries.treatment_orders(con)
    data.by_year = queries.groups_by_year(con)
    data.dose_rows = queries.bont_dose_rows(con)
    data.doses = queries.summarise(data.dose_rows, ["session"], "units")
    models = _model_frames(con, tables)
    data.run = _run_info(models["model_runs"])
    data.estimates, data.claims = split_claims(_sort_estimates(models["model_estimates"], design))
    for section in SECTIONS:
        data.sections[section.name] = section.read(con, data)
    data.members = Members(patients, estimate_members(data.estimates, models["estimate_patients"]))
    data.balance = models["covariate_balance"]
    data.diagnostics = models["propensity_diagnostics"]
    preference = models["preference_scores"]
    data.preference = (
        preference[preference["contrast"] == PRIMARY_CONTRAST].reset_index(drop=True) if len(preference) else preference
    )
    start, end = window or (datetime(1900, 1, 1), datetime(9999, 1, 1))
    data.ledger, data.quarantine, data.refused = queries.quarter_quality(con, start, end)
    return data
