"""The REDCap data dictionary a clinic uploads to build its project, generated from the contract and
the project's shape (pipeline/sources/redcap_project.py).

``python -m pipeline.sources.redcap_dictionary`` writes ``redcap/synkinesis_outcomes_dictionary.csv``;
a test keeps the committed file equal to what this module generates. Coded fields are radio or
dropdown fields whose raw codes are the contract's codes; numbers are text fields with REDCap's
integer or number validation and the contract's range as min and max. No field is a date, a
note, an unvalidated text field (the record ID apart) or an identifier, so REDCap's de-identified
export keeps every field.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from pipeline.contract import CLAVIEN_DINDO_MAX, INSTRUMENTS, ITEMS, MIN_INDEX_YEAR, Item
from pipeline.settings import PROJECT_ROOT
from pipeline.sources.redcap_project import (
    REDCAP_COMPLICATION_FORM,
    REDCAP_PATIENT_FORM,
    REDCAP_PREFIXES,
    REDCAP_RECORD_ID,
    REDCAP_TREATMENT_FORM,
    TARGET_CODES,
)

SHIPPED = PROJECT_ROOT / "redcap" / "synkinesis_outcomes_dictionary.csv"

# REDCap's data dictionary columns, in the order REDCap uploads and downloads them.
HEADER = (
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
)
FIELD, FORM, SECTION, TYPE, LABEL, CHOICES, NOTE, VALIDATION, MIN, MAX, IDENTIFIER, BRANCHING, REQUIRED = HEADER[:13]

INSTRUMENT_TITLES = {
    "sunnybrook": "Sunnybrook Facial Grading System",
    "eface": "eFACE",
    "saq": "Synkinesis Assessment Questionnaire (SAQ)",
    "face": "Facial Clinimetric Evaluation scale (FaCE)",
    "fdi": "Facial Disability Index (FDI)",
    "house_brackmann": "House-Brackmann grade",
}

# Choices of the small ordinal items, code -> label, in the contract's codes.
_VOLUNTARY = {
    1: "Unable to initiate movement",
    2: "Initiates slight movement",
    3: "Initiated movement with mild excursion",
    4: "Movement almost complete",
    5: "Movement complete",
}
_SYNKINESIS = {0: "None", 1: "Mild", 2: "Moderate", 3: "Severe"}
ITEM_CHOICES: dict[tuple[str, str], dict[int, str]] = {
    ("sunnybrook", "rest_eye"): {0: "Normal", 1: "Narrow, wide or eyelid surgery"},
    ("sunnybrook", "rest_cheek"): {0: "Normal", 1: "Less or more pronounced", 2: "Absent"},
    ("sunnybrook", "rest_mouth"): {0: "Normal", 1: "Corner drooped or pulled up"},
    **{("sunnybrook", f"vm_{part}"): _VOLUNTARY for part in ("brow", "eye_closure", "smile", "snarl", "pucker")},
    **{("sunnybrook", f"syn_{part}"): _SYNKINESIS for part in ("brow", "eye_closure", "smile", "snarl", "pucker")},
    **{
        ("saq", f"q{i}"): {
            1: "Seldom or not at all",
            2: "Occasionally",
            3: "Sometimes",
            4: "Most of the time",
            5: "All the time",
        }
        for i in range(1, 10)
    },
    ("house_brackmann", "grade"): {
        1: "I: normal",
        2: "II: mild dysfunction",
        3: "III: moderate dysfunction",
        4: "IV: moderately severe dysfunction",
        5: "V: severe dysfunction",
        6: "VI: total paralysis",
    },
}

ITEM_LABELS: dict[tuple[str, str], str] = {
    ("sunnybrook", "rest_eye"): "Resting symmetry: eye (palpebral fissure)",
    ("sunnybrook", "rest_cheek"): "Resting symmetry: cheek (nasolabial fold)",
    ("sunnybrook", "rest_mouth"): "Resting symmetry: mouth",
    ("sunnybrook", "vm_brow"): "Voluntary movement: forehead wrinkle (brow lift)",
    ("sunnybrook", "vm_eye_closure"): "Voluntary movement: gentle eye closure",
    ("sunnybrook", "vm_smile"): "Voluntary movement: open-mouth smile",
    ("sunnybrook", "vm_snarl"): "Voluntary movement: snarl",
    ("sunnybrook", "vm_pucker"): "Voluntary movement: lip pucker",
    ("sunnybrook", "syn_brow"): "Synkinesis with forehead wrinkle",
    ("sunnybrook", "syn_eye_closure"): "Synkinesis with gentle eye closure",
    ("sunnybrook", "syn_smile"): "Synkinesis with open-mouth smile",
    ("sunnybrook", "syn_snarl"): "Synkinesis with snarl",
    ("sunnybrook", "syn_pucker"): "Synkinesis with lip pucker",
    ("sunnybrook", "resting_score"): "Resting symmetry score (sum of resting items x 5)",
    ("sunnybrook", "voluntary_score"): "Voluntary movement score (sum of voluntary items x 4)",
    ("sunnybrook", "synkinesis_score"): "Synkinesis score (sum of synkinesis items)",
    ("sunnybrook", "composite"): "Composite score (voluntary - resting - synkinesis)",
    ("eface", "static_brow"): "Static: brow",
    ("eface", "static_palpebral_fissure"): "Static: palpebral fissure",
    ("eface", "static_nasolabial_fold"): "Static: nasolabial fold",
    ("eface", "static_oral_commissure"): "Static: oral commissure",
    ("eface", "dyn_brow_elevation"): "Dynamic: brow elevation",
    ("eface", "dyn_gentle_eye_closure"): "Dynamic: gentle eye closure",
    ("eface", "dyn_full_eye_closure"): "Dynamic: full eye closure",
    ("eface", "dyn_nlf_depth_smile"): "Dynamic: nasolabial fold depth with smile",
    ("eface", "dyn_nlf_orientation_smile"): "Dynamic: nasolabial fold orientation with smile",
    ("eface", "dyn_commissure_smile"): "Dynamic: oral commissure movement with smile",
    ("eface", "dyn_lower_lip_eee"): "Dynamic: lower lip movement (saying 'eee')",
    ("eface", "syn_ocular"): "Synkinesis: ocular (eye closure with mouth movement)",
    ("eface", "syn_midfacial"): "Synkinesis: midfacial (mouth movement with eye closure)",
    ("eface", "syn_mentalis"): "Synkinesis: mentalis",
    ("eface", "syn_platysmal"): "Synkinesis: platysmal",
    ("eface", "static_score"): "Static score",
    ("eface", "dynamic_score"): "Dynamic score",
    ("eface", "synkinesis_score"): "Synkinesis score",
    ("eface", "total"): "Total score",
    ("saq", "q1"): "1. When I smile, my eye closes",
    ("saq", "q2"): "2. When I speak, my eye closes",
    ("saq", "q3"): "3. When I whistle or pucker my lips, my eye closes",
    ("saq", "q4"): "4. When I smile, my neck tightens",
    ("saq", "q5"): "5. When I close my eyes, my face gets tight",
    ("saq", "q6"): "6. When I close my eyes, the corner of my mouth moves",
    ("saq", "q7"): "7. When I close my eyes, my neck tightens",
    ("saq", "q8"): "8. When I eat, my eye waters",
    ("saq", "q9"): "9. When I move my face, my chin develops a dimpled area",
    ("saq", "total_raw"): "Recorded total, raw form (sum of the nine items, 9 to 45)",
    ("saq", "total_pct"): "Recorded total, percentage form (sum / 45 x 100, 20 to 100)",
    ("face", "movement"): "Facial movement domain score",
    ("face", "comfort"): "Facial comfort domain score",
    ("face", "oral_function"): "Oral function domain score",
    ("face", "eye_comfort"): "Eye comfort domain score",
    ("face", "lacrimal_control"): "Lacrimal control domain score",
    ("face", "social_function"): "Social function domain score",
    ("face", "total"): "Total score",
    ("fdi", "physical"): "Physical function score",
    ("fdi", "social"): "Social / well-being function score",
    ("house_brackmann", "grade"): "House-Brackmann grade",
}

# Section headers: shown above the first field of each group.
SECTIONS: dict[tuple[str, str], str] = {
    ("sunnybrook", "rest_eye"): "Resting symmetry (affected side compared with normal)",
    ("sunnybrook", "vm_brow"): "Symmetry of voluntary movement",
    ("sunnybrook", "syn_brow"): "Synkinesis: degree of involuntary muscle contraction with each expression",
    ("sunnybrook", "resting_score"): "Recorded scores (optional: give them where the items were not recorded)",
    ("eface", "static_brow"): "Static (at rest; 100 is balanced, above 100 is overshoot)",
    ("eface", "dyn_brow_elevation"): "Dynamic (100 is normal movement)",
    ("eface", "syn_ocular"): "Synkinesis (100 is no synkinesis)",
    ("eface", "static_score"): "Recorded scores (as the eFACE app computes them; optional)",
    ("saq", "q1"): "Items: how often in the last weeks (1 seldom or not at all ... 5 all the time)",
    ("saq", "total_raw"): "Recorded total (optional; give the form it was recorded in)",
    ("face", "movement"): "Recorded scores (0 to 100, higher is better)",
    ("fdi", "physical"): "Recorded scores (0 to 100, higher is better)",
}

PATIENT_CHOICES = {
    "sex": {"F": "Female", "M": "Male", "X": "Other", "U": "Unknown"},
    "side": {"L": "Left", "R": "Right", "B": "Bilateral"},
    "etiology": {
        "bell": "Bell's palsy",
        "ramsay_hunt": "Ramsay Hunt syndrome",
        "tumor": "Tumour (incl. vestibular schwannoma surgery)",
        "trauma": "Trauma",
        "iatrogenic": "Iatrogenic",
        "infection": "Other infection",
        "other": "Other",
        "unknown": "Unknown",
    },
}
MODALITY_LABELS = {
    "botox": "Botulinum toxin injection session",
    "physical_therapy": "Facial physical therapy course",
    "selective_neurectomy": "Selective neurectomy",
    "selective_myectomy": "Selective myectomy",
    "other_surgery": "Other surgery",
}
COMPLICATION_LABELS = {
    "incomplete_eye_closure": "Incomplete eye closure",
    "oral_incompetence": "Oral incompetence",
    "lower_lip_weakness": "Lower lip weakness",
    "eyelid_ptosis": "Eyelid ptosis",
    "brow_ptosis": "Brow ptosis",
    "drooling": "Drooling",
    "dry_eye": "Dry eye",
    "haematoma": "Haematoma",
    "infection": "Infection",
    "revision_surgery": "Revision surgery",
    "other": "Other",
}
_CELLS = {
    "section": SECTION,
    "choices": CHOICES,
    "note": NOTE,
    "validation": VALIDATION,
    "low": MIN,
    "high": MAX,
    "branching": BRANCHING,
    "required": REQUIRED,
}


def choices(pairs: dict[object, str]) -> str:
    """REDCap's choice list: 'code, label | code, label'."""
    return " | ".join(f"{code}, {label}" for code, label in pairs.items())


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _row(form: str, field: str, kind: str, label: str, **cells: str) -> dict[str, str]:
    row = dict.fromkeys(HEADER, "")
    row.update({FIELD: field, FORM: form, TYPE: kind, LABEL: label})
    row.update({_CELLS[key]: value for key, value in cells.items()})
    return row


def _item_row(item: Item) -> dict[str, str]:
    form = item.instrument
    field = f"{REDCAP_PREFIXES[form]}_{item.code}"
    label = ITEM_LABELS[(form, item.code)]
    section = SECTIONS.get((form, item.code), "")
    picks = ITEM_CHOICES.get((form, item.code))
    if picks is not None:
        return _row(form, field, "radio", label, section=section, choices=choices(picks))
    note = f"{_number(item.low)} to {_number(item.high)}"
    if form == "eface" and item.code.startswith("static_") and item.kind == "item":
        note += "; 100 is balanced"
    return _row(
        form,
        field,
        "text",
        label,
        section=section,
        note=note,
        validation="integer" if item.integer else "number",
        low=_number(item.low),
        high=_number(item.high),
    )


def dictionary_rows() -> list[dict[str, str]]:
    """Every field of the project, form by form, in REDCap's column order."""
    p = REDCAP_PATIENT_FORM
    rows = [
        _row(
            p,
            REDCAP_RECORD_ID,
            "text",
            "Patient pseudonym (record ID)",
            section="Patient (one per record)",
            note="The clinic's pseudonym: letters, digits, _ or -, at most 32; never a medical record number",
        ),
        _row(p, "sex", "radio", "Sex", choices=choices(PATIENT_CHOICES["sex"]), required="y"),
        _row(
            p,
            "age_at_onset",
            "text",
            "Age at palsy onset (years)",
            note="0 to 90; enter 90 for 90 or older",
            validation="integer",
            low="0",
            high="90",
            required="y",
        ),
        _row(p, "side", "radio", "Affected side", choices=choices(PATIENT_CHOICES["side"]), required="y"),
        _row(
            p, "etiology", "dropdown", "Cause of the palsy", choices=choices(PATIENT_CHOICES["etiology"]), required="y"
        ),
        _row(
            p,
            "index_year",
            "text",
            "Year of the index visit (first visit to the synkinesis clinic)",
            note=f"Year only, {MIN_INDEX_YEAR} to this year",
            validation="integer",
            low=str(MIN_INDEX_YEAR),
            required="y",
        ),
        _row(
            p,
            "onset_to_index_days",
            "text",
            "Days from palsy onset to the index visit",
            note="0 to 36500",
            validation="integer",
            low="0",
            high="36500",
            required="y",
        ),
    ]
    t = REDCAP_TREATMENT_FORM
    rows += [
        _row(
            t,
            "tx_day",
            "text",
            "Day of the treatment (days from the index visit; negative before it)",
            section="Treatment event (one instance per injection session, therapy course or operation)",
            note="-3650 to 7300; the index visit is day 0",
            validation="integer",
            low="-3650",
            high="7300",
            required="y",
        ),
        _row(t, "tx_modality", "radio", "Treatment", choices=choices(MODALITY_LABELS), required="y"),
        _row(
            t,
            "tx_botox_units",
            "text",
            "Botulinum toxin dose (onabotulinumtoxinA-equivalent units)",
            note="More than 0, at most 300",
            validation="number",
            low="0",
            high="300",
            branching="[tx_modality] = 'botox'",
            required="y",
        ),
        _row(
            t,
            "tx_pt_sessions",
            "text",
            "Sessions in this therapy course",
            note="1 to 200",
            validation="integer",
            low="1",
            high="200",
            branching="[tx_modality] = 'physical_therapy'",
        ),
        _row(
            t,
            "tx_target",
            "dropdown",
            "Treated muscle or nerve branch (optional)",
            choices=choices({code: code.replace("_", " ").capitalize() for code in TARGET_CODES}),
            note="Add codes of your own as further choices: lower-case letters and _ only",
        ),
    ]
    for instrument in INSTRUMENTS:
        prefix = REDCAP_PREFIXES[instrument]
        rows.append(
            _row(
                instrument,
                f"{prefix}_visit_day",
                "text",
                "Visit day (days from the index visit)",
                section=INSTRUMENT_TITLES[instrument],
                note="-3650 to 7300; the index visit is day 0",
                validation="integer",
                low="-3650",
                high="7300",
                required="y",
            )
        )
        rows += [_item_row(item) for item in ITEMS if item.instrument == instrument]
    return rows + complication_rows()


def complication_rows() -> list[dict[str, str]]:
    """The complication form (contract 1.2): one instance per adverse event or complication."""
    c = REDCAP_COMPLICATION_FORM
    day = {"validation": "integer", "low": "-3650", "high": "7300"}
    return [
        _row(
            c,
            "cx_id",
            "text",
            "Complication id",
            section="Complication or adverse event (one instance per event; no dates, no free text)",
            # A number: REDCap's text fields without validation are free text, which the export must not carry.
            note="A number, unique within the patient (1, 2, ...)",
            validation="integer",
            low="1",
            required="y",
        ),
        _row(
            c,
            "cx_treatment_id",
            "text",
            "The treatment it followed (that treatment's instance number; empty if not known)",
            validation="integer",
            low="1",
        ),
        _row(
            c,
            "cx_day",
            "text",
            "Day the event was noted (days from the index visit)",
            note="-3650 to 7300; the index visit is day 0",
            required="y",
            **day,
        ),
        _row(c, "cx_code", "dropdown", "Complication", choices=choices(COMPLICATION_LABELS), required="y"),
        _row(
            c,
            "cx_grade",
            "radio",
            "Clavien-Dindo grade (surgical events; may be empty for BoNT effects)",
            choices=choices({g: f"Grade {g}" for g in range(1, CLAVIEN_DINDO_MAX + 1)}),
        ),
        _row(
            c,
            "cx_resolved_day",
            "text",
            "Day it resolved (days from the index visit; empty while unresolved)",
            note="On or after the day it was noted",
            **day,
        ),
    ]


def dictionary_csv() -> str:
    """The dictionary as REDCap reads it: comma-separated, every cell quoted."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HEADER, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writeheader()
    writer.writerows(dictionary_rows())
    return out.getvalue()


def write_dictionary(path: Path = SHIPPED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dictionary_csv().encode("utf-8"))
    return path


if __name__ == "__main__":
    print(f"Wrote {write_dictionary(Path(sys.argv[1]) if len(sys.argv) > 1 else SHIPPED)}")
