"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot, no global backend switch)
and returned as PNG bytes. Points computed on fewer than 11 patients are never drawn."""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from pipeline.report.number_format import signed
from pipeline.report.tables import METHOD_LABELS, SMALL_CELL
from pipeline.vocabulary import contrast_label, direction_words, outcome_label

# Okabe-Ito colours: distinguishable with colour-vision deficiency and in greyscale print.
GROUP_STYLE = {"combined": ("#0072B2", "o", "-"), "single modality": ("#E69F00", "s", "--")}
METHOD_STYLE = {
    "unadjusted": ("#999999", "o"),
    "ancova": ("#0072B2", "D"),
    "iptw": ("#009E73", "s"),
    "aipw": ("#56B4E9", "P"),
    "mixed": ("#CC79A7", "^"),
    "mice": ("#D55E00", "v"),
}
DPI = 150
MIN_FONT = 8  # points: the smallest text on any figure, readable in print at the figure's own size


def png_bytes(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _message(figure: Figure, text: str) -> None:
    axis = figure.add_subplot()
    axis.axis("off")
    axis.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, wrap=True)


def trajectory_figure(
    summary: pd.DataFrame,
    outcomes: tuple[str, ...],
    labels: dict[str, tuple[str, str, bool]],
    months: dict[str, int],
) -> bytes:
    """Mean score and 95% CI at baseline and each timepoint, one panel per outcome, one line per
    group. ``summary``: outcome, group, timepoint, n, mean, ci_low, ci_high, shown (from
    :func:`pipeline.report.suppression.safe_summary`: only shown points are drawn). ``labels``: outcome ->
    (name, scale, higher_is_better); ``months``: each timepoint's months from baseline (the design's)."""
    # Four or more outcomes: two panels a row, so that the figure prints at its own size (text 8 pt and up)
    # in half a page rather than shrunk into a whole one.
    columns = 2 if len(outcomes) >= 4 else 1
    rows_of = -(-len(outcomes) // columns)
    size = (7.2, 2.9 * rows_of) if columns == 2 else (6.4, 3.4 * len(outcomes))
    figure = Figure(figsize=size, layout="constrained")
    grid = figure.subplots(rows_of, columns, squeeze=False)
    axes = list(grid.ravel())
    for spare in axes[len(outcomes) :]:
        spare.set_visible(False)
    for axis, outcome in zip(axes, outcomes, strict=False):
        name, scale, higher = labels[outcome]
        drawn = False
        for offset, (group, (colour, marker, line)) in zip((-0.15, 0.15), GROUP_STYLE.items(), strict=True):
            rows = summary[(summary["outcome"] == outcome) & (summary["group"] == group) & summary["shown"]].copy()
            if rows.empty:
                continue
            rows["month"] = rows["timepoint"].map(months) + offset
            rows = rows.sort_values("month")
            error = [rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]]
            axis.errorbar(
                rows["month"],
                rows["mean"],
                yerr=error,
                color=colour,
                marker=marker,
                linestyle=line,
                capsize=4,
                linewidth=2,
                markersize=7,
                label="Combined treatment" if group == "combined" else "Single modality",
            )
            drawn = True
        axis.set_title(name if columns == 2 else f"{name}: mean and 95% CI by group", fontsize=10, loc="left")
        axis.set_ylabel(f"{scale}\n{direction_words(higher)}", fontsize=MIN_FONT if columns == 2 else 9)
        axis.set_xlabel(
            "Months from the start of treatment"
            if columns == 2
            else "Months from the start of treatment (0 = baseline)",
            fontsize=MIN_FONT if columns == 2 else 9,
        )
        ticks = sorted(months.values())
        axis.set_xticks(ticks, ["Baseline" if m == 0 else str(m) for m in ticks])
        axis.set_xlim(-1, max(ticks) + 1)
        axis.grid(axis="y", alpha=0.3)
        if drawn:
            axis.legend(loc="best", fontsize=MIN_FONT if columns == 2 else 9, frameon=False)
        else:
            axis.text(
                0.5,
                0.5,
                f"Too few patients (fewer than {SMALL_CELL} per group) to show",
                transform=axis.transAxes,
                ha="center",
                va="center",
                fontsize=10,
            )
    return png_bytes(figure)


def series_figure(summary: pd.DataFrame, x: str, xlabel: str, ylabel: str, title: str, empty: str) -> bytes:
    """One line of mean and 95% CI over ``x`` (e.g. BoNT units by session number); only shown points."""
    rows = summary[summary["shown"]]
    figure = Figure(figsize=(6.4, 3.4), layout="constrained")
    axis = figure.add_subplot()
    if rows.empty:
        axis.axis("off")
        axis.text(0.5, 0.5, empty, ha="center", va="center", fontsize=10, wrap=True)
        return png_bytes(figure)
    error = [rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]]
    axis.errorbar(rows[x], rows["mean"], yerr=error, color="#0072B2", marker="o", capsize=4, linewidth=2)
    axis.set_xticks(list(rows[x]), [str(v) for v in rows["label"]] if "label" in rows else None)
    axis.set_xlabel(xlabel, fontsize=9)
    axis.set_ylabel(ylabel, fontsize=9)
    axis.set_title(title, fontsize=11, loc="left")
    axis.grid(axis="y", alpha=0.3)
    return png_bytes(figure)


def share_figure(years: list[int], shares: list[float], title: str, empty: str) -> bytes:
    """Share of patients on combined treatment by year (only years whose counts are all shown)."""
    figure = Figure(figsize=(6.4, 3.0), layout="constrained")
    axis = figure.add_subplot()
    if not years:
        axis.axis("off")
        axis.text(0.5, 0.5, empty, ha="center", va="center", fontsize=10, wrap=True)
        return png_bytes(figure)
    axis.plot(years, shares, color="#0072B2", marker="o", linewidth=2)
    axis.set_ylim(0, 100)
    axis.set_xticks(years, [str(y) for y in years], fontsize=8)
    axis.set_ylabel("% on combined treatment", fontsize=9)
    axis.set_xlabel("Year of the index visit", fontsize=9)
    axis.set_title(title, fontsize=11, loc="left")
    axis.grid(axis="y", alpha=0.3)
    return png_bytes(figure)


def balance_figure(balance: pd.DataFrame, title: str) -> bytes:
    """A Love plot: |SMD| of each covariate before and after weighting, with the 0.1 pass mark.
    ``balance``: covariate, smd_unweighted, smd_weighted (one comparison)."""
    if balance.empty:
        figure = Figure(figsize=(6.4, 1.6))
        _message(figure, "No covariate balance to show yet (no weighted comparison could be fitted).")
        return png_bytes(figure)
    rows = balance.assign(before=balance["smd_unweighted"].abs(), after=balance["smd_weighted"].abs())
    rows = rows.sort_values(["before", "covariate"]).reset_index(drop=True)
    figure = Figure(figsize=(6.4, 1.2 + 0.28 * len(rows)), layout="constrained")
    axis = figure.add_subplot()
    positions = list(range(len(rows)))
    axis.scatter(
        rows["before"], positions, marker="o", facecolors="none", edgecolors="#999999", label="before weighting"
    )
    axis.scatter(rows["after"], positions, marker="D", color="#0072B2", label="after weighting")
    axis.axvline(0.1, color="#D55E00", linestyle="--", linewidth=1, label="pass mark 0.1")
    axis.set_yticks(positions, [str(c) for c in rows["covariate"]], fontsize=MIN_FONT)
    axis.set_xlabel("absolute standardized mean difference", fontsize=9)
    axis.set_title(title, fontsize=10, loc="left")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(loc="lower right", fontsize=8, frameon=False)
    return png_bytes(figure)


def forest_figure(estimates: pd.DataFrame, timepoint_label: str) -> bytes:
    """One panel per contrast, one row per outcome and method: estimate and 95% CI, with the E-value (when the
    run has it) or why the estimate is not shown written at the right. Lower-is-better outcomes are
    sign-reversed so that right of zero always means the first group improved more. ``estimates``: rows from
    :func:`pipeline.report.suppression.mark_shown` (a ``shown`` column); only shown rows get an interval."""
    if estimates.empty:
        figure = Figure(figsize=(6.4, 1.6))
        _message(figure, f"No estimate at {timepoint_label} yet (no model run, or no patient with the outcome).")
        return png_bytes(figure)
    contrasts = list(dict.fromkeys(estimates["contrast"]))
    sizes = [int((estimates["contrast"] == c).sum()) for c in contrasts]
    figure = Figure(figsize=(7.2, 1.4 + 0.3 * sum(sizes) + 0.5 * len(contrasts)), layout="constrained")
    axes = figure.subplots(len(contrasts), 1, sharex=True, squeeze=False, height_ratios=[n + 1 for n in sizes])[:, 0]
    for axis, contrast in zip(axes, contrasts, strict=True):
        rows = estimates[estimates["contrast"] == contrast].reset_index(drop=True)
        labels = []
        for position, record in enumerate(rows.itertuples(index=False)):
            sign = 1.0 if record.higher_is_better else -1.0
            y = len(rows) - 1 - position
            colour, marker = METHOD_STYLE.get(record.method, ("#000000", "o"))
            if record.shown:
                low, high = sorted((sign * record.ci_low, sign * record.ci_high))
                axis.plot([low, high], [y, y], color=colour, linewidth=2)
                axis.plot([sign * record.estimate], [y], marker=marker, color=colour, markersize=6, linestyle="none")
                e_value = getattr(record, "e_value", None) if record.method != "unadjusted" else None
                side = "" if e_value is None or pd.isna(e_value) else f"E-value {e_value:.1f}"
            else:
                side = str(record.why_hidden)
            axis.annotate(
                side,
                xy=(1.01, y),
                xycoords=("axes fraction", "data"),
                fontsize=MIN_FONT,
                va="center",
                color="#333333" if record.shown else "#999999",
                annotation_clip=False,
            )
            reversed_note = " (sign reversed)" if sign < 0 else ""
            method = METHOD_LABELS.get(record.method, record.method)
            first = position == 0 or rows["outcome"].iloc[position - 1] != record.outcome
            labels.append(f"{outcome_label(record.outcome)}{reversed_note}: {method}" if first else method)
        axis.set_yticks(range(len(rows)), list(reversed(labels)), fontsize=MIN_FONT)
        axis.tick_params(axis="x", labelsize=MIN_FONT)
        axis.set_ylim(-0.7, len(rows) - 0.3)
        axis.axvline(0, color="#333333", linewidth=1)
        axis.grid(axis="x", alpha=0.3)
        axis.set_title(contrast_label(contrast), fontsize=10, loc="left")
    axes[-1].set_xlabel(
        "Difference in improvement from baseline (outcome's own units)\n"
        "right of 0: the first group (e.g. combined treatment) improved more",
        fontsize=9,
    )
    figure.suptitle(f"Estimated differences at {timepoint_label}, with 95% CI", fontsize=11, x=0.02, ha="left")
    return png_bytes(figure)


def primary_forest(rows: list[dict[str, object]], title: str) -> Figure:
    """The primary forest plot: one row per outcome, each on its own axis (0-100, 0-15 and grade scales do not
    share one), the difference in improvement (right of 0: the first group improved more, whatever the scale's
    direction), the yardstick drawn as a dashed line, and n, estimate and CI printed on the row.

    ``rows``: dicts with label, n, better, low, high (None where not estimable), threshold (None where no
    yardstick), yardstick (words), verdict."""
    # At most about 7.5 in for 13 outcomes: printed at full width within the page (no shrinking under 8 pt).
    height = 1.0 + 0.45 * max(len(rows), 1)
    figure = Figure(figsize=(7.0, height), layout="constrained")
    if not rows:
        _message(figure, "No estimate at the primary timepoint yet.")
        return figure
    grid = figure.add_gridspec(len(rows), 3, width_ratios=[2.3, 2.4, 2.3])
    for i, row in enumerate(rows):
        label = figure.add_subplot(grid[i, 0])
        label.axis("off")
        label.text(0, 0.9, str(row["label"]), fontsize=9, fontweight="bold", va="center", ha="left")
        label.text(0, -0.02, f"n {row['n']}", fontsize=MIN_FONT, va="center", ha="left", color="#444444")
        axis = figure.add_subplot(grid[i, 1])
        better, low, high, threshold = row["better"], row["low"], row["high"], row["threshold"]
        reach = max([abs(v) for v in (low, high, threshold) if isinstance(v, int | float) and pd.notna(v)] or [1.0])
        axis.set_xlim(-1.15 * reach, 1.15 * reach)
        axis.set_ylim(-1, 1)
        axis.set_yticks([])
        axis.axvline(0, color="#333333", linewidth=1)
        if isinstance(threshold, int | float):
            axis.axvline(threshold, color="#009E73", linewidth=1.2, linestyle="--")
        if isinstance(better, int | float) and isinstance(low, int | float) and isinstance(high, int | float):
            axis.plot([low, high], [0, 0], color="#0072B2", linewidth=2.5)
            axis.plot([better], [0], marker="D", color="#0072B2", markersize=7, linestyle="none")
        else:
            axis.text(0, 0, "not estimable", fontsize=MIN_FONT, ha="center", va="center", color="#777777")
        axis.tick_params(axis="x", labelsize=MIN_FONT)
        for side in ("top", "right", "left"):
            axis.spines[side].set_visible(False)
        text = figure.add_subplot(grid[i, 2])
        text.axis("off")
        estimate = "not estimable"
        if isinstance(better, int | float):
            estimate = f"{signed(better)} ({signed(low)} to {signed(high)})"
        text.text(0, 0.9, estimate, fontsize=9, va="center", ha="left")
        text.text(0, -0.02, str(row["verdict"]), fontsize=MIN_FONT, va="center", ha="left", color="#444444")
    figure.suptitle(title, fontsize=11, x=0.01, ha="left")
    figure.supxlabel(
        "Difference in improvement, first group minus second (each outcome in its own points); right of 0: the "
        "first group improved more.\nDashed green line: the important-difference yardstick fixed in the design "
        "(MIC, or half a reference SD).",
        fontsize=MIN_FONT,
        x=0.01,
        ha="left",
    )
    return figure


def smallest_font(figure: Figure) -> float:
    """The smallest font size of any visible text on the figure, in points (tick labels included)."""
    FigureCanvasAgg(figure)
    figure.canvas.draw()
    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes)) if sizes else float("inf")
