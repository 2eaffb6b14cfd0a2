"""The report's self-contained sections, each one module behind one small protocol, and their list.

A section reads what it needs from the warehouse file the report was given, prints its tables, registers every
count it publishes (so the disclosure audit sees them), words itself after the audit, draws its figures, and
names its template partial and where the report places it. The report (``printed.audited_tables``,
``report_figures``, ``context``, ``build``), the disclosure bench (``bench/disclosure.py``) and the tests loop
over :data:`SECTIONS`: adding a section is its module, its partial (``templates/<partial>``) and one line here.

The report's older parts (flow, Table 1, estimates, figures) are still built stage by stage in ``printed.py``,
``context.py`` and ``report_figures.py``; they become sections one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import duckdb
import pandas as pd

from pipeline.report import claims, safety
from pipeline.report import target_trial as trial
from pipeline.report.register import Register

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


class SafetySection:
    """Complication rates per treatment (contract 1.2); not shown where the warehouse records none."""

    name = "safety"
    slot = "after_trajectories"
    partial = "safety.html.j2"
    anchor = "safety"
    title = "Safety: complications"
    tables = (safety.TABLE,)

    def read(self, con: duckdb.DuckDBPyConnection, data: WarehouseData) -> object:
        return safety.read_safety(con)

    def printed(self, found: object) -> dict[str, pd.DataFrame]:
        return {safety.TABLE: safety.safety_table(found)} if found is not None else {}  # type: ignore[arg-type]

    def register(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> None:
        if found is not None:
            safety.register_safety(register, tables[safety.TABLE], found)  # type: ignore[arg-type]

    def finish(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> object:
        return safety.finish_safety(tables[safety.TABLE], found, register) if found is not None else []  # type: ignore[arg-type]

    def figures(self, inputs: FigureInputs, found: object) -> list[Figure]:
        return []

    def context(self, parts: ReportParts, found: object, words: object) -> dict[str, object]:
        return {self.name: {"sentences": words} if found is not None else None}


class TargetTrialSection:
    """Surgery or more injections? The emulated target trial (issue 31); not shown where the run has no ccw row."""

    name = "target_trial"
    slot = "after_trajectories"
    partial = "target_trial.html.j2"
    anchor = "target-trial"
    title = "Surgery or more injections?"
    tables = (trial.TABLE, trial.PHASE_TABLE)

    def read(self, con: duckdb.DuckDBPyConnection, data: WarehouseData) -> object:
        return trial.read_target_trial(con, data.claims, data.run, data.design)

    def printed(self, found: object) -> dict[str, pd.DataFrame]:
        if found is None:
            return {}
        return {trial.TABLE: trial.target_trial_table(found), trial.PHASE_TABLE: trial.phase_mix_table(found)}  # type: ignore[arg-type]

    def register(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> None:
        if found is not None:
            trial.register_target_trial(register, tables[trial.TABLE], found)  # type: ignore[arg-type]
            trial.register_phase_mix(register, tables[trial.PHASE_TABLE], found)  # type: ignore[arg-type]

    def finish(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> object:
        return trial.target_trial_sentences(found, register) if found is not None else []  # type: ignore[arg-type]

    def figures(self, inputs: FigureInputs, found: object) -> list[Figure]:
        return []

    def context(self, parts: ReportParts, found: object, words: object) -> dict[str, object]:
        if found is None:
            return {self.name: None}
        return {self.name: {"sentences": words, "phase_min_days": f"{found.phase_min_days:g}"}}  # type: ignore[attr-defined]


class ClaimsSection:
    """What surgeons claim, tested: synergy and BoNT after surgery, in sentences (issue 19)."""

    name = "claims"
    slot = "after_forest"
    partial = "claims.html.j2"
    anchor = "claims"
    title = "What surgeons claim, tested"
    tables = (claims.TABLE,)

    def read(self, con: duckdb.DuckDBPyConnection, data: WarehouseData) -> object:
        assert data.design is not None
        return claims.read_patients(con, data.claims, data.design)

    def printed(self, found: object) -> dict[str, pd.DataFrame]:
        return {}  # its table is its registered counts (register)

    def register(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> None:
        tables[claims.TABLE] = claims.register_counts(register, found)  # type: ignore[arg-type]

    def finish(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> object:
        return None  # worded from the register in context: the claims' sentences read it as audited

    def figures(self, inputs: FigureInputs, found: object) -> list[Figure]:
        return []  # its trajectories and dose figures are the report's (report_figures.py)

    def context(self, parts: ReportParts, found: object, words: object) -> dict[str, object]:
        data = parts.data
        untested = found.untested  # type: ignore[attr-defined]
        return {self.name: claims.section(data.claims, data.estimates, parts.audited.register, parts.design, untested)}


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
