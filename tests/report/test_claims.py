"""The report's section on what surgeons claim (pipeline/report/claims.py): its sentences from the claims'
``model_estimates`` rows, and its counts through the register and the disclosure audit."""

from __future__ import annotations

import re

import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.report.claims import (
    ClaimPatients,
    register_counts,
    section,
    split_claims,
    synergy_verdict,
    untested_pairs,
)
from pipeline.report.disclosure import protect
from pipeline.report.register import Register
from pipeline.yardsticks import yardstick

DESIGN = AnalysisDesign(
    timepoints=("12m",),
    months={"baseline": 0, "12m": 12},
    labels={"baseline": "baseline", "12m": "12 months"},
    primary_timepoint="12m",
    outcomes=("sunnybrook_composite",),
    higher_is_better={"sunnybrook_composite": True},
    primary_outcome="sunnybrook_composite",
    yardsticks={"sunnybrook_composite": yardstick("sunnybrook_composite")},
)
PAIR = "synergy:PT+SN|BTX"


def row(contrast: str, method: str, outcome: str, timepoint: str, estimate: float, low: float, high: float, **kw):
    return {
        "run_id": "r",
        "method": method,
        "outcome": outcome,
        "timepoint": timepoint,
        "contrast": contrast,
        "estimate": estimate,
        "ci_low": low,
        "ci_high": high,
        "higher_is_better": kw.get("better", True),
        "note": "n",
        "diagnostics_ok": True,
    }


def claims_rows(synergy: tuple[float, float, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            row(PAIR, "ancova", "sunnybrook_composite", "12m", *synergy),
            row("after_vs_before_surgery", "aft", "botox_interval_days", "all", 1.49, 1.45, 1.53),
            row("after_vs_before_surgery", "aft_vs_bont_alone", "botox_interval_days", "all", 1.56, 1.52, 1.60),
            row("after_vs_before_surgery", "mixed_log", "botox_units_per_session", "all", 0.89, 0.88, 0.90),
            row(
                "after_vs_before_surgery", "mixed_log_vs_bont_alone", "botox_units_per_session", "all", 0.74, 0.73, 0.75
            ),
            # The raw-scale sensitivity rows: not in the sentences (the warehouse has them).
            row("after_vs_before_surgery", "mixed", "botox_interval_days", "all", 44.5, 42.7, 46.3),
            row("after_vs_before_surgery", "mixed_vs_bont_alone", "botox_units_per_session", "all", -8.3, -8.8, -7.9),
            row("after_vs_before_surgery", "phreg", "time_to_next_botox", "all", 0.15, 0.14, 0.16, better=False),
        ]
    )


def patients(sizes: dict[str, int], surgery: int = 40, alone: int = 60) -> ClaimPatients:
    found = ClaimPatients()
    for group, n in sizes.items():
        found.synergy[(PAIR, group)] = [("s1", f"{group}-{i}") for i in range(n)]
    found.surgery = [("s1", f"S{i}") for i in range(surgery)]
    found.bont_alone = [("s1", f"A{i}") for i in range(alone)]
    return found


FOUR = {"BTX": 300, "BTX+PT": 120, "BTX+SN": 40, "BTX+PT+SN": 60}


def rendered(synergy: tuple[float, float, float], sizes: dict[str, int] = FOUR) -> tuple[list[dict], Register]:
    register = Register("2026-Q3")
    register_counts(register, patients(sizes))
    protect(register, [], ())
    return section(claims_rows(synergy), pd.DataFrame(), register, DESIGN), register


def test_the_synergy_sentence_a_surgeon_can_repeat() -> None:
    parts, _ = rendered((2.4, 0.6, 4.2))
    sentence = parts[0]["sentences"][0]
    assert sentence.startswith(
        "Adding physical therapy and selective neurectomy together on BoNT gave 2.4 points more improvement in the "
    )
    assert "than the sum of adding each alone (95% CI 0.6 to 4.2;" in sentence
    assert "BTX 300, BTX+PT 120, BTX+SN 40, BTX+PT+SN 60" in sentence
    # The yardstick: the design's (half the reference SD, 10.4), as the answer section reads it.
    assert sentence.endswith(": the data show synergy, though smaller than the important difference, 10.4 points.")


def test_synergy_additivity_or_cannot_tell() -> None:
    assert synergy_verdict(6.0, 5.0, 9.0, 5.0, "MIC").startswith("the data show synergy, of a size")
    assert synergy_verdict(6.0, 2.0, 9.0, 5.0, "MIC") == "the data show synergy, possibly of a size that matters"
    assert synergy_verdict(2.0, 0.5, 3.5, 5.0, "MIC") == "the data show synergy, though smaller than the MIC"
    assert synergy_verdict(0.3, -2.0, 2.6, 5.0, "MIC").startswith("the data show additivity")
    assert synergy_verdict(0.3, -6.0, 6.6, 5.0, "MIC") == "the data cannot tell synergy from additivity"
    assert synergy_verdict(0.3, -2.0, 2.6, None, "") == "the data cannot tell synergy from additivity"
    assert synergy_verdict(-4.0, -6.0, -2.0, 5.0, "MIC") == "the data show less than the sum of the parts"


def test_the_bont_sentences_lead_with_the_answer_guarded_against_drift() -> None:
    parts, _ = rendered((0.1, -1.0, 1.2))
    reliance = parts[1]["sentences"]
    # First the comparison with patients on BoNT alone over the same session numbers: the answer.
    assert reliance[0].startswith("Patients with a selective neurectomy or myectomy and repeat BoNT injections, "
                                  "compared with patients on BoNT alone over the same session numbers")  # fmt: skip
    assert "the gap between injections after surgery was 1.56 times (95% CI 1.52 to 1.60), 56% longer" in reliance[0]
    assert "each session used 0.74 times (95% CI 0.73 to 0.75), 26% fewer units" in reliance[0]
    # Then the within-patient comparison, as a sensitivity analysis with its reason.
    assert reliance[1].startswith("As a sensitivity analysis, comparing each surgery patient's injections after")
    assert "was 1.49 times (95% CI 1.45 to 1.53), 49% longer" in reliance[1]
    assert (
        "hazard ratio of the next injection was 0.15 (95% CI 0.14 to 0.16): the next injection came later"
        in (reliance[1])
    )
    assert "each session used 0.89 times" in reliance[1] and "leaves that drift in" in reliance[1]
    assert not any("days" in sentence or "44.5" in sentence for sentence in reliance)
    # No count that is not a model's own: the models each have their own patients.
    assert not any(re.search(r"\b(40|60) patients", sentence) for sentence in reliance)


def test_pairs_that_could_not_be_tested_are_named_with_why() -> None:
    population = pd.DataFrame(
        {"combination": ["BTX"] * 30 + ["BTX+PT"] * 20 + ["BTX+SN"] * 7 + ["BTX+PT+SN"] * 15 + ["PT+SN"] * 3}
    )
    untested = untested_pairs(population, tested=set())
    # PT+SN on BoNT: the background and the whole combination have 11 or more, BTX+SN fewer. The pairs on SN or
    # PT alone as background are not a question a reader asks of these data (their background is rare).
    assert untested == [("PT+SN", "BTX", ["BTX+SN"])]
    assert untested_pairs(population, tested={"synergy:PT+SN|BTX"}) == []
    register = Register("2026-Q3")
    register.count("combinations|combined|BTX+SN", "BTX+SN", [("s", f"p{i}") for i in range(7)],
                   place=("combinations", 0, "patients"))  # fmt: skip
    register_counts(register, patients(FOUR))
    sentences = section(claims_rows((0.1, -1.0, 1.2)), pd.DataFrame(), register, DESIGN, untested)[0]["sentences"]
    assert sentences[-1] == (
        "Not tested, as each of a pair's four groups needs at least 11 patients: PT+SN on BoNT (fewer than 11 "
        "patients had BTX+SN)."
    )
    assert "7" not in sentences[-1]
    # Where the combinations table does not print the group as "<11", the sentence would say more than it: none.
    register = Register("2026-Q3")
    register_counts(register, patients(FOUR))
    sentences = section(claims_rows((0.1, -1.0, 1.2)), pd.DataFrame(), register, DESIGN, untested)[0]["sentences"]
    assert not sentences[-1].startswith("Not tested")


def test_a_small_group_prints_as_under_eleven_and_never_as_its_number() -> None:
    parts, register = rendered((2.4, 0.6, 4.2), {"BTX": 300, "BTX+PT": 120, "BTX+SN": 7, "BTX+PT+SN": 60})
    sentence = parts[0]["sentences"][0]
    assert "BTX+SN <11" in sentence and "BTX+SN 7" not in sentence
    assert register.cells[f"claims|{PAIR}|BTX+SN"].status != "shown"


def test_the_claims_rows_stay_out_of_the_comparative_estimates() -> None:
    estimates = pd.concat(
        [claims_rows((1.0, 0.0, 2.0)), pd.DataFrame([row("combined_vs_single", "ancova", "saq", "12m", 1, 0, 2)])]
    )
    comparative, claims = split_claims(estimates)
    assert list(comparative["contrast"]) == ["combined_vs_single"]
    assert len(claims) == 8


def test_without_a_pair_the_section_says_synergy_could_not_be_tested() -> None:
    register = Register("2026-Q3")
    claims = claims_rows((1.0, 0.0, 2.0)).iloc[1:]
    register_counts(register, patients({}))
    parts = section(claims, pd.DataFrame(), register, DESIGN)
    assert parts[0]["sentences"][0].startswith("No pair of add-on modalities had at least 11 patients")


def test_an_estimate_whose_fit_warned_is_read_with_care() -> None:
    register = Register("2026-Q3")
    register_counts(register, patients({}))
    claims = claims_rows((1.0, 0.0, 2.0)).iloc[1:].copy()
    claims.loc[claims["method"].eq("aft") & claims["outcome"].eq("botox_interval_days"), "diagnostics_ok"] = False
    sentence = section(claims, pd.DataFrame(), register, DESIGN)[1]["sentences"][1]
    assert sentence.endswith(
        "Read with care: the fit of the days between injections warned (the estimate's note in the warehouse says how)."
    )
