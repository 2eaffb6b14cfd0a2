"""The report's self-contained sections, each one module behind one small protocol, and their list.

A section reads what it needs from the warehouse file the report was given, prints its tables, registers every
count it publishes (so the disclosure audit sees them), words itself after the audit, draws its figures, and
names its template partial and where the report places it. The report (``printed.audited_tables``,
``report_figures``, ``context``, ``build``), the disclosure bench (``bench/disclosure.py``) and the tests loop
over :data:`SECTIONS`: adding a section is its module (its words, its tables and, at the end, its class of this
protocol: ``safety.SafetySection``), its partial (``templates/<partial>``) and one line here.

The report's older parts (flow, Table 1, estimates, figures) are still built stage by stage in ``printed.py``,
``context.py`` and ``report_figures.py``; they become sections one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import duckdb
import pandas as pd

from pipeline.report.claims import ClaimsSection
from pipeline.report.register import Register
from pipeline.report.safety import SafetySection
from pipeline.report.target_trial import TargetTrialSection

if TYPE_CHECKING:
    from pipeline.report.context import ReportParts
    from pipeline.report.reading import WarehouseData
    from pipeline.report.report_figures import Figure, FigureInputs

# Where the report's template includes a section's partial (and lists it in the contents).
SLOTS = ("after_forest", "after_trajectories")


class Section(Protocol):
    """One section of the report. ``found`` is what :meth:`read` returned; ``words`` what :meth:`finish` did."""

    name: str  # its key in the template's context
    slot: str  # one of SLOTS
    partial: str  # its template, under pipeline/report/templates/
    anchor: str  # its id in the page, for the contents
    title: str  # its line in the contents
    tables: tuple[str, ...]  # its tables in the release (the audit gives up theirs before the headline's)

    def read(self, con: duckdb.DuckDBPyConnection, data: WarehouseData) -> object: ...

    def printed(self, found: object) -> dict[str, pd.DataFrame]:
        """Its tables as their own rule prints them, before the release-wide audit."""
        ...

    def register(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> None:
        """Every count it publishes, with its patients (it may add its tables to ``tables``)."""
        ...

    def finish(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> object:
        """After the audit: what it says, from what its tables finally print."""
        ...

    def figures(self, inputs: FigureInputs, found: object) -> list[Figure]:
        """Its figures, drawn from the audited tables (the template reads them as figures.<name>)."""
        ...

    def context(self, parts: ReportParts, found: object, words: object) -> dict[str, object]:
        """The names its partial reads (a false value under ``name``: the section is not shown)."""
        ...


# In the order their counts are registered and their contents lines print (within a slot).
SECTIONS: list[Section] = [
    ClaimsSection(),
    SafetySection(),
    TargetTrialSection(),
]


def slots(listed: list[Section], context: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    """Each slot's sections for the template: partial, anchor, title and whether it is shown."""
    out: dict[str, list[dict[str, object]]] = {slot: [] for slot in SLOTS}
    for section in listed:
        out[section.slot].append(
            {
                "partial": section.partial,
                "anchor": section.anchor,
                "title": section.title,
                "shown": bool(context.get(section.name)),
            }
        )
    return out
