from pathlib import Path

from pipeline.ingest.receive import archive_file
from pipeline.sources.dispatch import parse_drop
from pipeline.validation.rows import totals_disagreements, validate_drop
from tests.conftest import (
    ASSESSMENTS_HEADER,
    BASE_PATIENTS,
    BASE_TREATMENTS,
    PATIENTS_HEADER,
    TREATMENTS_HEADER,
    csv_text,
    sunnybrook_rows,
)


def make_drop(tmp_path: Path, patients: list[str], treatments: list[str], assessments: list[str]):
    folder = tmp_path / "d1"
    folder.mkdir(exist_ok=True)
    received = []
    for name, header, rows in (
        ("patients", PATIENTS_HEADER, patients),
        ("treatments", TREATMENTS_HEADER, treatments),
        ("assessments", ASSESSMENTS_HEADER, assessments),
    ):
        (folder / f"{name}.csv").write_text(csv_text(header, rows))
        received.append(archive_file(folder / f"{name}.csv", tmp_path / "archive", "d1"))
    return parse_drop("d1", received)


def quarantine_rules(validated, table: str) -> dict[int, str]:
    frame = validated.quarantined[table]
    return dict(zip(frame["row_number"], frame["rule"], strict=True))


def test_valid_rows_load_and_failing_rows_carry_their_rule(tmp_path: Path) -> None:
    patients = [*BASE_PATIENTS, "P3,s1,Q,30,R,bell,2021,300", "P4,s1,F,x,R,bell,2021,300", "P1,s1,F,45,L,bell,2020,400"]
    treatments = [*BASE_TREATMENTS, "P9,s1,T1,3,botox,20,,", "P2,s1,T2,7,botox,,,", "P2,s1,T3,8,physical_therapy,10,5,"]
    assessments = [*sunnybrook_rows("P1", 0), "P1,s1,0,saq,q1,7", "P1,s1,0,saq,q99,1", "P2,s1,0,nope,q1,1"]
    validated = validate_drop(make_drop(tmp_path, patients, treatments, assessments), known_patients=set())

    patients_q = quarantine_rules(validated, "patients")
    assert patients_q[4] == "code_set:sex"
    assert patients_q[5] == "type_integer:age_at_onset"
    assert patients_q[2] == patients_q[6] == "duplicate_key"  # both copies of P1: neither can be chosen
    assert validated.valid["patients"]["patient_id"].tolist() == ["P2"]

    treatments_q = quarantine_rules(validated, "treatments")
    # P1 was quarantined, so its treatments name no known patient either.
    assert treatments_q[2] == treatments_q[3] == treatments_q[5] == "unknown_patient"
    assert treatments_q[6] == "botox_units_required"
    assert treatments_q[7] == "botox_units_only_for_botox"
    assert validated.valid["treatments"]["treatment_id"].tolist() == ["T1"]

    assessments_q = quarantine_rules(validated, "assessments")
    assert assessments_q[16] == "unknown_patient; item_code"  # every rule a row breaks, in suite order
    assert assessments_q[17] == "code_set:instrument"
    assert len(validated.valid["assessments"]) == 0  # every P1 row names a quarantined patient
    counts = validated.rule_counts()
    assert counts["unknown_patient"] == 3 + 15
    assert counts["item_range:saq[1,5]"] == 1
    # Accounting: every row is either valid or quarantined, once.
    for table in ("patients", "treatments", "assessments"):
        assert len(validated.valid[table]) + len(validated.quarantined[table]) == len(validated.source.tables[table])


def test_known_patients_from_earlier_loads_count(tmp_path: Path) -> None:
    validated = validate_drop(make_drop(tmp_path, [], ["P7,s1,T1,0,botox,10,,"], []), known_patients={"s1/P7"})
    assert len(validated.valid["treatments"]) == 1
    assert validated.quarantined["treatments"].empty


def test_quarantined_row_keeps_its_cells_as_json(tmp_path: Path) -> None:
    validated = validate_drop(make_drop(tmp_path, ["P1,s1,F,45,L,bell,1970,400"], [], []), known_patients=set())
    row = validated.quarantined["patients"].iloc[0]
    assert row["rule"] == "range:index_year"
    assert row["columns"] == "index_year"
    assert '"index_year": "1970"' in row["row"]


def test_totals_that_disagree_with_items_quarantine_the_instrument_at_that_visit(tmp_path: Path) -> None:
    agreeing = [*sunnybrook_rows("P1", 0), "P1,s1,0,sunnybrook,composite,53", "P1,s1,0,sunnybrook,resting_score,10"]
    disagreeing = [*sunnybrook_rows("P2", 0), "P2,s1,0,sunnybrook,composite,60", "P2,s1,0,saq,total_pct,40"]
    validated = validate_drop(make_drop(tmp_path, BASE_PATIENTS, [], agreeing + disagreeing), known_patients=set())
    rules = set(validated.quarantined["assessments"]["rule"])
    assert rules == {"totals_disagree:sunnybrook.composite"}
    assert len(validated.quarantined["assessments"]) == 14  # 13 items + the composite of P2's Sunnybrook
    assert len(validated.valid["assessments"]) == 15 + 1  # P1 whole, and P2's SAQ


def test_tolerance_is_half_a_point() -> None:
    import pandas as pd

    rows = [
        {"site_id": "s1", "patient_id": "P1", "visit_day": 0, "instrument": "saq", "item": f"q{i}", "value": 2.0}
        for i in range(1, 10)
    ]
    rows.append(
        {"site_id": "s1", "patient_id": "P1", "visit_day": 0, "instrument": "saq", "item": "total_pct", "value": 40.4}
    )  # 18 / 45 x 100 = 40.0: within 0.5
    assert totals_disagreements(pd.DataFrame(rows)) == {}
    rows[-1]["value"] = 40.6
    assert set(totals_disagreements(pd.DataFrame(rows))) == set(range(10))
