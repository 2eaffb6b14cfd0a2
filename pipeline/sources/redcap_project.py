"""The REDCap project shape of contract redcap.md, version 1 (1.2: the optional complication form), as data.

A classic project built from the shipped data dictionary (redcap/synkinesis_outcomes_dictionary.csv),
exported flat with raw codes: its forms, their fields and the contract columns they fill. The REDCap
adapter reads exports by it and the shipped dictionary is generated from it; the input contract
itself is pipeline/contract.py.
"""

from __future__ import annotations

from pipeline.contract import INSTRUMENTS, ITEMS

RECORDS = "redcap_records.csv"  # the flat record export of a REDCap drop
REDCAP_RECORD_ID = "record_id"  # the record ID field: the patient's pseudonym
REDCAP_PATIENT_FORM = "patient"
REDCAP_TREATMENT_FORM = "treatment"
REDCAP_COMPLICATION_FORM = "complication"  # contract 1.2: optional, last so that the forms before keep their place
REDCAP_FORMS = (REDCAP_PATIENT_FORM, REDCAP_TREATMENT_FORM, *INSTRUMENTS, REDCAP_COMPLICATION_FORM)
REDCAP_REPEATING_FORMS = REDCAP_FORMS[1:]
# Forms an export may leave out whole (a project built before 1.2): then the drop has no such table.
REDCAP_OPTIONAL_FORMS = (REDCAP_COMPLICATION_FORM,)
# Patient form field -> patients column. site_id is optional (else the data access group, else the
# manifest), and the shipped dictionary leaves it out: it would be an unvalidated text field.
REDCAP_PATIENT_FIELDS = {
    "site_id": "site_id",
    "sex": "sex",
    "age_at_onset": "age_at_onset",
    "side": "side",
    "etiology": "etiology",
    "index_year": "index_year",
    "onset_to_index_days": "onset_to_index_days",
}
REDCAP_OPTIONAL_FIELDS = ("site_id",)
# Treatment form field -> treatments column; the treatment id is the repeat instance.
REDCAP_TREATMENT_FIELDS = {
    "tx_day": "day",
    "tx_modality": "modality",
    "tx_botox_units": "botox_units",
    "tx_pt_sessions": "pt_sessions",
    "tx_target": "target",
}
# Complication form field -> complications column. cx_treatment_id is the treatment's repeat instance,
# which is the treatment id of a REDCap drop.
REDCAP_COMPLICATION_FIELDS = {
    "cx_id": "complication_id",
    "cx_treatment_id": "treatment_id",
    "cx_day": "day",
    "cx_code": "code",
    "cx_grade": "grade",
    "cx_resolved_day": "resolved_day",
}
# Instrument form -> field prefix: fields are <p>_visit_day, then <p>_<item> per item or total code.
REDCAP_PREFIXES = {
    "sunnybrook": "sb",
    "eface": "ef",
    "saq": "saq",
    "face": "face",
    "fdi": "fdi",
    "house_brackmann": "hb",
}
REDCAP_REPEAT_INSTRUMENT = "redcap_repeat_instrument"
REDCAP_REPEAT_INSTANCE = "redcap_repeat_instance"
REDCAP_DATA_ACCESS_GROUP = "redcap_data_access_group"
REDCAP_EVENT_NAME = "redcap_event_name"  # only a longitudinal project's export has it
REDCAP_LOADED_STATUSES = ("1", "2")  # <form>_complete: 0 incomplete (quarantined), 1 unverified, 2 complete

# Codes the shipped dictionary offers for a treatment's target (the contract allows any ^[a-z_]{1,32}$;
# a clinic adds its own codes as further choices).
TARGET_CODES = (
    "frontalis",
    "corrugator",
    "orbicularis_oculi",
    "nasalis",
    "zygomaticus",
    "levator_labii_superioris",
    "buccinator",
    "risorius",
    "orbicularis_oris",
    "depressor_anguli_oris",
    "depressor_labii_inferioris",
    "mentalis",
    "platysma",
    "temporal_branch",
    "zygomatic_branch",
    "buccal_branch",
    "marginal_mandibular_branch",
    "cervical_branch",
    "eyelid",
    "neuromuscular_retraining",
    "biofeedback",
)


def redcap_form_status(form: str) -> str:
    """REDCap's completion field of a form."""
    return f"{form}_complete"


def redcap_instrument_fields(instrument: str) -> dict[str, str]:
    """An instrument form's fields: REDCap field -> item code ('visit_day' for the visit day)."""
    prefix = REDCAP_PREFIXES[instrument]
    fields = {f"{prefix}_visit_day": "visit_day"}
    fields |= {f"{prefix}_{item.code}": item.code for item in ITEMS if item.instrument == instrument}
    return fields
