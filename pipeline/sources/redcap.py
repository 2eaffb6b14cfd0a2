"""REDCap's own de-identified export (contract redcap.md): a flat record export and the project's dictionary.

A REDCap drop holds ``redcap_records.csv`` (flat, raw codes), ``redcap_dictionary.csv`` (the
project's data dictionary as REDCap downloads it) and ``manifest.json`` with ``"source": "redcap"``.
The adapter refuses an export that carries anything the shipped dictionary does not have, or a
field the dictionary marks as an identifier, a date, free text or a checkbox; then it pivots the
flat rows into the contract's three tables, and complications where the export carries the
optional complication form (contract 1.2). Every table row keeps the row number of the flat row
it came from, so quarantine and ledger point the coordinator to the record and instance in REDCap. A cell it
cannot place (a field of another form on a row, a bad or repeated instance) is quarantined or the
drop refused, by the rules of ``redcap_placement``.

The three tables all come from ``redcap_records.csv``: the ledger has one row for it (its sha256,
its flat rows: a row counts as quarantined when anything taken from it is), one for the
dictionary and one for the manifest, which carry no rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from pipeline.contract import COLUMNS, INSTRUMENTS
from pipeline.errors import DropRejected, row_list
from pipeline.ingest.screening import name_rules
from pipeline.sources import MANIFEST, ROW_NUMBER, Manifest, ReceivedFile, RowRule, SourceDrop
from pipeline.sources.numbers import integral_text
from pipeline.sources.reader import check_header_names, decode, read_rows
from pipeline.sources.redcap_dictionary import FIELD, FORM, IDENTIFIER, TYPE, VALIDATION, dictionary_rows
from pipeline.sources.redcap_placement import (
    NOT_REPEATING_RULE,
    add_row_rules,
    field_forms,
    placement_rules,
    refuse_unrepeated_forms,
    repeating_fix,
)
from pipeline.sources.redcap_project import (
    RECORDS,
    REDCAP_COMPLICATION_FIELDS,
    REDCAP_COMPLICATION_FORM,
    REDCAP_DATA_ACCESS_GROUP,
    REDCAP_EVENT_NAME,
    REDCAP_FORMS,
    REDCAP_LOADED_STATUSES,
    REDCAP_OPTIONAL_FIELDS,
    REDCAP_OPTIONAL_FORMS,
    REDCAP_PATIENT_FIELDS,
    REDCAP_PATIENT_FORM,
    REDCAP_RECORD_ID,
    REDCAP_REPEAT_INSTANCE,
    REDCAP_REPEAT_INSTRUMENT,
    REDCAP_REPEATING_FORMS,
    REDCAP_TREATMENT_FIELDS,
    REDCAP_TREATMENT_FORM,
    redcap_form_status,
    redcap_instrument_fields,
)

_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")  # REDCap's rule for a variable name
DICTIONARY = "redcap_dictionary.csv"

INCOMPLETE_RULE = "redcap_form_incomplete"  # <form>_complete is 0 (Incomplete) or not set
EMPTY_RULE = "redcap_instance_empty"  # an instrument instance with no item or score: nothing to load

# The shipped dictionary's fields, the contract's optional site_id, and REDCap's structural columns.
SHIPPED_FIELDS = tuple(row[FIELD] for row in dictionary_rows())
KNOWN_FIELDS = frozenset(SHIPPED_FIELDS) | set(REDCAP_OPTIONAL_FIELDS)
STATUS_FIELDS = tuple(redcap_form_status(form) for form in REDCAP_FORMS)
# An optional form's fields and status (contract 1.2: complication): all of them or none.
OPTIONAL_FORM_COLUMNS = {
    form: (*(row[FIELD] for row in dictionary_rows() if row[FORM] == form), redcap_form_status(form))
    for form in REDCAP_OPTIONAL_FORMS
}
_OPTIONAL_COLUMNS = {column for columns in OPTIONAL_FORM_COLUMNS.values() for column in columns}
REQUIRED_COLUMNS = tuple(
    c
    for c in (*SHIPPED_FIELDS, REDCAP_REPEAT_INSTRUMENT, REDCAP_REPEAT_INSTANCE, *STATUS_FIELDS)
    if c not in _OPTIONAL_COLUMNS
)
STRUCTURAL = frozenset({REDCAP_REPEAT_INSTRUMENT, REDCAP_REPEAT_INSTANCE, REDCAP_DATA_ACCESS_GROUP, *STATUS_FIELDS})
CHECKBOX_COLUMN = re.compile(r"(?P<field>.+?)___(?P<code>.+)")  # REDCap exports one column per choice
DICTIONARY_COLUMNS = (FIELD, FORM, TYPE, VALIDATION, IDENTIFIER)

# The REDCap fields behind each contract column, as a coordinator finds them in the project.
SOURCE_COLUMNS = {
    "patients": {"patient_id": REDCAP_RECORD_ID} | {c: f for f, c in REDCAP_PATIENT_FIELDS.items() if f != c},
    "treatments": {"patient_id": REDCAP_RECORD_ID, "treatment_id": REDCAP_REPEAT_INSTANCE}
    | {column: name for name, column in REDCAP_TREATMENT_FIELDS.items()},
    "assessments": {
        "patient_id": REDCAP_RECORD_ID,
        "visit_day": "<instrument>_visit_day",
        "item": "the instrument's item fields",
        "value": "the instrument's item fields",
    },
    "complications": {"patient_id": REDCAP_RECORD_ID} | {c: f for f, c in REDCAP_COMPLICATION_FIELDS.items()},
}

_REMOVE_FIELDS = "REDCap's de-identified export (Data Exports: remove identifiers, unvalidated text, notes and dates)"


@dataclass(frozen=True)
class DictionaryField:
    """What the drop's own dictionary says of one field: enough to refuse what must not be exported."""

    form: str
    kind: str  # REDCap's field type: text, notes, radio, dropdown, checkbox, ...
    validation: str
    identifier: bool

    @property
    def is_date(self) -> bool:
        return self.validation.startswith(("date", "datetime"))

    def is_free_text(self, name: str) -> bool:
        # The record ID is the one text field without validation: it is the patient's pseudonym.
        return self.kind == "notes" or (self.kind == "text" and not self.validation and name != REDCAP_RECORD_ID)


def _read_csv(drop_id: str, received: ReceivedFile) -> tuple[list[str], pd.DataFrame]:
    """A comma-separated REDCap file as text columns (empty cell = null) plus its spreadsheet row number."""
    name = received.file
    text = decode(drop_id, received)
    if not text.strip():
        raise DropRejected(drop_id, f"{name} is empty: it has no header row.", "Export it again from REDCap.")
    frame = read_rows(
        drop_id,
        name,
        text,
        lambda header: check_header_names(drop_id, name, header),
        "Export it again from REDCap as CSV (comma-separated) without editing it.",
    )
    return list(frame.columns[:-1]), frame


def read_dictionary(drop_id: str, received: ReceivedFile) -> dict[str, DictionaryField]:
    """The drop's data dictionary: field name -> what REDCap says of it."""
    header, frame = _read_csv(drop_id, received)
    absent = [c for c in DICTIONARY_COLUMNS if c not in header]
    if absent or header[0] != FIELD:
        raise DropRejected(
            drop_id,
            f"{DICTIONARY} is not a REDCap data dictionary (it lacks {', '.join(absent) or FIELD + ' first'}).",
            "Download it from REDCap (Project Setup > Data Dictionary > Download the current Data Dictionary).",
        )
    cells = frame[list(DICTIONARY_COLUMNS)].fillna("")
    return {
        row[FIELD]: DictionaryField(
            form=row[FORM],
            kind=row[TYPE].lower(),
            validation=row[VALIDATION].lower(),
            identifier=row[IDENTIFIER].lower() == "y",
        )
        for row in cells.to_dict("records")
        if row[FIELD]
    }


def _named(fields: list[str]) -> str:
    """Field names as a refusal may print them: a header that is really a data row (the header left
    out) must not put its cells in a message, so a name that is no REDCap field name is only counted."""
    shown = [f for f in fields if _FIELD_NAME.fullmatch(f) and not name_rules(f)]
    hidden = len(fields) - len(shown)
    return ", ".join(shown + ([f"{hidden} more that are not REDCap field names (not shown)"] if hidden else []))


def refuse_fields(drop_id: str, header: list[str], dictionary: dict[str, DictionaryField]) -> None:
    """The contract's refusals, by field name only: no cell of the export is read here."""
    checkboxes = [c for c in header if CHECKBOX_COLUMN.fullmatch(c)]
    if checkboxes:
        fields = sorted({CHECKBOX_COLUMN.fullmatch(c)["field"] for c in checkboxes})  # type: ignore[index]
        raise DropRejected(
            drop_id,
            f"{RECORDS} has checkbox column(s) {_named(checkboxes)} (checkbox field(s) {_named(fields)}), "
            "which the project shape does not have.",
            "Make each of them a radio or dropdown field with the contract's codes, or leave them out of the export.",
        )
    if REDCAP_EVENT_NAME in header:
        raise DropRejected(
            drop_id,
            f"{RECORDS} has the column {REDCAP_EVENT_NAME}: it is the export of a longitudinal project (events), "
            "whose rows the project shape cannot place.",
            "Build the project as a classic project (not longitudinal) from the shipped data dictionary, as in "
            "docs/redcap.md step 1, and export it again.",
        )
    if REDCAP_REPEAT_INSTRUMENT not in header and REDCAP_REPEAT_INSTANCE not in header:
        raise DropRejected(
            drop_id,
            f"{RECORDS} has no {REDCAP_REPEAT_INSTRUMENT} or {REDCAP_REPEAT_INSTANCE} column: no instrument of the "
            "REDCap project is set as repeating, so no treatment or visit after a record's first can be placed "
            f"(rule {NOT_REPEATING_RULE}).",
            repeating_fix(),
        )
    fields = [c for c in header if c not in STRUCTURAL]
    described = {name: dictionary[name] for name in fields if name in dictionary}
    for label, broken in (
        ("marked as identifier(s)", [n for n, f in described.items() if f.identifier]),
        ("with date or datetime validation", [n for n, f in described.items() if f.is_date]),
        ("of free text (notes, or text without validation)", [n for n, f in described.items() if f.is_free_text(n)]),
    ):
        if broken:
            raise DropRejected(
                drop_id,
                f"{RECORDS} carries field(s) {label} in {DICTIONARY}: {_named(broken)}. "
                "Such fields may hold identifiers, so nothing of the drop was loaded.",
                f"Export again with {_REMOVE_FIELDS}, or remove the fields from the export.",
            )
    unknown = [n for n in fields if n not in KNOWN_FIELDS]
    if unknown:
        raise DropRejected(
            drop_id,
            f"{RECORDS} has field(s) the shipped data dictionary does not have: {_named(unknown)}.",
            "Leave them out of the export (Data Exports > choose the project's instruments and fields); "
            "unknown fields may carry identifiers, so nothing of the drop was loaded.",
        )
    undescribed = [n for n in fields if n not in dictionary]
    if undescribed:
        raise DropRejected(
            drop_id,
            f"{DICTIONARY} does not describe field(s) of {RECORDS}: {_named(undescribed)}.",
            "Send the data dictionary of the same project, downloaded with the export.",
        )
    absent = [c for c in REQUIRED_COLUMNS if c not in header]
    for columns in OPTIONAL_FORM_COLUMNS.values():
        if any(c in header for c in columns):
            absent += [c for c in columns if c not in header]
    if absent:
        raise DropRejected(
            drop_id,
            f"{RECORDS} lacks field(s) of the shipped data dictionary: {_named(absent)}.",
            "Export every instrument with its form status, as raw data, and check that no field of the shipped "
            "dictionary is marked as an identifier.",
        )


def _site(records: pd.DataFrame, manifest: Manifest) -> pd.Series:
    """Each row's site: the record's site_id field, else its data access group, else the manifest's."""
    site = pd.Series(pd.NA, index=records.index, dtype="str")
    patient_rows = records[REDCAP_REPEAT_INSTRUMENT].isna()
    if "site_id" in records:
        # site_id is a patient form field: only the record's non-repeating row carries it.
        by_record = records.loc[patient_rows].drop_duplicates(REDCAP_RECORD_ID).set_index(REDCAP_RECORD_ID)["site_id"]
        site = site.fillna(records[REDCAP_RECORD_ID].map(by_record))
    if REDCAP_DATA_ACCESS_GROUP in records:
        site = site.fillna(records[REDCAP_DATA_ACCESS_GROUP])
    if manifest.site_id:
        site = site.fillna(manifest.site_id)
    return site


def _loaded(records: pd.DataFrame, form: str) -> pd.Series:
    return records[redcap_form_status(form)].isin(REDCAP_LOADED_STATUSES)


def _incomplete_rules(loaded: pd.Series, form_of: pd.Series) -> dict[int, list[RowRule]]:
    """By row position in the table: the rule of a form instance not marked unverified or complete."""
    return {
        position: [RowRule(INCOMPLETE_RULE, (redcap_form_status(form),))]
        for position, (ok, form) in enumerate(zip(loaded, form_of, strict=True))
        if not ok
    }


def _table(table: str, columns: dict[str, pd.Series], row_numbers: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame({c.name: columns[c.name].astype("str") for c in COLUMNS[table]}).reset_index(drop=True)
    frame[ROW_NUMBER] = row_numbers.astype("int64").to_numpy()
    return frame


def _patients(records: pd.DataFrame, site: pd.Series) -> tuple[pd.DataFrame, dict[int, list[RowRule]]]:
    rows = records[REDCAP_REPEAT_INSTRUMENT].isna()
    part = records.loc[rows]
    columns = {column: part[field] for field, column in REDCAP_PATIENT_FIELDS.items() if field in part}
    columns |= {"patient_id": part[REDCAP_RECORD_ID], "site_id": site[rows]}
    frame = _table("patients", columns, part[ROW_NUMBER])
    form = pd.Series(REDCAP_PATIENT_FORM, index=part.index)
    return frame, _incomplete_rules(_loaded(part, REDCAP_PATIENT_FORM), form)


def _treatments(records: pd.DataFrame, site: pd.Series) -> tuple[pd.DataFrame, dict[int, list[RowRule]]]:
    rows = records[REDCAP_REPEAT_INSTRUMENT] == REDCAP_TREATMENT_FORM
    part = records.loc[rows]
    columns = {column: part[field] for field, column in REDCAP_TREATMENT_FIELDS.items()}
    # The treatment id is the repeat instance: REDCap never renumbers an instance, so it is a stable key.
    columns |= {
        "patient_id": part[REDCAP_RECORD_ID],
        "site_id": site[rows],
        "treatment_id": part[REDCAP_REPEAT_INSTANCE],
    }
    frame = _table("treatments", columns, part[ROW_NUMBER])
    form = pd.Series(REDCAP_TREATMENT_FORM, index=part.index)
    return frame, _incomplete_rules(_loaded(part, REDCAP_TREATMENT_FORM), form)


def _complications(records: pd.DataFrame, site: pd.Series) -> tuple[pd.DataFrame, dict[int, list[RowRule]]]:
    rows = records[REDCAP_REPEAT_INSTRUMENT] == REDCAP_COMPLICATION_FORM
    part = records.loc[rows]
    columns = {column: part[field] for field, column in REDCAP_COMPLICATION_FIELDS.items()}
    # Numbered fields as REDCap or pandas may write them ('3.0'): cx_treatment_id names a treatment's instance,
    # which is that treatment's id (itself read the same way).
    columns["treatment_id"] = integral_text(columns["treatment_id"])
    columns["complication_id"] = integral_text(columns["complication_id"])
    columns |= {"patient_id": part[REDCAP_RECORD_ID], "site_id": site[rows]}
    frame = _table("complications", columns, part[ROW_NUMBER])
    form = pd.Series(REDCAP_COMPLICATION_FORM, index=part.index)
    return frame, _incomplete_rules(_loaded(part, REDCAP_COMPLICATION_FORM), form)


def _assessments(records: pd.DataFrame, site: pd.Series) -> tuple[pd.DataFrame, dict[int, list[RowRule]]]:
    """Long format, one row per item or score given: each instrument instance is one instrument at one visit."""
    parts = []
    for instrument in INSTRUMENTS:
        fields = redcap_instrument_fields(instrument)
        visit_field = next(f for f, code in fields.items() if code == "visit_day")
        items = {f: code for f, code in fields.items() if f != visit_field}
        rows = records[REDCAP_REPEAT_INSTRUMENT] == instrument
        part = records.loc[rows, [REDCAP_RECORD_ID, visit_field, ROW_NUMBER, *items]].rename(columns=items)
        part = part.assign(site_id=site[rows], loaded=_loaded(records.loc[rows], instrument))
        ids = ["patient_id", "site_id", "visit_day", ROW_NUMBER, "loaded"]
        part = part.rename(columns={REDCAP_RECORD_ID: "patient_id", visit_field: "visit_day"})
        long = part.melt(id_vars=ids, value_vars=list(items.values()), var_name="item", value_name="value")
        long = long[long["value"].notna()]
        # An instance with nothing given still came from a row: one empty assessment row carries it to quarantine.
        empty = part.loc[~part[ROW_NUMBER].isin(long[ROW_NUMBER]), ids].assign(item=None, value=None, empty=True)
        parts.append(pd.concat([long.assign(empty=False), empty]).assign(instrument=instrument))
    long = pd.concat(parts, ignore_index=True)
    # In flat-export order (the melt above is item by item).
    long = long.sort_values(ROW_NUMBER, kind="stable").reset_index(drop=True)
    frame = _table("assessments", {c: long[c] for c in long}, long[ROW_NUMBER])
    rules = _incomplete_rules(long["loaded"], long["instrument"])
    for position in long.index[long["empty"].astype(bool)]:
        rules.setdefault(int(position), []).append(RowRule(EMPTY_RULE, ()))
    return frame, rules


def _drop_files(drop_id: str, received: list[ReceivedFile]) -> dict[str, ReceivedFile]:
    files = {item.file: item for item in received if item.file != MANIFEST}
    other = sorted(set(files) - {RECORDS, DICTIONARY})
    if other:
        raise DropRejected(
            drop_id,
            f"it holds a file a REDCap drop does not have: {_named(other)}.",
            f"A REDCap drop holds {RECORDS}, {DICTIONARY} and {MANIFEST} only.",
        )
    missing = [name for name in (RECORDS, DICTIONARY) if name not in files]
    if missing:
        raise DropRejected(
            drop_id,
            f"it lacks {_named(missing)}, which a REDCap drop must hold.",
            f"Put REDCap's flat record export in {RECORDS} and the project's data dictionary in {DICTIONARY}.",
        )
    return files


def parse_source(drop_id: str, received: list[ReceivedFile], manifest: Manifest) -> SourceDrop:
    """The REDCap export as the contract's three tables, each row numbered as in the flat export."""
    files = _drop_files(drop_id, received)
    dictionary = read_dictionary(drop_id, files[DICTIONARY])
    header, records = _read_csv(drop_id, files[RECORDS])
    refuse_fields(drop_id, header, dictionary)
    # A flat export read back through pandas has its form status and repeat instance as floats (2.0):
    # the same codes and keys.
    for column in (REDCAP_REPEAT_INSTANCE, *(c for c in STATUS_FIELDS if c in records)):
        records[column] = integral_text(records[column])
    forms = records[REDCAP_REPEAT_INSTRUMENT]
    strange = records.loc[forms.notna() & ~forms.isin(REDCAP_REPEATING_FORMS), ROW_NUMBER].tolist()
    if strange:
        raise DropRejected(
            drop_id,
            f"{RECORDS} has {row_list(strange)} whose {REDCAP_REPEAT_INSTRUMENT} is none of the project's "
            f"repeating instruments ({_named(list(REDCAP_REPEATING_FORMS))}).",
            "Build the project from the shipped data dictionary, with exactly those instruments repeating.",
        )
    if "site_id" not in records and REDCAP_DATA_ACCESS_GROUP not in records and not manifest.site_id:
        raise DropRejected(
            drop_id,
            f"nothing names the site: {RECORDS} has neither a site_id field nor data access groups, "
            f"and {MANIFEST} has no site_id.",
            f'Add "site_id" to {MANIFEST}, e.g. {{"source": "redcap", "site_id": "dal01"}}.',
        )
    absent_forms = [f for f in REDCAP_OPTIONAL_FORMS if OPTIONAL_FORM_COLUMNS[f][0] not in records]
    orphans = records.loc[forms.isin(absent_forms), ROW_NUMBER].tolist()
    if orphans:
        raise DropRejected(
            drop_id,
            f"{RECORDS} has {row_list(orphans)} of instrument(s) {_named(absent_forms)} without their fields.",
            "Export those instruments with all their fields, or leave them out of the export.",
        )
    forms = field_forms()
    refuse_unrepeated_forms(drop_id, records, forms)
    site = _site(records, manifest)
    pivots = [("patients", _patients), ("treatments", _treatments), ("assessments", _assessments)]
    if REDCAP_COMPLICATION_FORM not in absent_forms:
        pivots.append(("complications", _complications))
    tables: dict[str, pd.DataFrame] = {}
    rules: dict[str, dict[int, list[RowRule]]] = {}
    # A cell of another form, a bad or repeated instance: each table row from such a flat row is quarantined.
    stray = placement_rules(records, forms)
    for table, pivot in pivots:
        tables[table], rules[table] = pivot(records, site)
        add_row_rules(rules[table], tables[table], stray)
    return SourceDrop(
        drop_id=drop_id,
        manifest=manifest,
        files=dict.fromkeys(tables, files[RECORDS]),
        tables=tables,
        row_rules=rules,
        source_columns=SOURCE_COLUMNS,
    )


def flat_export(
    patients: pd.DataFrame,
    treatments: pd.DataFrame,
    assessments: pd.DataFrame,
    complications: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """What REDCap exports (flat, raw codes) for a project built from the shipped dictionary holding these
    contract tables: for the synthetic generator and tests. Treatments become instances numbered per
    record in the order given; each instrument at a visit is one instance, numbered per record in visit
    order; every form is marked complete. The site is left to the manifest. With ``complications`` (their
    treatment_id already the treatment's instance number), the complication form too; without, the
    export has no complication fields, as a project built before contract 1.2."""
    # As text first: numbers keep their contract form when the concatenation below pads them with nulls.
    patients, treatments, assessments = (frame.astype("str") for frame in (patients, treatments, assessments))
    shipped = dictionary_rows()
    columns = [REDCAP_RECORD_ID, REDCAP_REPEAT_INSTRUMENT, REDCAP_REPEAT_INSTANCE]
    for form in REDCAP_FORMS:
        if form == REDCAP_COMPLICATION_FORM and complications is None:
            continue
        columns += [row[FIELD] for row in shipped if row[FORM] == form and row[FIELD] != REDCAP_RECORD_ID]
        columns.append(redcap_form_status(form))
    rows = [
        pd.DataFrame(
            {field: patients[column] for field, column in REDCAP_PATIENT_FIELDS.items() if field in columns}
        ).assign(record_id=patients["patient_id"], patient_complete="2", form_order=0, instance=0)
    ]
    tx = pd.DataFrame({field: treatments[column] for field, column in REDCAP_TREATMENT_FIELDS.items()})
    tx = tx.assign(record_id=treatments["patient_id"], treatment_complete="2", form_order=1)
    rows.append(tx.assign(instance=tx.groupby("record_id").cumcount() + 1))
    for order, instrument in enumerate(INSTRUMENTS, start=2):
        given = assessments[assessments["instrument"] == instrument]
        if given.empty:
            continue
        fields = {code: field for field, code in redcap_instrument_fields(instrument).items()}
        wide = given.pivot(index=["patient_id", "visit_day"], columns="item", values="value").reset_index()
        wide = wide.assign(day=pd.to_numeric(wide["visit_day"])).sort_values(["patient_id", "day"])
        wide = wide.drop(columns="day").rename(columns=fields).rename(columns={"patient_id": REDCAP_RECORD_ID})
        wide = wide.assign(instance=wide.groupby(REDCAP_RECORD_ID).cumcount() + 1, form_order=order)
        rows.append(wide.assign(**{redcap_form_status(instrument): "2"}))
    if complications is not None and not complications.empty:
        cx = complications.astype("str")
        order = REDCAP_FORMS.index(REDCAP_COMPLICATION_FORM)
        cx = pd.DataFrame({field: cx[column] for field, column in REDCAP_COMPLICATION_FIELDS.items()}).assign(
            record_id=cx["patient_id"], complication_complete="2", form_order=order
        )
        rows.append(cx.assign(instance=cx.groupby("record_id").cumcount() + 1))
    flat = pd.concat(rows, ignore_index=True).sort_values([REDCAP_RECORD_ID, "form_order", "instance"], kind="stable")
    flat = flat.reset_index(drop=True)
    repeating = flat["form_order"] > 0
    flat[REDCAP_REPEAT_INSTRUMENT] = flat["form_order"].map(dict(enumerate(REDCAP_FORMS))).where(repeating)
    flat[REDCAP_REPEAT_INSTANCE] = flat["instance"].astype("Int64").where(repeating)
    return pd.DataFrame({c: flat[c].astype("str").fillna("") if c in flat else "" for c in columns})
