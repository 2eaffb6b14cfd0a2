"""The report's answer first: the verdict logic on constructed estimates, the yardsticks, the answer's numbers
against the warehouse, and the primary forest plot's smallest font on the figure's own settings."""

from __future__ import annotations

import math
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.analysis_design import AnalysisDesign
from pipeline.report import figures
from pipeline.report.answer import (
    BETTER_UNJUDGED,
    IMPORTANT,
    INCONCLUSIVE,
    NO_DIFFERENCE,
    NOT_ESTIMABLE,
    POSSIBLY_IMPORTANT,
    SMALL_BENEFIT,
    WORSE_IMPORTANT,
    WORSE_POSSIBLY,
    WORSE_SMALL,
    caught_up_sentence,
    improvement,
    responder_words,
    short_words,
    verdict,
)
from pipeline.report.reading import MAIN_OUTCOMES
from pipeline.settings import DesignSettings
from pipeline.yardsticks import (
    DESIGN,
    HALF_SD,
    MIC,
    PUBLISHED_SDC_GROUP,
    REFERENCE_SD,
    SDC,
    Yardstick,
    responder_threshold,
    sdc_from_icc,
    yardstick,
)
from tests.report.test_build import build_populated


@pytest.mark.parametrize(
    ("better", "low", "high", "threshold", "expected"),
    [
        (6.0, 4.0, 8.0, 3.0, IMPORTANT),  # the whole interval beyond the yardstick
        (6.0, 3.0, 9.0, 3.0, IMPORTANT),  # boundary: the lower end exactly at the yardstick
        (6.0, 2.9, 9.0, 3.0, POSSIBLY_IMPORTANT),  # the estimate reaches it, the lower end just does not
        (3.0, 1.0, 5.0, 3.0, POSSIBLY_IMPORTANT),  # boundary: the estimate exactly at the yardstick
        (2.9, 1.0, 4.8, 3.0, SMALL_BENEFIT),  # excludes 0, the estimate just below the yardstick
        (2.0, 1.0, 2.5, 3.0, SMALL_BENEFIT),
        (3.7, 0.7, 6.7, 2.8, POSSIBLY_IMPORTANT),  # the SAQ row, once "important" against 2.8
        (2.0, 0.0, 4.0, 3.0, INCONCLUSIVE),  # boundary: a lower end of 0 does not exclude no difference
        (0.5, -1.0, 2.0, 3.0, NO_DIFFERENCE),  # includes 0, excludes an important effect either way
        (0.5, -1.0, 2.999, 3.0, NO_DIFFERENCE),
        (1.0, -1.0, 3.0, 3.0, INCONCLUSIVE),  # boundary: the upper end reaches the yardstick
        (1.0, -1.0, 5.0, 3.0, INCONCLUSIVE),  # spans both no effect and an important benefit
        (-1.0, -4.0, 1.0, 3.0, INCONCLUSIVE),  # ... or an important harm
        (-5.0, -7.0, -4.0, 3.0, WORSE_IMPORTANT),
        (-5.0, -7.0, -3.0, 3.0, WORSE_IMPORTANT),  # boundary: the upper end exactly at minus the yardstick
        (-5.0, -7.0, -2.0, 3.0, WORSE_POSSIBLY),
        (-1.0, -2.0, -0.5, 3.0, WORSE_SMALL),
        (float("nan"), float("nan"), float("nan"), 3.0, NOT_ESTIMABLE),
        (2.0, 1.0, 3.0, None, BETTER_UNJUDGED),  # no yardstick: the size is not judged
        (0.5, -1.0, 2.0, None, NO_DIFFERENCE),
    ],
)
def test_verdicts_on_each_boundary(
    better: float, low: float, high: float, threshold: float | None, expected: str
) -> None:
    assert verdict(better, low, high, threshold) == expected


def test_better_means_improvement_for_lower_is_better_outcomes() -> None:
    # SAQ (lower is better): a change 4 points more negative in the first group is 4 points more improvement.
    saq = pd.Series({"estimate": -4.0, "ci_low": -6.0, "ci_high": -2.0, "higher_is_better": False})
    better, low, high = improvement(saq)
    assert (better, low, high) == (4.0, 2.0, 6.0)
    assert verdict(better, low, high, yardstick("saq").value) == SMALL_BENEFIT  # SAQ: half SD 5.8, above 4


def test_one_yardstick_rule_fixed_in_the_design() -> None:
    # A published MIC below the group's measurement error is no yardstick: SAQ 2.8 < 4.6, FaCE 0.7 < 2.9.
    for outcome in ("saq", "face_total"):
        stick = yardstick(outcome)
        assert stick.kind == HALF_SD and stick.value == round(REFERENCE_SD[outcome][0] / 2, 1)
        assert stick.value >= PUBLISHED_SDC_GROUP[outcome] and "below the group's measurement error" in stick.source
    # FDI: no group SDC published, so its MICs (4.4, 0.4) cannot be shown to clear it either.
    assert yardstick("fdi_social").kind == HALF_SD and yardstick("fdi_social").value > 0.4
    # A MIC at least the group's measurement error is used as it is (a constructed case: none is published).
    PUBLISHED_SDC_GROUP["fdi_physical"] = 4.4
    try:
        assert yardstick("fdi_physical") == Yardstick("fdi_physical", MIC, 4.4, "anchor-based, Bruins et al. 2021")
    finally:
        del PUBLISHED_SDC_GROUP["fdi_physical"]
    # Sunnybrook: half the published series' baseline SD, the same whatever the data; eFACE too, from the reference.
    assert (
        yardstick("sunnybrook_composite").value == round(20.9 / 2, 1)
        and "Norman" in yardstick("sunnybrook_composite").words
    )
    assert yardstick("eface_total").kind == HALF_SD
    assert yardstick("house_brackmann").value is None  # a grade: its size is not judged
    # The design's own value wins, and says so.
    assert yardstick("saq", 7.0) == Yardstick("saq", DESIGN, 7.0, "the department's design")
    with pytest.raises(ValueError, match="yardsticks"):
        DesignSettings(yardsticks={"saq": 0})
    with pytest.raises(ValueError, match="yardsticks"):
        DesignSettings(yardsticks={"smile": 5.0})
    # The individual thresholds are the responder analysis' only, and only they follow the data's SD.
    assert responder_threshold("saq").value == 28.2 and responder_threshold("fdi_social").value == 0.4
    sunnybrook = responder_threshold("sunnybrook_composite", baseline_sd=15.0)
    assert sunnybrook.kind == SDC and "Neely" in sunnybrook.words
    assert sunnybrook.value == round(1.96 * math.sqrt(2) * 15.0 * math.sqrt(1 - 0.89), 1)
    assert sdc_from_icc(10.0, 0.9) == pytest.approx(1.96 * math.sqrt(2) * 10.0 * math.sqrt(0.1))


def test_improving_more_is_not_read_as_ending_better() -> None:
    from pipeline.report.answer import AnswerRow

    row = AnswerRow(
        "combined_vs_single", "sunnybrook_composite", "Combined vs single modality", "combined", "single",
        "150", "160", 52.0, 66.0, 66.0, 66.5, 6.5, 3.0, 10.0, yardstick("sunnybrook_composite"), SMALL_BENEFIT,
    )  # fmt: skip
    sentence = caught_up_sentence(row, higher_is_better=True)
    assert "started 14.0 points worse" in sentence and "not the same as ending better" in sentence


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return build_populated(tmp_path_factory.mktemp("answer"))


def test_every_number_in_the_answer_equals_the_warehouse(built: tuple[Path, dict]) -> None:
    warehouse, result = built
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        design = AnalysisDesign.read(con)
        at = design.primary_timepoint
        estimates = con.execute(
            "SELECT contrast, outcome, estimate, ci_low, ci_high, higher_is_better, n_treated, n_control "
            "FROM model_estimates WHERE method = 'ancova' AND timepoint = ? AND diagnostics_ok",
            [at],
        ).df()
        # Where each group started and ended: the ANCOVA patients (a change at the timepoint), their own scores.
        journeys = con.execute(
            """SELECT f.outcome, m.is_combined, avg(f.baseline_value) AS start, avg(f."value") AS finish
            FROM followup_scores AS f JOIN modality_combinations AS m USING (site_id, patient_id)
            WHERE m.classifiable AND f.timepoint = ? AND f.change IS NOT NULL GROUP BY ALL""",
            [at],
        ).df()
        fixed = dict(con.execute("SELECT outcome, yardstick FROM design_outcomes").fetchall())
    finally:
        con.close()
    groups = result["context"]["answer"]
    assert groups and groups[0]["outcome"] == "Sunnybrook composite"  # the design's primary outcome first
    # The yardstick is the design's, published in the warehouse, not the data's: the same as the code's rule.
    assert fixed["sunnybrook_composite"] == yardstick("sunnybrook_composite").value
    assert (
        groups[0]["yardstick"]
        == short_words(yardstick("sunnybrook_composite"))
        == "10.4 points (half a reference SD; see Methods)"
    )
    checked = 0
    for group in groups:
        outcome = next(o for o in MAIN_OUTCOMES if group["outcome"].startswith(_label(o)))
        for row in group["rows"]:
            if row["comparison"] != "Combined vs single modality":
                continue
            record = estimates[(estimates["contrast"] == "combined_vs_single") & (estimates["outcome"] == outcome)]
            r = record.iloc[0]
            sign = 1 if r["higher_is_better"] else -1
            low, high = sorted((sign * r["ci_low"], sign * r["ci_high"]))
            assert row["estimate"] == f"{sign * r['estimate']:+.1f} ({low:+.1f} to {high:+.1f})"
            # The n is the register's: the count of the warehouse's n, printed as the audit allows.
            keys = [f"estimates|combined_vs_single|{outcome}|{at}|ancova|{side}" for side in (0, 1)]
            cells = [result["register"].cells[k] for k in keys]
            assert [c.value for c in cells] == [int(r["n_treated"]), int(r["n_control"])]
            assert row["n"] == " vs ".join(result["register"].text(k) for k in keys)
            start = journeys[(journeys["outcome"] == outcome)].set_index("is_combined")
            expected = (
                f"{start.loc[True, 'start']:.1f} \u2192 {start.loc[True, 'finish']:.1f} vs "
                f"{start.loc[False, 'start']:.1f} \u2192 {start.loc[False, 'finish']:.1f}"
            )
            assert row["journey"] == expected
            assert row["verdict"] == verdict(sign * r["estimate"], low, high, fixed[outcome])
            checked += 1
    assert checked == 2  # the fixture's two outcomes: Sunnybrook composite and SAQ
    # Every count the answer prints is a register cell (the estimates' own), as the register prints it.
    register = result["register"]
    key = f"estimates|combined_vs_single|saq|{at}|ancova|0"
    assert key in register.cells and groups[1]["rows"][0]["n"].startswith(register.text(key))


def _label(outcome: str) -> str:
    from pipeline.report.tables import outcome_label

    return outcome_label(outcome)


def test_the_primary_forest_plot_has_no_text_under_8_points(built: tuple[Path, dict]) -> None:
    _, result = built
    rows = [
        {"label": "Sunnybrook composite", "n": "150 vs 160", "better": 6.5, "low": 3.0, "high": 10.0,
         "threshold": 15.6, "verdict": SMALL_BENEFIT},
        {"label": "House-Brackmann grade", "n": "<11 vs 40", "better": None, "low": None, "high": None,
         "threshold": None, "verdict": NOT_ESTIMABLE},
    ]  # fmt: skip
    figure = figures.primary_forest(rows, "test")
    assert figures.smallest_font(figure) >= 8
    # Thirteen outcomes fit the print's 200 mm image height at full width, so print does not shrink the text.
    assert figures.primary_forest((rows * 7)[:13], "test").get_size_inches()[1] <= 200 / 25.4
    # The smallest font is measured, not assumed: a figure with a 6-point label fails the same check.
    figure.axes[0].text(0, 0, "tiny", fontsize=6)
    assert figures.smallest_font(figure) == 6
    assert result["figures"]["forest_primary"].png.startswith(b"\x89PNG")
    # No plot of a contrast that was not run: the fixture's rare combination (3 patients) has none.
    names = result["context"]["forest_names"]
    assert all(re.match(r"forest_(3m|6m)_|forest_combinations_", n) for n in names)
    assert len([n for n in names if n.startswith("forest_combinations_")]) <= 1


def test_responder_differences_read_without_a_signed_zero() -> None:
    def words(estimate: float, low: float, high: float) -> str:
        row = {"method": "responder", "contrast": "combined_vs_single", "outcome": "saq", "timepoint": "12m"}
        frame = pd.DataFrame(
            [
                {
                    **row,
                    "estimate": estimate,
                    "ci_low": low,
                    "ci_high": high,
                    "n_treated": 40,
                    "n_control": 40,
                    "diagnostics_ok": True,
                }
            ]
        )
        return responder_words(frame, "combined_vs_single", "saq", "12m")

    assert words(14.2, 3.4, 25.1) == "+14 (+3 to +25)"
    assert words(0.225, -0.31, 0.76) == "+0.2 (-0.3 to +0.8)"  # a threshold few reach: tenths, not "+0 (-0 to +1)"
    assert words(0.02, -0.04, 0.9) == "0.0 (0.0 to +0.9)"
    assert words(-0.4, -12.6, 11.8) == "0 (-13 to +12)"
