import gzip
from pathlib import Path

import pytest

from pipeline.errors import DropRejected
from pipeline.ingest.receive import archive_file
from pipeline.sources.clinic_csv import read_table
from pipeline.sources.dispatch import parse_drop
from tests.conftest import PATIENTS_HEADER, csv_text


def received(tmp_path: Path, name: str, content: bytes):
    path = tmp_path / "drop" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return archive_file(path, tmp_path / "archive", "d1")


def test_reads_text_columns_with_spreadsheet_row_numbers(tmp_path: Path) -> None:
    text = "\ufeff" + csv_text(PATIENTS_HEADER, ["P1,s1,F,45,L,bell,2020,400", "", "P2,s1,M,,R,bell,2021,300"])
    frame = read_table("d1", "patients", received(tmp_path, "patients.csv", text.replace("\n", "\r\n").encode()))
    assert frame["patient_id"].tolist() == ["P1", "P2"]
    assert frame["row_number"].tolist() == [2, 4]  # header is row 1; the blank line keeps its number
    assert frame["age_at_onset"].isna().tolist() == [False, True]  # empty cell is null


def test_column_order_does_not_matter_and_gzip_is_read(tmp_path: Path) -> None:
    header = "site_id,patient_id,sex,age_at_onset,side,etiology,index_year,onset_to_index_days"
    content = gzip.compress(csv_text(header, ["s1,P1,F,45,L,bell,2020,400"]).encode())
    frame = read_table("d1", "patients", received(tmp_path, "patients.csv.gz", content))
    assert frame.loc[0, "patient_id"] == "P1"
    assert list(frame.columns)[:2] == ["patient_id", "site_id"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("patients.csv", b"", "empty"),
        ("patients.csv", b"patient_id;site_id\nP1;s1\n", "not comma-separated"),
        ("patients.csv", (PATIENTS_HEADER + ",email\n").encode(), "does not know: email"),
        ("patients.csv", b"patient_id,site_id\nP1,s1\n", "lacks required column"),
        ("patients.csv", (PATIENTS_HEADER + "\nP1,s1,F,45,L,bell,2020,400,extra\n").encode(), "row 2"),
        ("patients.csv", (PATIENTS_HEADER + "\nP1,s1,F,4\xe95,L,bell,2020,400\n").encode("latin-1"), "not UTF-8"),
        (
            "patients.csv.gz",
            gzip.compress(csv_text(PATIENTS_HEADER, ["P1,s1,F,45,L,bell,2020,400"]).encode(), mtime=0)[:-8],
            "not a complete gzip",
        ),
    ],
)
def test_file_level_faults_reject_the_drop(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    with pytest.raises(DropRejected) as caught:
        read_table("d1", "patients", received(tmp_path, name, content))
    assert expected in str(caught.value)
    assert name in str(caught.value)


def test_full_snapshot_needs_all_three_files(tmp_path: Path) -> None:
    files = [received(tmp_path, "patients.csv", csv_text(PATIENTS_HEADER, []).encode())]
    with pytest.raises(DropRejected, match=r"lacks treatments.csv, assessments.csv"):
        parse_drop("d1", files)
    files.append(received(tmp_path, "manifest.json", b'{"snapshot": "incremental"}'))
    drop = parse_drop("d1", files)
    assert drop.manifest.snapshot == "incremental"
    assert drop.tables["assessments"].empty


def test_unknown_file_and_bad_manifest_reject(tmp_path: Path) -> None:
    with pytest.raises(DropRejected, match=r"does not know: notes\.txt"):
        parse_drop("d1", [received(tmp_path, "notes.txt", b"hello")])
    with pytest.raises(DropRejected, match="'snapshot' must be"):
        parse_drop("d1", [received(tmp_path, "manifest.json", b'{"snapshot": "partial"}')])


def test_every_file_level_fault_is_told_in_one_refusal(tmp_path: Path) -> None:
    """A coordinator fixes them all before sending again, not one per send."""
    from tests.conftest import ASSESSMENTS_HEADER, TREATMENTS_HEADER

    files = [
        received(tmp_path, "patients.csv", (PATIENTS_HEADER.replace("side,", "") + ",email\n").encode()),
        received(tmp_path, "treatments.csv", csv_text(TREATMENTS_HEADER, ["P1,s1,T1,0,botox,20"]).encode()),
        received(tmp_path, "assessments.csv", csv_text(ASSESSMENTS_HEADER, []).encode()),
    ]
    with pytest.raises(DropRejected) as caught:
        parse_drop("d1", files)
    message = str(caught.value)
    assert "3 faults" in message
    assert "(1) patients.csv has column(s) the contract does not know: email." in message
    assert "(2) patients.csv lacks required column(s): side." in message
    assert "(3) treatments.csv has row 2 with a different number of fields" in message
    assert message.count("To fix:") == 1 and "Export every column of the contract" in message


# The fast reader (pandas' C parser) takes plain files; the strict reader (csv module) the rest. Both
# must give the same frame, and a plain file that turns out ragged must get the strict reader's message.
PLAIN_VARIANTS = {
    "plain": ["P1,s1,F,45,L,bell,2020,400", "P2,s1,M,,R,bell,2021,300", "P3,s1,,,,,,"],
    "padded cells": ["P1 , s1,F,\t45,L,bell,2020,400", "P2,s1,M, ,R,bell,2021,300"],
    "no final newline": ["P1,s1,F,45,L,bell,2020,400", "P2,s1,M,50,R,bell,2021,300"],
}


@pytest.mark.parametrize("rows", PLAIN_VARIANTS.values(), ids=PLAIN_VARIANTS.keys())
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_fast_and_strict_readers_agree(tmp_path: Path, rows: list[str], newline: str) -> None:
    from pipeline.sources import reader

    text = csv_text(PATIENTS_HEADER, rows).replace("\n", newline)
    if rows is PLAIN_VARIANTS["no final newline"]:
        text = text.rstrip()
    header_line, _, body = text.partition("\n")
    assert reader.is_plain(body)
    fast = reader.read_plain(header_line, body)
    assert fast is not None
    strict = reader._read_strict("d1", "patients.csv", text, lambda header: None, "")
    assert fast.to_dict("list") == strict.to_dict("list")
    assert fast.dtypes.to_dict() == strict.dtypes.to_dict()


@pytest.mark.parametrize(
    "rows, expected",
    [
        (["P1,s1,F,45,L,bell,2020,400", "P2,s1,M,50,R,bell,2021"], "row 3 with a different number of fields"),
        (["P1,s1,F,45,L,bell,2020,400,9", "P2,s1,M,50,R,bell,2021,300"], "row 2 with a different number of fields"),
        (["P1,s1,F,45,L,bell,2020,400", "   ", "P2,s1,M,50,R,bell,2021,300"], "row 3 with a different number"),
        (["P1,s1,F,45,L,bell,2020,400,9", "P2,s1,M,50,R,bell,2021"], "rows 2, 3 with a different number"),
    ],
    ids=["short row", "long row", "whitespace-only line", "long and short rows of equal total"],
)
def test_a_ragged_plain_file_is_told_by_row(tmp_path: Path, rows: list[str], expected: str) -> None:
    content = csv_text(PATIENTS_HEADER, rows).encode()
    with pytest.raises(DropRejected, match=expected):
        read_table("d1", "patients", received(tmp_path, "patients.csv", content))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (  # every column in another case: was "has no header row ... was the header row left out"
            PATIENTS_HEADER.title(),
            "found `Patient_Id` for `patient_id`, `Site_Id` for `site_id`, `Sex` for `sex`",
        ),
        (PATIENTS_HEADER.replace("sex", " SEX "), "found `SEX` for `sex`."),  # one column: was "does not know"
    ],
)
def test_a_header_in_another_case_is_told_as_such(tmp_path: Path, header: str, expected: str) -> None:
    content = csv_text(header, ["P1,s1,F,45,L,bell,2020,400"]).encode()
    with pytest.raises(DropRejected) as caught:
        read_table("d1", "patients", received(tmp_path, "patients.csv", content))
    message = str(caught.value)
    assert "patients.csv's column names must be written as in the contract, in lower case: " + expected in message
    assert "no header row" not in message and "does not know" not in message and "lacks" not in message


def test_a_file_without_its_header_row_still_names_no_cell(tmp_path: Path) -> None:
    """The first row is data: none of its cells is printed (a field is named only when it is a column name
    in another case, which an id is not)."""
    content = b"P1,s1,F,45,L,bell,2020,400\nP2,s1,M,60,R,bell,2021,300\n"
    with pytest.raises(DropRejected, match="has no header row") as caught:
        read_table("d1", "patients", received(tmp_path, "patients.csv", content))
    assert "P1" not in str(caught.value) and "bell" not in str(caught.value)
