"""Small-cell suppression and the report's display tables (all cells strings, ready to publish).

The rule (CMS cell size, see the domain notes): a count from 1 to 10 shows as ``<11`` (0 shows);
means, SDs and estimates computed on fewer than 11 patients are hidden; and no hidden cell may be
recoverable from a total, so a column that adds up to a published total gets complementary
suppression: at least two cells hidden, together adding up to 11 or more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

SMALL_CELL = 11  # counts below this (and above 0) are hidden
SUPPRESSED = "<11"
COMPLEMENTARY = "suppressed"  # a larger count hidden so that a small one cannot be worked out from the total
HIDDEN = "hidden (n<11)"
FOLLOWUP_TIMEPOINTS = ("3m", "6m", "12m")
TIMEPOINT_LABELS = {"baseline": "baseline", "3m": "3 months", "6m": "6 months", "12m": "12 months"}
TIMEPOINT_MONTHS = {"baseline": 0, "3m": 3, "6m": 6, "12m": 12}

# Outcome: (display name, scale in words). Direction comes from pipeline.contract.OUTCOMES.
OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    "sunnybrook_composite": ("Sunnybrook composite", "points, -15 to 100"),
    "sunnybrook_voluntary": ("Sunnybrook voluntary movement", "points, 20 to 100"),
    "sunnybrook_resting": ("Sunnybrook resting asymmetry", "points, 0 to 20"),
    "sunnybrook_synkinesis": ("Sunnybrook synkinesis", "points, 0 to 15"),
    "eface_total": ("eFACE total", "points, 0 to 100"),
    "eface_static": ("eFACE static", "points, 0 to 100"),
    "eface_dynamic": ("eFACE dynamic", "points, 0 to 100"),
    "eface_synkinesis": ("eFACE synkinesis", "points, 0 to 100"),
    "saq": ("SAQ", "percent score, 20 to 100"),
    "face_total": ("FaCE total", "points, 0 to 100"),
    "fdi_physical": ("FDI physical", "points, 0 to 100"),
    "fdi_social": ("FDI social", "points, 0 to 100"),
    "house_brackmann": ("House-Brackmann grade", "grade, 1 to 6"),
}
METHOD_LABELS = {
    "unadjusted": "Unadjusted",
    "ancova": "Adjusted (ANCOVA)",
    "iptw": "Weighted (IPTW)",
    "mixed": "Mixed model",
    "mice": "ANCOVA after imputation",
}


def outcome_label(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, (outcome, ""))[0]


def direction_words(higher_is_better: bool) -> str:
    return "higher is better" if higher_is_better else "lower is better"


def contrast_label(contrast: str) -> str:
    if contrast == "combined_vs_single":
        return "Combined vs single modality"
    return contrast.replace("_vs_", " vs ")


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def is_small(count: object) -> bool:
    """True for a count that must not be shown: 1 to 10."""
    return not _missing(count) and 0 < int(count) < SMALL_CELL  # type: ignore[call-overload]


def format_count(count: object) -> str:
    """A count as published: '' when unknown, '0', '<11' for 1 to 10, else the number."""
    if _missing(count):
        return ""
    return SUPPRESSED if is_small(count) else f"{int(count):,}"  # type: ignore[call-overload]


def suppress_counts(counts: Sequence[int], complementary: bool = True) -> list[str]:
    """Format a column of counts. With ``complementary`` (the column adds up to a published total),
    further cells are hidden (shown as 'suppressed'), smallest first, until at least two are hidden
    and the hidden cells add up to 11 or more, so no hidden cell can be worked out by subtraction."""
    values = [0 if _missing(c) else int(c) for c in counts]
    small = {i for i, value in enumerate(values) if is_small(value)}
    hidden = set(small)
    if complementary and hidden:
        candidates = sorted((value, i) for i, value in enumerate(values) if value > 0 and i not in hidden)
        while candidates and (len(hidden) < 2 or sum(values[i] for i in hidden) < SMALL_CELL):
            hidden.add(candidates.pop(0)[1])
    return [
        SUPPRESSED if i in small else COMPLEMENTARY if i in hidden else format_count(value)
        for i, value in enumerate(values)
    ]


def flow_counts(counts: Sequence[int]) -> list[str]:
    """Format the steps of a patient flow (each a subset of the one before). A step that lost 1 to
    10 patients since the last exactly shown step is shown as a range of 10 values, so the number
    lost (a small cell) cannot be worked out by subtraction."""
    shown: list[str] = []
    anchor: int | None = None
    for count in (int(c) for c in counts):
        if is_small(count):
            shown.append(SUPPRESSED)
        elif anchor is not None and 0 < anchor - count < SMALL_CELL:
            shown.append(f"{anchor - SMALL_CELL + 1:,} to {anchor - 1:,}")
        else:
            shown.append(format_count(count))
            anchor = count
    return shown


def hide_small(value: object, n: object, digits: int = 1) -> str:
    """A mean, SD or estimate computed on ``n`` patients: hidden when n is below 11."""
    if _missing(n) or int(n) < SMALL_CELL:  # type: ignore[call-overload]
        return HIDDEN
    if _missing(value):
        return ""
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def format_p(p: object) -> str:
    if _missing(p):
        return ""
    return "<0.001" if float(p) < 0.001 else f"{float(p):.3f}"  # type: ignore[arg-type]


# --- display tables ------------------------------------------------------------------------------------


def flow_table(steps: Sequence[tuple[str, int]]) -> pd.DataFrame:
    return pd.DataFrame({"step": [s for s, _ in steps], "patients": flow_counts([n for _, n in steps])})


def counts_table(frame: pd.DataFrame, count_column: str, complementary: bool = True) -> pd.DataFrame:
    """Every column as text, the count column suppressed."""
    shown = frame.astype(object).where(frame.notna(), "").astype(str)
    shown[count_column] = suppress_counts(frame[count_column].tolist(), complementary=complementary)
    return shown


def ledger_table(ledger: pd.DataFrame) -> pd.DataFrame:
    shown = pd.DataFrame(
        {
            "drop": ledger["drop_id"].astype(str),
            "file": ledger["file"].astype(str),
            "status": ledger["status"].astype(str),
            "received": [f"{t:%Y-%m-%d}" if not _missing(t) and not pd.isna(t) else "" for t in ledger["received_at"]],
            # The report also gives the totals of both columns: complementary suppression.
            "rows loaded": suppress_counts(ledger["rows_loaded"].tolist()),
            "rows quarantined": suppress_counts(ledger["rows_quarantined"].tolist()),
        }
    )
    return shown


def trajectory_table(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary``: outcome, group, timepoint, n, mean, sd, ci_low, ci_high."""
    rows = []
    for record in summary.itertuples(index=False):
        rows.append(
            {
                "outcome": outcome_label(record.outcome),
                "group": record.group,
                "timepoint": TIMEPOINT_LABELS.get(record.timepoint, record.timepoint),
                "patients": format_count(record.n),
                "mean": hide_small(record.mean, record.n),
                "sd": hide_small(record.sd, record.n),
                "95% CI low": hide_small(record.ci_low, record.n),
                "95% CI high": hide_small(record.ci_high, record.n),
            }
        )
    return pd.DataFrame(
        rows, columns=["outcome", "group", "timepoint", "patients", "mean", "sd", "95% CI low", "95% CI high"]
    )


def too_small(record: object) -> bool:
    n_treated, n_control = record.n_treated, record.n_control  # type: ignore[attr-defined]
    return _missing(n_treated) or _missing(n_control) or min(int(n_treated), int(n_control)) < SMALL_CELL


def shown_estimate(record: object) -> bool:
    """Whether an estimate may be published: estimated, both groups at least 11 patients, and its
    diagnostics passed (like OHDSI's CohortMethod, no estimate is shown before its diagnostics pass)."""
    return (
        not too_small(record)
        and not _missing(record.estimate)  # type: ignore[attr-defined]
        and bool(record.diagnostics_ok)
    )  # type: ignore[attr-defined]


def _estimate_note(record: object) -> str:
    note = "" if _missing(record.note) else str(record.note)  # type: ignore[attr-defined]
    if shown_estimate(record):
        return note
    if too_small(record):
        return f"not estimated: fewer than {SMALL_CELL} patients in a group"
    if not _missing(record.estimate):  # type: ignore[attr-defined]
        return f"not shown, diagnostics did not pass: {note}" if note else "not shown, diagnostics did not pass"
    return note or "not estimated"


def estimates_table(estimates: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for record in estimates.itertuples(index=False):
        shown = shown_estimate(record)
        ci = (
            f"{record.ci_low:.1f} to {record.ci_high:.1f}"
            if shown and not _missing(record.ci_low) and not _missing(record.ci_high)
            else ""
        )
        rows.append(
            {
                "contrast": contrast_label(record.contrast),
                "method": METHOD_LABELS.get(record.method, record.method),
                "outcome": f"{outcome_label(record.outcome)} ({direction_words(bool(record.higher_is_better))})",
                "timepoint": TIMEPOINT_LABELS.get(record.timepoint, record.timepoint),
                "estimate": f"{record.estimate:.1f}" if shown else "",
                "95% CI": ci,
                "p": format_p(record.p_value) if shown else "",
                "p (Holm)": format_p(record.p_adjusted) if shown else "",
                "n first group": format_count(record.n_treated),
                "n second group": format_count(record.n_control),
                "note": _estimate_note(record),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "contrast",
            "method",
            "outcome",
            "timepoint",
            "estimate",
            "95% CI",
            "p",
            "p (Holm)",
            "n first group",
            "n second group",
            "note",
        ],
    )
