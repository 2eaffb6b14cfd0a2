"""Where each cell of a REDCap flat export belongs, and the rules for one the adapter cannot place.

Each row of the flat export is one record's non-repeating data (empty ``redcap_repeat_instrument``:
the patient form) or one instance of one repeating form, and the adapter reads a field only on rows of
its own form (by the shipped dictionary). A filled cell of another form would be dropped in silence, so:

- a repeating form with no instance in the whole export but its fields filled on records'
  non-repeating rows is a form not set as repeating in REDCap: none of its cells could be placed, and
  the drop is refused (``redcap_form_not_repeating``);
- otherwise a row that carries a filled field of another form is quarantined
  (``redcap_field_of_other_form``, naming the fields, never their values);
- a repeating row's instance must be a positive whole number, and a non-repeating row has none
  (``redcap_instance_invalid``); one record has one row per instrument and instance
  (``redcap_instance_repeated``: every row of such a pair is quarantined, as neither can be told right).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.errors import DropRejected, row_list
from pipeline.sources import ROW_NUMBER, RowRule
from pipeline.sources.redcap_dictionary import FIELD, FORM, dictionary_rows
from pipeline.sources.redcap_project import (
    RECORDS,
    REDCAP_FORMS,
    REDCAP_PATIENT_FIELDS,
    REDCAP_PATIENT_FORM,
    REDCAP_RECORD_ID,
    REDCAP_REPEAT_INSTANCE,
    REDCAP_REPEAT_INSTRUMENT,
    REDCAP_REPEATING_FORMS,
    redcap_form_status,
)

OTHER_FORM_RULE = "redcap_field_of_other_form"
INSTANCE_RULE = "redcap_instance_invalid"
REPEATED_INSTANCE_RULE = "redcap_instance_repeated"
NOT_REPEATING_RULE = "redcap_form_not_repeating"
_INSTANCE = r"[1-9][0-9]{0,8}"  # REDCap numbers a form's instances 1, 2, ... (after integral_text: '2.0' is '2')


def repeating_fix(forms: tuple[str, ...] | list[str] = REDCAP_REPEATING_FORMS) -> str:
    """What a coordinator changes in REDCap so that these forms' cells can be placed."""
    return (
        "In REDCap, Project Setup > Enable optional modules and customizations > Repeating instruments (and "
        f"events): make {', '.join(forms)} repeating instrument(s) of a classic (not longitudinal) project, as in "
        "docs/redcap.md step 1.3, then export again."
    )


def field_forms() -> dict[str, str]:
    """Each form field and form status of the project shape -> its form (the record ID is on every row)."""
    forms = {row[FIELD]: row[FORM] for row in dictionary_rows() if row[FIELD] != REDCAP_RECORD_ID}
    forms |= dict.fromkeys(REDCAP_PATIENT_FIELDS, REDCAP_PATIENT_FORM)  # site_id too, where the clinic added it
    forms |= {redcap_form_status(form): form for form in REDCAP_FORMS}
    return forms


def _row_forms(records: pd.DataFrame) -> pd.Series:
    return records[REDCAP_REPEAT_INSTRUMENT].fillna(REDCAP_PATIENT_FORM)


def refuse_unrepeated_forms(drop_id: str, records: pd.DataFrame, forms: dict[str, str]) -> None:
    """Refuse an export holding a repeating form's fields on non-repeating rows and not one instance of it."""
    base = records[REDCAP_REPEAT_INSTRUMENT].isna()
    present = set(records[REDCAP_REPEAT_INSTRUMENT].dropna())
    faults, unrepeated = [], []
    for form in (f for f in REDCAP_REPEATING_FORMS if f not in present):
        columns = [c for c, f in forms.items() if f == form and c in records]
        filled = records.loc[base, columns].notna()
        if filled.to_numpy().any():
            used = [c for c in columns if filled[c].any()]
            rows = records.loc[filled.index[filled.any(axis=1)], ROW_NUMBER].astype(int).tolist()
            faults.append(f"{form} (field(s) {', '.join(used)}; {row_list(rows)})")
            unrepeated.append(form)
    if faults:
        raise DropRejected(
            drop_id,
            f"{RECORDS} has fields of instrument(s) {'; '.join(faults)} on records' non-repeating rows and "
            "no instance of them: in REDCap those instruments are not set as repeating, so none of their cells can "
            f"be placed (rule {NOT_REPEATING_RULE}).",
            repeating_fix(unrepeated),
        )


def placement_rules(records: pd.DataFrame, forms: dict[str, str]) -> dict[int, list[RowRule]]:
    """By flat-export row number: the rules of a row whose cells cannot all be placed."""
    rules: dict[int, list[RowRule]] = {}
    numbers = records[ROW_NUMBER].astype(int)
    row_forms = _row_forms(records)
    columns = [c for c in records.columns if c in forms]
    filled = records[columns].notna()
    for form in REDCAP_FORMS:
        others = [c for c in columns if forms[c] != form]
        stray = filled.loc[row_forms == form, others]
        stray = stray[stray.any(axis=1)]
        names = np.array(others, dtype=object)
        for index, row in zip(stray.index, stray.to_numpy(), strict=True):
            rules.setdefault(int(numbers[index]), []).append(RowRule(OTHER_FORM_RULE, tuple(names[row])))
    instance = records[REDCAP_REPEAT_INSTANCE]
    repeating = records[REDCAP_REPEAT_INSTRUMENT].notna()
    numbered = instance.fillna("").str.fullmatch(_INSTANCE).astype(bool)
    invalid = (repeating & ~numbered) | (~repeating & instance.notna())
    key = [REDCAP_RECORD_ID, REDCAP_REPEAT_INSTRUMENT, REDCAP_REPEAT_INSTANCE]
    repeated = repeating & numbered & records.duplicated(key, keep=False)
    for mask, rule in ((invalid, INSTANCE_RULE), (repeated, REPEATED_INSTANCE_RULE)):
        for number in numbers[mask]:
            rules.setdefault(int(number), []).append(RowRule(rule, (REDCAP_REPEAT_INSTANCE,)))
    return rules


def add_row_rules(rules: dict[int, list[RowRule]], table: pd.DataFrame, by_row: dict[int, list[RowRule]]) -> None:
    """Give each row of a contract table the rules of the flat row it came from (by row position)."""
    if not by_row:
        return
    positions = np.flatnonzero(table[ROW_NUMBER].isin(list(by_row)).to_numpy())
    for position in positions:
        rules.setdefault(int(position), []).extend(by_row[int(table[ROW_NUMBER].iat[position])])
