"""The attack battery: exports as a careless clinic or a hostile file would send them.

Each test starts from a data home that loaded one clean generated drop, makes one attack the way it
was made against ``synk run``, and checks what must hold after any attack (``assert_holds``): the
ledger balances, no refused value is outside ``archive/`` and the staging store, the next clean
drop loads, and the warehouse equals the clean reference (at once, where the attack should change
nothing). Real files, a real store, real GX, a real warehouse build.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.cli import build_parser, machine_fault
from pipeline.cli import main as synk
from pipeline.contract import COLUMNS, FILES
from pipeline.csv_safety import neutralise_formulas, write_csv
from pipeline.errors import PipelineError
from pipeline.ingest.drops import IngestSummary, ingest_landing
from pipeline.ingest.receive import refused_id
from pipeline.ingest.screening import screen_frame
from pipeline.settings import DataHome
from pipeline.stages import raise_refusals
from pipeline.status import status_lines
from pipeline.tools.synthetic import generate_drop
from pipeline.warehouse import build_and_publish

SITE = "clinic_a"
CLEAN = "clinic_a-2026-11"
PATIENTS = 40
NEXT_EXPORT = date.today().isoformat()  # the next clean drop: exported after anything an attack sends (2026-12)


# --- the clean start and the reference ---------------------------------------------------------


def write_clean(folder: Path, site: str = SITE, patients: int = PATIENTS, **manifest: object) -> Path:
    """The clean generated drop (the same rows every time), its manifest amended."""
    generate_drop(folder, patients=patients, seed=21, site=site)
    path = folder / "manifest.json"
    content = json.loads(path.read_text())
    content.pop("generator")
    content.update(manifest)
    path.write_text(json.dumps(content))
    return folder


def contract_tables(home: DataHome) -> dict[str, list[tuple]]:
    """The published warehouse's patients, treatments and assessments, contract columns, sorted."""
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        return {
            table: con.execute(
                f"SELECT {', '.join(repr(c.name).replace(chr(39), chr(34)) for c in COLUMNS[table])} "
                f"FROM {table} ORDER BY ALL"
            ).fetchall()
            for table in FILES
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def clean_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataHome, dict[str, list[tuple]]]:
    home = DataHome.resolve(tmp_path_factory.mktemp("clean") / "home").ensure()
    write_clean(home.landing / CLEAN)
    assert [d.status for d in ingest_landing(home).drops] == ["loaded"]
    build_and_publish(home)
    return home, contract_tables(home)


@pytest.fixture
def attacked(clean_home, tmp_path: Path) -> DataHome:
    """A copy of the clean data home for one attack."""
    source, _ = clean_home
    home = DataHome(tmp_path / "home")
    shutil.copytree(source.root, home.root)
    return home


@pytest.fixture
def reference(clean_home) -> dict[str, list[tuple]]:
    return clean_home[1]


def store_rows(home: DataHome, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(home.store_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def run(home: DataHome) -> IngestSummary:
    """What ``synk run`` does before the models: ingest, then publish."""
    summary = ingest_landing(home)
    build_and_publish(home)
    return summary


def result_of(summary: IngestSummary, drop_id: str):
    return next(d for d in summary.drops if d.drop_id == drop_id)


# --- what holds after every attack --------------------------------------------------------------


def _published_text(home: DataHome) -> str:
    """Everything published or shown, as text: every file the pipeline wrote outside archive/ and the
    staging store (the warehouse read table by table), and what ``synk status`` prints."""
    parts = ["\n".join(status_lines(home))]
    for path in home.root.rglob("*"):
        relative = path.relative_to(home.root)
        # landing/ holds the drops as delivered; archive/ and the store keep them, for the coordinator.
        if not path.is_file() or relative.parts[0] in ("landing", "archive") or path.name.startswith("store.duckdb"):
            continue
        if path.suffix == ".duckdb":
            con = duckdb.connect(str(path), read_only=True)
            try:
                for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
                    parts.append(con.execute(f'SELECT * FROM "{table}"').df().to_csv())
            finally:
                con.close()
        else:
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def assert_holds(
    home: DataHome,
    reference: dict[str, list[tuple]],
    secrets: tuple[str, ...] = (),
    logs: str = "",
    unchanged: bool = True,
) -> None:
    """After any attack: the ledger balances, no refused value is outside archive/ and the staging
    store (nor in a log), the warehouse equals the clean reference where the attack should change
    nothing, and the next clean drop loads and brings the warehouse back to the reference."""
    assert home.warehouse_path.exists()
    ledger = store_rows(home, "SELECT drop_id, file, status, rows_in, rows_loaded, rows_quarantined FROM load_ledger")
    for drop_id, file, status, rows_in, rows_loaded, rows_quarantined in ledger:
        assert rows_in == rows_loaded + rows_quarantined, (drop_id, file)
        if status != "loaded":
            assert rows_loaded == 0, (drop_id, file)
    # Every quarantined row of a loaded file is in the quarantine table.
    for drop_id, file, quarantined in store_rows(
        home, "SELECT drop_id, file, sum(rows_quarantined) FROM load_ledger WHERE status = 'loaded' GROUP BY ALL"
    ):
        held = store_rows(
            home, "SELECT count(DISTINCT row_number) FROM quarantine WHERE drop_id = ? AND file = ?", [drop_id, file]
        )[0][0]
        assert held == quarantined, (drop_id, file)
    published = _published_text(home)
    for secret in secrets:
        assert secret not in published, f"a refused value is published: {secret!r}"
        assert secret not in logs, f"a refused value is in a log or message: {secret!r}"
    if unchanged:
        assert contract_tables(home) == reference
    write_clean(home.landing / "next-clean", exported_on=NEXT_EXPORT)
    summary = run(home)
    assert result_of(summary, "next-clean").status == "loaded", result_of(summary, "next-clean").message
    assert contract_tables(home) == reference


def messages(summary: IngestSummary) -> str:
    return "\n".join(summary.lines())


# --- 1. a partial export must not empty a site: every table is guarded --------------------------


def test_a_full_snapshot_with_assessments_cut_to_its_header_is_held(attacked, reference, caplog) -> None:
    drop = write_clean(attacked.landing / "cut-assessments")
    (drop / "assessments.csv").write_text((drop / "assessments.csv").read_text().splitlines()[0] + "\n")
    summary = run(attacked)
    result = result_of(summary, "cut-assessments")
    assert result.status == "held"
    assert f"of site {SITE}'s" in result.message and "current assessments" in result.message
    assert "confirm flag" not in result.message and "confirm_retire ticked" in result.message
    # The command the message names exists.
    assert "`synk run --drop cut-assessments --confirm-retire`" in result.message
    parsed = build_parser().parse_args(["run", "--drop", "cut-assessments", "--confirm-retire"])
    assert (parsed.drop, parsed.confirm_retire) == ("cut-assessments", True)
    assert_holds(attacked, reference, logs=caplog.text)


def test_a_full_snapshot_with_treatments_cut_to_a_tenth_is_held(attacked, reference, caplog) -> None:
    drop = write_clean(attacked.landing / "cut-treatments")
    lines = (drop / "treatments.csv").read_text().splitlines()
    (drop / "treatments.csv").write_text("\n".join(lines[: 1 + (len(lines) - 1) // 10]) + "\n")
    result = result_of(run(attacked), "cut-treatments")
    assert result.status == "held" and "current treatments" in result.message
    assert "current patients" not in result.message  # every patient is still there
    assert_holds(attacked, reference, logs=caplog.text)


# --- 2. a file seen before is loaded again: a checksum is not the site's current truth ----------


def test_an_original_sent_again_after_a_retiring_snapshot_brings_its_patients_back(attacked, reference) -> None:
    # B: a full snapshot without 6 of the 40 patients (15%, under the hold), which retires them.
    smaller = write_clean(attacked.landing / "b-smaller")
    patients = pd.read_csv(smaller / "patients.csv", dtype=str, keep_default_na=False)
    # The six with the fewest treatments: their treatments too stay under the hold's 20%.
    treated = pd.read_csv(smaller / "treatments.csv", dtype=str, keep_default_na=False)["patient_id"].value_counts()
    gone = set(sorted(patients["patient_id"], key=lambda p: (treated.get(p, 0), p))[:6])
    patients[~patients["patient_id"].isin(gone)].to_csv(smaller / "patients.csv", index=False, lineterminator="\n")
    for table in ("treatments", "assessments"):
        frame = pd.read_csv(smaller / f"{table}.csv", dtype=str, keep_default_na=False)
        frame[~frame["patient_id"].isin(gone)].to_csv(smaller / f"{table}.csv", index=False, lineterminator="\n")
    content = json.loads((smaller / "manifest.json").read_text())
    content.pop("exported_on")  # no exported_on: taken in the order it arrives
    (smaller / "manifest.json").write_text(json.dumps(content))
    assert result_of(run(attacked), "b-smaller").status == "loaded"
    assert len(contract_tables(attacked)["patients"]) == PATIENTS - 6
    # A again, byte for byte, as a new drop: the clinic now says 40 again.
    resent = attacked.landing / "a-again"
    shutil.copytree(attacked.landing / CLEAN, resent)
    content = json.loads((resent / "manifest.json").read_text())
    content.pop("exported_on")
    (resent / "manifest.json").write_text(json.dumps(content))
    result = result_of(run(attacked), "a-again")
    assert result.status == "loaded" and result.rows_loaded > 0
    assert contract_tables(attacked) == reference
    statuses = store_rows(attacked, "SELECT DISTINCT status FROM load_ledger WHERE drop_id = 'a-again'")
    assert statuses == [("loaded",)]  # not "duplicate", not rows_in 0
    assert_holds(attacked, reference)


# --- 3. exported_on orders the snapshots of a site ----------------------------------------------


def test_an_older_export_arriving_after_a_newer_one_is_held_and_the_correction_stays(attacked, reference) -> None:
    newer = write_clean(attacked.landing / "b-corrected", exported_on="2026-12-01", snapshot="incremental")
    patients = pd.read_csv(newer / "patients.csv", dtype=str, keep_default_na=False)
    first = patients.iloc[[0]].copy()
    old_age = first["age_at_onset"].iloc[0]
    first["age_at_onset"] = str(int(old_age) + 2)
    first.to_csv(newer / "patients.csv", index=False, lineterminator="\n")
    for table in ("treatments", "assessments"):
        (newer / f"{table}.csv").write_text((newer / f"{table}.csv").read_text().splitlines()[0] + "\n")
    assert result_of(run(attacked), "b-corrected").status == "loaded"
    # The original export (exported 2026-11-20) sent again after the correction.
    stale = attacked.landing / "a-stale"
    shutil.copytree(attacked.landing / CLEAN, stale)
    result = result_of(run(attacked), "a-stale")
    assert result.status == "held"
    assert "exported on 2026-11-20, before drop b-corrected (exported on 2026-12-01)" in result.message
    patient = first["patient_id"].iloc[0]
    ages = store_rows(
        attacked, "SELECT age_at_onset FROM patients_history WHERE patient_id = ? AND valid_to IS NULL", [patient]
    )
    assert ages == [(int(old_age) + 2,)]
    assert_holds(attacked, reference, unchanged=False)


@pytest.mark.parametrize("exported_on", ["2999-12-31", "2062-11-20", "in two days"])
def test_an_export_dated_in_the_future_is_refused_and_the_sites_next_export_loads(
    attacked, reference, exported_on: str
) -> None:
    if exported_on == "in two days":  # one day ahead is a clinic's time zone; two is not
        exported_on = (date.today() + timedelta(days=2)).isoformat()
    write_clean(attacked.landing / "typo-future", exported_on=exported_on)
    result = result_of(run(attacked), "typo-future")
    assert result.status == "rejected", result.message
    assert "manifest.json field 'exported_on'" in result.message and "rule exported_on_future" in result.message
    assert "send the drop again as a new folder" in result.message
    # Loaded, it would have held every genuine export of the site: assert_holds loads the next one.
    assert_holds(attacked, reference)


def test_an_export_dated_tomorrow_loads(attacked, reference) -> None:
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    write_clean(attacked.landing / "east-of-here", exported_on=tomorrow, snapshot="incremental")
    assert result_of(run(attacked), "east-of-here").status == "loaded"


def test_a_site_blocked_by_a_future_drop_loaded_before_the_rule_loads_its_next_export(attacked, reference) -> None:
    # As an earlier version recorded it: the clean drop loaded with an exported_on of 2999.
    con = duckdb.connect(str(attacked.store_path))
    try:
        con.execute(
            'UPDATE drops SET summary = json_merge_patch(summary, \'{"exported_on": "2999-12-31"}\') WHERE drop_id = ?',
            [CLEAN],
        )
    finally:
        con.close()
    assert store_rows(attacked, "SELECT json_extract_string(summary, '$.exported_on') FROM drops") == [("2999-12-31",)]
    assert_holds(attacked, reference)  # its next genuine export loads, not held as older


# --- 4. a drop is read when it says it is ready ------------------------------------------------


def test_a_drop_still_being_written_waits_until_its_manifest_listing_is_met(attacked, reference, tmp_path) -> None:
    source = write_clean(tmp_path / "outside" / "being-written")
    listing = {
        name: {"bytes": (source / name).stat().st_size}
        for name in ("patients.csv", "treatments.csv", "assessments.csv")
    }
    content = json.loads((source / "manifest.json").read_text())
    (source / "manifest.json").write_text(json.dumps({**content, "files": listing}))
    drop = attacked.landing / "being-written"
    shutil.copytree(source, drop)
    # The copy is cut at a line end halfway through the assessments.
    text = (source / "assessments.csv").read_text()
    (drop / "assessments.csv").write_text(text[: text.index("\n", len(text) // 2) + 1])
    result = result_of(run(attacked), "being-written")
    assert result.status == "waiting" and "assessments.csv has" in result.message
    assert store_rows(attacked, "SELECT count(*) FROM load_ledger WHERE drop_id = 'being-written'") == [(0,)]
    assert contract_tables(attacked) == reference
    # Finished: it loads whole (the same rows as the clean drop: nothing changes).
    shutil.copyfile(source / "assessments.csv", drop / "assessments.csv")
    result = result_of(run(attacked), "being-written")
    assert result.status == "loaded" and result.rows_quarantined == 0
    assert_holds(attacked, reference)


def test_a_drop_whose_file_differs_from_its_listing_is_refused(attacked, reference) -> None:
    drop = write_clean(attacked.landing / "wrong-listing")
    content = json.loads((drop / "manifest.json").read_text())
    listing = {"patients.csv": {"sha256": "0" * 64}, "treatments.csv": {}, "assessments.csv": {"bytes": 1}}
    (drop / "manifest.json").write_text(json.dumps({**content, "files": listing}))
    result = result_of(run(attacked), "wrong-listing")
    assert result.status == "rejected" and "manifest.json field 'files'" in result.message
    listing["treatments.csv"] = {"bytes": (drop / "treatments.csv").stat().st_size}
    (drop / "manifest.json").write_text(json.dumps({**content, "files": listing}))
    result = result_of(run(attacked), "wrong-listing")
    assert result.status == "rejected"
    assert "patients.csv differs from the size or sha256" in result.message
    assert_holds(attacked, reference)


# --- 5. the manifest's site is the rows' site --------------------------------------------------


def test_a_manifest_naming_another_site_than_its_rows_retires_nothing(attacked, reference) -> None:
    write_clean(attacked.landing / "clinic_b-2026-11", site="clinic_b", patients=15)
    assert result_of(run(attacked), "clinic_b-2026-11").status == "loaded"
    before = contract_tables(attacked)
    write_clean(attacked.landing / "mislabelled", site_id="clinic_b", confirm_retire=True)
    result = result_of(run(attacked), "mislabelled")
    assert result.status == "rejected"
    assert "manifest.json's site_id is not the site of its rows: patients.csv, column site_id (rows 2," in (
        result.message
    )
    assert contract_tables(attacked) == before  # clinic_b keeps all 15 patients
    # The reference has no clinic_b: retire it with a confirmed empty snapshot before the common checks.
    closed = attacked.landing / "clinic_b-closed"
    closed.mkdir()
    for table in FILES:
        (closed / f"{table}.csv").write_text(",".join(c.name for c in COLUMNS[table]) + "\n")
    (closed / "manifest.json").write_text(json.dumps({"site_id": "clinic_b", "confirm_retire": True}))
    assert result_of(run(attacked), "clinic_b-closed").status == "loaded"
    assert_holds(attacked, reference)


# --- 6. drop ids are unique as received ---------------------------------------------------------


def test_a_refused_folder_named_like_a_loaded_drop_leaves_that_drop_alone(attacked, reference) -> None:
    write_clean(attacked.landing / "clinic_a_2026", exported_on="2026-11-21")
    assert result_of(run(attacked), "clinic_a_2026").status == "loaded"
    write_clean(attacked.landing / "clinic_a 2026", exported_on="2026-11-22")
    summary = run(attacked)
    assert result_of(summary, refused_id("clinic_a 2026")).status == "rejected"
    assert result_of(summary, "clinic_a_2026").status == "unchanged"
    assert store_rows(attacked, "SELECT status FROM drops WHERE drop_id = 'clinic_a_2026'") == [("loaded",)]
    # Later runs: the loaded drop stays unchanged (never re-ingested), the refusal is told once.
    assert {d.status for d in run(attacked).drops} == {"unchanged"}
    assert_holds(attacked, reference)


# --- 7. a refusal names columns by position, never a cell ---------------------------------------


def test_a_patients_file_without_its_header_row_is_refused_without_quoting_its_first_row(
    attacked, reference, caplog
) -> None:
    drop = write_clean(attacked.landing / "no-header")
    lines = (drop / "patients.csv").read_text().splitlines()
    secret = "Jane Roe,555-867-5309,1961"
    (drop / "patients.csv").write_text("\n".join([f"P000001,{SITE},{secret},R,bell,2020", *lines[2:]]) + "\n")
    summary = run(attacked)
    with pytest.raises(PipelineError) as refusal:
        raise_refusals(summary.as_dict())
    reason = store_rows(attacked, "SELECT reason FROM drops WHERE drop_id = 'no-header'")[0][0]
    assert "patients.csv has no header row: none of the 8 field(s) of its first row" in reason
    assert_holds(attacked, reference, secrets=("Jane Roe", "555-867-5309"), logs=caplog.text + str(refusal.value))


def test_a_hard_link_to_a_system_file_is_refused_without_printing_its_first_line(
    attacked, reference, caplog, tmp_path
) -> None:
    system_file = tmp_path / "shadow"
    system_file.write_text("root:$6$secret-hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    drop = write_clean(attacked.landing / "linked-file")
    (drop / "patients.csv").unlink()
    os.link(system_file, drop / "patients.csv")
    result = result_of(run(attacked), "linked-file")
    assert result.status == "rejected" and "patients.csv has no header row" in result.message
    assert_holds(attacked, reference, secrets=("secret-hash", "daemon:*"), logs=caplog.text + messages(run(attacked)))


# --- 8. the screen's forms, one test each; quarantined rows are never published raw -------------

SCREENED_CELLS = {
    "iso datetime": "2024-03-05T10:00",
    "compact date": "20240305",
    "month and year": "March 2024",
    "month-day-year": "Mar-05-2024",
    "day-month-year glued": "05MAR2024",
    "ssn digits only": "123456789",
    "ssn with spaces": "123 45 6789",
    "us phone digits only": "5551234567",
    "uk phone with spaces": "020 7946 0018",
    "uk mobile": "07700900123",
    "zip plus four": "02115-1234",
}


@pytest.mark.parametrize("cell", list(SCREENED_CELLS.values()), ids=list(SCREENED_CELLS))
def test_the_screen_refuses_each_form_of_identifier_in_a_cell(attacked, reference, caplog, cell: str) -> None:
    drop = write_clean(attacked.landing / "screened")
    treatments = pd.read_csv(drop / "treatments.csv", dtype=str, keep_default_na=False)
    treatments.loc[3, "target"] = cell
    treatments.to_csv(drop / "treatments.csv", index=False, lineterminator="\n")
    result = result_of(run(attacked), "screened")
    assert result.status == "rejected" and "treatments.csv, column target" in result.message
    assert "(row 5)" in result.message
    assert_holds(attacked, reference, secrets=(cell,), logs=caplog.text + result.message)


@pytest.mark.parametrize("age", ["٩٧", "97 years", "１０２"], ids=["arabic-indic digits", "with a unit", "fullwidth"])
def test_the_screen_refuses_an_age_over_89_in_any_spelling(attacked, reference, caplog, age: str) -> None:
    drop = write_clean(attacked.landing / "old-age")
    patients = pd.read_csv(drop / "patients.csv", dtype=str, keep_default_na=False)
    patients.loc[0, "age_at_onset"] = age
    patients.to_csv(drop / "patients.csv", index=False, lineterminator="\n")
    result = result_of(run(attacked), "old-age")
    assert result.status == "rejected" and "age over 89 not top coded (row 2)" in result.message
    assert_holds(attacked, reference, secrets=(age,), logs=caplog.text)


def test_the_screen_refuses_a_date_like_patient_id(attacked, reference, caplog) -> None:
    drop = write_clean(attacked.landing / "dated-id")
    for table in FILES:
        frame = pd.read_csv(drop / f"{table}.csv", dtype=str, keep_default_na=False)
        frame["patient_id"] = frame["patient_id"].replace({"P000001": "P20240305"})
        frame.to_csv(drop / f"{table}.csv", index=False, lineterminator="\n")
    result = result_of(run(attacked), "dated-id")
    assert result.status == "rejected" and "patients.csv, column patient_id: calendar date" in result.message
    assert_holds(attacked, reference, secrets=("P20240305",), logs=caplog.text)


def test_a_quarantined_rows_cells_stay_in_the_staging_store(attacked, reference, caplog) -> None:
    drop = write_clean(attacked.landing / "odd-cells", snapshot="incremental")
    patients = pd.read_csv(drop / "patients.csv", dtype=str, keep_default_na=False)
    patients.loc[0, "sex"] = "Roewald"  # slips the screen (no pattern), breaks a row rule
    patients.loc[1, "etiology"] = "Kowalczyk"
    patients.to_csv(drop / "patients.csv", index=False, lineterminator="\n")
    result = result_of(run(attacked), "odd-cells")
    assert result.status == "loaded" and result.rows_quarantined >= 2
    con = duckdb.connect(str(attacked.warehouse_path), read_only=True)
    try:
        assert "row" not in [c[0] for c in con.execute("DESCRIBE quarantine").fetchall()]
        assert con.execute("SELECT count(*) FROM quarantine WHERE drop_id = 'odd-cells'").fetchone()[0] >= 2
    finally:
        con.close()
    # The coordinator still has the row, in the staging store.
    rows = store_rows(attacked, "SELECT \"row\" FROM quarantine WHERE drop_id = 'odd-cells' ORDER BY row_number")
    assert '"Roewald"' in rows[0][0]
    assert attacked.data_docs_index.exists()
    assert_holds(attacked, reference, secrets=("Roewald", "Kowalczyk"), logs=caplog.text)


# --- 9. names are screened like cells; no CSV cell is a formula ---------------------------------


@pytest.mark.parametrize(
    "name",
    ["555-867-5309.csv", "123-45-6789 notes.csv", '=HYPERLINK("x.test","open")', "@SUM(A1)"],
    ids=["phone", "ssn", "hyperlink formula", "sum formula"],
)
def test_a_file_name_is_screened_like_a_cell(attacked, reference, caplog, name: str) -> None:
    drop = write_clean(attacked.landing / "named-file")
    (drop / name).write_text("x\n")
    result = result_of(run(attacked), "named-file")
    assert result.status == "rejected" and "a file the contract does not know: withheld-file-name~" in result.message
    stem = name.split(".")[0].split(" ")[0]
    assert_holds(attacked, reference, secrets=(stem,), logs=caplog.text)


def test_a_folder_name_holding_a_phone_number_is_refused_under_a_withheld_id(attacked, reference, caplog) -> None:
    write_clean(attacked.landing / "clinic-555-867-5309")
    summary = run(attacked)
    refused = [d for d in summary.drops if d.status == "rejected"]
    assert len(refused) == 1 and "looks like it holds an identifier (phone number)" in refused[0].message
    assert refused[0].drop_id.startswith("withheld-folder-name~")
    assert_holds(attacked, reference, secrets=("867-5309", "8675309"), logs=caplog.text + messages(summary))


def test_every_csv_the_report_writes_neutralises_formula_prefixes(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "file": ['=HYPERLINK("http://x.test")', "@SUM(A1)", "+cmd|' /C calc'!A0", "-x~1234", "patients.csv"],
            "estimate": ["-1.2 (-3.4 to 0.5)", "+0.5", "3", "<11", "-0.25"],
        }
    )
    write_csv(frame, tmp_path / "t.csv")
    cells = pd.read_csv(tmp_path / "t.csv", dtype=str)
    assert cells["file"].tolist() == [
        '\'=HYPERLINK("http://x.test")',
        "'@SUM(A1)",
        "'+cmd|' /C calc'!A0",
        "'-x~1234",
        "patients.csv",
    ]
    assert cells["estimate"].tolist() == frame["estimate"].tolist()  # numbers stay numbers
    assert neutralise_formulas(pd.DataFrame({"=bad": [1]})).columns.tolist() == ["'=bad"]


# --- 10. one bad value does not stop everything -------------------------------------------------


@pytest.mark.parametrize("day", ["1.5", "99999999999999999999"], ids=["fraction", "twenty digits"])
def test_a_visit_day_no_integer_can_hold_is_quarantined_and_the_next_drop_loads(
    attacked, reference, caplog, day: str
) -> None:
    drop = write_clean(attacked.landing / "odd-day")
    assessments = pd.read_csv(drop / "assessments.csv", dtype=str, keep_default_na=False)
    assessments.loc[0, "visit_day"] = day
    assessments.to_csv(drop / "assessments.csv", index=False, lineterminator="\n")
    result = result_of(run(attacked), "odd-day")
    assert result.status == "loaded" and result.rows_quarantined >= 1, result.message
    assert_holds(attacked, reference, logs=caplog.text, unchanged=False)


def test_a_deeply_nested_manifest_is_refused_with_a_sentence(attacked, reference) -> None:
    drop = write_clean(attacked.landing / "nested-manifest")
    (drop / "manifest.json").write_text("[" * 20_000 + "]" * 20_000)  # 40 KB: under the size cap
    result = result_of(run(attacked), "nested-manifest")
    assert result.status == "rejected" and "manifest.json is not valid UTF-8 JSON (RecursionError)" in result.message
    assert_holds(attacked, reference)


# --- 11. linear-time screen, a cell length limit, a lock that says it waits ---------------------


def test_a_100_kb_cell_is_refused_in_well_under_a_second(attacked, reference, caplog) -> None:
    drop = write_clean(attacked.landing / "long-cell")
    treatments = pd.read_csv(drop / "treatments.csv", dtype=str, keep_default_na=False)
    treatments.loc[0, "target"] = "a" * 100_000
    treatments.to_csv(drop / "treatments.csv", index=False, lineterminator="\n")
    started = time.monotonic()
    result = result_of(ingest_landing(attacked), "long-cell")
    assert time.monotonic() - started < 20  # the parse and archive; the screen itself is instant
    assert result.status == "rejected" and "cell longer than 256 characters (row 2)" in result.message
    build_and_publish(attacked)
    assert_holds(attacked, reference, secrets=("a" * 300,), logs=caplog.text)


@pytest.mark.parametrize("cell", ["a" * 100_000, "a." * 50_000, "a@" * 50_000, "1-" * 50_000])
def test_every_screen_pattern_is_linear_in_the_cell(cell: str) -> None:
    started = time.monotonic()
    screen_frame("treatments.csv", pd.DataFrame({"target": [cell], "row_number": [2]}))
    assert time.monotonic() - started < 2  # the old e-mail pattern took a minute on 100 KB


def test_a_load_waiting_on_the_writer_lock_says_so(attacked, reference, caplog) -> None:
    caplog.set_level(logging.WARNING)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "handle = open(sys.argv[1], 'a+'); fcntl.flock(handle, fcntl.LOCK_EX)\n"
            "print('held', flush=True); time.sleep(3)\n",
            str(attacked.lock_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        ingest_landing(attacked)
    finally:
        holder.wait(timeout=30)
    assert "Another load (process" in caplog.text and "waiting for it to finish" in caplog.text
    assert_holds(attacked, reference)


# --- 12. limits on decompressed size and rows --------------------------------------------------


def test_a_small_gzip_that_expands_past_the_limit_is_refused_unread(attacked, reference) -> None:
    (attacked.root / "ingest.json").write_text(json.dumps({"max_file_mib": 2}))
    drop = write_clean(attacked.landing / "bomb")
    (drop / "assessments.csv").unlink()
    header = "patient_id,site_id,visit_day,instrument,item,value\n"
    (drop / "assessments.csv.gz").write_bytes(gzip.compress(header.encode() + b"\n" * (3 << 20), mtime=0))
    assert (drop / "assessments.csv.gz").stat().st_size < 10_000
    result = result_of(run(attacked), "bomb")
    assert result.status == "rejected"
    assert "assessments.csv.gz is larger than 2 MiB once decompressed (the ingest limit max_file_mib)" in result.message
    (attacked.root / "ingest.json").unlink()
    assert_holds(attacked, reference)


def test_a_file_with_more_rows_than_the_limit_is_refused(attacked, reference) -> None:
    (attacked.root / "ingest.json").write_text(json.dumps({"max_rows_per_file": 100}))
    write_clean(attacked.landing / "too-long")
    result = result_of(run(attacked), "too-long")
    assert result.status == "rejected" and "assessments.csv has more than 100 lines" in result.message
    assert "patients.csv" not in result.message  # 41 lines: within the limit
    (attacked.root / "ingest.json").unlink()
    assert_holds(attacked, reference)


# --- 13. sentences, not tracebacks; nothing quietly green ---------------------------------------


def test_a_corrupt_store_is_a_sentence(attacked, capsys) -> None:
    attacked.store_path.write_bytes(b"this is not a duckdb file" * 1000)
    assert synk(["status", "--home", str(attacked.root)]) == 1
    err = capsys.readouterr().err
    assert "cannot be opened" in err and "Restoring from the archive" in err and "Traceback" not in err


def test_status_while_another_process_writes_the_warehouse_is_a_sentence(attacked) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\ncon = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(20)\n",
            str(attacked.warehouse_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        lines = status_lines(attacked)
    finally:
        holder.kill()
        holder.wait()
    assert any("cannot be read now" in line for line in lines)


def test_a_data_home_whose_path_holds_an_apostrophe_publishes(clean_home, tmp_path, reference) -> None:
    home = DataHome(tmp_path / "o'brien's data")
    shutil.copytree(clean_home[0].root, home.root)
    assert_holds(home, reference)


def test_orphan_build_files_of_a_killed_build_are_removed(attacked) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = attacked.warehouse_dir / f".outcomes.{dead.stdout.strip()}.building.duckdb"
    orphan.write_bytes(b"half a warehouse")
    orphan.with_name(orphan.name + ".wal").write_bytes(b"")
    build_and_publish(attacked)
    assert not list(attacked.warehouse_dir.glob(".outcomes.*.building.duckdb*"))


def test_a_drop_whose_every_row_is_quarantined_fails_the_run(attacked, reference) -> None:
    drop = write_clean(attacked.landing / "all-bad", snapshot="incremental")
    for table in ("patients", "treatments"):
        (drop / f"{table}.csv").unlink()
    assessments = pd.read_csv(drop / "assessments.csv", dtype=str, keep_default_na=False).head(30)
    assessments["value"] = "999"
    assessments.to_csv(drop / "assessments.csv", index=False, lineterminator="\n")
    summary = run(attacked)
    result = result_of(summary, "all-bad")
    assert result.status == "loaded" and result.rows_loaded == 0 and result.rows_quarantined == 30
    # (The load-checks alert of issue 15: more than 5% of a file quarantined; here all of it.)
    with pytest.raises(PipelineError, match=r"assessments.csv had 30 of 30 rows quarantined \(100.0%"):
        raise_refusals(summary.as_dict())
    assert_holds(attacked, reference)


def test_files_refused_at_parse_count_their_rows_and_hidden_folders_are_named(attacked, reference) -> None:
    drop = write_clean(attacked.landing / "latin1")
    (drop / "patients.csv").write_bytes((drop / "patients.csv").read_bytes().replace(b"bell", b"b\xe9ll", 1))
    write_clean(attacked.landing / ".half-copied")
    summary = run(attacked)
    assert result_of(summary, "latin1").status == "rejected"
    rows = dict(store_rows(attacked, "SELECT file, rows_in FROM load_ledger WHERE drop_id = 'latin1'"))
    assert rows["patients.csv"] == PATIENTS and rows["assessments.csv"] > 0
    assert any(".half-copied" in line and "not read" in line for line in summary.lines())
    shutil.rmtree(attacked.landing / ".half-copied")
    assert_holds(attacked, reference)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MiB file system (tmpfs): a data home on it fills up during a run. Needs root to mount."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_run_on_a_full_disk_ends_in_a_sentence_and_finishes_once_there_is_room(
    small_disk, reference, capsys, caplog
) -> None:
    home = DataHome(small_disk / "home")
    write_clean(home.landing / CLEAN)
    assert synk(["run", "--home", str(home.root)]) == 1
    err = capsys.readouterr().err
    assert "the disk of the data home is full; nothing half-done was kept" in err
    assert "Traceback" not in err and "cannot rollback" not in err
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert {d.status for d in run(home).drops} <= {"loaded", "unchanged"}
    assert_holds(home, reference, logs=caplog.text)


def test_a_full_disk_is_a_sentence() -> None:
    sentence = machine_fault(OSError(28, "No space left on device"))
    assert "disk of the data home is full" in sentence and "No space left" not in sentence
    assert "Traceback" not in machine_fault(duckdb.IOException("could not write: No space left on device"))


def test_a_drop_that_breaks_the_load_is_refused_with_a_sentence_and_the_others_load(
    attacked, reference, caplog, monkeypatch
) -> None:
    """Whatever a future export finds (here a bug injected in validation: the one fault this test
    cannot make with a file, since every crash found is fixed), the drop is recorded and refused,
    without the error's text, and the drop after it loads."""
    import pipeline.ingest.drops

    real = pipeline.ingest.drops.validate_drop

    def breaks_on_one_drop(drop, *args, **kwargs):
        if drop.drop_id == "a-breaking":
            raise TypeError("cannot convert 'Jane Roe' to int")  # a message quoting a cell, as pandas' do
        return real(drop, *args, **kwargs)

    monkeypatch.setattr(pipeline.ingest.drops, "validate_drop", breaks_on_one_drop)
    write_clean(attacked.landing / "a-breaking")
    write_clean(attacked.landing / "b-after", exported_on="2026-11-21")
    summary = run(attacked)
    breaking = result_of(summary, "a-breaking")
    assert breaking.status == "rejected" and "its load failed with TypeError" in breaking.message
    assert result_of(summary, "b-after").status == "loaded"
    assert store_rows(attacked, "SELECT status FROM drops WHERE drop_id = 'a-breaking'") == [("rejected",)]
    assert {d.status for d in run(attacked).drops} == {"unchanged"}  # told once
    assert_holds(attacked, reference, secrets=("Jane Roe",), logs=caplog.text + messages(summary))
