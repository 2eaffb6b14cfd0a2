"""The report's figures, each built from the tables as printed (after the audit) and the warehouse's estimates:
what the reader sees drawn is never more than what the tables print. The drawing itself is in
:mod:`pipeline.report.figures` (and the overlap, trend and funnel modules); this module says which figures the
report has, in its order, with their titles and captions. ``FIGURE_BUILDERS`` lists the groups in order: a new
section adds its own builder."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.report import figures, queries, sections
from pipeline.report.answer import AnswerRow, answer_rows, odds_words
from pipeline.report.balance import primary_balance
from pipeline.report.funnel import funnel_figure
from pipeline.report.overlap import overlap_figure
from pipeline.report.printed import Audited, funnel_rows
from pipeline.report.published_counts import without_hidden_spread, year_cells_shown
from pipeline.report.reading import MAIN_OUTCOMES, WarehouseData
from pipeline.report.suppression import SMALL_CELL, mark_shown, safe_summary
from pipeline.report.tables import GROUPS, MEAN_DIFFERENCE_METHODS, by_year_table
from pipeline.report.trend import trend_figure
from pipeline.report.words import _timepoint_words
from pipeline.vocabulary import OUTCOME_LABELS, PRIMARY_CONTRAST, contrast_label, outcome_label

# Forest plot families: (key, title, which outcomes), over the warehouse's outcomes.
FOREST_FAMILIES = (
    ("sunnybrook", "Sunnybrook", ("sunnybrook",)),
    ("eface_hb", "eFACE and House-Brackmann", ("eface", "house_brackmann")),
    ("patient", "patient-reported (SAQ, FaCE, FDI)", ("saq", "face_total", "fdi")),
)


def family_outcomes(design: AnalysisDesign, prefixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(o for o in design.outcomes if o.startswith(prefixes))


HALLMARKS = (
    (
        "hallmark_synkinesis",
        "Involuntary movement with voluntary movement: the synkinesis scores",
        ("sunnybrook_synkinesis", "eface_synkinesis"),
    ),
    (
        "hallmark_rest",
        "Tightness at rest: Sunnybrook resting asymmetry and eFACE static",
        ("sunnybrook_resting", "eface_static"),
    ),
    (
        "hallmark_smile",
        "Opposing muscles firing together in a smile: the eFACE smile and commissure items",
        tuple(queries.SMILE_ITEMS),
    ),
)


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _forest_row(row: AnswerRow, odds: dict[str, str]) -> dict[str, object]:
    return {
        "label": outcome_label(row.outcome),
        "n": f"{row.n_first} vs {row.n_second}" if row.n_first and row.n_second else "not shown",
        "better": row.better,
        "low": row.low,
        "high": row.high,
        "threshold": row.yardstick.value,
        "verdict": odds.get(row.outcome, row.verdict),
    }


def _figure_labels(outcomes: tuple[str, ...], design: AnalysisDesign) -> dict[str, tuple[str, str, bool]]:
    """Name, scale and direction; the eFACE smile items, not outcomes of the design, are higher-is-better."""
    return {o: (*OUTCOME_LABELS.get(o, (o, "")), design.higher_is_better.get(o, True)) for o in outcomes}


def _balance_for_plot(data: WarehouseData, design: AnalysisDesign) -> tuple[pd.DataFrame, str]:
    """The primary comparison's balance (primary timepoint, first outcome with rows), as a Love plot draws it."""
    rows, outcome = primary_balance(data.balance, design)
    if rows.empty:
        return pd.DataFrame(), ""
    return rows, f"Balance, combined vs single, {outcome_label(outcome)} at {design.primary_label} (IPTW)"


@dataclass
class FigureInputs:
    """What the figures are drawn from: the warehouse's rows, the audited tables, and the answer."""

    data: WarehouseData
    audited: Audited
    answer: list[AnswerRow]

    @property
    def design(self) -> AnalysisDesign:
        assert self.data.design is not None
        return self.data.design

    @property
    def settings(self) -> dict[str, object]:
        return self.data.run.get("settings", {}) if self.data.run else {}  # type: ignore[return-value]


def description_figures(inputs: FigureInputs) -> list[Figure]:
    """Who was treated how, and how the scores moved: combined treatment by year, BoNT dose, the trajectories."""
    data, design, register = inputs.data, inputs.design, inputs.audited.register
    when = _timepoint_words(design)
    _, years, shares = by_year_table(data.by_year.groupby(["year", "group"]).size().reset_index(name="patients"))
    drawn = [(y, s) for y, s in zip(years, shares, strict=True) if year_cells_shown(register, y, [*GROUPS, "all"])]
    years, shares = [y for y, _ in drawn], [s for _, s in drawn]
    # No interval where the audit hid the count it rests on.
    keys = [
        f"trajectories|{o}|{g}|{t}"
        for o, g, t in zip(
            data.trajectories["outcome"], data.trajectories["group"], data.trajectories["timepoint"], strict=True
        )
    ]
    trajectories = without_hidden_spread(safe_summary(data.trajectories), keys, register)
    doses = without_hidden_spread(
        safe_summary(data.doses), [f"bont_dose|{int(s)}" for s in data.doses["session"]], register
    )
    doses["label"] = [f"{s}+" if s >= queries.MAX_SESSION else str(s) for s in doses["session"]]
    hallmark_figs = [
        Figure(
            key,
            title,
            f"Mean and 95% confidence interval by treatment group at baseline and at {when}, among classifiable "
            f"patients with that score at that time. Points based on fewer than {SMALL_CELL} patients are not shown.",
            figures.trajectory_figure(trajectories, outcomes, _figure_labels(outcomes, design), design.months),
        )
        for key, title, outcomes in HALLMARKS
    ]
    return [
        Figure(
            "groups_by_year",
            "Combined treatment over time",
            "Share of classifiable patients on combined treatment by the year of their index visit; years with a "
            f"cell of fewer than {SMALL_CELL} patients are left out.",
            figures.share_figure(years, shares, "% of patients on combined treatment", "Too few patients per year."),
        ),
        Figure(
            "bont_dose",
            "BoNT dose by session number",
            "Mean botulinum toxin units per session, with 95% confidence interval, by session number from the index "
            f"treatment ({queries.MAX_SESSION}+: that session or later, averaged per patient). Sessions with fewer "
            f"than {SMALL_CELL} patients are not shown.",
            figures.series_figure(
                doses,
                "session",
                "Session number",
                "Units per session",
                "BoNT units by session",
                "Too few patients to show.",
            ),
        ),
        Figure(
            "trajectories",
            "Main outcomes by treatment group",
            f"Mean score with its 95% confidence interval at baseline and at {when}, among classifiable "
            "patients with a score at that time (not always the same patients at each time). Points based on "
            f"fewer than {SMALL_CELL} patients are not shown.",
            figures.trajectory_figure(
                trajectories, MAIN_OUTCOMES, _figure_labels(MAIN_OUTCOMES, design), design.months
            ),
        ),
        *hallmark_figs,
    ]


def forest_figures(inputs: FigureInputs) -> list[Figure]:
    """The primary forest plot first (every outcome at the primary timepoint, adjusted, each on its own axis with
    its yardstick); then, for the appendix, the other timepoints by family of outcomes and each combination that
    was run (one with no estimate shown at all is not drawn)."""
    data, design, register = inputs.data, inputs.design, inputs.audited.register
    at, at_words = design.primary_timepoint, design.primary_label
    # Forest plots draw differences in mean change; responders and odds ratios are on scales of their own.
    means_only = (
        data.estimates[data.estimates["method"].isin(MEAN_DIFFERENCE_METHODS)]
        if len(data.estimates)
        else data.estimates
    )
    marked = mark_shown(means_only) if len(means_only) else means_only
    primary_rows = marked[marked["contrast"] == PRIMARY_CONTRAST] if len(marked) else marked
    other_rows = marked[marked["contrast"] != PRIMARY_CONTRAST] if len(marked) else marked
    forest_rows = answer_rows(data.estimates, data.scores, data.members, register, design, design.outcomes)
    primary_forest = figures.primary_forest(
        [_forest_row(r, odds_words(data.estimates, at)) for r in forest_rows if r.contrast == PRIMARY_CONTRAST],
        f"Combined vs single modality at {at_words}, adjusted (ANCOVA), with 95% CI",
    )
    forest_figs = [
        Figure(
            "forest_primary",
            f"Combined vs single modality at {at_words}: every outcome",
            "Each row is one outcome on its own axis: the adjusted difference in improvement from baseline "
            "(combined minus single modality) with its 95% confidence interval; right of zero, combined treatment "
            "improved more, also where a lower score is better. The dashed line is the outcome's "
            "important-difference yardstick, fixed in the design (a published minimal important change, or half a "
            "reference baseline SD; see Methods); no line: none. At the left the number of patients in each group; "
            "at the right the estimate, its interval and the verdict.",
            figures.png_bytes(primary_forest),
        )
    ]
    # Appendix: the other timepoints, every method, by family of outcomes; then each combination that was
    # run (one with no estimate shown at all is not drawn).
    forest_figs += [
        Figure(
            f"forest_{timepoint}_{family}",
            f"Combined vs single modality at {design.label(timepoint)}: {family_title}",
            "Each line is one estimate with its 95% confidence interval: the difference in change from "
            "baseline between the first and the second group of the comparison. Where a lower score is better "
            "the sign is reversed, so right of zero always means the first group (combined treatment) improved "
            "more. At the right: the E-value of an adjusted estimate, or why an estimate is not drawn.",
            figures.forest_figure(
                primary_rows[
                    (primary_rows["timepoint"] == timepoint)
                    & primary_rows["outcome"].isin(family_outcomes(design, prefixes))
                ]
                if len(primary_rows)
                else primary_rows,
                f"{design.label(timepoint)}: {family_title}",
            ),
        )
        for timepoint in design.timepoints
        if timepoint != at
        for family, family_title, prefixes in FOREST_FAMILIES
    ]
    combination_rows = (
        other_rows[(other_rows["timepoint"] == at) & other_rows["outcome"].isin(MAIN_OUTCOMES)]
        if len(other_rows)
        else other_rows
    )
    combination_contrasts = [
        c
        for c in dict.fromkeys(combination_rows["contrast"] if len(combination_rows) else [])
        if combination_rows.loc[combination_rows["contrast"] == c, "shown"].astype(bool).any()
    ]
    forest_figs += [
        Figure(
            f"forest_combinations_{at}_{index + 1}",
            f"{contrast_label(contrast)} at {at_words}",
            "As above, for a combination against its single-modality reference, on the main outcomes, every method.",
            figures.forest_figure(combination_rows[combination_rows["contrast"] == contrast], at_words),
        )
        for index, contrast in enumerate(combination_contrasts)
    ]
    return forest_figs


def method_figures(inputs: FigureInputs) -> list[Figure]:
    """The weighted comparison's balance and the preference-score overlap of the primary analysis."""
    balance, balance_title = _balance_for_plot(inputs.data, inputs.design)
    bounds = inputs.settings.get("equipoise_bounds", (0.3, 0.7))
    return [
        Figure(
            "balance",
            "Covariate balance",
            "Absolute standardized mean difference of each covariate between the groups, before (open circles) "
            "and after (diamonds) inverse-probability weighting; below 0.1 after weighting is the pass mark.",
            figures.balance_figure(balance, balance_title),
        ),
        Figure(
            "preference_overlap",
            "Preference-score overlap, combined vs single modality",
            "How many patients of each group in the primary analysis had each preference score (the propensity "
            "score with the share on combined treatment taken out; Walker et al. 2013), as a share of the group per "
            f"tenth of the score; neighbouring tenths are merged until no group has fewer than {SMALL_CELL} "
            "patients in one. Where the groups overlap, patients alike on every covariate were treated both ways; "
            "the shaded band is the equipoise range.",
            overlap_figure(inputs.audited.tables["preference_overlap"], tuple(bounds)),  # type: ignore[arg-type]
        ),
    ]


def release_figures(inputs: FigureInputs) -> list[Figure]:
    """Across releases (the primary estimate of each) and, with two sites or more, across sites (the funnel)."""
    design, tables, at_words = inputs.design, inputs.audited.tables, inputs.design.primary_label
    primary = outcome_label(design.primary_outcome)
    yardstick = next(
        (
            r.yardstick.value
            for r in inputs.answer
            if r.contrast == PRIMARY_CONTRAST and r.outcome == design.primary_outcome
        ),
        None,
    )
    out = [
        Figure(
            "primary_trend",
            "The primary estimate in each release",
            f"The {primary} at {at_words}, combined vs single modality, adjusted (ANCOVA), with its 95% confidence "
            "interval, in every published quarterly report up to this one (each on the data as loaded by the end of "
            "its quarter, so a later point also has more patients); the dashed line is the important-change "
            "yardstick.",
            trend_figure(tables["primary_trend"], yardstick, primary),
        )
    ]
    if len(tables["site_funnel"]):  # two sites or more
        out.append(
            Figure(
                "site_funnel",
                "Sites: adjusted change against size",
                f"Each site (by its code) in the primary analysis: the mean improvement in the {primary} at "
                f"{at_words}, both groups together, adjusted for the baseline score (one line over every site), "
                "against its number of patients. Dashed and dotted: the 95% and 99.8% limits within which a site of "
                f"that size would fall by chance alone. A site with fewer than {SMALL_CELL} patients, or whose count "
                "had to be hidden, is not drawn.",
                funnel_figure(tables["site_funnel"], funnel_rows(inputs.data), primary),
            )
        )
    return out


# The report's figures, group by group, in the report's order.
FIGURE_BUILDERS: list[Callable[[FigureInputs], list[Figure]]] = [
    description_figures,
    forest_figures,
    method_figures,
    release_figures,
]


def report_figures(inputs: FigureInputs) -> list[Figure]:
    """The report's figures, then each self-contained section's (pipeline/report/sections.py)."""
    own = [figure for builder in FIGURE_BUILDERS for figure in builder(inputs)]
    return own + [f for s in sections.SECTIONS for f in s.figures(inputs, inputs.data.sections.get(s.name))]
