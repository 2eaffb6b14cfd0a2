"""The primary comparison's preference-score overlap: how many patients of each group fall in each band of the
preference score (Walker et al. 2013; ``preference_scores`` in the warehouse), as a table whose every count goes
through the register, and the figure drawn from that table as printed.

Bands are tenths of the score; neighbouring bands are merged, left to right, until no group has 1 to 10 patients
in a band (a band with none is shown as 0), so the cell rule holds before the audit has its say; the audit may
then hide more, and the figure leaves a hidden band out.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from pipeline.report.figures import GROUP_STYLE, MIN_FONT, _message, png_bytes
from pipeline.report.published_counts import keys
from pipeline.report.register import Register
from pipeline.report.suppression import SMALL_CELL, format_count

TABLE = "preference_overlap"
BAND_COLUMN = "preference score"
TOTAL_LABEL = "all patients"
GROUP_OF = {True: "combined", False: "single modality"}  # first_group -> the report's group words
GROUPS = ("single modality", "combined")
TENTHS = 10


def _small(n: int) -> bool:
    return 0 < n < SMALL_CELL


def bands(scores: pd.DataFrame) -> list[tuple[float, float, pd.DataFrame]]:
    """(low, high, patients) per band: tenths of the score, merged until no group has 1 to 10 patients in one.
    Empty when even one band over the whole range would leave a group with 1 to 10."""
    if scores is None or scores.empty:
        return []
    tenth = (scores["preference_score"].astype(float) * TENTHS).astype(int).clip(0, TENTHS - 1)
    out: list[tuple[float, float, pd.DataFrame]] = []
    low, pending = 0, scores.iloc[0:0]
    for i in range(TENTHS):
        pending = pd.concat([pending, scores[tenth == i]])
        counts = [int((pending["first_group"] == g).sum()) for g in (True, False)]
        if not any(_small(n) for n in counts):
            out.append((low / TENTHS, (i + 1) / TENTHS, pending))
            low, pending = i + 1, scores.iloc[0:0]
    if len(pending):  # the last bands hold too few: into the band before them
        if not out:
            return []
        start, _, before = out.pop()
        out.append((start, 1.0, pd.concat([before, pending])))
    counts = [[int((b["first_group"] == g).sum()) for g in (True, False)] for _, _, b in out]
    if any(_small(n) for row in counts for n in row):
        return []
    return out


def band_label(low: float, high: float) -> str:
    return f"{low:.1f} to {high:.1f}"


def overlap_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Patients per band and group, and the groups' totals, as printed before the audit."""
    rows = []
    for low, high, patients in bands(scores):
        counts = {GROUP_OF[g]: int((patients["first_group"] == g).sum()) for g in (True, False)}
        rows.append([band_label(low, high), *(format_count(counts[g]) for g in GROUPS)])
    if rows:
        totals = {GROUP_OF[g]: int((scores["first_group"] == g).sum()) for g in (True, False)}
        rows.append([TOTAL_LABEL, *(format_count(totals[g]) for g in GROUPS)])
    return pd.DataFrame(rows, columns=[BAND_COLUMN, *GROUPS])


def register_overlap(register: Register, table: pd.DataFrame, scores: pd.DataFrame) -> None:
    """Every count of the overlap table with its patients."""
    by_band = {band_label(low, high): patients for low, high, patients in bands(scores)}
    for i, label in enumerate(table[BAND_COLUMN]):
        patients = scores if label == TOTAL_LABEL else by_band[label]
        for group in GROUPS:
            chosen = patients[patients["first_group"] == (group == "combined")]
            register.printed_count(
                f"{TABLE}|{group}|{label}",
                f"{group} patients with a preference score {label} (combined vs single)",
                keys(chosen),
                table[group].iloc[i],
                (TABLE, i, group),
            )


def _number(text: object) -> int | None:
    head = str(text).replace(",", "").strip()
    return int(head) if head.isdigit() else None


def overlap_figure(table: pd.DataFrame, equipoise: tuple[float, float]) -> bytes:
    """Each group's patients per band of the preference score, as a share of the group (combined above the
    axis, single modality below), the equipoise range shaded. Drawn from the table as printed: a band whose
    count the table does not print is left out."""
    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    rows = table[table[BAND_COLUMN] != TOTAL_LABEL] if len(table) else table
    totals = table[table[BAND_COLUMN] == TOTAL_LABEL] if len(table) else table
    if rows.empty or totals.empty:
        _message(figure, f"Too few patients to show the overlap (a group with fewer than {SMALL_CELL} in every band).")
        return png_bytes(figure)
    axis = figure.add_subplot()
    axis.axvspan(*equipoise, color="#eeeeee", zorder=0, label=f"equipoise {equipoise[0]:g} to {equipoise[1]:g}")
    left_out, as_share = 0, True
    denominators = {}
    for group in GROUPS:
        counts = [_number(t) for t in rows[group]]
        # The group's size: its printed total, else the sum of its bands when every one is printed.
        denominators[group] = _number(totals[group].iloc[0]) or (None if None in counts else sum(counts))
        as_share = as_share and bool(denominators[group])
    for group, sign in (("combined", 1), ("single modality", -1)):
        colour = GROUP_STYLE[group][0]
        for label, text in zip(rows[BAND_COLUMN], rows[group], strict=True):
            low, high = (float(x) for x in str(label).split(" to "))
            n = _number(text)
            if n is None:
                left_out += 1
                continue
            height = n / (high - low) / TENTHS  # per tenth of the score, so merged bands read alike
            if as_share:
                height = 100 * height / denominators[group]  # type: ignore[operator]
            axis.bar(low, sign * height, width=high - low, align="edge", color=colour, edgecolor="white")
        axis.bar(0, 0, color=colour, label=group)
    axis.axhline(0, color="#333333", linewidth=0.8)
    axis.set_xlim(0, 1)
    axis.set_xlabel("preference score (0: all but certain to get single modality; 1: combined)", fontsize=9)
    axis.set_ylabel(("% of the group" if as_share else "patients") + " per 0.1 of the score", fontsize=9)
    axis.tick_params(labelsize=MIN_FONT)
    ticks = axis.get_yticks()
    axis.set_yticks(ticks, [f"{abs(t):g}" for t in ticks])
    axis.set_title("Preference score by group: combined (up) and single modality (down)", fontsize=10, loc="left")
    if left_out:
        axis.text(0.99, 0.02, "bands not shown: counts hidden", transform=axis.transAxes, ha="right", fontsize=8)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8, frameon=False)
    return png_bytes(figure)
