"""REDCap drops: the same data as the clinic CSV files gives the same warehouse; each refusal; incomplete forms."""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.checksums import sha256_of
from pipeline.errors import DropRejected, row_list
from pipeline.ingest.drops import ingest_landing
from pipeline.ingest.receive import archive_file
from pipeline.ingest.screening import screen_drop
from pipeline.settings import DataHome, ModelSettings
from pipeline.sources.dispatch import parse_drop
from pipeline.sources.redcap import DICTIONARY, INCOMPLETE_RULE, RECORDS, flat_export
from pipeline.sources.redcap_dictionary import dictionary_csv
from pipeline.stages import fit_models, publish_warehouse
from pipeline.tools.synthetic import SyntheticParameters, generate_drop
from pipeline.tools.synthetic_complications import DEMO_COMPLICATIONS
from tests.conftest import (
    ASSESSMENTS_HEADER,
    BASE_PATIENTS,
    BASE_TREATMENTS,
    PATIENTS_HEADER,
    TREATMENTS_HEADER,
    csv_text,
    sunnybrook_rows,
)

QUICK = ModelSettings(methods=("unadjusted", "ancova"))
DROP = "clinic-a-2026-11"
# Warehouse tables of the data itself (the ledger, quarantine and run metadata name files and times).
DATA_TABLES = (
    "patients",
    "treatments",
    "assessments",
    "instrument_scores",
    "modality_combinations",
    "followup_scores",
    "attrition",
    "complications",
    "complication_rates",
)


def load(root: Path, export_format: str) -> DataHome:
    """A data home that received one synthetic drop in the given format, built and modelled."""
    home = DataHome.resolve(root / export_format).ensure()
    params = SyntheticParameters(complications=DEMO_COMPLICATIONS)  # contract 1.2: the same events both ways
    generate_drop(
        home.landing / DROP, patients=200, seed=11, site="clinic_a", export_format=export_format, params=params
    )
    summary = ingest_landing(home)
    assert [d.status for d in summary.drops] == ["loaded"], summary.lines()
    assert summary.drops[0].rows_quarantined == 0
    publish_warehouse(home)
    fit_models(home, QUICK)
    return home


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DataHome]:
    root = tmp_path_factory.mktemp("redcap")
    return {export_format: load(root, export_format) for export_format in ("csv", "redcap")}


def warehouse(home: DataHome, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def data_table(home: DataHome, table: str) -> pd.DataFrame:
    frame = warehouse(home, f"SELECT * FROM {table}")
    # Treatment ids differ by design: REDCap's are the repeat instances.
    frame = frame.drop(columns=[c for c in frame.columns if c == "treatment_id"])
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_csv_and_redcap_exports_of_the_same_data_give_the_same_warehouse(homes: dict[str, DataHome]) -> None:
    for table in DATA_TABLES:
        csv_frame, redcap_frame = data_table(homes["csv"], table), data_table(homes["redcap"], table)
        assert len(csv_frame) > 0, table
        pd.testing.assert_frame_equal(csv_frame, redcap_frame, obj=table)


def test_csv_and_redcap_exports_of_the_same_data_give_the_same_estimates(homes: dict[str, DataHome]) -> None:
    sql = "SELECT * EXCLUDE (run_id) FROM model_estimates ORDER BY ALL"
    csv_estimates, redcap_estimates = warehouse(homes["csv"], sql), warehouse(homes["redcap"], sql)
    assert csv_estimates["estimate"].notna().sum() > 10
    pd.testing.assert_frame_equal(csv_estimates, redcap_estimates)


def test_the_ledger_keeps_every_file_with_its_checksum_and_counts_flat_rows(homes: dict[str, DataHome]) -> None:
    home = homes["redcap"]
    drop = home.landing / DROP
    ledger = warehouse(home, "SELECT file, sha256, rows_in, rows_loaded, rows_quarantined, status FROM load_ledger")
    flat_rows = len(pd.read_csv(drop / RECORDS, dtype=str))
    assert sorted(map(tuple, ledger.itertuples(index=False))) == [
        ("manifest.json", sha256_of(drop / "manifest.json"), 0, 0, 0, "loaded"),
        (DICTIONARY, sha256_of(drop / DICTIONARY), 0, 0, 0, "loaded"),
        (RECORDS, sha256_of(drop / RECORDS), flat_rows, flat_rows, 0, "loaded"),
    ]
    assert all(any((home.archive / DROP).rglob(name)) for name in (RECORDS, DICTIONARY))
    # Received again: recognised by its checksums, nothing loaded twice.
    assert [d.status for d in ingest_landing(home).drops] == ["unchanged"]


# Hand-made REDCap exports: the conftest's small site as REDCap would export it.


def base_export() -> pd.DataFrame:
    def frame(header: str, rows: list[str]) -> pd.DataFrame:
        return pd.read_csv(io.StringIO(csv_text(header, rows)), dtype=str, keep_default_na=False)

    assessments = sunnybrook_rows("P1", 0) + sunnybrook_rows("P1", 90) + sunnybrook_rows("P2", 0)
    return flat_export(
        frame(PATIENTS_HEADER, BASE_PATIENTS),
        frame(TREATMENTS_HEADER, BASE_TREATMENTS),
        frame(ASSESSMENTS_HEADER, assessments),
    )


def dictionary_with(*rows: dict[str, str]) -> str:
    """The shipped dictionary with fields of the clinic's own added."""
    shipped = pd.read_csv(io.StringIO(dictionary_csv()), dtype=str, keep_default_na=False)
    extra = pd.DataFrame([{**dict.fromkeys(shipped.columns, ""), "Form Name": "patient", **row} for row in rows])
    return pd.concat([shipped, extra], ignore_index=True).to_csv(index=False, lineterminator="\n")


def write_redcap_drop(
    folder: Path, records: pd.DataFrame, dictionary: str | None = None, manifest: dict | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    records.to_csv(folder / RECORDS, index=False, lineterminator="\n")
    (folder / DICTIONARY).write_text(dictionary or dictionary_csv(), encoding="utf-8")
    manifest = {"source": "redcap", "site_id": "s1"} if manifest is None else manifest
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def parse(tmp_path: Path, records: pd.DataFrame, dictionary: str | None = None, manifest: dict | None = None):
    folder = write_redcap_drop(tmp_path / "d1", records, dictionary, manifest)
    received = [archive_file(path, tmp_path / "archive", "d1") for path in sorted(folder.iterdir())]
    return parse_drop("d1", received)


def refusal(tmp_path: Path, records: pd.DataFrame, dictionary: str | None = None) -> str:
    with pytest.raises(DropRejected) as refused:
        parse(tmp_path, records, dictionary)
    return str(refused.value)


def with_column(records: pd.DataFrame, column: str, value: str) -> pd.DataFrame:
    """The export with a column the clinic added, its value on the first record's patient row."""
    return records.assign(**{column: [value] + [""] * (len(records) - 1)})


def validation(kind: str) -> dict[str, str]:
    return {"Text Validation Type OR Show Slider Number": kind}


def test_a_field_the_shipped_dictionary_lacks_rejects_the_drop(tmp_path: Path) -> None:
    message = refusal(tmp_path, with_column(base_export(), "nickname", "Zelda"))
    assert RECORDS in message and "nickname" in message and "shipped data dictionary" in message
    assert "Zelda" not in message


def test_a_field_flagged_as_identifier_rejects_the_drop(tmp_path: Path) -> None:
    dictionary = dictionary_with(
        {"Variable / Field Name": "initials", "Field Type": "text", "Identifier?": "y", **validation("alpha_only")}
    )
    message = refusal(tmp_path, with_column(base_export(), "initials", "JQD"), dictionary)
    assert RECORDS in message and DICTIONARY in message and "initials" in message and "identifier" in message
    assert "JQD" not in message


def test_a_date_field_rejects_the_drop(tmp_path: Path) -> None:
    dictionary = dictionary_with(
        {"Variable / Field Name": "visit_date", "Field Type": "text", **validation("date_ymd")}
    )
    message = refusal(tmp_path, with_column(base_export(), "visit_date", "2024-03-05"), dictionary)
    assert RECORDS in message and "visit_date" in message and "date" in message
    assert "2024-03-05" not in message


@pytest.mark.parametrize("field_type", ["notes", "text"])
def test_a_free_text_field_rejects_the_drop(tmp_path: Path, field_type: str) -> None:
    dictionary = dictionary_with({"Variable / Field Name": "comments", "Field Type": field_type})
    message = refusal(tmp_path, with_column(base_export(), "comments", "seen by Dr Quill"), dictionary)
    assert RECORDS in message and "comments" in message and "free text" in message
    assert "Quill" not in message


def test_checkbox_columns_reject_the_drop_naming_them(tmp_path: Path) -> None:
    dictionary = dictionary_with(
        {"Variable / Field Name": "symptoms", "Field Type": "checkbox", "Choices, Calculations, OR Slider Labels": ""}
    )
    records = with_column(with_column(base_export(), "symptoms___1", "1"), "symptoms___2", "0")
    message = refusal(tmp_path, records, dictionary)
    assert RECORDS in message and "symptoms___1, symptoms___2" in message and "checkbox field(s) symptoms" in message


def test_an_incomplete_form_instance_is_quarantined_with_its_redcap_row(tmp_path: Path) -> None:
    home = DataHome.resolve(tmp_path / "home").ensure()
    records = base_export()
    is_instance = (records["redcap_repeat_instrument"] == "sunnybrook") & (records["sb_visit_day"] == "90")
    records.loc[is_instance, "sunnybrook_complete"] = "0"
    records.loc[records["redcap_repeat_instrument"] == "treatment", "treatment_complete"] = ["2", "1", "2"]
    write_redcap_drop(home.landing / "d1", records)
    flat_row = int(records.index[is_instance][0]) + 2  # the header is row 1
    summary = ingest_landing(home)
    assert summary.drops[0].status == "loaded" and summary.drops[0].quarantine_by_rule == {INCOMPLETE_RULE: 13}
    con = duckdb.connect(str(home.store_path), read_only=True)
    try:
        quarantined = con.execute("SELECT DISTINCT file, row_number, rule, columns FROM quarantine").fetchall()
        ledger = con.execute(
            "SELECT rows_in, rows_loaded, rows_quarantined FROM load_ledger WHERE file = ?", [RECORDS]
        ).fetchall()
        visits = con.execute("SELECT DISTINCT visit_day FROM assessments_history WHERE patient_id = 'P1'").fetchall()
        treatments = con.execute("SELECT count(*) FROM treatments_history").fetchone()
    finally:
        con.close()
    assert quarantined == [(RECORDS, flat_row, INCOMPLETE_RULE, "sunnybrook_complete")]
    # Every flat row is accounted for: one of them (the incomplete instance) is quarantined.
    assert ledger == [(len(records), len(records) - 1, 1)]
    assert visits == [(0,)]
    assert treatments == (3,)  # 1 (unverified) and 2 (complete) load


def test_the_site_comes_from_site_id_else_the_data_access_group_else_the_manifest(tmp_path: Path) -> None:
    records = base_export()
    patient_rows = records["redcap_repeat_instrument"] == ""
    records.insert(3, "redcap_data_access_group", records["record_id"].map({"P1": "dag1", "P2": ""}))
    records.insert(4, "site_id", "")
    records.loc[patient_rows & (records["record_id"] == "P1"), "site_id"] = "field1"
    dictionary = dictionary_with({"Variable / Field Name": "site_id", "Field Type": "dropdown"})
    drop = parse(tmp_path, records, dictionary, {"source": "redcap", "site_id": "manifest1"})
    for table in ("patients", "treatments", "assessments"):
        sites = drop.tables[table].groupby("patient_id")["site_id"].unique().map(list).to_dict()
        assert sites == {"P1": ["field1"], "P2": ["manifest1"]}, table
    without_any = records.drop(columns=["redcap_data_access_group", "site_id"])
    with pytest.raises(DropRejected, match="nothing names the site"):
        parse(tmp_path / "again", without_any, manifest={"source": "redcap"})


def test_every_flat_row_yields_table_rows_numbered_as_in_the_export(tmp_path: Path) -> None:
    records = base_export()
    empty = (records["redcap_repeat_instrument"] == "sunnybrook") & (records["record_id"] == "P2")
    records.loc[empty, [c for c in records.columns if c.startswith("sb_") and c != "sb_visit_day"]] = ""
    drop = parse(tmp_path, records)
    numbers = pd.concat([frame["row_number"] for frame in drop.tables.values()])
    assert sorted(numbers.unique()) == list(range(2, len(records) + 2))
    # An instrument instance with nothing given is one row, quarantined for that reason, not dropped.
    position = drop.tables["assessments"].index[drop.tables["assessments"]["row_number"] == empty.idxmax() + 2]
    assert len(position) == 1
    assert [r.rule for r in drop.row_rules["assessments"][int(position[0])]] == ["redcap_instance_empty"]
    assert drop.tables["treatments"]["treatment_id"].tolist() == ["1", "2", "1"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.drop(columns=["sb_composite"]), "lacks field(s) of the shipped data dictionary: sb_composite"),
        (lambda r: r.drop(columns=["eface_complete"]), "lacks field(s) of the shipped data dictionary: eface_complete"),
        (lambda r: r.replace({"redcap_repeat_instrument": {"treatment": "visit"}}), "none of the project's repeating"),
    ],
)
def test_an_export_of_another_project_shape_is_rejected(tmp_path: Path, change, expected: str) -> None:
    assert expected in refusal(tmp_path, change(base_export()))


def test_an_unknown_source_in_the_manifest_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DropRejected, match="names no source"):
        parse(tmp_path, base_export(), manifest={"source": "openclinica"})


def test_a_redcap_export_without_its_manifest_source_is_told_what_to_add(tmp_path: Path) -> None:
    with pytest.raises(DropRejected, match='"source": "redcap"'):
        parse(tmp_path, base_export(), manifest={"site_id": "s1"})


def test_the_identifier_screen_names_the_redcap_field_and_row(tmp_path: Path) -> None:
    records = base_export()
    treatment_rows = records.index[records["redcap_repeat_instrument"] == "treatment"]
    records.loc[treatment_rows[1], "tx_target"] = "call jane.doe@example.org"
    drop = parse(tmp_path, records)
    with pytest.raises(DropRejected) as refused:
        screen_drop(drop)
    message = str(refused.value)
    assert f"{RECORDS}, column tx_target: email ({row_list([int(treatment_rows[1]) + 2])})" in message
    assert "jane.doe" not in message


# Contract 1.2: the optional complication form.

COMPLICATIONS_HEADER = "patient_id,site_id,complication_id,treatment_id,day,code,grade,resolved_day"


def export_with_complications(rows: list[str]) -> pd.DataFrame:
    """The small site's export with complication instances (treatment_id: the treatment's instance)."""
    base = base_export()
    cx = pd.read_csv(io.StringIO(csv_text(COMPLICATIONS_HEADER, rows)), dtype=str, keep_default_na=False)
    treatments = base[base["redcap_repeat_instrument"] == "treatment"]
    patients = pd.read_csv(io.StringIO(csv_text(PATIENTS_HEADER, BASE_PATIENTS)), dtype=str, keep_default_na=False)
    tx = pd.read_csv(io.StringIO(csv_text(TREATMENTS_HEADER, BASE_TREATMENTS)), dtype=str, keep_default_na=False)
    assert len(treatments) == len(tx)
    assessments = sunnybrook_rows("P1", 0) + sunnybrook_rows("P1", 90) + sunnybrook_rows("P2", 0)
    return flat_export(patients, tx, pd.read_csv(io.StringIO(csv_text(ASSESSMENTS_HEADER, assessments)), dtype=str), cx)


def test_complication_instances_become_the_complications_table_numbered_as_in_the_export(tmp_path: Path) -> None:
    # P1's treatments are instances 1 (BoNT) and 2 (PT); a complication names one by its instance.
    records = export_with_complications(["P1,s1,1,1,20,eyelid_ptosis,,50", "P2,s1,1,,9,brow_ptosis,,"])
    drop = parse(tmp_path, records)
    table = drop.tables["complications"]
    cx_rows = records.index[records["redcap_repeat_instrument"] == "complication"] + 2
    assert table[["patient_id", "treatment_id", "day", "code", "row_number"]].fillna("-").values.tolist() == [
        ["P1", "1", "20", "eyelid_ptosis", cx_rows[0]],
        ["P2", "-", "9", "brow_ptosis", cx_rows[1]],
    ]
    assert drop.files["complications"].file == RECORDS
    # An export of a project built before 1.2 has no complication form: no complications table at all.
    assert "complications" not in parse(tmp_path / "old", base_export()).tables


def test_an_export_with_part_of_the_complication_form_is_refused(tmp_path: Path) -> None:
    records = export_with_complications(["P1,s1,1,1,20,eyelid_ptosis,,50"]).drop(columns=["cx_grade"])
    message = refusal(tmp_path, records)
    assert RECORDS in message and "cx_grade" in message and "eyelid_ptosis" not in message


def test_complication_row_faults_are_quarantined_at_their_redcap_row(tmp_path: Path) -> None:
    home = DataHome.resolve(tmp_path / "home").ensure()
    # P1's treatments are instances 1 and 2: instance 9 is none of them; the third is an incomplete form.
    records = export_with_complications(
        ["P1,s1,1,1,20,eyelid_ptosis,,50", "P1,s1,2,9,20,dry_eye,,", "P2,s1,1,1,9,brow_ptosis,,"]
    )
    is_cx = records["redcap_repeat_instrument"] == "complication"
    records.loc[records.index[is_cx][2], "complication_complete"] = "0"
    write_redcap_drop(home.landing / "d1", records)
    summary = ingest_landing(home)
    assert summary.drops[0].status == "loaded", summary.lines()
    flat_rows = [int(i) + 2 for i in records.index[is_cx]]  # the header is row 1
    con = duckdb.connect(str(home.store_path), read_only=True)
    try:
        quarantined = con.execute("SELECT file, row_number, rule FROM quarantine ORDER BY row_number").fetchall()
        loaded = con.execute("SELECT patient_id, complication_id, treatment_id FROM complications_history").fetchall()
    finally:
        con.close()
    assert quarantined == [(RECORDS, flat_rows[1], "unknown_treatment"), (RECORDS, flat_rows[2], INCOMPLETE_RULE)]
    assert loaded == [("P1", "1", "1")]
    assert "dry_eye" not in " ".join(summary.lines())


def test_a_complication_instance_dated_before_its_treatment_is_quarantined_and_not_counted(tmp_path: Path) -> None:
    home = DataHome.resolve(tmp_path / "home").ensure()
    # P1's instance 2 is physical therapy on day 10, P2's instance 1 BoNT on day 5: a dry eye 5 days before the
    # therapy, a brow ptosis 3 days before the injection; P1's eyelid ptosis 20 days after instance 1 counts.
    records = export_with_complications(
        ["P1,s1,1,1,20,eyelid_ptosis,,50", "P1,s1,2,2,5,dry_eye,,", "P2,s1,1,1,2,brow_ptosis,,"]
    )
    write_redcap_drop(home.landing / "d1", records)
    summary = ingest_landing(home)
    assert summary.drops[0].status == "loaded", summary.lines()
    flat_rows = [int(i) + 2 for i in records.index[records["redcap_repeat_instrument"] == "complication"]]
    con = duckdb.connect(str(home.store_path), read_only=True)
    try:
        quarantined = con.execute("SELECT file, row_number, rule, columns FROM quarantine ORDER BY ALL").fetchall()
    finally:
        con.close()
    assert quarantined == [
        (RECORDS, flat_rows[1], "day_before_treatment", "day, treatment_id"),
        (RECORDS, flat_rows[2], "day_before_treatment", "day, treatment_id"),
    ]
    publish_warehouse(home)
    counted = warehouse(home, "SELECT group_code, code, patients_with FROM complication_rates WHERE patients_with > 0")
    # P1's, under the combination BTX+PT and the modality BTX: nothing of P2's brow ptosis or the dry eye.
    assert sorted(map(tuple, counted.itertuples(index=False))) == [
        ("BTX", "eyelid_ptosis", 1),
        ("BTX+PT", "eyelid_ptosis", 1),
    ]
