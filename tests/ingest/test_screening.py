import pandas as pd
import pytest

from pipeline.ingest.screening import identifier_like, screen_frame


@pytest.mark.parametrize(
    "column",
    [
        "name",
        "First Name",
        "last_name",
        "MRN",
        "DOB",
        "date_of_birth",
        "e-mail",
        "Phone",
        "zip_code",
        "IP",
        "url",
        "street",
        "photo",
    ],
)
def test_identifier_column_names(column: str) -> None:
    assert identifier_like(column)


@pytest.mark.parametrize(
    "column",
    [
        "patient_id",
        "site_id",
        "age_at_onset",
        "visit_day",
        "index_year",
        "onset_to_index_days",
        "treatment_id",
        "botox_units",
        "pt_sessions",
        "target",
    ],
)
def test_contract_columns_are_not_identifiers(column: str) -> None:
    assert not identifier_like(column)


@pytest.mark.parametrize(
    ("cell", "rule"),
    [
        ("2024-03-05", "calendar_date"),
        ("03/05/2024", "calendar_date"),
        ("5 Mar 2024", "calendar_date"),
        ("March 5, 2024", "calendar_date"),
        ("jane@example.org", "email"),
        ("(555) 123-4567", "phone_number"),
        ("123-45-6789", "ssn"),
        ("https://clinic.example", "url"),
        ("192.168.1.20", "ip_address"),
    ],
)
def test_cell_patterns_name_rule_and_rows_never_value(cell: str, rule: str) -> None:
    frame = pd.DataFrame({"target": ["ok", cell, "fine"], "row_number": [2, 3, 4]})
    findings = screen_frame("treatments.csv", frame)
    assert any(f.rule == rule and f.rows == [3] and f.column == "target" for f in findings)
    for finding in findings:
        assert cell not in finding.sentence()


def test_age_over_89_must_be_top_coded() -> None:
    frame = pd.DataFrame({"age_at_onset": ["45", "90", "93"], "row_number": [2, 3, 4]})
    findings = screen_frame("patients.csv", frame)
    assert [(f.rule, f.rows) for f in findings] == [("age_over_89_not_top_coded", [4])]


def test_clean_contract_values_pass() -> None:
    frame = pd.DataFrame(
        {
            "patient_id": ["P000123"],
            "value": ["57.5"],
            "visit_day": ["-15"],
            "target": ["depressor_anguli_oris"],
            "index_year": ["2026"],
            "row_number": [2],
        }
    )
    assert screen_frame("assessments.csv", frame) == []
