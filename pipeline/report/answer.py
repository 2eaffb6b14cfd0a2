"""The report's answer, first: does adding a modality help, by how much, and how sure are we.

For each comparison the warehouse has (combined vs single, each combination vs its single-modality
reference) and each main outcome, at the design's primary timepoint: the adjusted (ANCOVA) difference in
improvement with its 95% CI, read against the outcome's yardstick as the design fixed it (:mod:`pipeline.yardsticks`), a
verdict in words, and where each group started and ended (mean baseline and primary-timepoint score of the
estimate's own patients). "Better" always means more improvement, whatever the scale's direction. The
group sizes are printed by the register (the estimates' own cells), never counted here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.report.number_format import signed
from pipeline.report.published_counts import Members
from pipeline.report.register import Register
from pipeline.report.suppression import SMALL_CELL, format_count, shown_estimate, too_small
from pipeline.vocabulary import PRIMARY_CONTRAST, contrast_groups, contrast_label, outcome_label
from pipeline.yardsticks import DESIGN, HALF_SD, MIC, Yardstick

IMPORTANT = "better by an important amount"
POSSIBLY_IMPORTANT = "better, possibly by an important amount"
SMALL_BENEFIT = "better, but by less than is important"
NO_DIFFERENCE = "no difference shown"
INCONCLUSIVE = "inconclusive"
NOT_ESTIMABLE = "not estimable"
WORSE_IMPORTANT = "worse by an important amount"
WORSE_POSSIBLY = "worse, possibly by an important amount"
WORSE_SMALL = "worse, but by less than is important"
BETTER_UNJUDGED = "better; no yardstick to judge the size"
WORSE_UNJUDGED = "worse; no yardstick to judge the size"
VERDICT_RULES = (
    f'"{IMPORTANT}": the whole interval is beyond the yardstick (its lower end reaches it); '
    f'"{POSSIBLY_IMPORTANT}": the interval excludes no difference and the estimate reaches the yardstick, '
    "but the interval's lower end does not; "
    f'"{SMALL_BENEFIT}": the interval excludes no difference, the estimate is below the yardstick; '
    f'"{NO_DIFFERENCE}": the interval includes no difference and excludes an important one either way; '
    f'"{INCONCLUSIVE}": the interval spans both no difference and an important difference; '
    "worse: the same rules on the other side; "
    f'"{NOT_ESTIMABLE}": diagnostics failed or a group had fewer than {SMALL_CELL} patients.'
)
METHOD = "ancova"
SMALL_TEXT = format_count(1)  # "<11": a group under 11, the table's own rule, not the audit's


def verdict(better: float, low: float, high: float, threshold: float | None) -> str:
    """The verdict on a difference in improvement (positive: the first group improved more) and its 95% CI,
    against the design's yardstick (positive, same units; None where there is none). One rule for every
    outcome: "important" only where the interval's lower end reaches the yardstick, "possibly" where only the
    estimate does."""
    if any(not math.isfinite(v) for v in (better, low, high)):
        return NOT_ESTIMABLE
    if threshold is None:
        return BETTER_UNJUDGED if low > 0 else WORSE_UNJUDGED if high < 0 else NO_DIFFERENCE
    if low > 0:
        return IMPORTANT if low >= threshold else POSSIBLY_IMPORTANT if better >= threshold else SMALL_BENEFIT
    if high < 0:
        return WORSE_IMPORTANT if -high >= threshold else WORSE_POSSIBLY if -better >= threshold else WORSE_SMALL
    return INCONCLUSIVE if high >= threshold or low <= -threshold else NO_DIFFERENCE


def improvement(row: pd.Series | object) -> tuple[float, float, float]:
    """Estimate and CI as a difference in improvement: the sign reversed where a lower score is better."""
    sign = 1.0 if bool(row.higher_is_better) else -1.0  # type: ignore[attr-defined]
    low, high = sorted((sign * float(row.ci_low), sign * float(row.ci_high)))  # type: ignore[attr-defined]
    return sign * float(row.estimate), low, high  # type: ignore[attr-defined]


@dataclass
class AnswerRow:
    contrast: str
    outcome: str
    comparison: str  # in words
    first: str  # the first group's name, e.g. "combined", "BTX+PT"
    second: str
    n_first: str  # as the register prints it
    n_second: str
    start_first: float | None
    end_first: float | None
    start_second: float | None
    end_second: float | None
    better: float | None  # difference in improvement, first minus second
    low: float | None
    high: float | None
    yardstick: Yardstick
    verdict: str
    responders: str = ""  # the adjusted difference in the share of responders, in words

    @property
    def estimate_words(self) -> str:
        if self.better is None or self.low is None or self.high is None:
            return ""
        return f"{signed(self.better)} ({signed(self.low)} to {signed(self.high)})"

    @property
    def journey_words(self) -> str:
        """Where each group started and ended, e.g. "52.0 → 66.1 vs 65.8 → 66.3" (first group, second)."""

        def one(start: float | None, end: float | None) -> str:
            return f"{start:.1f} \u2192 {end:.1f}" if start is not None and end is not None else "not shown"

        return f"{one(self.start_first, self.end_first)} vs {one(self.start_second, self.end_second)}"


group_names = contrast_groups  # the answer's words for a contrast's two groups


def _mean(values: pd.Series) -> float | None:
    return float(values.mean()) if len(values) >= SMALL_CELL else None


def journeys(
    scores: pd.DataFrame, members: Members, contrast: str, outcome: str, timepoint: str
) -> tuple[float | None, float | None, float | None, float | None]:
    """Mean baseline and timepoint score of each group of the ANCOVA estimate's own patients (so start and end
    are the same patients); None where the register cannot name them or a group is under 11."""
    found = members.estimates.get((contrast, outcome, timepoint, METHOD))
    if found is None or scores.empty:
        return None, None, None, None
    rows = scores[scores["outcome"] == outcome]
    keyed = rows.set_index(["site_id", "patient_id", "timepoint"])["value"]
    out: list[float | None] = []
    for patients in found:
        index = pd.MultiIndex.from_tuples(
            [(s, p, t) for t in ("baseline", timepoint) for s, p in patients], names=keyed.index.names
        )
        values = keyed.reindex(index)
        half = len(patients)
        out += [_mean(values.iloc[:half].dropna()), _mean(values.iloc[half:].dropna())]
    return out[0], out[1], out[2], out[3]


def answer_rows(
    estimates: pd.DataFrame,
    scores: pd.DataFrame,
    members: Members,
    register: Register,
    design: AnalysisDesign,
    outcomes: tuple[str, ...],
) -> list[AnswerRow]:
    """One row per comparison and outcome (the primary outcome first), at the primary timepoint."""
    at = design.primary_timepoint
    rows = []
    for record in _answer_records(estimates, design, outcomes):
        contrast, outcome = str(record.contrast), str(record.outcome)  # type: ignore[attr-defined]
        stick = design.yardsticks.get(outcome) or Yardstick(outcome, "", None, "")
        first, second = group_names(contrast)
        n = []
        for side in (0, 1):
            key = f"estimates|{contrast}|{outcome}|{at}|{METHOD}|{side}"
            n.append(register.text(key) if key in register.cells else "")
        if shown_estimate(record):
            better, low, high = improvement(record)
            words = verdict(better, low, high, stick.value)
            means = journeys(scores, members, contrast, outcome, at)
        else:
            better = low = high = None
            words = NOT_ESTIMABLE
            small = too_small(record)
            means = (None, None, None, None) if small else journeys(scores, members, contrast, outcome, at)
        rows.append(
            AnswerRow(
                contrast,
                outcome,
                contrast_label(contrast),
                first,
                second,
                n[0],
                n[1],
                *means,
                better,
                low,
                high,
                stick,
                words,
                responder_words(estimates, contrast, outcome, at),
            )
        )
    return rows


ANSWER_TABLE = "answer"  # the register's name for the answer's group sizes: the counts the audit gives up last
ANSWER_N_COLUMNS = ["comparison", "outcome", "n first group", "n second group"]


def _answer_records(estimates: pd.DataFrame, design: AnalysisDesign, outcomes: tuple[str, ...]) -> list[object]:
    """The ANCOVA rows the answer prints, in its order (the primary outcome first, then by comparison)."""
    if estimates.empty:
        return []
    at = design.primary_timepoint
    chosen = estimates[(estimates["method"] == METHOD) & (estimates["timepoint"] == at)]
    contrasts = list(dict.fromkeys(chosen["contrast"]))
    ordered = [design.primary_outcome, *(o for o in outcomes if o != design.primary_outcome)]
    out = []
    for outcome in ordered:
        for contrast in contrasts:
            match = chosen[(chosen["contrast"] == contrast) & (chosen["outcome"] == outcome)]
            if len(match):
                out.append(next(match.itertuples(index=False)))
    return out


def register_answer_n(
    register: Register,
    estimates: pd.DataFrame,
    members: Members,
    design: AnalysisDesign,
    outcomes: tuple[str, ...],
) -> pd.DataFrame:
    """The answer's group sizes (answer.csv), registered before every other table so that their cells are the
    answer's: the audit gives them up last (``printed.GIVE_UP_FIRST``), and every count with the same patients
    with them (the other methods' n, the flow's last step)."""
    at, rows = design.primary_timepoint, []
    for i, r in enumerate(_answer_records(estimates, design, outcomes)):
        found = members.estimates.get((str(r.contrast), str(r.outcome), at, METHOD))  # type: ignore[attr-defined]
        texts = []
        for side, column, n in ((0, "n first group", r.n_treated), (1, "n second group", r.n_control)):  # type: ignore[attr-defined]
            if found is None or len(found[side]) != int(n):
                texts.append("")  # patients the register cannot name: not printed (as the estimates table)
                continue
            key = f"estimates|{r.contrast}|{r.outcome}|{at}|{METHOD}|{side}"  # type: ignore[attr-defined]
            texts.append(format_count(int(n)))
            register.printed_count(
                key,
                f"{('first', 'second')[side]} group of {r.contrast}, {r.outcome} at {at} ({METHOD})",  # type: ignore[attr-defined]
                found[side],
                texts[-1],
                (ANSWER_TABLE, i, column),
            )
        rows.append([contrast_label(str(r.contrast)), outcome_label(str(r.outcome)), *texts])  # type: ignore[attr-defined]
    return pd.DataFrame(rows, columns=ANSWER_N_COLUMNS)


def _given_up(text: str) -> bool:
    """A group size the audit printed other than exactly ("270 to 279", "suppressed", "not shown"; not "<11")."""
    return bool(text) and not text.replace(",", "").isdigit() and text != SMALL_TEXT


def hidden_n_sentences(rows: list[AnswerRow], design: AnalysisDesign) -> list[str]:
    """Why a group size of the answer is not printed exactly, in one sentence: the headline's first."""
    why = (
        "printed exactly, with the other counts this release publishes they would let a number of fewer than "
        f"{SMALL_CELL} patients be worked out (the disclosure audit, see Methods)"
    )
    out = []
    headline = [r for r in rows if r.contrast == PRIMARY_CONTRAST and r.outcome == design.primary_outcome]
    for r in headline:
        if _given_up(r.n_first) or _given_up(r.n_second):
            out.append(f"The primary comparison's group sizes print as {r.n_first} vs {r.n_second}: {why}.")
    others = [
        f"{r.comparison} on the {outcome_label(r.outcome)}"
        for r in rows
        if r not in headline and (_given_up(r.n_first) or _given_up(r.n_second))
    ]
    if others:
        out.append(f"Group sizes printed as a range or hidden ({'; '.join(others)}): {why}.")
    return out


def caught_up_sentence(row: AnswerRow, higher_is_better: bool) -> str:
    """Whether "improved more" also means "ended better": a group that started worse may only catch up."""
    if None in (row.start_first, row.end_first, row.start_second, row.end_second):
        return ""
    sign = 1.0 if higher_is_better else -1.0
    start_gap = sign * (row.start_first - row.start_second)  # type: ignore[operator]
    end_gap = sign * (row.end_first - row.end_second)  # type: ignore[operator]
    if start_gap < 0 and end_gap <= 0:
        caught = "and ended close to it" if abs(end_gap) < abs(start_gap) / 2 else "and ended still behind"
        return (
            f"The {row.first} group started {abs(start_gap):.1f} points worse than the {row.second} group "
            f"{caught} ({abs(end_gap):.1f} points apart): improving more is not the same as ending better."
        )
    if start_gap < 0 < end_gap:
        return f"The {row.first} group started {abs(start_gap):.1f} points worse and ended {end_gap:.1f} points better."
    return (
        f"The {row.first} group started {abs(start_gap):.1f} points {'better' if start_gap > 0 else 'level'} and "
        f"ended {abs(end_gap):.1f} points {'better' if end_gap > 0 else 'worse'}."
    )


def lead_sentences(rows: list[AnswerRow], design: AnalysisDesign) -> list[str]:
    """The answer in words, on the primary outcome: the yardstick, then the comparisons by verdict."""
    if not rows:
        return ["No comparison has been estimated on these data yet."]
    primary = design.primary_outcome
    first_rows = [r for r in rows if r.outcome == primary]
    if not first_rows:
        return [f"No comparison on the {outcome_label(primary)} at {design.primary_label} yet."]
    stick = first_rows[0].yardstick
    yard = yardstick_words(stick)
    sentences = [
        f"On the {outcome_label(primary)} at {design.primary_label} (the primary outcome; {yard}), after adjustment:"
    ]
    by_verdict: dict[str, list[str]] = {}
    for row in first_rows:
        shown = f" ({signed(row.better)})" if row.better is not None else ""
        by_verdict.setdefault(row.verdict, []).append(f"{row.comparison}{shown}")
    for words, comparisons in by_verdict.items():
        sentences.append(f"{words[0].upper()}{words[1:]}: {'; '.join(comparisons)}.")
    return sentences


def short_words(stick: Yardstick) -> str:
    """The yardstick in a few words for the answer table's outcome rows (its source is in Methods)."""
    if stick.value is None:
        return "none (its size is not judged)"
    kind = {MIC: "published MIC", HALF_SD: "half a reference SD", DESIGN: "the department's design"}.get(
        stick.kind, stick.kind
    )
    return f"{stick.value:.1f} points ({kind}; see Methods)"


def yardstick_words(stick: Yardstick) -> str:
    """Which yardstick, and which rule gave it, in words."""
    if stick.value is None:
        return "no yardstick of an important difference, so its size is not judged"
    if stick.kind == MIC:
        return f"an important difference is {stick.value:.1f} points, its published minimal important change"
    if stick.kind == DESIGN:
        return f"an important difference is {stick.value:.1f} points, as the department's design fixes it"
    if stick.kind == HALF_SD:
        return (
            f"an important difference is taken as {stick.value:.1f} points, half a reference baseline SD fixed in "
            "the design (Norman 2003), as no minimal important change above measurement error is published"
        )
    return f"an important difference is {stick.value:.1f} points ({stick.source})"


def _measure(estimates: pd.DataFrame, method: str, contrast: str, outcome: str, timepoint: str) -> object | None:
    if estimates.empty:
        return None
    match = estimates[
        (estimates["method"] == method)
        & (estimates["contrast"] == contrast)
        & (estimates["outcome"] == outcome)
        & (estimates["timepoint"] == timepoint)
    ]
    return None if match.empty else next(match.itertuples(index=False))


def responder_words(estimates: pd.DataFrame, contrast: str, outcome: str, timepoint: str) -> str:
    """The adjusted difference in the share of responders, e.g. "+14 % points (+3 to +25)"; "" where none."""
    record = _measure(estimates, "responder", contrast, outcome, timepoint)
    if record is None:
        return ""
    if not shown_estimate(record):
        return NOT_ESTIMABLE
    values = (record.estimate, record.ci_low, record.ci_high)  # type: ignore[attr-defined]
    # A difference of a few tenths of a point (a threshold few patients reach) reads "+0 (-0 to +1)" whole.
    decimals = 1 if max(abs(v) for v in values) < 5 else 0
    low, estimate, high = (_signed(v, decimals) for v in (values[1], values[0], values[2]))
    return f"{estimate} ({low} to {high})"


def _signed(value: float, decimals: int) -> str:
    """With its sign, except a zero as printed ("0", never "-0" or "+0")."""
    text = f"{value:+.{decimals}f}"
    return text[1:] if float(text) == 0 else text


def odds_words(estimates: pd.DataFrame, timepoint: str, contrast: str = "combined_vs_single") -> dict[str, str]:
    """Per ordinal outcome, its odds ratio of a better grade in words (House-Brackmann is a grade, not a score)."""
    out = {}
    if estimates.empty:
        return out
    for outcome in dict.fromkeys(estimates.loc[estimates["method"] == "ordinal", "outcome"]):
        record = _measure(estimates, "ordinal", contrast, str(outcome), timepoint)
        if record is not None and shown_estimate(record):
            out[str(outcome)] = (
                f"odds ratio of a better grade {record.estimate:.2f} "  # type: ignore[attr-defined]
                f"({record.ci_low:.2f} to {record.ci_high:.2f})"  # type: ignore[attr-defined]
            )
    return out
