"""The clinic export contract, version 1.2 (1.2: the optional complications file), as data.

Carried in the package (the pipeline never reads ``shared/`` at run time). Every stage that
needs a column list, a code set or an item range takes it from here; the GX suites in
``expectations/`` are generated from it and a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTRACT_VERSION = "1.2"  # 1.2: the optional complications file

# Each pattern ends in \Z, not $: Python's $ also matches before a final newline, so "site01\n" would pass
# for "site01" (GX's regex expectation searches with these, and the drop-id rule matches with them).
DROP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"
PATIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}\Z"
SITE_ID_PATTERN = r"^[a-z0-9_-]{1,16}\Z"
TREATMENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}\Z"
TARGET_PATTERN = r"^[a-z_]{1,32}\Z"
INTEGER_PATTERN = r"^[+-]?[0-9]+\Z"
NUMBER_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z"

FILES = ("patients", "treatments", "assessments")  # every drop holds these (a full snapshot all three)
OPTIONAL_FILES = ("complications",)  # version 1.2: a drop without it loads as before
TABLES = FILES + OPTIONAL_FILES  # in validation order: a complication names a patient and a treatment

SEXES = ("F", "M", "X", "U")
SIDES = ("L", "R", "B")
ETIOLOGIES = ("bell", "ramsay_hunt", "tumor", "trauma", "iatrogenic", "infection", "other", "unknown")
MODALITIES = (
    "botox",
    "physical_therapy",
    "selective_neurectomy",
    "selective_myectomy",
    "other_surgery",
)
# Short codes in the contract's order: a combination joins them with '+' in this order.
MODALITY_CODES = {
    "botox": "BTX",
    "physical_therapy": "PT",
    "selective_neurectomy": "SN",
    "selective_myectomy": "MY",
    "other_surgery": "OS",
}


def combination_sort_key(combination: str) -> tuple[int, ...]:
    """A combination's codes by their place in the contract's order (unknown codes last)."""
    order = list(MODALITY_CODES.values())
    return tuple(order.index(code) if code in order else len(order) for code in combination.split("+"))


# Complications (version 1.2): codes, and those that need a surgical treatment where one is named.
COMPLICATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}\Z"
COMPLICATION_CODES = (
    "incomplete_eye_closure",
    "oral_incompetence",
    "lower_lip_weakness",
    "eyelid_ptosis",
    "brow_ptosis",
    "drooling",
    "dry_eye",
    "haematoma",
    "infection",
    "revision_surgery",
    "other",
)
SURGICAL_MODALITIES = ("selective_neurectomy", "selective_myectomy", "other_surgery")
CODES_AFTER_SURGERY = ("revision_surgery",)
CLAVIEN_DINDO_MAX = 5

AGE_TOP_CODE = 90
MIN_INDEX_YEAR = 1980


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text", "integer" or "number"
    required: bool = True


COLUMNS: dict[str, tuple[Column, ...]] = {
    "patients": (
        Column("patient_id", "text"),
        Column("site_id", "text"),
        Column("sex", "text"),
        Column("age_at_onset", "integer"),
        Column("side", "text"),
        Column("etiology", "text"),
        Column("index_year", "integer"),
        Column("onset_to_index_days", "integer"),
    ),
    "treatments": (
        Column("patient_id", "text"),
        Column("site_id", "text"),
        Column("treatment_id", "text"),
        Column("day", "integer"),
        Column("modality", "text"),
        Column("botox_units", "number", required=False),
        Column("pt_sessions", "integer", required=False),
        Column("target", "text", required=False),
    ),
    "assessments": (
        Column("patient_id", "text"),
        Column("site_id", "text"),
        Column("visit_day", "integer"),
        Column("instrument", "text"),
        Column("item", "text"),
        Column("value", "number"),
    ),
    "complications": (
        Column("patient_id", "text"),
        Column("site_id", "text"),
        Column("complication_id", "text"),
        Column("treatment_id", "text", required=False),
        Column("day", "integer"),
        Column("code", "text"),
        Column("grade", "integer", required=False),
        Column("resolved_day", "integer", required=False),
    ),
}

KEYS: dict[str, tuple[str, ...]] = {
    "patients": ("site_id", "patient_id"),
    "treatments": ("site_id", "patient_id", "treatment_id"),
    "assessments": ("site_id", "patient_id", "visit_day", "instrument", "item"),
    "complications": ("site_id", "patient_id", "complication_id"),
}


@dataclass(frozen=True)
class Item:
    instrument: str
    code: str
    low: float
    high: float
    kind: str  # "item" (scored item) or "total" (recorded score)
    integer: bool = True


def _items(instrument: str, codes: list[str], low: float, high: float, kind: str, integer: bool = True) -> list[Item]:
    return [Item(instrument, code, low, high, kind, integer) for code in codes]


SUNNYBROOK_VOLUNTARY = ["vm_brow", "vm_eye_closure", "vm_smile", "vm_snarl", "vm_pucker"]
SUNNYBROOK_SYNKINESIS = ["syn_brow", "syn_eye_closure", "syn_smile", "syn_snarl", "syn_pucker"]
EFACE_STATIC = ["static_brow", "static_palpebral_fissure", "static_nasolabial_fold", "static_oral_commissure"]
EFACE_DYNAMIC = [
    "dyn_brow_elevation",
    "dyn_gentle_eye_closure",
    "dyn_full_eye_closure",
    "dyn_nlf_depth_smile",
    "dyn_nlf_orientation_smile",
    "dyn_commissure_smile",
    "dyn_lower_lip_eee",
]
EFACE_SYNKINESIS = ["syn_ocular", "syn_midfacial", "syn_mentalis", "syn_platysmal"]
SAQ_ITEMS = [f"q{i}" for i in range(1, 10)]
FACE_SCORES = ["movement", "comfort", "oral_function", "eye_comfort", "lacrimal_control", "social_function", "total"]
FDI_SCORES = ["physical", "social"]

ITEMS: tuple[Item, ...] = tuple(
    [Item("sunnybrook", "rest_eye", 0, 1, "item"), Item("sunnybrook", "rest_cheek", 0, 2, "item")]
    + [Item("sunnybrook", "rest_mouth", 0, 1, "item")]
    + _items("sunnybrook", SUNNYBROOK_VOLUNTARY, 1, 5, "item")
    + _items("sunnybrook", SUNNYBROOK_SYNKINESIS, 0, 3, "item")
    + [
        Item("sunnybrook", "resting_score", 0, 20, "total", False),
        Item("sunnybrook", "voluntary_score", 20, 100, "total", False),
        Item("sunnybrook", "synkinesis_score", 0, 15, "total", False),
        Item("sunnybrook", "composite", -15, 100, "total", False),
    ]
    + _items("eface", EFACE_STATIC, 0, 200, "item", False)
    + _items("eface", EFACE_DYNAMIC, 0, 100, "item", False)
    + _items("eface", EFACE_SYNKINESIS, 0, 100, "item", False)
    + _items("eface", ["static_score", "dynamic_score", "synkinesis_score", "total"], 0, 100, "total", False)
    + _items("saq", SAQ_ITEMS, 1, 5, "item")
    + [Item("saq", "total_raw", 9, 45, "total", False), Item("saq", "total_pct", 20, 100, "total", False)]
    + _items("face", FACE_SCORES, 0, 100, "total", False)
    + _items("fdi", FDI_SCORES, 0, 100, "total", False)
    + [Item("house_brackmann", "grade", 1, 6, "total")]
)

INSTRUMENTS = ("sunnybrook", "eface", "saq", "face", "fdi", "house_brackmann")

# Where an instrument is given both ways, recorded totals must agree with items this closely.
TOTAL_TOLERANCE = 0.5


@dataclass(frozen=True)
class Outcome:
    """An outcome of the warehouse contract: the instrument score it is, and its direction."""

    code: str
    instrument: str
    score: str
    higher_is_better: bool


# The warehouse contract's outcomes, in its order. The build writes them into the warehouse
# (``design_outcomes``), where the models and the report read them.
OUTCOME_LIST = (
    Outcome("sunnybrook_composite", "sunnybrook", "composite", True),
    Outcome("sunnybrook_voluntary", "sunnybrook", "voluntary_score", True),
    Outcome("sunnybrook_resting", "sunnybrook", "resting_score", False),  # resting asymmetry: higher is worse
    Outcome("sunnybrook_synkinesis", "sunnybrook", "synkinesis_score", False),  # higher is more synkinesis
    Outcome("eface_total", "eface", "total", True),
    Outcome("eface_static", "eface", "static_score", True),
    Outcome("eface_dynamic", "eface", "dynamic_score", True),
    Outcome("eface_synkinesis", "eface", "synkinesis_score", True),
    Outcome("saq", "saq", "total_pct", False),
    Outcome("face_total", "face", "total", True),
    Outcome("fdi_physical", "fdi", "physical", True),
    Outcome("fdi_social", "fdi", "social", True),
    Outcome("house_brackmann", "house_brackmann", "grade", False),
)
OUTCOMES: dict[str, bool] = {o.code: o.higher_is_better for o in OUTCOME_LIST}


def item_range(instrument: str, code: str) -> Item | None:
    for item in ITEMS:
        if item.instrument == instrument and item.code == code:
            return item
    return None
