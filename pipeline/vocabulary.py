"""The platform's words, in one home: modality names, outcome labels and directions, and contrast names.

The report's tables and sentences, the claims section and the Safety section all read these; the models
build contrast names with :func:`contrast_name` and the report takes them apart with :func:`contrast_groups`,
so the grammar ``<first>_vs_<second>`` lives here only. Plain data: no fitting, no warehouse.

Where a modality has two forms in print (a full name and the short one a sentence uses after it), both are
declared here, side by side, so that changing one word is one edit.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.contract import MODALITY_CODES, OUTCOMES

# --- modalities -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Modality:
    """A modality's words: ``name`` in a table, ``short`` in a running sentence, ``with_it`` after "patients"."""

    code: str
    name: str
    short: str
    with_it: str


# In the Safety section's order (the operations a patient weighs, then injections); the codes are the
# contract's (pipeline.contract.MODALITY_CODES).
MODALITY_LIST = (
    Modality("SN", "selective neurectomy", "selective neurectomy", "after selective neurectomy"),
    Modality("MY", "selective myectomy", "selective myectomy", "after selective myectomy"),
    Modality("OS", "other facial surgery", "other surgery", "after other facial surgery"),
    Modality("BTX", "botulinum toxin", "BoNT", "on botulinum toxin injections"),
    Modality("PT", "physical therapy", "physical therapy", "on physical therapy"),
)
MODALITY_WORDS: dict[str, Modality] = {m.code: m for m in MODALITY_LIST}
assert set(MODALITY_WORDS) == set(MODALITY_CODES.values()), "one set of words per contract modality"
SURGICAL_CODES = ("SN", "MY", "OS")


def modality_short(code: str) -> str:
    """The short word for a modality code (the code itself where there is none)."""
    found = MODALITY_WORDS.get(code)
    return found.short if found else code


# --- outcomes ---------------------------------------------------------------------------------------------

# Outcome: (display name, scale in words). Direction from the contract (OUTCOMES), timepoints from the
# warehouse's design (pipeline.analysis_design).
OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    "sunnybrook_composite": ("Sunnybrook composite", "points, -15 to 100"),
    "sunnybrook_voluntary": ("Sunnybrook voluntary movement", "points, 20 to 100"),
    "sunnybrook_resting": ("Sunnybrook resting asymmetry", "points, 0 to 20"),
    "sunnybrook_synkinesis": ("Sunnybrook synkinesis", "points, 0 to 15"),
    "eface_total": ("eFACE total", "points, 0 to 100"),
    "eface_static": ("eFACE static", "points, 0 to 100"),
    "eface_dynamic": ("eFACE dynamic", "points, 0 to 100"),
    "eface_synkinesis": ("eFACE synkinesis", "points, 0 to 100"),
    "saq": ("SAQ", "percent score, 20 to 100"),
    "face_total": ("FaCE total", "points, 0 to 100"),
    "fdi_physical": ("FDI physical", "points, 0 to 100"),
    "fdi_social": ("FDI social", "points, 0 to 100"),
    "house_brackmann": ("House-Brackmann grade", "grade, 1 to 6"),
    # The eFACE items the hallmarks section follows.
    "dyn_commissure_smile": ("eFACE commissure movement with smile", "item, 0 to 100"),
    "dyn_nlf_depth_smile": ("eFACE nasolabial fold depth with smile", "item, 0 to 100"),
    "dyn_nlf_orientation_smile": ("eFACE nasolabial fold orientation with smile", "item, 0 to 100"),
}
# The BoNT-reliance outcomes (pipeline.models.reliance), as a sentence names them.
RELIANCE_OUTCOME_WORDS = {
    "botox_interval_days": "the days between injections",
    "botox_units_per_session": "the units per session",
    "time_to_next_botox": "the time to the next injection",
}


def outcome_label(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, (outcome, ""))[0]


def higher_is_better(outcome: str) -> bool:
    """The contract's direction (True for an outcome it does not list)."""
    return OUTCOMES.get(outcome, True)


def direction_words(higher_is_better: bool) -> str:
    return "higher is better" if higher_is_better else "lower is better"


# --- contrasts --------------------------------------------------------------------------------------------

PRIMARY_CONTRAST = "combined_vs_single"
VS = "_vs_"
PRIMARY_LABEL = "Combined vs single modality"
TARGET_TRIAL_CONTRAST = "surgery_within_90d_vs_continue_bont"  # the target trial of docs/target_trial.md
# Contrasts named for a question rather than two groups.
NAMED_CONTRASTS = {
    PRIMARY_CONTRAST: PRIMARY_LABEL,
    TARGET_TRIAL_CONTRAST: "Surgery within 90 days vs more injections (target trial)",
}


def contrast_name(first: str, second: str) -> str:
    """A comparison's name in model_estimates, e.g. ``BTX+PT_vs_BTX``."""
    return f"{first}{VS}{second}"


def contrast_groups(contrast: str) -> tuple[str, str]:
    """The two groups' names: ("combined", "single") for the primary contrast, else the two combinations."""
    if contrast == PRIMARY_CONTRAST:
        return "combined", "single"
    first, _, second = contrast.partition(VS)
    return first, second


def group_words(contrast: str) -> tuple[str, str]:
    """The two groups as a table heads them: "single modality" for the primary contrast's second group."""
    first, second = contrast_groups(contrast)
    return (first, "single modality") if contrast == PRIMARY_CONTRAST else (first, second)


def contrast_label(contrast: str) -> str:
    if contrast in NAMED_CONTRASTS:
        return NAMED_CONTRASTS[contrast]
    return contrast.replace(VS, " vs ")
