"""The reviewer's sections on a small fitted warehouse: Table 1's standardized differences, the preference-score
overlap, the patient flow down to the primary analysis, the responder shares, the trend across releases."""

from __future__ import annotations

import csv
import itertools
import json
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.report.test_build import build_populated, populate

SMALL = re.compile(r"^(10|[1-9])$")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return build_populated(tmp_path_factory.mktemp("methods"))


def query(warehouse: Path, sql: str, parameters: list | None = None) -> pd.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, parameters or []).df()
    finally:
        con.close()


def test_table_one_smd_columns_are_the_warehouse_covariate_balance(built: tuple[Path, dict]) -> None:
    warehouse, result = built
    balance = query(
        warehouse,
        "SELECT covariate, smd_unweighted, smd_weighted FROM covariate_balance WHERE contrast = 'combined_vs_single' "
        "AND timepoint = '12m' AND outcome = 'sunnybrook_composite'",
    ).set_index("covariate")
    table = result["tables"]["table1"].set_index("characteristic")
    assert list(table.columns) == ["single modality", "combined", "SMD before weighting", "SMD after weighting"]
    expected = {
        "Age at onset, years, mean (SD)": "age_at_onset",
        "  male, n (%)": "sex[M]",
        "Time from onset to index visit, months, median (IQR)": "onset_to_index_days",
        "  yes, n (%)": "prior_treatment",
        "  Sunnybrook composite (higher is better)": "baseline_value",  # the analysed outcome's own baseline
        "  SAQ (lower is better)": "severity[saq]",
    }
    for row, term in expected.items():
        assert table.loc[row, "SMD before weighting"] == f"{balance.loc[term, 'smd_unweighted']:+.2f}", row
        assert table.loc[row, "SMD after weighting"] == f"{balance.loc[term, 'smd_weighted']:+.2f}", row
    # The reference level and rows that are no model term stay blank; every term shown is one of the warehouse's.
    assert table.loc["  female, n (%)", "SMD before weighting"] == ""
    assert (table["SMD before weighting"] != "").sum() == len(expected)


def test_overlap_bands_add_up_to_the_register_totals_with_no_small_cell(built: tuple[Path, dict]) -> None:
    warehouse, result = built
    table = result["tables"]["preference_overlap"]
    register = result["register"]
    # The primary analysis' patients (the ANCOVA's n), each with the preference score the models stored.
    scores = query(
        warehouse,
        """SELECT p.first_group, count(*) AS n FROM preference_scores AS p
        JOIN followup_scores AS f USING (site_id, patient_id)
        WHERE p.contrast = 'combined_vs_single' AND f.outcome = 'sunnybrook_composite' AND f.timepoint = '12m'
            AND f.change IS NOT NULL GROUP BY ALL""",
    ).set_index("first_group")["n"]
    n = query(
        warehouse,
        "SELECT n_treated, n_control FROM model_estimates WHERE contrast = 'combined_vs_single' AND method = 'ancova' "
        "AND outcome = 'sunnybrook_composite' AND timepoint = '12m'",
    ).iloc[0]
    assert (int(scores[True]), int(scores[False])) == (int(n["n_treated"]), int(n["n_control"]))
    assert len(table) >= 3  # several bands and the totals
    bands, total = table.iloc[:-1], table.iloc[-1]
    for group, first in (("combined", True), ("single modality", False)):
        cell = register.cells[f"preference_overlap|{group}|all patients"]
        # The total as the audit lets it print (it may hide it: other tables count nearly the same patients).
        assert cell.value == int(scores[first]) and total[group] == register.text(cell.key)
        cells = [register.cells[f"preference_overlap|{group}|{label}"] for label in bands["preference score"]]
        assert sum(c.value for c in cells) == cell.value  # the bands partition the group
        for c, text in zip(cells, bands[group], strict=True):
            assert not SMALL.match(str(text)) and not 0 < c.value < 11, (c.key, text)  # merged, not only hidden
            assert text == register.text(c.key)  # printed as the register (after the audit) says
    # Bands are contiguous tenths from 0 to 1.
    edges = [tuple(float(x) for x in label.split(" to ")) for label in bands["preference score"]]
    assert edges[0][0] == 0.0 and edges[-1][1] == 1.0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(edges))
    assert result["figures"]["preference_overlap"].png.startswith(b"\x89PNG")


def test_overlap_bands_merge_small_cells_and_give_up_when_they_cannot() -> None:
    from pipeline.report.overlap import bands, overlap_table

    # Single modality: 30 at 0.15. Combined: 3 at 0.05, 12 at 0.15, 30 at 0.85. The first tenth (0 and 3) merges
    # with the second; the empty tenths between are shown as 0.
    scores = pd.DataFrame(
        {
            "site_id": "s",
            "patient_id": [f"p{i}" for i in range(75)],
            "first_group": [False] * 30 + [True] * 45,
            "preference_score": [0.15] * 30 + [0.05] * 3 + [0.15] * 12 + [0.85] * 30,
        }
    )
    table = overlap_table(scores)
    assert table.iloc[0].tolist() == ["0.0 to 0.2", "30", "15"]
    assert table.iloc[1].tolist() == ["0.2 to 0.3", "0", "0"]
    assert table.iloc[-1].tolist() == ["all patients", "30", "45"]
    assert not any(SMALL.match(str(v)) for v in table[["single modality", "combined"]].to_numpy().ravel())
    # 3 combined patients in the last tenth alone: merged into the band before.
    extra = scores.iloc[:3].assign(patient_id=["q1", "q2", "q3"], first_group=True, preference_score=0.95)
    tail = pd.concat([scores, extra])
    assert overlap_table(tail).iloc[-2].tolist() == ["0.8 to 1.0", "0", "33"]
    assert bands(scores.iloc[:35]) == []  # 5 combined patients in all: no band can hold them


def test_the_flow_ends_at_the_primary_analysis_with_the_models_n(built: tuple[Path, dict]) -> None:
    warehouse, result = built
    n = query(
        warehouse,
        "SELECT n_treated, n_control FROM model_estimates WHERE contrast = 'combined_vs_single' AND method = 'ancova' "
        "AND outcome = 'sunnybrook_composite' AND timepoint = '12m'",
    ).iloc[0]
    register, flow = result["register"], result["tables"]["patient_flow"]
    last = len(flow) - 1
    assert "the primary analysis" in flow["step"].iloc[last] and "Sunnybrook composite" in flow["step"].iloc[last]
    assert register.cells[f"flow|{last}"].value == int(n["n_treated"]) + int(n["n_control"])
    assert register.cells[f"flow|{last}|combined"].value == int(n["n_treated"])
    assert register.cells[f"flow|{last}|single modality"].value == int(n["n_control"])
    # The same patients as the estimate's: the register names them, and they are the estimate's own.
    for side, group in ((0, "combined"), (1, "single modality")):
        estimate = register.cells[f"estimates|combined_vs_single|sunnybrook_composite|12m|ancova|{side}"]
        assert list(estimate.members) == list(register.cells[f"flow|{last}|{group}"].members)
    # By group only where the groups are fixed and at the analysis they end in (the publication plan): every
    # count between, and the groups' exclusions, would be more overlapping counts for the audit to give up.
    grouped = [i for i in range(len(flow)) if flow["combined"].iloc[i] != ""]
    assert grouped == [2, last]
    assert not any(k.startswith("flow_excluded|") and k.count("|") == 2 for k in register.cells)
    for i in grouped:
        assert sum(register.cells[f"flow|{i}|{g}"].value for g in ("combined", "single modality")) == (
            register.cells[f"flow|{i}"].value
        )
    for column in ("patients", "excluded at this step", "combined", "single modality", "combined excluded"):
        assert not any(SMALL.match(str(v)) for v in flow[column]), column
    words = " ".join(result["context"]["summary"])
    answer = result["context"]["answer"][0]["rows"][0]
    assert f"(the primary analysis: {answer['n'].replace(' vs ', ' combined, ', 1)} single modality)" in words


def test_responder_shares_are_each_groups_own_and_beside_the_adjusted_difference(built: tuple[Path, dict]) -> None:
    warehouse, result = built
    note = query(
        warehouse,
        "SELECT note FROM model_estimates WHERE method = 'responder' AND contrast = 'combined_vs_single' "
        "AND outcome = 'sunnybrook_composite' AND timepoint = '12m'",
    )["note"].iloc[0]
    threshold = float(re.search(r"at least ([0-9.]+) points", note).group(1))
    own = query(
        warehouse,
        """SELECT m.is_combined, count(*) AS n, count(*) FILTER (WHERE f.change >= ?) AS responders
        FROM followup_scores AS f JOIN modality_combinations AS m USING (site_id, patient_id)
        WHERE m.classifiable AND f.outcome = 'sunnybrook_composite' AND f.timepoint = '12m' AND f.change IS NOT NULL
        GROUP BY ALL""",
        [threshold],
    ).set_index("is_combined")
    register, table = result["register"], result["tables"]["responder_shares"]
    rows = table[(table["comparison"] == "Combined vs single modality") & (table["outcome"] == "Sunnybrook composite")]
    assert rows["group"].tolist() == ["combined", "single modality"]
    for side, combined in ((0, True), (1, False)):
        cell = register.cells[f"responders|combined_vs_single|sunnybrook_composite|12m|{side}"]
        assert cell.value == int(own.loc[combined, "responders"])
        row = rows.iloc[side]
        assert row["responders"] == register.text(cell.key)
        if row["share of the group"]:
            assert row["share of the group"] == f"{100 * cell.value / int(own.loc[combined, 'n']):.0f}%"
    assert not any(SMALL.match(str(v)) for v in table["responders"])
    # Beside the adjusted risk difference in the answer, where the shares are printed.
    answer = next(
        r for g in result["context"]["answer"] for r in g["rows"] if r["comparison"] == "Combined vs single modality"
    )
    shares = rows["share of the group"].tolist()
    if all(shares) and answer["responders"] not in ("not estimable", "too few responders to compare"):
        assert answer["responders"].startswith(f"crude {shares[0]} vs {shares[1]}; adjusted ")
    else:
        assert "%;" not in answer["responders"].replace("% vs", "")  # no share printed that the table does not


def test_responders_are_counted_in_the_outcomes_own_direction() -> None:
    """SAQ: lower is better. The responder row says higher_is_better (more responders is better); the patient
    whose SAQ fell by 31 points responded, the one whose rose by 31 got worse."""
    from pipeline.report.responder_shares import TOO_FEW, responder_groups, too_few

    estimates = pd.DataFrame(
        [{"method": "responder", "contrast": "combined_vs_single", "outcome": "saq", "timepoint": "12m",
          "higher_is_better": True, "note": "responder: own improvement of at least 28.2 points (SDC)"}]
    )  # fmt: skip
    first = [("s", f"c{i}") for i in range(30)]
    second = [("s", f"k{i}") for i in range(30)]
    changes = pd.DataFrame(
        [{"site_id": s, "patient_id": p, "outcome": "saq", "change": -31.0 if p == "c0" else 31.0 if p == "k0" else 0}
         for s, p in first + second]
    )  # fmt: skip
    members = {("combined_vs_single", "saq", "12m", "responder"): (first, second)}
    groups = responder_groups(estimates, changes, members, "12m", ("saq",), {"saq": False})
    assert [g["responders"] for g in groups] == [[("s", "c0")], []]
    # One responder against none: too few to compare, and the answer prints no difference.
    assert too_few(groups) == {("combined_vs_single", "saq")} and TOO_FEW == "too few responders to compare"
    # On a higher-is-better outcome the same changes count the other patient.
    flipped = responder_groups(estimates, changes, members, "12m", ("saq",), {"saq": True})
    assert [g["responders"] for g in flipped] == [[], [("s", "k0")]]
    # Eleven responders and eleven non-responders in each group: enough.
    many = {("combined_vs_single", "saq", "12m", "responder"): (first[:22], second[:22])}
    changes["change"] = [-30.0 if int(p[1:]) < 11 else 0.0 for p in changes["patient_id"]]
    assert too_few(responder_groups(estimates, changes, many, "12m", ("saq",), {"saq": False})) == set()
    changes.loc[changes["patient_id"] == "k10", "change"] = 0.0
    assert too_few(responder_groups(estimates, changes, many, "12m", ("saq",), {"saq": False})) == {
        ("combined_vs_single", "saq")
    }


def test_the_answer_labels_crude_shares_and_the_adjusted_difference() -> None:
    from pipeline.report.build import _with_group_shares
    from pipeline.report.responder_shares import responder_table

    def group(side: int, n: int, r: int, outcome: str = "saq") -> dict[str, object]:
        patients = [("s", f"p{side}{i}") for i in range(n)]
        return {"contrast": "combined_vs_single", "outcome": outcome, "side": side,
                "group": ("combined", "single")[side], "threshold": 28.2,
                "patients": patients, "responders": patients[:r]}  # fmt: skip

    groups = [group(0, 40, 20), group(1, 40, 12), group(0, 40, 20, "face_total"), group(1, 40, 3, "face_total")]
    rows = [_row("saq"), _row("face_total")]
    _with_group_shares(rows, responder_table(groups), groups)
    assert rows[0].responders == "crude 50% vs 30%; adjusted +14 (+3 to +25)"
    assert rows[1].responders == "too few responders to compare"


def _row(outcome: str) -> object:
    from pipeline.report.answer import AnswerRow
    from pipeline.yardsticks import yardstick

    return AnswerRow(
        "combined_vs_single", outcome, "Combined vs single modality", "combined", "single", "40", "40",
        None, None, None, None, 1.0, 0.5, 1.5, yardstick(outcome), "x", "+14 (+3 to +25)",
    )  # fmt: skip


def test_responder_counts_hide_small_cells_and_their_complement() -> None:
    from pipeline.report.responder_shares import responder_table

    def group(n: int, r: int) -> dict[str, object]:
        patients = [("s", f"p{i}") for i in range(n)]
        return {"contrast": "combined_vs_single", "outcome": "saq", "side": 0, "group": "combined", "threshold": 28.2,
                "patients": patients, "responders": patients[:r]}  # fmt: skip

    table = responder_table([group(40, 5), group(40, 35), group(40, 20), group(40, 0)])
    assert table["responders"].tolist() == ["<11", "suppressed", "20", "0"]
    assert table["share of the group"].tolist() == ["", "", "50%", "0%"]


def test_the_trend_has_one_point_per_published_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    from pipeline.report import release
    from pipeline.settings import DataHome

    warehouse = tmp_path / "outcomes.duckdb"  # a small one of its own: two releases are audited in full
    with duckdb.connect(str(warehouse)) as con:
        populate(con, seed=5, n=70)
    home = DataHome.resolve(tmp_path / "home").ensure()
    monkeypatch.setattr(release, "html_to_pdf", lambda html, pdf: pdf.write_bytes(b"%PDF-"))  # Chromium elsewhere
    release.release_quarter(home, "2026Q2", warehouse, datetime(2026, 6, 30))
    release.release_quarter(home, "2026Q3", warehouse, datetime(2026, 9, 30))
    index = json.loads((home.published / "index.json").read_text(encoding="utf-8"))
    assert [r["release"] for r in index["releases"]] == ["2026-Q2", "2026-Q3"]
    trend = list(csv.DictReader((home.published / "2026-Q3" / "primary_trend.csv").open(encoding="utf-8")))
    assert [r["release"] for r in trend] == ["2026-Q2", "2026-Q3"]  # one point per published release
    own = index["releases"][1]["primary_estimate"]
    assert trend[1]["difference in improvement"] == ("" if own["better"] is None else f"{own['better']:+.1f}")
    first = list(csv.DictReader((home.published / "2026-Q2" / "primary_trend.csv").open(encoding="utf-8")))
    assert [r["release"] for r in first] == ["2026-Q2"]  # a report reads no later quarter: it stays the same
    assert (home.published / "2026-Q3" / "primary_trend.png").read_bytes().startswith(b"\x89PNG")


def test_the_site_funnel_shows_each_sites_adjusted_change_and_hides_small_sites() -> None:
    import numpy as np

    from pipeline.report.funnel import funnel_figure, funnel_table, register_sites, site_rows
    from pipeline.report.register import Register

    rng = np.random.default_rng(3)
    sizes, effects = {"clinic_a": 60, "clinic_b": 40, "clinic_c": 30, "tiny": 6}, {"clinic_a": 0.0, "clinic_b": 6.0}
    frames = []
    for site, n in sizes.items():
        baseline = rng.normal(50, 10, n)
        # Improvement falls with baseline (regression to the mean); clinic_b improves 6 points more at any baseline.
        change = 20 - 0.3 * baseline + effects.get(site, 0.0) + rng.normal(0, 1, n)
        frames.append(pd.DataFrame({"site_id": site, "patient_id": [f"{site}{i}" for i in range(n)],
                                    "outcome": "saq", "baseline_value": baseline, "change": -change}))  # fmt: skip
    rows = site_rows(pd.concat(frames, ignore_index=True), "saq", higher_is_better=False)  # lower SAQ is better
    table = funnel_table(rows).set_index("site")
    # The small site is "<11", and the next smallest hidden with it (the sites add up to the flow's last step).
    assert table.loc["tiny", "patients"] == "<11" and table.loc["clinic_c", "patients"] == "suppressed"
    assert table.loc["tiny", "adjusted mean change"] == "" and table.loc["clinic_c", "adjusted mean change"] == ""
    assert table.loc[["clinic_a", "clinic_b"], "patients"].tolist() == ["60", "40"]
    difference = float(table.loc["clinic_b", "adjusted mean change"]) - float(
        table.loc["clinic_a", "adjusted mean change"]
    )
    assert abs(difference - 6.0) < 1.0  # the site effect, recovered with the baseline taken out
    register = Register("2026-Q4")
    register_sites(register, table.reset_index(), rows)
    assert register.cells["site_funnel|clinic_a"].value == 60 and register.cells["site_funnel|tiny"].status == "small"
    assert funnel_figure(table.reset_index(), rows, "SAQ").startswith(b"\x89PNG")
    assert funnel_table(rows[rows["site_id"] == "clinic_a"]).empty  # one site: no funnel


def test_appendix_estimates_put_benefit_on_the_same_side_as_the_main_body(built: tuple[Path, dict]) -> None:
    from pipeline.report.tables import estimates_table

    base = {"contrast": "combined_vs_single", "method": "ancova", "outcome": "saq", "timepoint": "12m",
            "estimate": -4.04, "std_error": 1.0, "ci_low": -6.1, "ci_high": -2.0, "p_value": 0.001,
            "p_adjusted": 0.002, "n_treated": 40, "n_control": 50, "higher_is_better": False,
            "diagnostics_ok": True, "note": ""}  # fmt: skip
    row = estimates_table(pd.DataFrame([base]), {"12m": "12 months"}).iloc[0]
    assert (row["benefit"], row["95% CI"]) == ("4.0", "2.0 to 6.1")  # SAQ fell 4 points more: an improvement
    assert "lower is better; sign reversed" in row["outcome"]
    # In the report: the appendix's primary table says what the answer says, for the lower-is-better SAQ too.
    _, result = built
    table = result["tables"]["estimates_primary"]
    answer = {
        r["outcome"]: r
        for g in result["context"]["answer"]
        for r in g["rows"]
        if r["comparison"].startswith("Combined")
    }
    for outcome in ("Sunnybrook composite", "SAQ"):
        printed = table[(table["method"] == "Adjusted (ANCOVA)") & table["outcome"].str.startswith(outcome)].iloc[0]
        if printed["benefit"]:
            low, high = printed["95% CI"].split(" to ")
            expected = f"{float(printed['benefit']):+.1f} ({float(low):+.1f} to {float(high):+.1f})"
            assert answer[outcome]["estimate"] == expected, outcome


def test_the_new_figures_have_no_text_under_8_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.report import figures, funnel, overlap, trend

    drawn = []
    for module in (overlap, trend, funnel):
        monkeypatch.setattr(module, "png_bytes", lambda figure: drawn.append(figure) or b"")
    bands = pd.DataFrame(
        [["0.0 to 0.4", "30", "12"], ["0.4 to 1.0", "suppressed", "40"], ["all patients", "41", "52"]],
        columns=["preference score", "single modality", "combined"],
    )
    overlap.overlap_figure(bands, (0.3, 0.7))
    releases = pd.DataFrame(
        [["2026-Q2", "saq", "12m", "+3.0", "+1.0", "+5.0", "v"], ["2026-Q3", "saq", "12m", "", "", "", "v"]],
        columns=trend.COLUMNS,
    )
    trend.trend_figure(releases, 2.8, "SAQ")
    rows = pd.DataFrame({"site_id": ["a"] * 20 + ["b"] * 20, "improvement": range(40), "residual": [0.5, -0.5] * 20})
    sites = pd.DataFrame([["a", "20", "+9.0"], ["b", "20", "+29.0"]], columns=funnel.COLUMNS)
    funnel.funnel_figure(sites, rows, "SAQ")
    assert len(drawn) == 3
    for figure in drawn:
        assert figures.smallest_font(figure) >= 8


def test_a_section_is_one_more_builder_and_two_sections_cannot_name_the_same_thing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.report import context

    def first(parts: object) -> dict[str, object]:
        return {"a": 1}

    def second(parts: object) -> dict[str, object]:
        return {"b": 2}

    # The report's older parts are builders; a new section is a self-contained one (tests/report/test_sections.py).
    monkeypatch.setattr(context, "REPORT_SECTIONS", [])
    monkeypatch.setattr(context, "SECTIONS", [first, second])
    empty = {"after_forest": [], "after_trajectories": []}
    assert context.template_context(None) == {"a": 1, "b": 2, "sections": empty}  # type: ignore[arg-type]
    monkeypatch.setattr(context, "SECTIONS", [first, second, first])
    with pytest.raises(ValueError, match="first names"):
        context.template_context(None)  # type: ignore[arg-type]

    class Clashing:  # a self-contained section naming what a builder already names
        name = "clashing"

        def context(self, parts: object, found: object, words: object) -> dict[str, object]:
            return {"a": 3}

    class Parts:
        data = type("Data", (), {"sections": {}})()
        audited = type("Audited", (), {"words": {}})()

    monkeypatch.setattr(context, "SECTIONS", [first])
    monkeypatch.setattr(context, "REPORT_SECTIONS", [Clashing()])
    with pytest.raises(ValueError, match="clashing names"):
        context.template_context(Parts())  # type: ignore[arg-type]
