"""The publication plan (docs/disclosure.md): the audit gives up the least important counts first and the
headline last, a count's importance being its most important twin's; where it must still give up a headline
count, the report says why in one sentence."""

from __future__ import annotations

from pipeline.analysis_design import AnalysisDesign
from pipeline.report.answer import AnswerRow, hidden_n_sentences
from pipeline.report.disclosure import audit, protect
from pipeline.report.register import Register
from pipeline.yardsticks import yardstick

ORDER = ("estimates", "trajectories", "answer")  # the estimates table before the detail count
PATIENTS = [("s1", f"P{i}") for i in range(60)]


def release() -> Register:
    """A headline group of 40 (printed in the answer and, the same patients, in the estimates table), a detail
    count of 35 of them (trajectories) and one of 20 beside them: 40 - 35 = 5 can be worked out."""
    register = Register("2026-Q4")
    register.count("estimates|ancova|0", "first group (ancova)", PATIENTS[:40], place=("answer", 0, "n"))
    register.count("estimates|iptw|0", "first group (iptw)", PATIENTS[:40], place=("estimates", 0, "n"))
    register.count("trajectories|0", "first group with a score", PATIENTS[:35], place=("trajectories", 0, "n"))
    register.count("other|0", "the other group", PATIENTS[40:], place=("estimates", 1, "n"))
    return register


def test_a_count_ranks_as_its_most_important_twin_and_the_headline_is_given_up_last() -> None:
    register = release()
    assert not audit(register).passed
    record = protect(register, None, ORDER)
    assert record["passed"] and audit(register).passed
    # The estimates table's copy of the headline is not the cheap one: the detail count gives way instead.
    assert register.text("estimates|ancova|0") == "40" and register.text("estimates|iptw|0") == "40"
    assert register.text("trajectories|0") != "35"
    # Named as a headline, a count outranks every table, even one ranked last.
    register = release()
    protect(register, None, ("answer", "trajectories", "estimates"), headline=["estimates|ancova|0"])
    assert register.text("estimates|ancova|0") == "40" and audit(register).passed


def _row(contrast: str, n_first: str, n_second: str) -> AnswerRow:
    return AnswerRow(
        contrast, "sunnybrook_composite", contrast.replace("_", " "), "combined", "single", n_first, n_second,
        None, None, None, None, 1.0, 0.5, 1.5, yardstick("sunnybrook_composite"), "x",
    )  # fmt: skip


DESIGN = AnalysisDesign(
    timepoints=("12m",),
    months={"baseline": 0, "12m": 12},
    labels={"baseline": "baseline", "12m": "12 months"},
    primary_timepoint="12m",
    outcomes=("sunnybrook_composite",),
    higher_is_better={"sunnybrook_composite": True},
    primary_outcome="sunnybrook_composite",
)


def test_a_headline_count_the_audit_cannot_free_is_reported_with_its_sentence() -> None:
    rows = [_row("combined_vs_single", "136 to 145", "148"), _row("BTX+PT_vs_BTX", "15 to 24", "84")]
    sentences = hidden_n_sentences(rows, DESIGN)
    assert len(sentences) == 2
    assert sentences[0].startswith("The primary comparison's group sizes print as 136 to 145 vs 148: printed exactly")
    assert "fewer than 11 patients be worked out" in sentences[0] and sentences[0].count(".") == 1
    assert "BTX+PT vs BTX" in sentences[1]
    # Exact, or under 11 by the table's own rule: nothing to explain.
    assert (
        hidden_n_sentences([_row("combined_vs_single", "141", "148"), _row("BTX+PT_vs_BTX", "<11", "84")], DESIGN) == []
    )
