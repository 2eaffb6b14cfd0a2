"""The shipped REDCap data dictionary: what the generator writes, and valid as REDCap reads it."""

import csv
import io
import re

import pytest

from pipeline.contract import ETIOLOGIES, INSTRUMENTS, ITEMS, MODALITIES, SEXES, SIDES
from pipeline.sources.redcap_dictionary import SHIPPED, dictionary_csv
from pipeline.sources.redcap_project import REDCAP_FORMS, REDCAP_PREFIXES, REDCAP_RECORD_ID

# REDCap's data dictionary columns in its upload order, written out here independently of the generator.
REDCAP_COLUMNS = [
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
]


@pytest.fixture(scope="module")
def shipped() -> list[dict[str, str]]:
    with SHIPPED.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        header = next(reader)
        assert header == REDCAP_COLUMNS
        rows = list(reader)
    assert all(len(row) == len(REDCAP_COLUMNS) for row in rows)
    return [dict(zip(header, row, strict=True)) for row in rows]


def parse_choices(cell: str) -> dict[str, str]:
    """REDCap's 'code, label | code, label' list; fails on anything else."""
    pairs = {}
    for choice in cell.split("|"):
        code, separator, label = choice.strip().partition(",")
        assert separator and re.fullmatch(r"[A-Za-z0-9_]+", code.strip()) and label.strip(), choice
        assert code.strip() not in pairs, f"duplicate code {code}"
        pairs[code.strip()] = label.strip()
    return pairs


def by_field(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["Variable / Field Name"]: row for row in rows}


def test_the_committed_file_is_what_the_generator_writes() -> None:
    # After changing the contract or the generator: python -m pipeline.sources.redcap_dictionary
    assert SHIPPED.read_text(encoding="utf-8") == dictionary_csv()


def test_record_id_first_forms_contiguous_names_unique(shipped: list[dict[str, str]]) -> None:
    names = [row["Variable / Field Name"] for row in shipped]
    assert names[0] == REDCAP_RECORD_ID and shipped[0]["Form Name"] == "patient"
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) and "___" not in n and not n.endswith("_complete") for n in names)
    forms = [row["Form Name"] for row in shipped]
    # Each form's fields in one block, the forms in the contract's order.
    assert list(dict.fromkeys(forms)) == list(REDCAP_FORMS)
    for form in REDCAP_FORMS:
        rows = [i for i, f in enumerate(forms) if f == form]
        assert rows == list(range(rows[0], rows[-1] + 1)), form
    # A section header opens every form.
    assert all(shipped[forms.index(form)]["Section Header"] for form in REDCAP_FORMS)


def test_every_field_survives_a_de_identified_export(shipped: list[dict[str, str]]) -> None:
    """No identifier flag, date, note or unvalidated text (the record ID apart): the export keeps every field."""
    for row in shipped:
        name, kind, validation = row["Variable / Field Name"], row["Field Type"], row[REDCAP_COLUMNS[7]]
        assert row["Identifier?"] == "", name
        assert kind in ("text", "radio", "dropdown"), name
        assert not validation.startswith(("date", "datetime", "time")), name
        if kind == "text" and name != REDCAP_RECORD_ID:
            assert validation in ("integer", "number"), name
        if kind in ("radio", "dropdown"):
            assert parse_choices(row[REDCAP_COLUMNS[5]]), name
        else:
            assert row[REDCAP_COLUMNS[5]] == "", name
        assert row["Required Field?"] in ("", "y") and row["Field Label"], name


def test_patient_and_treatment_fields_carry_the_contract_codes(shipped: list[dict[str, str]]) -> None:
    fields = by_field(shipped)
    for name, codes in (("sex", SEXES), ("side", SIDES), ("etiology", ETIOLOGIES), ("tx_modality", MODALITIES)):
        assert list(parse_choices(fields[name][REDCAP_COLUMNS[5]])) == list(codes), name
    targets = parse_choices(fields["tx_target"][REDCAP_COLUMNS[5]])
    assert all(re.fullmatch(r"[a-z_]{1,32}", code) for code in targets)
    ranges = {"age_at_onset": ("0", "90"), "onset_to_index_days": ("0", "36500"), "tx_day": ("-3650", "7300")}
    ranges |= {f"{p}_visit_day": ("-3650", "7300") for p in REDCAP_PREFIXES.values()}
    for name, (low, high) in ranges.items():
        row = fields[name]
        assert row[REDCAP_COLUMNS[7]] == "integer", name
        assert (row["Text Validation Min"], row["Text Validation Max"]) == (low, high), name
    assert fields["index_year"]["Text Validation Min"] == "1980"
    assert fields["tx_botox_units"]["Text Validation Max"] == "300"
    assert fields["tx_pt_sessions"]["Text Validation Min"] == "1"


def test_every_contract_item_is_present_with_its_range(shipped: list[dict[str, str]]) -> None:
    fields = by_field(shipped)
    for item in ITEMS:
        name = f"{REDCAP_PREFIXES[item.instrument]}_{item.code}"
        row = fields[name]
        assert row["Form Name"] == item.instrument, name
        if row["Field Type"] == "text":
            assert row[REDCAP_COLUMNS[7]] == ("integer" if item.integer else "number"), name
            assert (float(row["Text Validation Min"]), float(row["Text Validation Max"])) == (item.low, item.high)
        else:
            # An ordinal item as choices: exactly the integers of its range.
            assert item.integer, name
            codes = [int(code) for code in parse_choices(row[REDCAP_COLUMNS[5]])]
            assert codes == list(range(int(item.low), int(item.high) + 1)), name
    item_fields = {f"{REDCAP_PREFIXES[i.instrument]}_{i.code}" for i in ITEMS}
    instrument_fields = {row["Variable / Field Name"] for row in shipped if row["Form Name"] in INSTRUMENTS}
    assert instrument_fields == item_fields | {f"{p}_visit_day" for p in REDCAP_PREFIXES.values()}


def test_the_csv_is_what_redcap_uploads() -> None:
    """Comma-separated UTF-8 without a byte-order mark, one line per field, every cell quoted."""
    data = SHIPPED.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8").splitlines()
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert len(lines) == len(rows) and all(line.startswith('"') and line.endswith('"') for line in lines)
