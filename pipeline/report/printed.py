"""The printed tables and their register: every table as its own small-cell rule prints it, every patient count
registered with its patients, then the release-wide disclosure audit (with the earlier releases' registers) and
what it hid written back into the tables. Nothing here draws or words anything."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.report import queries
from pipeline.report.answer import ANSWER_TABLE, register_answer_n
from pipeline.report.answer import METHOD as ANSWER_METHOD
from pipeline.report.balance import primary_balance, with_smd
from pipeline.report.disclosure import protect
from pipeline.report.flow import grouped_flow_table, register_flow_groups, step_patients
from pipeline.report.funnel import funnel_table, register_sites, site_rows
from pipeline.report.overlap import overlap_table, register_overlap
from pipeline.report.published_counts import apply_register, fill_register
from pipeline.report.reading import ALL_TRAJECTORIES, MAIN_OUTCOMES, WarehouseData
from pipeline.report.register import Register
from pipeline.report.responder_shares import finish as finish_responders
from pipeline.report.responder_shares import register_responders, responder_groups, responder_table
from pipeline.report.sections import SECTIONS
from pipeline.report.suppression import SMALL_CELL, audit_table
from pipeline.report.tables import (
    SEX_WORDS,
    by_year_table,
    counts_table,
    dose_table,
    estimates_table,
    grouped_counts,
    ledger_table,
    quarter_refusals_table,
    table_one,
    trajectory_table,
)
from pipeline.vocabulary import PRIMARY_CONTRAST, contrast_label, outcome_label


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


# When the audit must hide or coarsen a count, the first of these tables that can lose one does: the
# detail tables before the ones a reader starts from (flow, Table 1, combinations).
GIVE_UP_FIRST = (
    "site_funnel",
    "preference_overlap",
    "responder_shares",
    "safety",
    "target_trial",
    "phase_mix",
    "claims",
    "estimates",
    "trajectories",
    "bont_dose_by_session",
    "treatment_order",
    "groups_by_year",
    "exclusions",
    "table1",
    "combinations",
    "patient_flow",
    ANSWER_TABLE,  # the answer's group sizes, last: the headline
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
    tables[ANSWER_TABLE] = register_answer_n(register, data.estimates, data.members, design, MAIN_OUTCOMES)
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
            "flow_members": step_patients(data.members.patients, data.flow_steps),
        },
    )
    register_flow_groups(register, tables["patient_flow"], data.members.patients, data.flow_steps)
    register_overlap(register, tables["preference_overlap"], overlap_scores(data))
    register_responders(register, tables["responder_shares"], responder_groups_of(data), design.primary_timepoint)
    register_sites(register, tables["site_funnel"], funnel_rows(data))
    return register


def overlap_scores(data: WarehouseData) -> pd.DataFrame:
    """The preference scores of the primary analysis' patients: their groups' sizes are the estimate's n, already
    printed, so the overlap adds no new total beside them (the overlap model's own population, a few patients
    more, would)."""
    scores, patients = data.preference, data.members.patients
    if scores.empty or patients.empty:
        return scores
    chosen = patients.loc[patients["in_primary"], ["site_id", "patient_id"]].astype(str)
    return scores.merge(chosen, on=["site_id", "patient_id"], how="inner")


def funnel_rows(data: WarehouseData) -> pd.DataFrame:
    design = data.design
    assert design is not None
    outcome = design.primary_outcome
    return site_rows(data.primary_changes, outcome, design.higher_is_better.get(outcome, True))


def responder_groups_of(data: WarehouseData) -> list[dict[str, object]]:
    design = data.design
    assert design is not None
    return responder_groups(
        data.estimates,
        data.primary_changes,
        data.members.estimates,
        design.primary_timepoint,
        MAIN_OUTCOMES,
        design.higher_is_better,
    )


# Methods fitted on patients of their own (every timepoint; every patient with a baseline): their n is not
# printed. Each is a count a little larger than the analysis' n beside it, so a small difference for the audit
# to give up, and the reader needs the analysis' n only (the warehouse keeps theirs).
OWN_POPULATION_METHODS = ("mixed", "mice")


def own_population_n(table: pd.DataFrame, estimates: pd.DataFrame) -> pd.DataFrame:
    """The estimates table with the n blank on the rows of methods fitted on patients of their own: each
    comparison's n is printed once per outcome and timepoint, on the rows of the methods that share it."""
    if table.empty:
        return table
    own = estimates["method"].isin(OWN_POPULATION_METHODS).to_numpy()
    table.loc[own, ["n first group", "n second group"]] = ""
    return table


def printed_tables(data: WarehouseData) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Every table as its own rule prints it (before the release-wide audit), and the primary estimates."""
    design = data.design
    assert design is not None
    labels = design.labels
    by_year_counts = data.by_year.groupby(["year", "group"]).size().reset_index(name="patients")
    orders = data.orders.rename(columns={"order": "order received"})
    classifiable = data.members.patients[data.members.patients["classifiable"]]
    balance = primary_balance(data.balance, design)
    primary = (
        data.estimates[
            (data.estimates["contrast"] == PRIMARY_CONTRAST) & (data.estimates["timepoint"] == design.primary_timepoint)
        ]
        if len(data.estimates)
        else data.estimates
    )
    tables = {
        "patient_flow": grouped_flow_table(data.members.patients, data.flow_steps),
        "exclusions": counts_table(data.exclusions, "patients")
        if len(data.exclusions)
        else pd.DataFrame(columns=["reason", "patients"]),
        "table1": with_smd(table_one(data.table_one, MAIN_OUTCOMES, design.higher_is_better), *balance, MAIN_OUTCOMES),
        "combinations": grouped_counts(classifiable, "combination")
        if len(classifiable)
        else pd.DataFrame(columns=["group", "combination", "patients"]),
        "treatment_order": grouped_counts(orders, "order received", SMALL_CELL, OTHER_ORDERS),
        "groups_by_year": by_year_table(by_year_counts)[0],
        "bont_dose_by_session": dose_table(data.doses, queries.MAX_SESSION),
        "trajectories": trajectory_table(data.trajectories, labels),
        "estimates": own_population_n(estimates_table(data.estimates, labels), data.estimates),
        "estimates_primary": own_population_n(estimates_table(primary, labels), primary).drop(
            columns=["contrast", "timepoint"]
        ),
        "propensity_diagnostics": _diagnostics_table(data.diagnostics, data.estimates, design),
        "preference_overlap": overlap_table(overlap_scores(data)),
        "responder_shares": responder_table(responder_groups_of(data)),
        "site_funnel": funnel_table(funnel_rows(data)),
        "quarter_load_ledger": ledger_table(data.ledger)
        if len(data.ledger)
        else pd.DataFrame(columns=["drop", "file", "status", "received", "rows loaded", "rows quarantined"]),
        "quarter_quarantine_by_rule": counts_table(data.quarantine, "rows")
        if len(data.quarantine)
        else pd.DataFrame(columns=["rule", "rows"]),
        "quarter_refused_drops": quarter_refusals_table(data.refused),
    }
    return tables, primary


def headline_keys(design: AnalysisDesign, tables: dict[str, pd.DataFrame]) -> list[str]:
    """The primary comparison's group sizes on the primary outcome (printed in the answer, its forest plot and
    the key findings) and their total, the flow's last step: the last counts the audit gives up."""
    at, outcome = design.primary_timepoint, design.primary_outcome
    groups = [f"estimates|{PRIMARY_CONTRAST}|{outcome}|{at}|{ANSWER_METHOD}|{side}" for side in (0, 1)]
    return [*groups, f"flow|{len(tables['patient_flow']) - 1}"]


@dataclass
class Audited:
    """The tables as the release prints them, after the audit; the register and the audit's record."""

    tables: dict[str, pd.DataFrame]
    primary: pd.DataFrame  # the primary comparison's estimates (rows of data.estimates)
    register: Register
    disclosure: dict[str, object]
    words: dict[str, object] = field(default_factory=dict)  # each section's, after the audit (sections.py)


def give_up_order() -> tuple[str, ...]:
    """The audit's order: a section's table not placed in GIVE_UP_FIRST is a detail, given up first."""
    extra = [t for s in SECTIONS for t in s.tables if t not in GIVE_UP_FIRST]
    return (*extra, *GIVE_UP_FIRST)


def release_register(data: WarehouseData, release: str) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, Register]:
    """Every table as printed before the audit, and the register of every count they publish: the report's own
    tables, then each section's (the report and bench/disclosure.py both start here)."""
    tables, primary = printed_tables(data)
    for section in SECTIONS:
        tables |= section.printed(data.sections.get(section.name))
    register = published_register(data, tables, release, primary)
    for section in SECTIONS:
        section.register(register, tables, data.sections.get(section.name))
    return tables, primary, register


def audited_tables(data: WarehouseData, release: str, earlier: list[Register] | None) -> Audited:
    """Every table, registered and audited: the audit reads the register with the earlier releases' and may hide
    more before anything is written; what it hid is written back into the tables."""
    design = data.design
    assert design is not None
    tables, primary, register = release_register(data, release)
    disclosure = protect(register, earlier, give_up_order(), headline_keys(design, tables))
    apply_register(register, tables)
    finish_responders(tables["responder_shares"], responder_groups_of(data), register, design.primary_timepoint)
    # No rate, share or median beside a count the audit hid; then each section's words.
    words = {s.name: s.finish(register, tables, data.sections.get(s.name)) for s in SECTIONS}
    for name, frame in tables.items():
        audit_table(name, frame)
    return Audited(tables, primary, register, disclosure, words)
