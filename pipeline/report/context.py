"""The template's context, section by section: each builder takes what the report has made (the warehouse's rows,
the audited tables, the answer, the figures) and returns the names its part of the template reads; none reads
another's names. A new section is a self-contained one (pipeline/report/sections.py: its module, its partial and
one line in that list); the builders here are the report's older parts, to become such sections."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.report.answer import VERDICT_RULES, AnswerRow, hidden_n_sentences, lead_sentences, short_words
from pipeline.report.flow import flow_boxes
from pipeline.report.printed import Audited
from pipeline.report.reading import MAIN_OUTCOMES, WarehouseData
from pipeline.report.report_figures import HALLMARKS, Figure
from pipeline.report.sections import SECTIONS as REPORT_SECTIONS
from pipeline.report.sections import slots
from pipeline.report.suppression import SMALL_CELL, format_count
from pipeline.report.tables import COVARIATE_WORDS, footnoted, rows_loaded_total
from pipeline.report.words import _timepoint_words, summary_sentences
from pipeline.vocabulary import PRIMARY_CONTRAST, contrast_label, outcome_label

DEFAULT_COVARIATES = ("age_at_onset", "sex", "etiology", "onset_to_index_days", "prior_treatment", "site_id")


@dataclass
class ReportParts:
    """Everything a section may word: the release's facts, the warehouse's rows and what the report made of them."""

    data: WarehouseData
    audited: Audited
    answer: list[AnswerRow]
    figures: list[Figure]
    quarter: str  # YYYYQn
    as_of_words: str = ""
    provisional: bool = False
    page_size: str = "Letter"
    primary_estimate: dict[str, object] | None = None

    @property
    def design(self) -> AnalysisDesign:
        assert self.data.design is not None
        return self.data.design

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return self.audited.tables

    @property
    def settings(self) -> dict[str, object]:
        return self.data.run.get("settings", {}) if self.data.run else {}  # type: ignore[return-value]

    @property
    def design_settings(self) -> dict[str, object]:
        recorded = self.data.build.get("design_settings") if self.data.build else None
        return json.loads(recorded) if isinstance(recorded, str) else (recorded or {})  # type: ignore[return-value]


def _answer_groups(rows: list[AnswerRow]) -> list[dict[str, object]]:
    """The answer rows by outcome, in the order made (primary outcome first)."""
    groups: dict[str, dict[str, object]] = {}
    for row in rows:
        group = groups.setdefault(
            row.outcome, {"outcome": outcome_label(row.outcome), "yardstick": short_words(row.yardstick), "rows": []}
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


def header_section(parts: ReportParts) -> dict[str, object]:
    year, number = parts.quarter[:4], parts.quarter[-1]
    data = parts.data
    return {
        "quarter": parts.quarter,
        "page_size": parts.page_size,
        "year_quarter": f"{year} Q{number}",
        "provisional": parts.provisional,
        "as_of": parts.as_of_words,
        "data_snapshot": str(data.build.get("data_snapshot", ""))[:12],
        "run_id": data.run.get("run_id", "") if data.run else "",
        "small_cell": SMALL_CELL,
        "primary_timepoint_words": parts.design.primary_label,
        "primary_outcome": outcome_label(parts.design.primary_outcome),
        "timepoint_words": _timepoint_words(parts.design),
    }


def answer_section(parts: ReportParts) -> dict[str, object]:
    """The answer first, then the key findings (which word the flow's printed counts)."""
    return {
        "summary": summary_sentences(parts.data, parts.tables["patient_flow"]["patients"].tolist(), parts.answer),
        "answer": _answer_groups(parts.answer),
        "answer_lead": lead_sentences(parts.answer, parts.design),
        "answer_hidden": hidden_n_sentences(parts.answer, parts.design),
        "verdict_rules": VERDICT_RULES,
    }


def flow_section(parts: ReportParts) -> dict[str, object]:
    return {"flow_steps": flow_boxes(parts.tables["patient_flow"], parts.data.flow_steps)}


def tables_section(parts: ReportParts) -> dict[str, object]:
    """Every table as printed; in print a note in full on every row made the estimates and diagnostics tables
    pages long, so those are numbered notes under each."""
    tables = parts.tables
    primary_footnoted, primary_notes = footnoted(tables["estimates_primary"])
    diagnostics = tables["propensity_diagnostics"]
    diagnostics_footnoted, diagnostics_notes = footnoted(
        diagnostics[diagnostics["contrast"] == contrast_label(PRIMARY_CONTRAST)]
    )
    return {
        "estimate_notes": primary_notes,
        "diagnostics_notes": diagnostics_notes,
        "tables": {
            **{name: _table_payload(frame) for name, frame in tables.items()},
            "estimates_primary": _table_payload(primary_footnoted),
            "propensity_diagnostics_primary": _table_payload(diagnostics_footnoted),
        },
        "csv_files": [f"{name}.csv" for name in tables],
        "has_estimates": bool(len(parts.data.estimates)),
    }


def methods_section(parts: ReportParts) -> dict[str, object]:
    settings, design = parts.settings, parts.design_settings
    return {
        "min_group_size": settings.get("min_group_size", SMALL_CELL),
        "covariates": ", ".join(
            COVARIATE_WORDS.get(c, c)
            for c in settings.get("covariates", DEFAULT_COVARIATES)  # type: ignore[union-attr]
        ),
        "min_sites_for_cluster": settings.get("min_sites_for_cluster", 10),
        "weight_truncation": settings.get("weight_truncation", 10),
        "max_smd": settings.get("max_smd", 0.1),
        "equipoise_bounds": settings.get("equipoise_bounds", (0.3, 0.7)),
        "min_equipoise_share": settings.get("min_equipoise_share", 0.2),
        "mice_imputations": settings.get("mice_imputations", 20),
        "exposure_window_days": design.get("exposure_window_days", 180),
        "baseline_lookback_days": design.get("baseline_lookback_days", 90),
        "timepoints": design.get("timepoints", []),
        "yardsticks": [
            {"outcome": outcome_label(o), "words": parts.design.yardsticks[o].words}
            for o in MAIN_OUTCOMES
            if o in parts.design.yardsticks
        ],
    }


def figures_section(parts: ReportParts) -> dict[str, object]:
    return {
        "hallmarks": [(key, title) for key, title, _ in HALLMARKS],
        # The appendix's forest plots: every one but the primary (in the main body).
        "forest_names": [f.name for f in parts.figures if f.name.startswith("forest_") and f.name != "forest_primary"],
    }


def quality_section(parts: ReportParts) -> dict[str, object]:
    ledger = parts.data.ledger
    return {
        "quality": {
            "files": len(ledger),
            "drops": ledger["drop_id"].nunique() if len(ledger) else 0,
            "rows_loaded": format_count(rows_loaded_total(ledger)) if len(ledger) else "0",
            "rows_quarantined": format_count(int(ledger["rows_quarantined"].sum())) if len(ledger) else "0",
            "refused": len(parts.data.refused),
        }
    }


def release_section(parts: ReportParts) -> dict[str, object]:
    """What the release records beside the page: the audit, and its primary estimate for the index of releases."""
    return {"disclosure": parts.audited.disclosure, "primary_estimate": parts.primary_estimate}


SECTIONS: list[Callable[[ReportParts], dict[str, object]]] = [
    header_section,
    answer_section,
    flow_section,
    tables_section,
    methods_section,
    figures_section,
    quality_section,
    release_section,
]


def template_context(parts: ReportParts) -> dict[str, object]:
    """The sections' names together; two sections naming the same thing is a mistake, refused."""
    context: dict[str, object] = {}
    # The older builders, then each self-contained section's names (pipeline/report/sections.py).
    named = [(builder.__name__, builder(parts)) for builder in SECTIONS]
    named += [
        (s.name, s.context(parts, parts.data.sections.get(s.name), parts.audited.words.get(s.name)))
        for s in REPORT_SECTIONS
    ]
    for name, names in named:
        clash = set(names) & set(context)
        if clash:
            raise ValueError(f"report context: {name} names {sorted(clash)} again")
        context |= names
    context["sections"] = slots(REPORT_SECTIONS, context)
    return context
