"""Per-group responder shares beside the adjusted risk difference: of each group of a comparison (the patients of
its responder estimate), how many improved by at least the outcome's individual threshold (the one the model
used, from the estimate's note), improvement read in the outcome's own direction (the design's
``higher_is_better``: a fall in SAQ is an improvement; the responder row's own flag is true for every row, as
"more responders" is better). Counts go through the register; a share is printed only where its count and the
group's n both are. Fewer than ``MIN_RESPONDERS`` responders (or non-responders) in a group: too few to
compare, and no difference is printed (the models refuse it too, pipeline/models/responders.py)."""

from __future__ import annotations

import re

import pandas as pd

from pipeline.report.published_counts import keys
from pipeline.report.register import Register
from pipeline.report.suppression import COMPLEMENTARY, SMALL_CELL, SUPPRESSED, format_count, is_small
from pipeline.vocabulary import contrast_label, group_words, outcome_label

TABLE = "responder_shares"
COLUMNS = ["comparison", "outcome", "group", "threshold, points", "responders", "share of the group"]
MIN_RESPONDERS = SMALL_CELL
TOO_FEW = "too few responders to compare"
THRESHOLD = re.compile(r"responder: own improvement of at least ([0-9.]+(?:e[+-]?\d+)?) points")


def threshold_of(note: object) -> float | None:
    found = THRESHOLD.search(str(note or ""))
    return float(found.group(1)) if found else None


def responder_groups(
    estimates: pd.DataFrame,
    changes: pd.DataFrame,
    members: dict[tuple[str, str, str, str], tuple[list, list]],
    timepoint: str,
    outcomes: tuple[str, ...],
    higher_is_better: dict[str, bool],
) -> list[dict[str, object]]:
    """One entry per group of each responder estimate at ``timepoint`` on ``outcomes``: its patients and the
    responders among them, improvement in each outcome's own direction (``higher_is_better``, the design's)."""
    if estimates.empty:
        return []
    chosen = (estimates["method"] == "responder") & (estimates["timepoint"] == timepoint)
    rows = estimates[chosen & estimates["outcome"].isin(outcomes)]
    by_outcome = {
        str(o): dict(zip(keys(f), f["change"].astype(float), strict=True)) for o, f in changes.groupby("outcome")
    }
    out = []
    for r in rows.itertuples(index=False):
        threshold = threshold_of(r.note)
        found = members.get((str(r.contrast), str(r.outcome), str(r.timepoint), "responder"))
        if threshold is None or found is None or str(r.outcome) not in by_outcome:
            continue
        change = by_outcome[str(r.outcome)]
        sign = 1.0 if higher_is_better.get(str(r.outcome), True) else -1.0
        first, second = contrast_groups(str(r.contrast))
        for side, group in ((0, first), (1, second)):
            patients = [tuple(p) for p in found[side]]
            responders = [p for p in patients if p in change and sign * change[p] >= threshold]
            out.append(
                {
                    "contrast": str(r.contrast),
                    "outcome": str(r.outcome),
                    "side": side,
                    "group": group,
                    "threshold": threshold,
                    "patients": patients,
                    "responders": responders,
                }
            )
    return out


contrast_groups = group_words  # the responder table's words for a contrast's two groups


def responder_table(groups: list[dict[str, object]]) -> pd.DataFrame:
    """As printed before the audit: a count of 1 to 10 reads '<11'; where the non-responders are 1 to 10 the
    responders are hidden too (the group's n is printed with the estimate)."""
    rows = []
    for g in groups:
        n, r = len(g["patients"]), len(g["responders"])  # type: ignore[arg-type]
        if is_small(r):
            text = SUPPRESSED
        elif is_small(n - r):
            text = COMPLEMENTARY
        else:
            text = format_count(r)
        share = f"{100 * r / n:.0f}%" if n and text not in (SUPPRESSED, COMPLEMENTARY) else ""
        rows.append(
            [
                contrast_label(str(g["contrast"])),
                outcome_label(str(g["outcome"])),
                g["group"],
                f"{g['threshold']:g}",
                text,
                share,
            ]
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def cell_key(g: dict[str, object], timepoint: str) -> str:
    return f"responders|{g['contrast']}|{g['outcome']}|{timepoint}|{g['side']}"


def register_responders(
    register: Register, table: pd.DataFrame, groups: list[dict[str, object]], timepoint: str
) -> None:
    for i, g in enumerate(groups):
        register.printed_count(
            cell_key(g, timepoint),
            f"{g['group']} patients of {g['contrast']} improving {g['outcome']} by the threshold at {timepoint}",
            g["responders"],  # type: ignore[arg-type]
            table["responders"].iloc[i],
            (TABLE, i, "responders"),
        )


def finish(table: pd.DataFrame, groups: list[dict[str, object]], register: Register, timepoint: str) -> None:
    """After the audit: no share where the audit hid its count or the group's n (the share would give them)."""
    for i, g in enumerate(groups):
        n_key = f"estimates|{g['contrast']}|{g['outcome']}|{timepoint}|responder|{g['side']}"
        if not (register.shown(cell_key(g, timepoint)) and register.shown(n_key)):
            table.iloc[i, table.columns.get_loc("share of the group")] = ""


def too_few(groups: list[dict[str, object]]) -> set[tuple[str, str]]:
    """(contrast, outcome) of the comparisons with fewer than MIN_RESPONDERS responders or non-responders in a
    group: no difference is printed for them."""
    out = set()
    for g in groups:
        n, r = len(g["patients"]), len(g["responders"])  # type: ignore[arg-type]
        if min(r, n - r) < MIN_RESPONDERS:
            out.add((str(g["contrast"]), str(g["outcome"])))
    return out


def share_words(table: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(comparison, outcome) -> "45% vs 31%" (first group, second) from the table as printed, where both are."""
    out: dict[tuple[str, str], list[str]] = {}
    for r in table.itertuples(index=False):
        out.setdefault((r.comparison, r.outcome), []).append(r[COLUMNS.index("share of the group")] or "not shown")
    return {k: " vs ".join(v) for k, v in out.items() if "not shown" not in v}
