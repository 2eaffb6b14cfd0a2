"""The Safety section: complication rates per treatment, in plain words first, every count through the register.

Read from the published warehouse: ``complication_rates`` (the rate, its exact 95% interval, the median days
to resolution) and, for the register, the patients behind each count, chosen by the same macros the build
uses (``sql/macros/complication_events.sql``). Per modality (surgical ones first, then BoNT), each
complication recorded: patients at risk, patients with it, the rate per 100 with its interval, patients
resolved and the median days to resolution.

The small-cell rule, as everywhere in the report: a count from 1 to 10 prints ``<11``; a rate, interval,
share or median that would reveal one (or rest on fewer than 11 patients) is not shown, and the sentence gives
the count's bounds instead ("1 to 10 of the 35 patients, 3% to 29%": what "<11" says, not "rare"); the patients
without the complication and those not resolved are registered as implied counts, so the disclosure audit
hides more where a difference of printed numbers would give one away. The words are written after the
audit, from what the table finally prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from pipeline.report.register import RANGE, SMALL, Register
from pipeline.report.suppression import COMPLEMENTARY, SMALL_CELL, format_count, is_small
from pipeline.sql_files import COMPLICATION_MACROS_SQL, read_sql
from pipeline.vocabulary import MODALITY_WORDS as VOCABULARY
from pipeline.vocabulary import SURGICAL_CODES

if TYPE_CHECKING:
    from pipeline.report.context import ReportParts
    from pipeline.report.reading import WarehouseData
    from pipeline.report.report_figures import Figure, FigureInputs

TABLE = "safety"
# Modalities in the order the section gives them: the operations a patient weighs, then injections; each
# as (its name, the patients' words), from the one vocabulary.
MODALITY_WORDS = {code: (VOCABULARY[code].name, VOCABULARY[code].with_it) for code in (*SURGICAL_CODES, "BTX")}
COMPLICATION_WORDS = {
    "incomplete_eye_closure": "incomplete eye closure",
    "oral_incompetence": "oral incompetence",
    "lower_lip_weakness": "lower lip weakness",
    "eyelid_ptosis": "eyelid ptosis",
    "brow_ptosis": "brow ptosis",
    "drooling": "drooling",
    "dry_eye": "dry eye",
    "haematoma": "a haematoma",
    "infection": "an infection",
    "revision_surgery": "revision surgery",
    "other": "another complication",
}
COLUMNS = [
    "treatment",
    "complication",
    "patients at risk",
    "patients with it",
    "rate per 100 (95% CI)",
    "patients resolved",
    "median days to resolution",
]
NOT_SHOWN = ""
PatientKey = tuple[str, str]

_MEMBERS_SQL = """
SELECT r.group_code, r.site_id, r.patient_id
FROM complication_at_risk('modality_combinations', 'treatments', 'modality_codes') AS r
WHERE r.grouping = 'modality'
"""
_EVENTS_SQL = """
SELECT e.group_code, e.code, e.site_id, e.patient_id, e.resolved
FROM complication_first_events('modality_combinations', 'treatments', 'modality_codes', 'complications') AS e
WHERE e.grouping = 'modality'
"""
_RATES_SQL = """
SELECT group_code, code, patients_at_risk, patients_with, rate, ci_low, ci_high, patients_resolved,
    median_days_to_resolution
FROM complication_rates
WHERE grouping = 'modality' AND patients_with > 0
ORDER BY group_code, code
"""


@dataclass
class SafetyData:
    rates: pd.DataFrame  # complication_rates, per modality, codes with at least one patient
    at_risk: dict[str, list[PatientKey]]  # modality code -> patients at risk
    events: pd.DataFrame  # group_code, code, site_id, patient_id, resolved: each patient's first event
    sites_reporting: int = 1  # sites whose patients are at risk (complication_sites)
    sites: int = 1  # sites in the warehouse


def read_safety(con: duckdb.DuckDBPyConnection) -> SafetyData | None:
    """The section's data, or None where the warehouse has no complications (none recorded, or a warehouse
    built before contract 1.2)."""
    present = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('complications', 'complication_rates')"
    ).fetchone()[0]
    if present < 2 or not con.execute("SELECT count(*) FROM complications").fetchone()[0]:
        return None
    con.execute(read_sql(COMPLICATION_MACROS_SQL))  # temporary macros: the published file stays read-only
    members = con.execute(_MEMBERS_SQL).df()
    at_risk = {
        str(code): list(zip(group["site_id"].astype(str), group["patient_id"].astype(str), strict=True))
        for code, group in members.groupby("group_code")
    }
    rates = con.execute(_RATES_SQL).df()
    rates = rates[rates["group_code"].isin(MODALITY_WORDS)]
    if rates.empty:
        return None
    sites = con.execute("SELECT count(DISTINCT site_id) FROM patients").fetchone()[0]
    reporting = con.execute("SELECT count(*) FROM complication_sites").fetchone()[0]
    return SafetyData(rates, at_risk, con.execute(_EVENTS_SQL).df(), int(reporting), int(sites))


def _patients(frame: pd.DataFrame) -> list[PatientKey]:
    return list(zip(frame["site_id"].astype(str), frame["patient_id"].astype(str), strict=True))


def _order(rates: pd.DataFrame) -> pd.DataFrame:
    position = {code: i for i, code in enumerate(MODALITY_WORDS)}
    return rates.assign(_order=rates["group_code"].map(position)).sort_values(
        ["_order", "patients_with", "code"], ascending=[True, False, True], kind="stable"
    )


def _per_100(value: float) -> str:
    per_100 = 100 * float(value)
    return f"{per_100:.1f}" if 0 < per_100 < 1 else f"{per_100:.0f}"


def _rate_text(row: object) -> str:
    return f"{_per_100(row.rate)} ({_per_100(row.ci_low)} to {_per_100(row.ci_high)})"  # type: ignore[attr-defined]


def _part_text(part: int, whole: int, share: bool = False) -> str:
    """A count that is part of a printed whole: '<11' for 1 to 10; 'suppressed' where the rest of the whole
    is 1 to 10 (the difference would give it away); with its share of the whole where ``share`` and nothing
    is hidden."""
    if is_small(part):
        return format_count(part)
    if is_small(whole - part) or is_small(whole):
        return COMPLEMENTARY
    text = format_count(part)
    return text + f" ({100 * part / whole:.0f}%)" if share and whole else text


def safety_table(data: SafetyData) -> pd.DataFrame:
    """The table as its own rule prints it (before the release-wide audit)."""
    rows = []
    for r in _order(data.rates).itertuples(index=False):
        at_risk, with_it, resolved = int(r.patients_at_risk), int(r.patients_with), int(r.patients_resolved)
        with_text = _part_text(with_it, at_risk)
        exact = at_risk >= SMALL_CELL and not is_small(with_it) and with_text == format_count(with_it)
        resolved_text = _part_text(resolved, with_it, share=True) if exact else COMPLEMENTARY
        if resolved_text == COMPLEMENTARY and (is_small(resolved) or resolved == 0):
            resolved_text = format_count(resolved)  # '<11' or '0' says nothing more of a hidden count
        rows.append(
            [
                MODALITY_WORDS[r.group_code][0],
                COMPLICATION_WORDS.get(r.code, r.code),
                format_count(at_risk),
                with_text,
                _rate_text(r) if exact else NOT_SHOWN,
                resolved_text,
                f"{r.median_days_to_resolution:.0f}" if "%" in resolved_text and resolved >= SMALL_CELL else NOT_SHOWN,
            ]
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _keys(group: str, code: str) -> dict[str, str]:
    return {
        "at_risk": f"safety|at_risk|{group}",
        "with": f"safety|with|{group}|{code}",
        "without": f"safety|without|{group}|{code}",
        "resolved": f"safety|resolved|{group}|{code}",
        "unresolved": f"safety|unresolved|{group}|{code}",
    }


def register_safety(register: Register, table: pd.DataFrame, data: SafetyData) -> None:
    """Every count of the table with its patients, and the differences they imply."""
    for i, r in enumerate(_order(data.rates).itertuples(index=False)):
        group, code = str(r.group_code), str(r.code)
        key = _keys(group, code)
        at_risk = data.at_risk.get(group, [])
        events = data.events[(data.events["group_code"] == group) & (data.events["code"] == code)]
        with_it = _patients(events)
        resolved = _patients(events[events["resolved"].astype(bool)])
        counted = (len(at_risk), len(with_it), len(resolved))
        if counted != (r.patients_at_risk, r.patients_with, r.patients_resolved):
            raise ValueError(f"safety: the patients of {group} {code} are not those complication_rates counts")
        words = MODALITY_WORDS[group][0]
        for name, column, what, patients in (
            ("at_risk", "patients at risk", f"patients who had {words}", at_risk),
            ("with", "patients with it", f"patients with {code} after {words}", with_it),
            ("resolved", "patients resolved", f"patients whose {code} after {words} resolved", resolved),
        ):
            register.printed_count(key[name], what, patients, table[column].iloc[i], (TABLE, i, column))
        with_set, resolved_set = set(with_it), set(resolved)
        register.implied(
            key["without"], f"patients without {code} after {words}", [p for p in at_risk if p not in with_set]
        )
        register.implied(
            key["unresolved"],
            f"patients whose {code} after {words} has not resolved",
            [p for p in with_it if p not in resolved_set],
        )


def finish_safety(table: pd.DataFrame, data: SafetyData, register: Register) -> list[str]:
    """After the audit: no rate, share or median beside a count it hid; then the section's sentences."""
    sentences = []
    if data.sites_reporting < data.sites:
        # A clinic that sends no complications has not recorded none: its patients are not at risk here.
        sentences.append(
            f"Counted at the {data.sites_reporting} of {data.sites} sites that report complications: the others "
            "send none, so their patients are not counted at risk."
        )
    for i, r in enumerate(_order(data.rates).itertuples(index=False)):
        group, code = str(r.group_code), str(r.code)
        key = _keys(group, code)
        exact = register.shown(key["at_risk"]) and register.shown(key["with"])
        if not exact:
            table.iloc[i, table.columns.get_loc("rate per 100 (95% CI)")] = NOT_SHOWN
        if not (register.shown(key["resolved"]) and register.shown(key["with"])):
            table.iloc[i, table.columns.get_loc("patients resolved")] = register.text(key["resolved"])
            table.iloc[i, table.columns.get_loc("median days to resolution")] = NOT_SHOWN
        sentences.append(_sentence(table.iloc[i], r, register, key))
    return sentences


def _bounds(low: int, high: int, whole: int) -> str:
    """The shares of ``whole`` that a count known only to lie from ``low`` to ``high`` spans, e.g. "3% to 29%"."""
    return f"{100 * low / whole:.0f}% to {100 * high / whole:.0f}%"


def _sentence(printed: pd.Series, r: object, register: Register, key: dict[str, str]) -> str:
    group, code = str(r.group_code), str(r.code)  # type: ignore[attr-defined]
    modality, after = MODALITY_WORDS[group]
    what = COMPLICATION_WORDS.get(code, code.replace("_", " "))
    if not register.shown(key["at_risk"]):
        return f"Fewer than {SMALL_CELL} patients had {modality}, or their number is not shown: no rate of {what}."
    at_risk = register.text(key["at_risk"])
    rate = printed["rate per 100 (95% CI)"]
    if not rate:
        cell = register.cells[key["with"]]
        whole = register.cells[key["at_risk"]].value
        if cell.status == SMALL:
            # The bounds a reader has from "<11" anyway, as shares of the group: "rare" it may not be.
            return (
                f"1 to {SMALL_CELL - 1} of the {at_risk} patients {after} had {what}, "
                f"{_bounds(1, SMALL_CELL - 1, whole)} (no count from 1 to {SMALL_CELL - 1} is printed exactly)."
            )
        if cell.status == RANGE and cell.low is not None and cell.high is not None:
            return (
                f"{cell.low} to {cell.high} of the {at_risk} patients {after} had {what}, "
                f"{_bounds(cell.low, cell.high, whole)} (a range, so that a smaller number cannot be worked out "
                "from the others)."
            )
        return (
            f"How many of the {at_risk} patients {after} had {what} is not shown, so that a smaller number cannot "
            "be worked out from the others."
        )
    per_100, interval = rate.split(" (", 1)
    words = (
        f"{per_100} of every 100 patients {after} had {what} (95% CI {interval.rstrip(')')}; "
        f"{register.text(key['with'])} of {at_risk} patients)"
    )
    resolved = str(printed["patients resolved"])
    if "%" in resolved:
        share = resolved.split("(")[1].rstrip(")")
        median = printed["median days to resolution"]
        words += f"; {share} resolved" + (f", after a median of {median} days" if median else "")
    else:
        words += f"; how many resolved is not shown (fewer than {SMALL_CELL} resolved, or fewer than {SMALL_CELL} not)"
    return words + "."


# The section, as the report's list (pipeline/report/sections.py) takes it.
class SafetySection:
    """Complication rates per treatment (contract 1.2); not shown where the warehouse records none."""

    name = "safety"
    slot = "after_trajectories"
    partial = "safety.html.j2"
    anchor = "safety"
    title = "Safety: complications"
    tables = (TABLE,)

    def read(self, con: duckdb.DuckDBPyConnection, data: WarehouseData) -> object:
        return read_safety(con)

    def printed(self, found: object) -> dict[str, pd.DataFrame]:
        return {TABLE: safety_table(found)} if found is not None else {}  # type: ignore[arg-type]

    def register(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> None:
        if found is not None:
            register_safety(register, tables[TABLE], found)  # type: ignore[arg-type]

    def finish(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> object:
        return finish_safety(tables[TABLE], found, register) if found is not None else []  # type: ignore[arg-type]

    def figures(self, inputs: FigureInputs, found: object) -> list[Figure]:
        return []

    def context(self, parts: ReportParts, found: object, words: object) -> dict[str, object]:
        return {self.name: {"sentences": words} if found is not None else None}
