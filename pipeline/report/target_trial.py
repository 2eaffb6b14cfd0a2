"""The section "Surgery or more injections?" (issue 31): the emulated target trial in one sentence a surgeon can
repeat, with its interval and the yardstick verdict (:func:`pipeline.report.answer.verdict`, the report's one
rule), then the protocol in brief (docs/target_trial.md) and the weight diagnostics per strategy.

Read from the published warehouse: the run's ``ccw`` rows of ``model_estimates`` and, for the register, the
patients behind each count, found by emulating the trial again on the same rows (``sql/models/target_trial_*``)
and checked against the stored estimate. Every count goes through the register and the disclosure audit; the
sentence is written after the audit, from what it left shown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.models.pairs import AT_TROUGH_CONTRAST
from pipeline.models.target_trial import (
    CONTRAST,
    METHOD,
    PRIMARY_OUTCOME,
    Emulation,
    emulate,
    emulation_inputs,
    followed_clones,
    followed_patients,
    patient_keys,
    phase_min_days,
)
from pipeline.report.number_format import signed
from pipeline.report.register import Register
from pipeline.report.suppression import SMALL_CELL, format_count
from pipeline.sql_files import read_sql

if TYPE_CHECKING:
    from pipeline.report.context import ReportParts
    from pipeline.report.reading import WarehouseData
    from pipeline.report.report_figures import Figure, FigureInputs

TABLE = "target_trial"
OUTCOME = PRIMARY_OUTCOME  # the sentence's outcome; the SAQ row is in the estimates' CSV
ARMS = {1: "A: surgery within 90 days", 0: "B: no surgery for 12 months"}
COLUMNS = [
    "strategy",
    "patients entering",
    "patients followed",
    "share of trials censored",
    "largest weight",
    "effective sample size",
    "patients with a truncated weight",
]
PatientKey = tuple[str, str]
PHASE_TABLE = "phase_mix"
PHASES = ("at a trough", "at the peak (14-56 days)", "in between", "before any injection")
PHASE_COLUMNS = ["group", "patients assessed", *(f"patients {p}" for p in PHASES)]


@dataclass
class TargetTrialData:
    row: pd.Series  # the run's ccw row on the Sunnybrook composite
    emulation: Emulation
    phase_min_days: float
    phase_mix: pd.DataFrame  # site_id, patient_id, is_combined, days_since_injection (primary outcome and timepoint)
    at_trough: pd.Series | None = None  # the primary comparison restricted to trough assessments
    threshold: float | None = None  # the design's yardstick of the sentence's outcome (answer.verdict)


def read_target_trial(
    con: duckdb.DuckDBPyConnection,
    claims: pd.DataFrame,
    run: dict[str, object] | None,
    design: AnalysisDesign | None = None,
) -> TargetTrialData | None:
    """The section's data, or None where the run has no target-trial row (no BoNT patients, or an older run)."""
    if claims.empty:
        return None
    rows = claims[(claims["contrast"] == CONTRAST) & (claims["method"] == METHOD) & (claims["outcome"] == OUTCOME)]
    if rows.empty:
        return None
    settings = (run or {}).get("settings", {})
    if isinstance(settings, str):
        settings = json.loads(settings)
    truncation = float(settings.get("weight_truncation", 10.0))  # type: ignore[union-attr]
    phase = phase_min_days(con)
    emulation = emulate(*emulation_inputs(con), OUTCOME, phase, truncation)
    if emulation.clones.empty:
        return None  # nothing to emulate: the row says why
    row = rows.iloc[0]
    if math.isfinite(float(row["estimate"])) and not math.isclose(
        emulation.estimate.estimate, float(row["estimate"]), rel_tol=1e-6, abs_tol=1e-9
    ):
        raise ValueError("target trial: the warehouse's rows no longer give the run's ccw estimate")
    primary = con.execute("SELECT outcome FROM design_outcomes WHERE is_primary").fetchall()[0][0]
    timepoint = con.execute("SELECT design_settings->>'primary_timepoint' FROM build_info").fetchall()[0][0] or "12m"
    mix = con.execute(read_sql("report/phase_mix.sql"), {"outcome": primary, "timepoint": timepoint}).df()
    trough = claims[claims["contrast"] == AT_TROUGH_CONTRAST]
    stick = design.yardsticks.get(OUTCOME) if design is not None else None
    threshold = stick.value if stick is not None else None
    return TargetTrialData(row, emulation, phase, mix, trough.iloc[0] if len(trough) else None, threshold)


def _phase_of(days: pd.Series, phase_min_days: float) -> pd.Series:
    # As floats: a nullable integer column's comparisons are NA where it is, which np.select refuses.
    value = pd.to_numeric(days, errors="coerce").astype(float).to_numpy()
    return pd.Series(
        np.select(
            [np.isnan(value), value >= phase_min_days, (value >= 14) & (value <= 56)],
            [PHASES[3], PHASES[0], PHASES[1]],
            PHASES[2],
        ),
        index=days.index,
    )


def _pairs(frame: pd.DataFrame) -> list[PatientKey]:
    return list(zip(frame["site_id"].astype(str), frame["patient_id"].astype(str), strict=True))


def _phase_members(data: TargetTrialData) -> dict[tuple[str, str], list[PatientKey]]:
    mix = data.phase_mix.assign(phase=_phase_of(data.phase_mix["days_since_injection"], data.phase_min_days))
    members = {}
    for combined, group in ((True, "combined"), (False, "single")):
        part = mix[mix["is_combined"].astype(bool) == combined]
        keys = list(zip(part["site_id"].astype(str), part["patient_id"].astype(str), strict=True))
        members[(group, "assessed")] = keys
        for phase in PHASES:
            chosen = part[part["phase"] == phase]
            members[(group, phase)] = list(
                zip(chosen["site_id"].astype(str), chosen["patient_id"].astype(str), strict=True)
            )
    return members


def phase_mix_table(data: TargetTrialData) -> pd.DataFrame:
    """The phase of the comparisons' primary assessments per group, as counts (before the audit)."""
    members = _phase_members(data)
    rows = []
    for group in ("combined", "single"):
        rows.append(
            [group, format_count(len(members[(group, "assessed")]))]
            + [format_count(len(members[(group, phase)])) for phase in PHASES]
        )
    return pd.DataFrame(rows, columns=PHASE_COLUMNS)


def register_phase_mix(register: Register, table: pd.DataFrame, data: TargetTrialData) -> None:
    """Every count of the phase mix with its patients (the audit sees the differences with the other tables)."""
    members = _phase_members(data)
    for i, group in enumerate(("combined", "single")):
        for column, name in zip(PHASE_COLUMNS[1:], ("assessed", *PHASES), strict=True):
            what = f"{group} patients with the primary assessment {name}"
            text = str(table[column].iloc[i])
            register.printed_count(
                f"{PHASE_TABLE}|{group}|{name}", what, members[(group, name)], text, (PHASE_TABLE, i, column)
            )


def _members(data: TargetTrialData) -> dict[str, list[PatientKey]]:
    clones = data.emulation.clones
    followed = followed_clones(clones)
    members = {"entering": patient_keys(clones["patient_id"])}
    for arm, patients in followed_patients(data.emulation).items():
        members[f"followed|{arm}"] = patients
        members[f"flagged|{arm}"] = patient_keys(
            followed.loc[(followed["arm"] == arm) & followed["flagged"], "patient_id"]
        )
    return members


def target_trial_table(data: TargetTrialData) -> pd.DataFrame:
    """The diagnostics per strategy, as the table's own rule prints them (before the release-wide audit)."""
    members = _members(data)
    overall = data.emulation.by_trial[data.emulation.by_trial["trial"] == "all"].set_index("arm")
    rows = []
    for arm, words in ARMS.items():
        diag = overall.loc["A_surgery_within_90d" if arm == 1 else "B_continue_bont"]
        rows.append(
            [
                words,
                format_count(len(members["entering"])),
                format_count(len(members[f"followed|{arm}"])),
                f"{100 * diag['censored_share']:.0f}%",
                f"{diag['largest_weight']:.1f}",
                f"{diag['effective_sample_size']:.0f}",
                format_count(len(members[f"flagged|{arm}"])),
            ]
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def register_target_trial(register: Register, table: pd.DataFrame, data: TargetTrialData) -> None:
    """Every count of the table with its patients."""
    members = _members(data)
    for i, arm in enumerate(ARMS):
        for column, name, what in (
            ("patients entering", "entering", "patients entering a trial of surgery or more injections"),
            ("patients followed", f"followed|{arm}", f"patients followed under strategy {ARMS[arm]}"),
            ("patients with a truncated weight", f"flagged|{arm}", f"patients truncated under {ARMS[arm]}"),
        ):
            text = str(table[column].iloc[i])
            register.printed_count(f"{TABLE}|{name}", what, members[name], text, (TABLE, i, column))


def target_trial_sentences(data: TargetTrialData, register: Register) -> list[str]:
    """After the audit: the answer in one sentence, then the protocol in brief and the weights in words."""
    # Imported here: answer reads the report's data (reading.py), which reads this section's.
    from pipeline.report.answer import NOT_ESTIMABLE, verdict

    row, threshold = data.row, data.threshold
    both_shown = all(register.shown(f"{TABLE}|followed|{arm}") for arm in ARMS)
    estimate, low, high = float(row["estimate"]), float(row["ci_low"]), float(row["ci_high"])
    words = verdict(estimate, low, high, threshold) if both_shown and bool(row["diagnostics_ok"]) else NOT_ESTIMABLE
    if words == NOT_ESTIMABLE:
        answer = (
            "Surgery or more injections: not estimable here (fewer than "
            f"{SMALL_CELL} patients followed a strategy, or the fit failed)."
        )
    else:
        yardstick = f" against a yardstick of {threshold:g} points" if threshold else ""
        answer = (
            "For a patient who has had botulinum toxin at least twice, having a selective neurectomy or myectomy "
            f"within 90 days rather than going on with injections changes the Sunnybrook composite a year later by "
            f"{signed(estimate)} points (95% CI {signed(low)} to {signed(high)}): {words}{yardstick}."
        )
    flagged = sum(len(m) for k, m in _members(data).items() if k.startswith("flagged"))
    weights = (
        "No patient's weight was truncated."
        if flagged == 0
        else "Some patients' weights were above the truncation and were truncated, not dropped (the table)."
    )
    sentences = [answer]
    trough = data.at_trough
    if trough is not None and math.isfinite(float(trough["estimate"])):
        sentences.append(
            "Sensitivity of the comparisons to the toxin cycle: restricted to primary assessments at a trough, "
            f"combined minus single modality is {signed(float(trough['estimate']))} points "
            f"(95% CI {signed(float(trough['ci_low']))} to {signed(float(trough['ci_high']))}; the phase mix is below)."
        )
    return [
        *sentences,
        "The trial it emulates: every BoNT session from a patient's second, before any surgery, is a time zero; "
        "each patient-trial is cloned into both strategies and censored when it deviates; the censoring is "
        "weighted by the latest scores, their fall, sessions and units so far, time since onset, age and sex; "
        f"the outcome is the assessment nearest 12 months after time zero taken at least {data.phase_min_days:g} "
        "days after an injection (a trough), compared with a variance clustered by patient (docs/target_trial.md).",
        weights,
    ]


# The section, as the report's list (pipeline/report/sections.py) takes it.
class TargetTrialSection:
    """Surgery or more injections? The emulated target trial (issue 31); not shown where the run has no ccw row."""

    name = "target_trial"
    slot = "after_trajectories"
    partial = "target_trial.html.j2"
    anchor = "target-trial"
    title = "Surgery or more injections?"
    tables = (TABLE, PHASE_TABLE)

    def read(self, con: duckdb.DuckDBPyConnection, data: WarehouseData) -> object:
        return read_target_trial(con, data.claims, data.run, data.design)

    def printed(self, found: object) -> dict[str, pd.DataFrame]:
        if found is None:
            return {}
        return {TABLE: target_trial_table(found), PHASE_TABLE: phase_mix_table(found)}  # type: ignore[arg-type]

    def register(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> None:
        if found is not None:
            register_target_trial(register, tables[TABLE], found)  # type: ignore[arg-type]
            register_phase_mix(register, tables[PHASE_TABLE], found)  # type: ignore[arg-type]

    def finish(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> object:
        return target_trial_sentences(found, register) if found is not None else []  # type: ignore[arg-type]

    def figures(self, inputs: FigureInputs, found: object) -> list[Figure]:
        return []

    def context(self, parts: ReportParts, found: object, words: object) -> dict[str, object]:
        if found is None:
            return {self.name: None}
        return {self.name: {"sentences": words, "phase_min_days": f"{found.phase_min_days:g}"}}  # type: ignore[attr-defined]
