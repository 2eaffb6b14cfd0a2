"""Write the quarterly report from a warehouse file: read it (:mod:`pipeline.report.reading`), print and audit the
tables (:mod:`pipeline.report.printed`), answer the question (:mod:`pipeline.report.answer`), draw the figures
(:mod:`pipeline.report.report_figures`), word the template's context (:mod:`pipeline.report.context`), and write
the files. This module only puts those steps in order.

``write_report(warehouse, quarter, out_root)`` opens the warehouse read-only, reads what the report needs, closes
it, and writes ``out_root/<YYYY>-Q<n>/``: ``report.html`` (self-contained: inline CSS, figures as data URIs), each
figure as PNG, each table as CSV and the release's primary estimate (``primary_estimate.json``). Every published
count goes through the register and the disclosure audit.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import jinja2
import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.csv_safety import write_csv
from pipeline.quarters import parse_quarter, quarter_bounds, release_name
from pipeline.report.answer import NOT_ESTIMABLE, AnswerRow, answer_rows
from pipeline.report.context import ReportParts, template_context
from pipeline.report.printed import (
    GIVE_UP_FIRST,
    audited_tables,
    printed_tables,
    published_register,
    responder_groups_of,
)
from pipeline.report.reading import MAIN_OUTCOMES, WarehouseData, read_warehouse
from pipeline.report.register import Register
from pipeline.report.report_figures import Figure, FigureInputs, report_figures
from pipeline.report.responder_shares import TOO_FEW, share_words, too_few
from pipeline.report.trend import ESTIMATE_FILE, estimate_record, trend_table
from pipeline.settings import PAGE_SIZES
from pipeline.vocabulary import PRIMARY_CONTRAST, outcome_label

TEMPLATES = Path(__file__).resolve().parent / "templates"
__all__ = ["GIVE_UP_FIRST", "printed_tables", "published_register", "read_warehouse", "write_report"]


def _with_group_shares(answer: list[AnswerRow], shares: pd.DataFrame, groups: list[dict[str, object]]) -> None:
    """Each group's crude share of responders, where the table prints both, before the adjusted risk difference,
    each labelled as what it is; no difference where a group has too few responders to compare."""
    words, few = share_words(shares), too_few(groups)
    for row in answer:
        if not row.responders:
            continue
        if (row.contrast, row.outcome) in few:
            row.responders = TOO_FEW
            continue
        if row.responders == NOT_ESTIMABLE:
            continue
        share = words.get((row.comparison, outcome_label(row.outcome)))
        adjusted = f"adjusted {row.responders}"
        row.responders = f"crude {share}; {adjusted}" if share else adjusted


def _own_estimate(answer: list[AnswerRow], design: AnalysisDesign, release: str) -> dict[str, object]:
    """This release's primary estimate as it prints it (for the index of releases and the trend plot)."""
    row = next((r for r in answer if r.contrast == PRIMARY_CONTRAST and r.outcome == design.primary_outcome), None)
    name = release.replace("provisional/", "") + (" (provisional)" if release.startswith("provisional/") else "")
    return estimate_record(
        name,
        design.primary_outcome,
        design.primary_timepoint,
        row.better if row else None,
        row.low if row else None,
        row.high if row else None,
        row.verdict if row else NOT_ESTIMABLE,
    )


def _build(
    data: WarehouseData,
    quarter: str,
    as_of_words: str = "",
    provisional: bool = False,
    release: str = "",
    earlier: list[Register] | None = None,
    page_size: str = "Letter",
    published: Path | None = None,
) -> tuple[dict[str, pd.DataFrame], list[Figure], dict[str, object], Register]:
    design = data.design
    assert design is not None
    audited = audited_tables(data, release or quarter, earlier)
    tables = audited.tables
    # The answer prints the estimates' own register cells, so after the audit has had its say.
    answer = answer_rows(data.estimates, data.scores, data.members, audited.register, design, MAIN_OUTCOMES)
    _with_group_shares(answer, tables["responder_shares"], responder_groups_of(data))
    own = _own_estimate(answer, design, release or quarter)
    tables["primary_trend"] = trend_table(published, release or quarter, own)
    figs = report_figures(FigureInputs(data, audited, answer))
    parts = ReportParts(data, audited, answer, figs, quarter, as_of_words, provisional, page_size, own)
    return tables, figs, template_context(parts), audited.register


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
        data, f"{year}Q{number}", as_of_words, provisional, release, earlier, page_size, Path(out_root)
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
    (folder / ESTIMATE_FILE).write_text(json.dumps(context["primary_estimate"], indent=2) + "\n", encoding="utf-8")
    html = folder / "report.html"
    html.write_text(render(context, figs), encoding="utf-8")
    return html
