"""The report's sentences: the key findings in plain words, from the estimates as the warehouse holds them."""

from __future__ import annotations

import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.report.answer import (
    AnswerRow,
    caught_up_sentence,
)
from pipeline.report.reading import WarehouseData
from pipeline.report.suppression import (
    SMALL_CELL,
    shown_estimate,
    too_small,
)
from pipeline.vocabulary import PRIMARY_CONTRAST, outcome_label

# The report's answer: the design's primary outcome, then the patient-reported SAQ (or, where the
SECOND_KEY_OUTCOMES = ("saq", "sunnybrook_composite")


# --- words ---------------------------------------------------------------------------------------------


def _pick(
    estimates: pd.DataFrame,
    method: str,
    outcome: str,
    timepoint: str,
    contrast: str = PRIMARY_CONTRAST,
) -> pd.Series | None:
    if estimates.empty:
        return None
    match = estimates[
        (estimates["method"] == method)
        & (estimates["outcome"] == outcome)
        & (estimates["timepoint"] == timepoint)
        & (estimates["contrast"] == contrast)
    ]
    return None if match.empty else match.iloc[0]


def _improvement(row: pd.Series) -> tuple[float, float, float]:
    """The difference in improvement (first minus second group) and its CI, whatever the direction."""
    sign = 1.0 if bool(row["higher_is_better"]) else -1.0
    low, high = sorted((sign * float(row["ci_low"]), sign * float(row["ci_high"])))
    return sign * float(row["estimate"]), low, high


def finding_sentence(row: pd.Series | None, outcome: str, timepoint_words: str) -> str:
    name = outcome_label(outcome)
    if row is None:
        return f"No comparison on the {name} at {timepoint_words} yet: no patient has that score with a baseline."
    if too_small(row):
        return (
            f"Too few patients to compare treatments on the {name} at {timepoint_words} "
            f"(each group needs at least {SMALL_CELL})."
        )
    if not shown_estimate(row):
        return (
            f"The adjusted comparison on the {name} at {timepoint_words} is not shown: the model did not fit "
            "or its diagnostics did not pass (see the estimates table)."
        )
    better, low, high = _improvement(row)
    direction = "more" if better >= 0 else "less"
    if better < 0:
        low, high = -high, -low
    scale = "" if bool(row["higher_is_better"]) else " (on which a lower score is better)"
    sentence = (
        f"At {timepoint_words}, patients on combined treatment improved {abs(better):.1f} points {direction} "
        f"on the {name}{scale} than those on a single modality (95% CI {low:.1f} to {high:.1f}), "
        "after adjustment for baseline severity and patient characteristics."
    )
    if low < 0 < high:
        sentence += " The interval includes zero: the data are compatible with no difference."
    return sentence


def key_outcomes(design: AnalysisDesign) -> tuple[str, str]:
    """The report's answer: the design's primary outcome first."""
    second = next(o for o in SECOND_KEY_OUTCOMES if o != design.primary_outcome)
    return design.primary_outcome, second


def summary_sentences(data: WarehouseData, flow_shown: list[str], answer: list[AnswerRow] | None = None) -> list[str]:
    design = data.design
    assert design is not None
    answer = answer or []
    at = design.primary_timepoint
    primary = next((r for r in answer if r.contrast == PRIMARY_CONTRAST and r.outcome == design.primary_outcome), None)
    split = (
        f": {primary.n_first} {primary.first}, {primary.n_second} {primary.second} modality"
        if primary is not None and primary.n_first and primary.n_second
        else ""
    )
    sentences = [
        f"The data hold {flow_shown[0]} patients; {flow_shown[2]} could be classified by the "
        f"treatments they started in the exposure window, and {flow_shown[-1]} of these have a baseline and a "
        f"{design.months[at]}-month {outcome_label(design.primary_outcome)} score (the primary analysis{split})."
    ]
    if data.estimates.empty:
        sentences.append("No comparative model has been run on this warehouse yet.")
        return sentences
    keys = key_outcomes(design)
    for outcome in keys:
        sentence = finding_sentence(_pick(data.estimates, "ancova", outcome, at), outcome, design.label(at))
        row = next((r for r in answer if r.contrast == PRIMARY_CONTRAST and r.outcome == outcome), None)
        if row is not None and row.better is not None:
            sentence += " " + caught_up_sentence(row, design.higher_is_better.get(outcome, True))
        sentences.append(sentence.strip())
    adjusted = _pick(data.estimates, "ancova", keys[0], at)
    crude = _pick(data.estimates, "unadjusted", keys[0], at)
    if adjusted is not None and crude is not None and shown_estimate(adjusted) and shown_estimate(crude):
        better, low, high = _improvement(crude)  # the report's sign: above 0, combined improved more
        sentences.append(
            f"Before adjustment the {outcome_label(keys[0])} difference in improvement was "
            f"{better:.1f} points (95% CI {low:.1f} to {high:.1f}); "
            "the adjusted figure is the one to use, because patients are not given combined "
            "treatment at random: those with worse scores at baseline more often are."
        )
    if adjusted is not None and shown_estimate(adjusted) and pd.notna(adjusted.get("e_value", float("nan"))):
        limit = adjusted.get("e_value_ci", float("nan"))
        sentences.append(
            f"Unmeasured confounding: to explain away the {outcome_label(keys[0])} difference, a factor not "
            f"in the data would have to raise both the chance of combined treatment and of a better outcome by a "
            f"risk ratio of {adjusted['e_value']:.1f} each (E-value"
            + (f"; {limit:.1f} to move the confidence interval to include no difference)." if pd.notna(limit) else ").")
        )
    sentences += weighted_sentences(data.estimates, data.diagnostics, keys, at)
    return sentences


def weighted_sentences(
    estimates: pd.DataFrame, diagnostics: pd.DataFrame, outcomes: tuple[str, ...], at: str
) -> list[str]:
    """Whether the weighted (IPTW) check passed, said per outcome: passing on one outcome says nothing of
    another (each has its own patients, so its own balance)."""
    passed, failed = [], []
    for outcome in outcomes:
        weighted = _pick(estimates, "iptw", outcome, at)
        if weighted is None or too_small(weighted):
            continue
        if shown_estimate(weighted):
            better, low, high = _improvement(weighted)
            passed.append(f"the {outcome_label(outcome)} ({better:.1f} points, 95% CI {low:.1f} to {high:.1f})")
        else:
            worst = ""
            if diagnostics is not None and len(diagnostics):
                match = diagnostics[
                    (diagnostics["contrast"] == PRIMARY_CONTRAST)
                    & (diagnostics["outcome"] == outcome)
                    & (diagnostics["timepoint"] == at)
                ]
                if len(match) and pd.notna(match["max_abs_smd_weighted"].iloc[0]):
                    worst = f", max |SMD| {float(match['max_abs_smd_weighted'].iloc[0]):.2f}"
            failed.append(f"the {outcome_label(outcome)}{worst}")
    sentences = []
    if passed:
        sentences.append(
            "The weighted (IPTW) comparison passed its balance and overlap checks for " + " and ".join(passed) + "."
        )
    if failed:
        sentences.append(
            "It did not pass them for "
            + " and ".join(failed)
            + ": that weighted estimate is not shown; read the adjusted result there with that in mind."
            if passed
            else "The weighted (IPTW) comparison did not pass its balance or overlap checks for "
            + " and ".join(failed)
            + ", so it is not shown; read the adjusted results with that in mind."
        )
    return sentences


def _timepoint_words(design: AnalysisDesign, leave_out: str = "") -> str:
    """The follow-up timepoints in words, e.g. '3, 6 and 12 months'."""
    months = [str(design.months[t]) for t in design.timepoints if t != leave_out]
    listed = ", ".join(months[:-1]) + " and " + months[-1] if len(months) > 1 else "".join(months)
    return f"{listed} months"
