"""REDCap cells the adapter cannot place (issue 26): a field of another form on a row, a form not set as
repeating, a longitudinal export, an instance number that is no positive whole number or is repeated.
Each was dropped or loaded in silence; each is now quarantined at its row of redcap_records.csv, or the
drop refused, with its rule named and no value shown."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.ingest.drops import IngestSummary, ingest_landing
from pipeline.settings import DataHome
from pipeline.sources import SourceDrop
from pipeline.sources.redcap import RECORDS
from pipeline.sources.redcap_placement import (
    INSTANCE_RULE,
    NOT_REPEATING_RULE,
    OTHER_FORM_RULE,
    REPEATED_INSTANCE_RULE,
)
from tests.sources.test_redcap import base_export, export_with_complications, parse, refusal, write_redcap_drop

REPEATING_ADVICE = "Repeating instruments"


def ingest(tmp_path: Path, records: pd.DataFrame) -> tuple[DataHome, IngestSummary]:
    home = DataHome.resolve(tmp_path / "home").ensure()
    write_redcap_drop(home.landing / "d1", records)
    summary = ingest_landing(home)
    assert [d.status for d in summary.drops] == ["loaded"], summary.lines()
    return home, summary


def store_rows(home: DataHome, sql: str) -> list[tuple]:
    con = duckdb.connect(str(home.store_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def quarantine_of(home: DataHome, row: int) -> list[tuple]:
    return store_rows(home, f"SELECT DISTINCT file, rule, columns FROM quarantine WHERE row_number = {row}")


def flat_row(records: pd.DataFrame, mask: pd.Series, nth: int = 0) -> int:
    return int(records.index[mask][nth]) + 2  # the header is row 1


def is_form(records: pd.DataFrame, form: str, record: str | None = None) -> pd.Series:
    mask = records["redcap_repeat_instrument"] == form
    return mask & (records["record_id"] == record) if record else mask


def test_treatment_fields_on_a_patient_row_are_quarantined_naming_the_fields(tmp_path: Path) -> None:
    records = base_export()
    patient_row = is_form(records, "", "P2")
    # A treatment typed into P2's patient row (as in a project where the form was not yet repeating).
    records.loc[patient_row, ["tx_day", "tx_modality", "treatment_complete"]] = ["417", "selective_myectomy", "2"]
    home, summary = ingest(tmp_path, records)
    row = flat_row(records, patient_row)
    assert quarantine_of(home, row) == [(RECORDS, OTHER_FORM_RULE, "treatment_complete, tx_day, tx_modality")]
    ledger = store_rows(home, f"SELECT rows_quarantined FROM load_ledger WHERE file = '{RECORDS}'")
    assert ledger[0][0] >= 1  # not "everything loaded, 0 quarantined"
    assert store_rows(home, "SELECT count(*) FROM patients_history WHERE patient_id = 'P2'") == [(0,)]
    said = " ".join(summary.lines())
    assert OTHER_FORM_RULE in said and "417" not in said


def test_a_sunnybrook_score_on_a_complication_instance_is_quarantined(tmp_path: Path) -> None:
    records = export_with_complications(["P1,s1,1,1,20,eyelid_ptosis,,50", "P2,s1,1,1,9,brow_ptosis,,"])
    complication = is_form(records, "complication", "P1")
    records.loc[complication, ["sb_composite", "sb_visit_day"]] = ["61", "20"]
    home, _ = ingest(tmp_path, records)
    assert quarantine_of(home, flat_row(records, complication)) == [
        (RECORDS, OTHER_FORM_RULE, "sb_composite, sb_visit_day")
    ]
    assert store_rows(home, "SELECT patient_id FROM complications_history") == [("P2",)]


def test_a_complication_field_on_a_sunnybrook_instance_quarantines_each_of_its_scores(tmp_path: Path) -> None:
    records = export_with_complications(["P2,s1,1,1,9,brow_ptosis,,"])
    visit = is_form(records, "sunnybrook", "P1")
    records.loc[records.index[visit][1], "cx_code"] = "haematoma"
    home, summary = ingest(tmp_path, records)
    row = flat_row(records, visit, 1)
    assert quarantine_of(home, row) == [(RECORDS, OTHER_FORM_RULE, "cx_code")]
    assert summary.drops[0].quarantine_by_rule == {OTHER_FORM_RULE: 13}  # its 13 items
    visits = store_rows(home, "SELECT DISTINCT visit_day FROM assessments_history WHERE patient_id = 'P1'")
    assert visits == [(0,)]


def not_repeating(records: pd.DataFrame, form: str, fields: list[str]) -> pd.DataFrame:
    """The export of a project where ``form`` is not repeating: its fields on the record's one row."""
    first = records[is_form(records, form)].drop_duplicates("record_id").set_index("record_id")
    flat = records[~is_form(records, form)].copy()
    base = flat["redcap_repeat_instrument"] == ""
    for field in fields:
        flat.loc[base, field] = flat.loc[base, "record_id"].map(first[field]).fillna("")
    return flat.reset_index(drop=True)


def test_a_treatment_form_not_set_as_repeating_refuses_the_drop(tmp_path: Path) -> None:
    fields = ["tx_day", "tx_modality", "tx_botox_units", "tx_pt_sessions", "tx_target", "treatment_complete"]
    records = not_repeating(base_export(), "treatment", fields)
    message = refusal(tmp_path, records)
    assert RECORDS in message and "treatment (field(s) tx_day, tx_modality, tx_botox_units" in message
    assert "not set as repeating" in message and NOT_REPEATING_RULE in message and REPEATING_ADVICE in message
    assert "make treatment repeating instrument(s)" in message
    assert "orbicularis_oculi" not in message


def test_an_export_of_a_project_with_no_repeating_instrument_is_refused(tmp_path: Path) -> None:
    records = base_export()
    records = records[records["redcap_repeat_instrument"] == ""].drop(
        columns=["redcap_repeat_instrument", "redcap_repeat_instance"]
    )
    message = refusal(tmp_path, records)
    assert "no instrument of the REDCap project is set as repeating" in message
    assert NOT_REPEATING_RULE in message and REPEATING_ADVICE in message


def test_a_longitudinal_export_is_refused_naming_the_event_column(tmp_path: Path) -> None:
    records = base_export()
    records.insert(1, "redcap_event_name", "baseline_arm_1")
    message = refusal(tmp_path, records)
    assert "redcap_event_name" in message and "longitudinal" in message and "baseline_arm_1" not in message


TABLE_OF = {"treatment": "treatments", "complication": "complications", "": "patients"}


def rules_at(drop: SourceDrop, form: str, row: int) -> list[str]:
    """The adapter's rules of the table row that came from this flat row."""
    table = drop.tables[TABLE_OF[form]]
    (position,) = table.index[table["row_number"] == row]
    return [r.rule for r in drop.row_rules[TABLE_OF[form]].get(int(position), [])]


@pytest.mark.parametrize("instance", ["abc", "", "0", "-2", "1.5"])
@pytest.mark.parametrize("form", ["treatment", "complication"])
def test_an_instance_that_is_no_positive_whole_number_is_quarantined(tmp_path: Path, form: str, instance: str) -> None:
    records = export_with_complications(["P1,s1,1,1,20,eyelid_ptosis,,50", "P2,s1,1,1,9,brow_ptosis,,"])
    bad = is_form(records, form, "P2")
    records.loc[bad, "redcap_repeat_instance"] = instance
    assert rules_at(parse(tmp_path, records), form, flat_row(records, bad)) == [INSTANCE_RULE]


def test_a_treatment_instance_of_abc_never_becomes_a_treatment_id(tmp_path: Path) -> None:
    records = base_export()
    bad = is_form(records, "treatment", "P2")
    records.loc[bad, "redcap_repeat_instance"] = "abc"
    home, _ = ingest(tmp_path, records)
    assert quarantine_of(home, flat_row(records, bad)) == [(RECORDS, INSTANCE_RULE, "redcap_repeat_instance")]
    assert store_rows(home, "SELECT DISTINCT treatment_id FROM treatments_history ORDER BY ALL") == [("1",), ("2",)]


def test_an_instance_number_on_a_non_repeating_row_is_quarantined(tmp_path: Path) -> None:
    records = base_export()
    patient_row = is_form(records, "", "P2")
    records.loc[patient_row, "redcap_repeat_instance"] = "3"  # a repeating event's row, its event column removed
    home, _ = ingest(tmp_path, records)
    assert quarantine_of(home, flat_row(records, patient_row)) == [(RECORDS, INSTANCE_RULE, "redcap_repeat_instance")]


@pytest.mark.parametrize("form", ["treatment", "complication"])
def test_an_instance_given_twice_for_one_record_and_instrument_quarantines_both(tmp_path: Path, form: str) -> None:
    # P1's treatments are instances 1 and 2; its complications 1 and 2 (different cx_id).
    records = export_with_complications(["P1,s1,1,1,20,eyelid_ptosis,,50", "P1,s1,2,2,30,dry_eye,,"])
    rows = is_form(records, form, "P1")
    records.loc[rows, "redcap_repeat_instance"] = "1"
    home, _ = ingest(tmp_path, records)
    for nth in (0, 1):
        rules = quarantine_of(home, flat_row(records, rows, nth))
        assert [(file, REPEATED_INSTANCE_RULE in rule.split("; ")) for file, rule, _ in rules] == [(RECORDS, True)]
    table = "treatments_history" if form == "treatment" else "complications_history"
    assert store_rows(home, f"SELECT count(*) FROM {table} WHERE patient_id = 'P1'") == [(0,)]


def test_a_clean_export_places_every_cell(tmp_path: Path) -> None:
    records = export_with_complications(["P1,s1,1,1,20,eyelid_ptosis,,50", "P2,s1,1,1,9,brow_ptosis,,"])
    _, summary = ingest(tmp_path, records)
    assert summary.drops[0].rows_quarantined == 0, summary.lines()
