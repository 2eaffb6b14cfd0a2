"""Numbers as clinic tools spell them: the same data, however its numbers are written, loads to the same
warehouse, table by table; what is not a number the contract allows is refused or quarantined, with its
sentence, and never read as something else.

Each tool's habit is a fixture made here from one clean synthetic drop: pandas' to_csv, Excel's CSV,
SAS/SPSS, R's write.csv, REDCap's raw export read back through pandas, and hand edits.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.contract import COLUMNS
from pipeline.errors import DropRejected
from pipeline.ingest.drops import ingest_landing
from pipeline.ingest.screening import screen_drop
from pipeline.settings import DataHome
from pipeline.sources.numbers import canonical_number
from pipeline.sources.redcap import RECORDS
from pipeline.stages import publish_warehouse
from pipeline.tools.synthetic import SyntheticParameters, generate_drop
from pipeline.tools.synthetic_complications import DEMO_COMPLICATIONS
from pipeline.validation.rows import validate_drop
from tests.conftest import sunnybrook_rows
from tests.sources.test_redcap import DATA_TABLES
from tests.validation.test_rows import make_drop, quarantine_rules

DROP = "clinic-a-2026-11"
NUMBER_COLUMNS = {table: [c.name for c in COLUMNS[table] if c.kind != "text"] for table in COLUMNS}


@pytest.mark.parametrize(
    ("cell", "canonical"),
    [
        ("3", "3"),
        ("3.0", "3"),
        ("3.00", "3"),
        (" 3 ", "3"),
        ("+3", "3"),
        ("3e0", "3"),
        ("30E-1", "3"),
        ("3.", "3"),
        ("-0", "0"),
        ("-0.0", "0"),
        (".5", "0.5"),
        ("-7.50", "-7.5"),
        ("2.5e1", "25"),
        ("3.0000000000000001", "3.0000000000000001"),  # not integral: an integer rule fails it
    ],
)
def test_every_spelling_the_contract_allows_reads_as_its_number(cell: str, canonical: str) -> None:
    assert canonical_number(cell) == canonical


@pytest.mark.parametrize(
    "cell",
    ["1,000", "3,5", "inf", "-Infinity", "NaN", "٣", "３", "0x1F", "1_000", "1e400", "3 5", "", "three", "3.5.1"],
)
def test_what_is_no_number_of_the_contract_is_not_read_as_one(cell: str) -> None:
    assert canonical_number(cell) is None


def test_respelled_numbers_load_and_other_spellings_are_quarantined_under_their_type_rule(tmp_path: Path) -> None:
    spellings = ["{}.0", "+{}", "{}e0", "{}.00", "{}.", "{}E0", " {} ", "{}0e-1"]  # each item's own value
    items = [
        row.rsplit(",", 1)[0] + "," + spellings[i % len(spellings)].format(row.rsplit(",", 1)[1])
        for i, row in enumerate(sunnybrook_rows("P1", 0))
    ]
    odd = {
        'P2,s1,0,saq,q1,"1,000"': "type_number:value; item_integer:saq",  # thousands separator
        'P2,s1,0,saq,q2,"3,5"': "type_number:value; item_integer:saq",  # decimal comma
        "P2,s1,0,saq,q3,inf": "type_number:value; item_integer:saq",
        "P2,s1,0,saq,q4,٣": "type_number:value; item_integer:saq",  # Arabic-Indic three
        "P2,s1,0,saq,q5,３": "type_number:value; item_integer:saq",  # full-width three
        "P2,s1,0,saq,q6,3.5": "item_integer:saq",  # a number, but not an integer: the item's rule only
        'P2,s1,0,face,total,"55,5"': "type_number:value",
    }
    patients = ["P1,s1,F,45.0,L,bell,2020.0,4e2", "P2,s1,M,+60,R,ramsay_hunt,2021,300.00"]
    treatments = ["P1,s1,T1,0.0,botox,25.50,,", "P1,s1,T2,1e1,physical_therapy,,12.0,", "P2,s1,T1,-0,botox,3e1,,"]
    validated = validate_drop(make_drop(tmp_path, patients, treatments, items + list(odd)), known_patients=set())

    assert validated.quarantined["patients"].empty and validated.quarantined["treatments"].empty
    assert validated.valid["patients"]["onset_to_index_days"].tolist() == [400, 300]
    treated = validated.valid["treatments"]
    assert treated["day"].tolist() == [0, 10, 0]
    assert treated["botox_units"].fillna(-1).tolist() == [25.5, -1, 30.0]
    assert treated["pt_sessions"].fillna(-1).tolist() == [-1, 12, -1]
    assert len(validated.valid["assessments"]) == 13  # every Sunnybrook item, however spelled
    rules = quarantine_rules(validated, "assessments")
    assert sorted(rules.values()) == sorted(odd.values())
    # A quarantined row keeps the cell as it came (for the coordinator to find), never a reading of it.
    rows = validated.quarantined["assessments"]["row"].map(json.loads)
    assert {row["value"] for row in rows} == {"1,000", "3,5", "inf", "٣", "３", "3.5", "55,5"}


def test_an_age_spelled_as_infinity_is_a_type_fault_not_an_age_over_89(tmp_path: Path) -> None:
    drop = make_drop(tmp_path, ["P1,s1,F,inf,L,bell,2020,400", "P2,s1,M,9.1e1,R,bell,2021,300"], [], [])
    with pytest.raises(DropRejected) as refusal:
        screen_drop(drop)
    assert "age over 89 not top coded (row 3)" in str(refusal.value)  # 9.1e1 is 91; inf is no age at all


# Tool habits, end to end: each a respelling of one clean drop, loaded into its own data home.


def _clean_frames(folder: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_csv(folder / f"{t}.csv", dtype=str, keep_default_na=False) for t in NUMBER_COLUMNS}


def _write_text(folder: Path, texts: dict[str, str], encoding: str = "utf-8") -> None:
    for table, text in texts.items():
        (folder / f"{table}.csv").write_bytes(text.encode(encoding))


def pandas_to_csv(clean: Path, out: Path) -> None:
    """pandas reads numbers by column: a column with an empty cell or a decimal becomes float, written 3.0."""
    for table in NUMBER_COLUMNS:
        pd.read_csv(clean / f"{table}.csv").to_csv(out / f"{table}.csv", index=False)


def excel_csv(clean: Path, out: Path) -> None:
    """Excel's "CSV UTF-8": a byte-order mark and CRLF line ends; whole numbers without a point."""
    texts = {t: (clean / f"{t}.csv").read_text(encoding="utf-8").replace("\n", "\r\n") for t in NUMBER_COLUMNS}
    _write_text(out, texts, encoding="utf-8-sig")


def _fixed_width(frames: dict[str, pd.DataFrame], missing: str) -> dict[str, str]:
    """SAS's PROC EXPORT and SPSS: every number with two decimals, padded to a width; empty is ``missing``."""
    texts = {}
    for table, frame in frames.items():
        frame = frame.copy()
        for column in NUMBER_COLUMNS[table]:
            frame[column] = frame[column].map(lambda v: f"{float(v):.2f}".ljust(9) if v else missing)
        texts[table] = frame.to_csv(index=False, lineterminator="\n")
    return texts


def sas_export(clean: Path, out: Path) -> None:
    _write_text(out, _fixed_width(_clean_frames(clean), missing=" "))


def sas_export_with_dots(clean: Path, out: Path) -> None:
    _write_text(out, _fixed_width(_clean_frames(clean), missing="."))


def _write_csv(frames: dict[str, pd.DataFrame], out: Path, missing: str) -> None:
    """R's write.csv(row.names = FALSE): text quoted, numbers bare, empty as ``missing``."""
    for table, frame in frames.items():
        lines = [",".join(f'"{c}"' for c in frame.columns)]
        for row in frame.itertuples(index=False):
            cells = []
            for column, value in zip(frame.columns, row, strict=True):
                if not value:
                    cells.append(missing)
                elif column in NUMBER_COLUMNS[table]:
                    cells.append(value)
                else:
                    cells.append(f'"{value}"')
            lines.append(",".join(cells))
        (out / f"{table}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def r_write_csv(clean: Path, out: Path) -> None:
    _write_csv(_clean_frames(clean), out, missing="")


def r_write_csv_with_na(clean: Path, out: Path) -> None:
    _write_csv(_clean_frames(clean), out, missing="NA")


def hand_edited(clean: Path, out: Path) -> None:
    """Every spelling of the contract in turn: 3, 3.0, 3.00, ' 3 ', +3, 3e0 (and 35e-1 for 3.5)."""
    frames = _clean_frames(clean)
    spellings = [
        lambda v: v,
        lambda v: f"{float(v):.1f}",
        lambda v: f"{float(v):.2f}",
        lambda v: f" {v} ",
        lambda v: v if v.startswith("-") else f"+{v}",
        lambda v: f"{float(v) * 10:g}e-1",
    ]
    for table, frame in frames.items():
        for column in NUMBER_COLUMNS[table]:
            frame[column] = [spellings[i % len(spellings)](v) if v else v for i, v in enumerate(frame[column].tolist())]
        frame.to_csv(out / f"{table}.csv", index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")


def redcap_through_pandas(clean: Path, out: Path) -> None:
    """REDCap's raw export opened and saved with pandas: statuses, instances and scores become floats."""
    pd.read_csv(clean / RECORDS).to_csv(out / RECORDS, index=False)


HABITS: dict[str, tuple[str, Callable[[Path, Path], None]]] = {
    "pandas": ("csv", pandas_to_csv),
    "excel": ("csv", excel_csv),
    "sas": ("csv", sas_export),
    "r": ("csv", r_write_csv),
    "hand": ("csv", hand_edited),
    "redcap": ("redcap", redcap_through_pandas),
}
REFUSED = {"sas_dots": sas_export_with_dots, "r_na": r_write_csv_with_na}


def _home(root: Path, name: str, export_format: str, respell: Callable[[Path, Path], None] | None) -> DataHome:
    home = DataHome.resolve(root / name).ensure()
    folder = home.landing / DROP
    # With complications (contract 1.2): the tools' spellings of its integers load the same too.
    params = SyntheticParameters(complications=DEMO_COMPLICATIONS)
    generate_drop(folder, patients=60, seed=5, site="clinic_a", export_format=export_format, params=params)
    if respell:
        spelled = root / f"{name}-spelled"
        spelled.mkdir()
        respell(folder, spelled)
        for path in spelled.iterdir():
            shutil.move(path, folder / path.name)
    return home


def _loaded(home: DataHome) -> DataHome:
    summary = ingest_landing(home)
    assert [(d.status, d.rows_quarantined) for d in summary.drops] == [("loaded", 0)], summary.lines()
    publish_warehouse(home)
    return home


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DataHome]:
    root = tmp_path_factory.mktemp("spellings")
    homes = {f"clean_{f}": _loaded(_home(root, f"clean_{f}", f, None)) for f in ("csv", "redcap")}
    for name, (export_format, respell) in HABITS.items():
        homes[name] = _loaded(_home(root, name, export_format, respell))
    return homes


def data_table(home: DataHome, table: str) -> pd.DataFrame:
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        frame = con.execute(f"SELECT * FROM {table}").df()
    finally:
        con.close()
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.mark.parametrize("habit", list(HABITS))
def test_a_tools_spelling_of_the_numbers_loads_the_same_warehouse_table_by_table(
    homes: dict[str, DataHome], habit: str
) -> None:
    export_format, _ = HABITS[habit]
    clean, spelled = homes[f"clean_{export_format}"], homes[habit]
    for table in DATA_TABLES:
        expected = data_table(clean, table)
        assert len(expected) > 0, table
        pd.testing.assert_frame_equal(data_table(spelled, table), expected, obj=table)


def test_the_fixtures_carry_their_tools_habits(homes: dict[str, DataHome]) -> None:
    """Each fixture really is spelled differently from the clean export (else the test above proves nothing)."""
    drop = {name: home.landing / DROP for name, home in homes.items()}
    assert ",3.0\n" in (drop["pandas"] / "assessments.csv").read_text()
    assert ".0," in (drop["pandas"] / "treatments.csv").read_text()  # pt_sessions and botox_units as floats
    excel = (drop["excel"] / "patients.csv").read_bytes()
    assert excel.startswith(b"\xef\xbb\xbf") and b"\r\n" in excel
    assert "3.00     " in (drop["sas"] / "assessments.csv").read_text()
    assert '"clinic_a",' in (drop["r"] / "assessments.csv").read_text()
    hand = (drop["hand"] / "assessments.csv").read_text()
    assert all(s in hand for s in (",3.0\n", ",3.00\n", ", 3 \n", ",+3\n", ",30e-1\n"))
    records = (drop["redcap"] / RECORDS).read_text()
    assert ",2.0," in records and ",1.0," in records


@pytest.mark.parametrize("habit", list(REFUSED))
def test_a_missing_value_marker_refuses_the_drop_with_the_setting_to_change(tmp_path: Path, habit: str) -> None:
    home = _home(tmp_path, habit, "csv", REFUSED[habit])
    [result] = ingest_landing(home).drops
    assert result.status == "rejected"
    assert "spell a missing value with a marker" in result.message
    for column in ("botox_units", "pt_sessions"):  # every botox course lacks sessions, every other lacks units
        assert f"treatments.csv, column {column} (rows " in result.message
    assert "patients.csv" not in result.message and "assessments.csv" not in result.message
    assert 'write.csv(..., na = "")' in result.message and 'options missing = " "' in result.message


def test_a_marker_in_a_redcap_number_field_is_named_by_the_field(tmp_path: Path) -> None:
    home = _home(tmp_path, "redcap_na", "redcap", None)
    records = home.landing / DROP / RECORDS
    flat = pd.read_csv(records, dtype=str, keep_default_na=False)
    botox = flat["tx_modality"] == "physical_therapy"
    flat.loc[botox, "tx_botox_units"] = "NA"
    flat.to_csv(records, index=False)
    [result] = ingest_landing(home).drops
    assert result.status == "rejected"
    assert f"{RECORDS}, column tx_botox_units (rows" in result.message


def test_no_cell_value_reaches_the_refusal(tmp_path: Path) -> None:
    home = _home(tmp_path, "r_na", "csv", r_write_csv_with_na)
    [result] = ingest_landing(home).drops
    # The marker list is the pipeline's own wording; no cell of the file is quoted.
    assert (
        "P0000" not in result.message
        and "clinic_a" not in result.message
        and "physical_therapy" not in (result.message)
    )
