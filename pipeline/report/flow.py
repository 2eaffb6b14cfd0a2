"""The patient flow, from every patient received down to the patients the primary analysis used (the design's
primary outcome at its primary timepoint: the adjusted comparison's n), with the drop-out of each treatment group
from the step where patients have one (classifiable) on. Every count goes through the register."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.report.published_counts import PATIENT, keys
from pipeline.report.register import Register
from pipeline.report.suppression import (
    COMPLEMENTARY,
    SUPPRESSED,
    flow_counts,
    flow_excluded,
    format_count,
    is_small,
)
from pipeline.report.tables import flow_table
from pipeline.vocabulary import outcome_label

FLOW_GROUPS = ("single modality", "combined")
GROUPED_FROM = 2  # the classifiable step: groups are fixed there
TABLE = "patient_flow"


@dataclass(frozen=True)
class FlowStep:
    label: str
    column: str  # the patients' boolean column that says who remains ("" for every patient received)
    reason: str  # why the step excluded patients


def flow_steps(design: AnalysisDesign) -> list[FlowStep]:
    month = f"{design.months[design.primary_timepoint]}-month"
    primary = outcome_label(design.primary_outcome)
    return [
        FlowStep("Patients received (current records)", "", ""),
        FlowStep(
            "with an index treatment on or after the index visit", "treated", "no treatment on or after the index visit"
        ),
        FlowStep(
            "classifiable: followed up to the end of the exposure window",
            "classifiable",
            "followed up for less than the exposure window",
        ),
        FlowStep(f"with a baseline {primary} score", "with_baseline", f"no {primary} score at baseline"),
        FlowStep(
            f"with a {month} {primary} score: the primary analysis",
            "in_primary",
            f"no {primary} score in the {month} window",
        ),
    ]


def step_patients(patients: pd.DataFrame, steps: list[FlowStep]) -> list[pd.DataFrame]:
    return [patients if not s.column else patients[patients[s.column]] for s in steps]


def _group_cells(counts: dict[str, list[int]]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Each group's remaining and excluded patients per step, as the flow prints the totals (ranges where a group
    lost 1 to 10); where one group's count at a step is small the other's is hidden too (they add up to the
    step's total)."""
    remaining = {g: flow_counts(c, 0) for g, c in counts.items()}
    excluded = {g: flow_excluded(c, 0) for g, c in counts.items()}
    lost = {g: [0, *(a - b for a, b in itertools.pairwise(c))] for g, c in counts.items()}
    for shown, values in ((remaining, counts), (excluded, lost)):
        for i in range(len(next(iter(counts.values())))):
            if any(is_small(values[g][i]) for g in counts):
                for g in counts:
                    if not is_small(values[g][i]) and shown[g][i] not in ("", SUPPRESSED):
                        shown[g][i] = COMPLEMENTARY
    return remaining, excluded


def grouped_flow_table(patients: pd.DataFrame, steps: list[FlowStep]) -> pd.DataFrame:
    """The flow as printed before the audit: every step's patients and exclusions, and by group from the
    classifiable step on."""
    chosen = step_patients(patients, steps)
    table = flow_table([(s.label, len(p)) for s, p in zip(steps, chosen, strict=True)])
    counts = {g: [int((p["group"] == g).sum()) for p in chosen[GROUPED_FROM:]] for g in FLOW_GROUPS}
    remaining, _ = _group_cells(counts)
    blank = [""] * GROUPED_FROM
    # By group only where a reader needs it: where the groups are fixed and the analysis they end in (whose
    # counts are the answer's n). Every step between, and the groups' exclusions, would be more overlapping counts
    # for the audit to give up, the headline among them (docs/disclosure.md, the publication plan).
    last = len(steps) - 1 - GROUPED_FROM
    for g in FLOW_GROUPS:
        table[g] = blank + [text if i in (0, last) else "" for i, text in enumerate(remaining[g])]
        # The analysis' groups as the answer prints them (the same patients): exactly, the audit deciding, so
        # that the flow never prints a range where the answer prints the number.
        table.loc[len(steps) - 1, g] = format_count(counts[g][last])
    table.loc[len(steps) - 1, "patients"] = format_count(len(chosen[-1]))
    for g in FLOW_GROUPS:
        table[f"{g} excluded"] = [""] * len(steps)
    return table


def register_flow_groups(
    register: Register, table: pd.DataFrame, patients: pd.DataFrame, steps: list[FlowStep]
) -> None:
    """The groups' counts of the flow (its totals are registered with the other tables)."""
    chosen = step_patients(patients, steps)
    for i in range(GROUPED_FROM, len(steps)):
        for g in FLOW_GROUPS:
            here = chosen[i][chosen[i]["group"] == g]
            register.printed_count(
                f"flow|{i}|{g}", f"{g} patients at flow step {i + 1}", keys(here), table[g].iloc[i], (TABLE, i, g)
            )
            if i == GROUPED_FROM:
                continue
            before = chosen[i - 1][chosen[i - 1]["group"] == g]
            lost = before.merge(here[PATIENT], on=PATIENT, how="left", indicator=True)
            lost = lost[lost["_merge"] == "left_only"]
            register.printed_count(
                f"flow_excluded|{i}|{g}",
                f"{g} patients excluded at flow step {i + 1}",
                keys(lost),
                table[f"{g} excluded"].iloc[i],
                (TABLE, i, f"{g} excluded"),
            )


def flow_boxes(table: pd.DataFrame, steps: list[FlowStep]) -> list[dict[str, str]]:
    """The flow diagram's boxes, from the table as printed (after the audit)."""
    out = []
    for i, step in enumerate(steps):
        row = table.iloc[i]
        by_group = " · ".join(f"{g} {row[g]}" for g in FLOW_GROUPS if row[g] != "")
        lost = " · ".join(f"{g} {row[f'{g} excluded']}" for g in FLOW_GROUPS if row[f"{g} excluded"] != "")
        out.append(
            {
                "label": step.label,
                "patients": str(row["patients"]),
                "excluded": str(row["excluded at this step"]),
                "reason": step.reason,
                "groups": by_group,
                "groups_excluded": lost,
            }
        )
    return out
