"""The one vocabulary: every contract modality and outcome has its words, contrast names round-trip, and the
report, the claims and the Safety section read the same words (no dictionary of their own)."""

from __future__ import annotations

from pipeline import vocabulary
from pipeline.contract import MODALITY_CODES, OUTCOMES
from pipeline.models.design_matrix import COMBINED_VS_SINGLE
from pipeline.report import answer, claims, responder_shares, safety, tables


def test_every_contract_modality_and_outcome_has_its_words() -> None:
    assert set(vocabulary.MODALITY_WORDS) == set(MODALITY_CODES.values())
    assert set(OUTCOMES) <= set(vocabulary.OUTCOME_LABELS)
    assert vocabulary.higher_is_better("saq") is False and vocabulary.higher_is_better("sunnybrook_composite")
    assert vocabulary.direction_words(False) == "lower is better"


def test_contrast_names_round_trip_and_the_primary_is_one_name() -> None:
    name = vocabulary.contrast_name("BTX+PT", "BTX")
    assert name == "BTX+PT_vs_BTX"
    assert vocabulary.contrast_groups(name) == ("BTX+PT", "BTX")
    assert vocabulary.contrast_label(name) == "BTX+PT vs BTX"
    assert COMBINED_VS_SINGLE == vocabulary.PRIMARY_CONTRAST
    assert vocabulary.contrast_groups(vocabulary.PRIMARY_CONTRAST) == ("combined", "single")
    assert vocabulary.group_words(vocabulary.PRIMARY_CONTRAST) == ("combined", "single modality")


def test_the_report_claims_and_safety_read_the_same_words() -> None:
    for code, (name, with_it) in safety.MODALITY_WORDS.items():
        assert (name, with_it) == (vocabulary.MODALITY_WORDS[code].name, vocabulary.MODALITY_WORDS[code].with_it)
    for code, short in claims.NAMES.items():
        assert short == vocabulary.MODALITY_WORDS[code].short
    assert claims.OUTCOME_WORDS is vocabulary.RELIANCE_OUTCOME_WORDS
    assert tables.OUTCOME_LABELS is vocabulary.OUTCOME_LABELS
    assert answer.group_names is vocabulary.contrast_groups
    assert responder_shares.contrast_groups is vocabulary.group_words
