"""Write the quarterly report from the published warehouse: the printed tables, the register and its audit,
the figures and the template's context (reading the warehouse: :mod:`pipeline.report.reading`; the
sentences: :mod:`pipeline.report.words`; the answer: :mod:`pipeline.report.answer`).

``write_report(warehouse, quarter, out_root)`` opens the warehouse read-only, reads what the report
needs, closes it, and writes ``out_root/<YYYY>-Q<n>/``: ``report.html`` (self-contained: inline CSS,
figures as data URIs), each figure as PNG and each table as CSV. Every published number goes
through the small-cell rule of :mod:`pipeline.report.tables`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import jinja2
import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.csv_safety import write_csv
from pipeline.quarters import parse_quarter, quarter_bounds, release_name
from pipeline.report import figures, queries
from pipeline.report.answer import (
    VERDICT_RULES,
    AnswerRow,
    answer_rows,
    lead_sentences,
    odds_words,
)
from pipeline.report.disclosure import protect
from pipeline.report.published_counts import (
    apply_register,
    fill_register,
    without_hidden_spread,
    year_cells_shown,
)
from pipeline.report.reading import (
    ALL_TRAJECTORIES,
    MAIN_OUTCOMES,
    PRIMARY_CONTRAST,
    WarehouseData,
    read_warehouse,
)
from pipeline.report.register import Register
from pipeline.report.safety import SafetyData, finish_safety, read_safety, register_safety, safety_table
from pipeline.report.suppression import (
    SMALL_CELL,
    audit_table,
    format_count,
    mark_shown,
    safe_summary,
)
from pipeline.report.tables import (
    GROUPS,
    MEAN_DIFFERENCE_METHODS,
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
from pipeline.report.words import _timepoint_words, summary_sentences

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
# SAQ is primary, the Sunnybrook composite).
PAGE_SIZES = ("Letter", "A4")  # the printed report's paper: Letter by default, A4 where departments use it
TEMPLATES = Path(__file__).resolve().parent / "templates"


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


def _forest_row(row: AnswerRow, odds: dict[str, str]) -> dict[str, object]:
    return {
        "label": outcome_label(row.outcome),
        "n": f"{row.n_first} vs {row.n_second}" if row.n_first and row.n_second else "not shown",
        "better": row.better,
        "low": row.low,
        "high": row.high,
        "threshold": row.yardstick.value,
        "verdict": odds.get(row.outcome, row.verdict),
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
        "responders": row.responders,
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
    "safety",
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
    safety: SafetyData | None = None,
) -> tuple[dict[str, pd.DataFrame], list[Figure], dict[str, object], Register]:
    design = data.design
    assert design is not None
    at, at_words = design.primary_timepoint, design.primary_label
    when = _timepoint_words(design)
    tables, primary = printed_tables(data)
    if safety is not None:
        tables["safety"] = safety_table(safety)
    _, years, shares = by_year_table(data.by_year.groupby(["year", "group"]).size().reset_index(name="patients"))
    # Every patient count goes through the register; the audit reads it with the earlier releases' and
    # may hide more before anything is written.
    register = published_register(data, tables, release or quarter, primary)
    if safety is not None:
        register_safety(register, tables["safety"], safety)
    disclosure = protect(register, earlier, GIVE_UP_FIRST)
    apply_register(register, tables)
    safety_sentences = finish_safety(tables["safety"], safety, register) if safety is not None else []
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
    # Forest plots draw differences in mean change; responders and odds ratios are on scales of their own.
    means_only = (
        data.estimates[data.estimates["method"].isin(MEAN_DIFFERENCE_METHODS)]
        if len(data.estimates)
        else data.estimates
    )
    marked = mark_shown(means_only) if len(means_only) else means_only
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
        [_forest_row(r, odds_words(data.estimates, at)) for r in forest_rows if r.contrast == PRIMARY_CONTRAST],
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
    context["safety"] = {"sentences": safety_sentences} if safety is not None else None
    return tables, figs, context, register


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
        safety = read_safety(con)
    finally:
        con.close()
    as_of_words = f"{as_of:%Y-%m-%d %H:%M} UTC" if as_of else ""
    release = release_name(quarter, provisional)
    if page_size not in PAGE_SIZES:
        raise ValueError(f"page size {page_size!r}: use one of {', '.join(PAGE_SIZES)}")
    tables, figs, context, register = _build(
        data, f"{year}Q{number}", as_of_words, provisional, release, earlier, page_size, safety
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
