"""Validate a screened drop row by row: failing rows go to quarantine with their rule, the rest load."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from pipeline.contract import COLUMNS, TABLES, TOTAL_TOLERANCE
from pipeline.sources import ROW_NUMBER, SourceDrop
from pipeline.sources.numbers import read_numbers
from pipeline.sql_files import read_sql
from pipeline.validation.distinct import distinct_pairs
from pipeline.validation.gx_runner import validate_frame
from pipeline.validation.suites import (
    CURRENT_YEAR,
    PATIENT_IS_KNOWN,
    REFINED_RULES,
    RESOLVED_ORDER,
    TEXT_SUFFIX,
    TOTALS_CHECK,
    TREATMENT_IS_KNOWN,
    TREATMENT_MODALITY,
    TREATMENT_ORDER,
    item_groups,
    load_suite,
)

QUARANTINE_COLUMNS = ["drop_id", "file", "row_number", "rule", "columns", "row"]


@dataclass
class ValidatedDrop:
    source: SourceDrop
    valid: dict[str, pd.DataFrame]  # typed contract columns + row_number
    quarantined: dict[str, pd.DataFrame]  # QUARANTINE_COLUMNS
    gx_results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def rule_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for frame in self.quarantined.values():
            for rules in frame["rule"]:
                for rule in str(rules).split("; "):
                    counts[rule] = counts.get(rule, 0) + 1
        return dict(sorted(counts.items()))


def _typed(table: str, text: pd.DataFrame) -> pd.DataFrame:
    """The validation frame: text columns as given, numeric columns as numbers plus their spelling.

    The spelling is canonical where the cell is a number ('3.0', '+3' and '3e0' are all '3'), so
    the type and integer rules judge the value, not how the exporting tool wrote it.

    Text is held as categoricals: GX copies the frame for every row condition and tests nulls and
    sets per metric, and on codes that is a fraction of the work on a million Python strings.
    """
    frame = pd.DataFrame(index=text.index)
    for column in COLUMNS[table]:
        raw = text[column.name]
        if column.kind == "text":
            frame[column.name] = raw.astype("category")
        else:
            values, spelled = read_numbers(raw)
            frame[column.name] = values
            frame[column.name + TEXT_SUFFIX] = spelled.astype("category")
    return frame


def _patient_is_known(frame: pd.DataFrame, known: set[str]) -> pd.Series:
    """Per row, whether its "site_id/patient_id" is in ``known``: tested once per distinct patient."""
    codes, patients = distinct_pairs(frame["site_id"], frame["patient_id"])
    found = np.array([f"{site or ''}/{patient or ''}" in known for site, patient in patients], dtype=bool)
    return pd.Series(found[codes], index=frame.index)


def _treatment_checks(frame: pd.DataFrame, treatments: dict[str, tuple[str, int]]) -> dict[str, pd.Series]:
    """Per complication row: whether the treatment it names is one of its patient's (null where it names
    none), that treatment's modality, whether the complication came on or after that treatment's day, and
    whether it resolved on or after the day it was noted (null where a day is empty or no treatment known).
    ``treatments``: "site/patient/treatment" -> (modality, day)."""
    named = frame["treatment_id"].astype("object")
    keys = frame["site_id"].astype("object").fillna("") + "/" + frame["patient_id"].astype("object").fillna("")
    keys = keys + "/" + named.fillna("")
    found = keys.map(treatments).where(named.notna())
    modality = found.map(lambda t: t[0], na_action="ignore")
    treatment_day = pd.to_numeric(found.map(lambda t: t[1], na_action="ignore"), errors="coerce")
    known = modality.notna().astype("object").where(named.notna())
    after = (frame["day"] >= treatment_day).astype("object").where(treatment_day.notna() & frame["day"].notna())
    order = (frame["resolved_day"] >= frame["day"]).astype("object")
    order = order.where(frame["resolved_day"].notna() & frame["day"].notna())
    return {
        TREATMENT_IS_KNOWN: known,
        TREATMENT_MODALITY: modality.astype("category"),
        TREATMENT_ORDER: after,
        RESOLVED_ORDER: order,
    }


def _quarantine_rows(
    drop: SourceDrop,
    table: str,
    text: pd.DataFrame,
    failures: dict[int, list[str]],
    columns_by_rule: dict[str, list[str]],
    source_columns: dict[int, list[str]],
) -> pd.DataFrame:
    if not failures:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in QUARANTINE_COLUMNS})
    file = drop.files[table].file
    contract_columns = [c.name for c in COLUMNS[table]]
    index = sorted(failures)
    rows = text.loc[index, contract_columns]
    records = []
    for position, row in zip(index, rows.itertuples(index=False), strict=True):
        rules = list(dict.fromkeys(failures[position]))
        columns = sorted(
            {col for rule in rules for col in columns_by_rule.get(rule, [])} | {*source_columns.get(position, [])}
        )
        values = {name: (None if pd.isna(value) else value) for name, value in zip(contract_columns, row, strict=True)}
        records.append(
            {
                "drop_id": drop.drop_id,
                "file": file,
                "row_number": int(text.at[position, ROW_NUMBER]),
                "rule": "; ".join(rules),
                "columns": ", ".join(columns),
                "row": json.dumps(values),
            }
        )
    return pd.DataFrame.from_records(records, columns=QUARANTINE_COLUMNS)


def _refined(frame: pd.DataFrame, index: int, rule: str) -> str:
    column = REFINED_RULES.get(rule)
    return str(frame.at[index, column]) if column else rule


def _rule_columns(suite: dict[str, Any]) -> dict[str, list[str]]:
    return {e["meta"]["rule"]: e["meta"]["columns"] for e in suite["expectations"]}


def _to_contract_types(table: str, frame: pd.DataFrame, text: pd.DataFrame) -> pd.DataFrame:
    typed = pd.DataFrame(index=frame.index)
    for column in COLUMNS[table]:
        if column.kind == "integer":
            typed[column.name] = frame[column.name].astype("Int64")
        elif column.kind == "number":
            typed[column.name] = frame[column.name].astype("float64")
        else:
            typed[column.name] = text[column.name]  # the text as parsed, not the validation's categorical
    typed[ROW_NUMBER] = text[ROW_NUMBER]
    return typed


def totals_disagreements(assessments: pd.DataFrame) -> dict[int, list[str]]:
    """Rows of instrument-visits whose recorded totals disagree with their items by more than the tolerance."""
    if assessments.empty:
        return {}
    con = duckdb.connect()
    try:
        con.register("assessments", assessments.reset_index(names="frame_index"))
        con.execute(read_sql("core/04_item_scores.sql"))
        bad = con.execute(read_sql("checks/totals_disagree.sql"), {"tolerance": TOTAL_TOLERANCE}).fetchall()
    finally:
        con.close()
    failures: dict[int, list[str]] = {}
    for frame_index, rule in bad:
        failures.setdefault(int(frame_index), []).append(rule)
    return failures


def _totals_check(frame: pd.DataFrame) -> pd.Series:
    """Per row: the totals_disagree rule of its instrument at its visit, or null where totals agree."""
    numeric = frame.loc[frame["value"].notna(), ["site_id", "patient_id", "visit_day", "instrument", "item", "value"]]
    check = pd.Series([None] * len(frame), index=frame.index, dtype="object")
    for index, rules in totals_disagreements(numeric).items():
        check[index] = rules[0]
    return check


def validate_drop(
    drop: SourceDrop,
    known_patients: set[str],
    today: date | None = None,
    gx_root: Path | None = None,
    known_treatments: dict[str, tuple[str, int]] | None = None,
) -> ValidatedDrop:
    """Run each file's suite; patients first, since rows of the others must name a known patient, and
    treatments before complications, which name a treatment of their patient.

    ``known_treatments``: the treatments already loaded ("site/patient/treatment" -> (modality, day)); the
    drop's valid treatments are added to them. With ``gx_root``, GX keeps each result there and updates
    its Data Docs site. A table the drop does not carry (complications, optional) is not validated.
    """
    today = today or date.today()
    valid: dict[str, pd.DataFrame] = {}
    quarantined: dict[str, pd.DataFrame] = {}
    gx_results: dict[str, dict[str, Any]] = {}
    known = set(known_patients)
    treatments = dict(known_treatments or {})
    for table in (t for t in TABLES if t in drop.tables):
        text = drop.tables[table].reset_index(drop=True)
        frame = _typed(table, text)
        suite = load_suite(table)
        parameters = {CURRENT_YEAR: today.year}
        if table != "patients":
            frame[PATIENT_IS_KNOWN] = _patient_is_known(frame, known)
        if table == "assessments":
            # A cross-row rule: computed in SQL (the scoring formulas), reported by its GX expectation.
            frame[TOTALS_CHECK] = _totals_check(frame)
            frame = frame.assign(**item_groups(frame))
        if table == "complications":
            frame = frame.assign(**_treatment_checks(frame, treatments))
        if text.empty:
            failures: dict[int, list[str]] = {}
        else:
            failures, gx_results[table] = validate_frame(table, frame, suite, parameters, gx_root, drop.drop_id)
        rule_columns = _rule_columns(suite)
        if table == "assessments":
            # Name the score that disagreed, or the instrument and range, not just the rule.
            for index, rules in failures.items():
                failures[index] = [_refined(frame, index, rule) for rule in rules]
                rule_columns.update(
                    {r: rule_columns[b] for r, b in zip(failures[index], rules, strict=True) if r not in rule_columns}
                )
        # Rules the source adapter applied itself (REDCap: an incomplete form instance).
        source_columns: dict[int, list[str]] = {}
        for index, broken in drop.row_rules.get(table, {}).items():
            failures.setdefault(index, []).extend(r.rule for r in broken)
            source_columns[index] = [c for r in broken for c in r.columns]
        good = frame.drop(index=list(failures))
        typed = _to_contract_types(table, good, text.loc[good.index])
        if table == "patients":
            known |= set(typed["site_id"] + "/" + typed["patient_id"])
        if table == "treatments":
            keys = typed["site_id"] + "/" + typed["patient_id"] + "/" + typed["treatment_id"]
            treatments.update(zip(keys, zip(typed["modality"], typed["day"], strict=True), strict=True))
        valid[table] = typed.reset_index(drop=True)
        quarantined[table] = _quarantine_rows(drop, table, text, failures, rule_columns, source_columns)
    return ValidatedDrop(source=drop, valid=valid, quarantined=quarantined, gx_results=gx_results)
