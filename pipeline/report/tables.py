"""Small-cell suppression and the report's display tables (all cells strings, ready to publish).

The rule (CMS cell size, see the domain notes): a count from 1 to 10 shows as ``<11`` (0 shows);
means, SDs and estimates computed on fewer than 11 patients are hidden; and no hidden cell may be
recoverable from a total, so a column that adds up to a published total gets complementary
suppression: at least two cells hidden, together adding up to 11 or more.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from pipeline.report.suppression import (
    COMPLEMENTARY,
    HIDDEN,
    SMALL_CELL,
    SUPPRESSED,
    _missing,
    flow_counts,
    flow_excluded,
    format_count,
    hide_small,
    is_small,
    percent,
    shown_estimate,
    shown_grid,
    suppress_counts,
    suppress_grid,
    too_small,
)
from pipeline.vocabulary import (
    OUTCOME_LABELS,
    contrast_label,
    direction_words,
    outcome_label,
)

METHOD_LABELS = {
    "unadjusted": "Unadjusted",
    "ancova": "Adjusted (ANCOVA)",
    "iptw": "Weighted (IPTW)",
    "aipw": "Doubly robust (AIPW)",
    "mixed": "Mixed model",
    "mice": "ANCOVA after imputation",
    "responder": "Responders: adjusted difference in % points",
    "ordinal": "Ordinal: odds ratio of a better grade",
}
# The methods whose estimate is a difference in mean change (the others are on their own scale: percentage
# points of responders, an odds ratio), so the ones a forest plot of mean differences may draw.
MEAN_DIFFERENCE_METHODS = ("unadjusted", "ancova", "iptw", "mixed", "mice")


def format_p(p: object) -> str:
    if _missing(p):
        return ""
    return "<0.001" if float(p) < 0.001 else f"{float(p):.3f}"  # type: ignore[arg-type]


# --- display tables ------------------------------------------------------------------------------------


FLOW_ANCHOR = 2  # the classifiable patients: Table 1 and the combinations add up to them, so shown exactly


def flow_table(steps: Sequence[tuple[str, int]]) -> pd.DataFrame:
    counts = [n for _, n in steps]
    anchor = FLOW_ANCHOR if len(counts) > FLOW_ANCHOR else 0
    return pd.DataFrame(
        {
            "step": [s for s, _ in steps],
            "patients": flow_counts(counts, anchor),
            "excluded at this step": flow_excluded(counts, anchor),
        }
    )


def counts_table(frame: pd.DataFrame, count_column: str, complementary: bool = True) -> pd.DataFrame:
    """Every column as text, the count column suppressed."""
    shown = frame.astype(object).where(frame.notna(), "").astype(str)
    shown[count_column] = suppress_counts(frame[count_column].tolist(), complementary=complementary)
    return shown


PATIENT_FLOW_WORDS = "in the patient flow"


def is_patients_file(file: object) -> bool:
    """A file of patient records, one row per patient (patients.csv, patients.csv.gz)."""
    return str(file).split(".")[0] == "patients"


def rows_loaded_total(ledger: pd.DataFrame) -> int:
    """Rows loaded this quarter, patient records left out (see ``ledger_table``)."""
    return int(ledger.loc[~ledger["file"].map(is_patients_file), "rows_loaded"].sum())


def ledger_table(ledger: pd.DataFrame) -> pd.DataFrame:
    # A patients file's rows loaded are patients received: shown exactly, they would undo the patient
    # flow's range (received minus classifiable is a small cell), so they are counted there only.
    patients_file = ledger["file"].map(is_patients_file).to_numpy()
    # The other files' counts add up to the published total: suppressed among themselves only.
    others = iter(suppress_counts(ledger.loc[~patients_file, "rows_loaded"].tolist()))
    shown = pd.DataFrame(
        {
            "drop": ledger["drop_id"].astype(str),
            "file": ledger["file"].astype(str),
            "status": ledger["status"].astype(str),
            "received": [f"{t:%Y-%m-%d}" if not _missing(t) and not pd.isna(t) else "" for t in ledger["received_at"]],
            # The report also gives the totals of both columns: complementary suppression.
            "rows loaded": [PATIENT_FLOW_WORDS if is_patients else next(others) for is_patients in patients_file],
            "rows quarantined": suppress_counts(ledger["rows_quarantined"].tolist()),
        }
    )
    return shown


def trajectory_table(summary: pd.DataFrame, timepoint_labels: dict[str, str]) -> pd.DataFrame:
    """``summary``: outcome, group, timepoint, n, mean, sd, ci_low, ci_high."""
    rows = []
    for record in summary.itertuples(index=False):
        rows.append(
            {
                "outcome": outcome_label(record.outcome),
                "group": record.group,
                "timepoint": timepoint_labels.get(record.timepoint, record.timepoint),
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


def _estimate_note(record: object) -> str:
    note = "" if _missing(record.note) else str(record.note)  # type: ignore[attr-defined]
    if shown_estimate(record):
        return note
    if too_small(record):
        return f"not estimated: fewer than {SMALL_CELL} patients in a group"
    if not _missing(record.estimate):  # type: ignore[attr-defined]
        return f"not shown, diagnostics did not pass: {note}" if note else "not shown, diagnostics did not pass"
    return note or "not estimated"


def _optional(record: object, column: str, digits: int) -> str:
    """A column the model run may not have yet (e_value, e_value_ci, mdd): '' when absent."""
    value = getattr(record, column, None)
    return "" if _missing(value) else f"{float(value):.{digits}f}"  # type: ignore[arg-type]


# A fit with a variance estimated at zero (model_estimates.boundary) is a singular fit: its numbers stand, but
# "passed" would hide that the model had no patient-level variation to model.
def at_variance_boundary(record: object) -> bool:
    boundary = getattr(record, "boundary", None)
    return not _missing(boundary) and bool(boundary)


def _diagnostics_words(record: object) -> str:
    if too_small(record):
        return "not run (small group)"
    if _missing(record.estimate):  # type: ignore[attr-defined]
        return "not estimated"
    if not bool(record.diagnostics_ok):  # type: ignore[attr-defined]
        return "did not pass"
    return "flagged: variance at boundary" if at_variance_boundary(record) else "passed"


# An E-value says how strong an unmeasured confounder would have to be beyond what was adjusted for: beside
# an unadjusted difference (confounded by the measured factors too) it would read as reassurance it is not.
E_VALUE_METHODS = frozenset({"ancova", "iptw", "mixed", "mice"})


def has_e_value(record: object) -> bool:
    return getattr(record, "method", "") in E_VALUE_METHODS


SIGN_REVERSED = "sign reversed: above 0, the first group improved more"
# The estimates tables' difference: the warehouse's model_estimates.benefit (above 0: the first group did better),
# for ordinal rows the odds ratio as fitted; the warehouse's `estimate` is the difference in change as fitted.
BENEFIT = "benefit"


def estimates_table(estimates: pd.DataFrame, timepoint_labels: dict[str, str]) -> pd.DataFrame:
    """Every estimate as printed: differences in improvement (benefit above 0 for every outcome, the sign reversed
    and labelled so where a lower score is better), n, diagnostics, E-values and notes."""
    rows = []
    for record in estimates.itertuples(index=False):
        shown = shown_estimate(record)
        digits = 2 if record.method == "ordinal" else 1
        # Benefit on the same side as the main body: where a lower score is better the difference in change is
        # turned into a difference in improvement (the responder and ordinal measures already are one).
        sign = 1.0 if bool(record.higher_is_better) else -1.0
        low, high = sorted((sign * record.ci_low, sign * record.ci_high))
        ci = (
            f"{low:.{digits}f} to {high:.{digits}f}"
            if shown and not _missing(record.ci_low) and not _missing(record.ci_high)
            else ""
        )
        rows.append(
            {
                "contrast": contrast_label(record.contrast),
                "method": METHOD_LABELS.get(record.method, record.method),
                "outcome": f"{outcome_label(record.outcome)} ({direction_words(bool(record.higher_is_better))}"
                + ("" if record.higher_is_better else f"; {SIGN_REVERSED}")
                + ")",
                "timepoint": timepoint_labels.get(record.timepoint, record.timepoint),
                BENEFIT: (
                    f"{record.estimate:.2f}" if record.method == "ordinal" else f"{sign * record.estimate + 0.0:.1f}"
                )
                if shown
                else "",
                "95% CI": ci,
                "p": format_p(record.p_value) if shown else "",
                "p (Holm)": format_p(record.p_adjusted) if shown else "",
                "n first group": format_count(record.n_treated),
                "n second group": format_count(record.n_control),
                "diagnostics": _diagnostics_words(record),
                "E-value": _optional(record, "e_value", 2) if shown and has_e_value(record) else "",
                "E-value (CI)": _optional(record, "e_value_ci", 2) if shown and has_e_value(record) else "",
                "MDD": _optional(record, "mdd", 1) if not too_small(record) else "",
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
            BENEFIT,
            "95% CI",
            "p",
            "p (Holm)",
            "n first group",
            "n second group",
            "diagnostics",
            "E-value",
            "E-value (CI)",
            "MDD",
            "note",
        ],
    )


# The models' covariates in words (model_runs.settings.covariates, the terms of their notes).
COVARIATE_WORDS = {
    "age_at_onset": "age at onset",
    "sex": "sex",
    "etiology": "cause of the palsy",
    "onset_to_index_days": "time from onset to the index visit",
    "prior_treatment": "earlier treatment",
    "site_id": "site",
    "side": "affected side",
    "index_year": "year of the index visit",
    "baseline_value": "baseline score",
}
_TERM = re.compile(r"\b(severity|missing|spline)\[([^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)?)\](?:_at\[(\w+)\])?")
_CODE = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, [*OUTCOME_LABELS, *COVARIATE_WORDS]), key=len, reverse=True)) + r")\b"
)


def readable(note: str) -> str:
    """A model's note with its terms in words: ``severity[saq]`` -> "baseline SAQ", ``missing[saq]`` -> "SAQ
    missing at baseline", ``spline[severity[saq],1]`` -> "baseline SAQ (spline 1)", codes -> labels."""

    def term(match: re.Match[str]) -> str:
        kind, inner, at = match.group(1), match.group(2), match.group(3)
        when = f" at {at}" if at else ""
        if kind == "spline":
            base, _, knot = inner.rpartition(",")
            return f"{readable(base)} (spline {knot}){when}"
        name = COVARIATE_WORDS.get(inner) or outcome_label(inner)
        return f"baseline {name}{when}" if kind == "severity" else f"{name} missing at baseline{when}"

    text = _TERM.sub(term, str(note))
    return _CODE.sub(lambda m: COVARIATE_WORDS.get(m.group(1)) or outcome_label(m.group(1)), text)


def footnoted(frame: pd.DataFrame, column: str = "note") -> tuple[pd.DataFrame, list[str]]:
    """The column's notes as footnote numbers ("1, 3"), and the distinct notes in order of first use.

    A note is split at "; " into its parts: the same part (a covariate level pooled, the kind of
    standard error) recurs on most rows, and printed in full on every row it made the primary
    table fourteen pages long in print."""
    numbers: dict[str, int] = {}
    cells = []
    for text in frame[column]:
        parts = [readable(part.strip()) for part in str(text).split("; ") if part.strip()]
        # In ascending order within a cell: "1, 2, 5", never "5, 1, 2".
        cells.append(", ".join(str(n) for n in sorted({numbers.setdefault(part, len(numbers) + 1) for part in parts})))
    return frame.assign(**{column: cells}), list(numbers)


# --- the report's newer tables ---------------------------------------------------------------------------

GROUPS = ("single modality", "combined")
SEX_WORDS = {"F": "female", "M": "male", "X": "other", "U": "not stated"}


def _group_sizes(patients: pd.DataFrame) -> list[int]:
    return [int((patients["group"] == g).sum()) for g in GROUPS]


def _categorical_rows(patients: pd.DataFrame, column: str, title: str, words: dict[str, str]) -> list[list[str]]:
    values = patients[column].astype(object).where(patients[column].notna(), "not recorded").astype(str)
    categories = sorted(set(values))
    grid = [[int(((values == c) & (patients["group"] == g)).sum()) for g in GROUPS] for c in categories]
    status = suppress_grid(grid, rows_total=False, columns_total=True)
    shown = shown_grid(grid, status)
    sizes = _group_sizes(patients)
    rows = [[title, "", ""]]
    for c, counts, cells, states in zip(categories, grid, shown, status, strict=True):
        rows.append(
            [f"  {words.get(c, c.replace('_', ' '))}, n (%)"]
            + [
                f"{cell} ({percent(n, size, s)})" if percent(n, size, s) else cell
                for n, size, cell, s in zip(counts, sizes, cells, states, strict=True)
            ]
        )
    return rows


def table_one(patients: pd.DataFrame, outcomes: tuple[str, ...], higher_is_better: dict[str, bool]) -> pd.DataFrame:
    """Table 1 by group (single modality vs combined) among classifiable patients: counts with
    complementary suppression within each characteristic, means and medians hidden below 11 patients.
    When either group has fewer than 11 patients no column is shown (its size would give away the other)."""
    columns = ["characteristic", *GROUPS]
    sizes = _group_sizes(patients)
    # The two sizes add up to the classifiable patients, shown in the patient flow: suppressed together.
    shown_sizes = suppress_counts(sizes)
    if min(sizes) < SMALL_CELL:
        return pd.DataFrame(
            [["Patients", *shown_sizes], ["Not shown: fewer than 11 patients in a group", "", ""]], columns=columns
        )
    rows: list[list[str]] = [["Patients", *shown_sizes]]

    def numeric(label: str, column: str, scale: float = 1.0, median: bool = False) -> list[str]:
        cells = [label]
        for g in GROUPS:
            values = patients.loc[patients["group"] == g, column].dropna().astype(float) / scale
            if median:
                q1, mid, q3 = (values.quantile(q) for q in (0.25, 0.5, 0.75)) if len(values) else (0, 0, 0)
                cell = hide_small(mid, len(values))
                cells.append(cell if cell == HIDDEN else f"{cell} ({q1:.1f} to {q3:.1f})")
            else:
                cell = hide_small(values.mean() if len(values) else None, len(values))
                sd = hide_small(values.std() if len(values) > 1 else None, len(values))
                cells.append(cell if cell == HIDDEN else f"{cell} ({sd})")
        return cells

    rows.append(numeric("Age at onset, years, mean (SD)", "age_at_onset"))
    rows += _categorical_rows(patients, "sex", "Sex", SEX_WORDS)
    rows += _categorical_rows(patients, "etiology", "Cause of the palsy", {})
    rows.append(numeric("Time from onset to index visit, months, median (IQR)", "onset_to_index_days", 30.44, True))
    prior = patients.assign(prior=patients["prior_treatment"].map({True: "yes", False: "no"}))
    rows += _categorical_rows(prior, "prior", "Treated before the index visit", {})
    rows.append(["Baseline scores (patients with one), mean (SD)", "", ""])
    for outcome in outcomes:
        rows.append(numeric(f"  {outcome_label(outcome)} ({direction_words(higher_is_better[outcome])})", outcome))
    return pd.DataFrame(rows, columns=columns)


def grouped_counts(frame: pd.DataFrame, label: str, pool_below: int = 0, pool_label: str = "") -> pd.DataFrame:
    """Counts of ``label`` values by group, each group's column suppressed against its published size.
    Values with fewer than ``pool_below`` patients in a group are pooled into ``pool_label`` first."""
    out = []
    for group in GROUPS:
        counts = frame.loc[frame["group"] == group, label].value_counts()
        if pool_below:
            rare = counts[counts < pool_below]
            counts = counts[counts >= pool_below]
            if len(rare):
                counts = pd.concat([counts, pd.Series({pool_label: int(rare.sum())})])
        keys = sorted(counts.index, key=lambda k: (k == pool_label, -int(counts[k]), str(k)))
        shown = suppress_counts([int(counts[k]) for k in keys])
        out += [{"group": group, label: k, "patients": s} for k, s in zip(keys, shown, strict=True)]
    return pd.DataFrame(out, columns=["group", label, "patients"])


def by_year_table(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[int], list[float]]:
    """Classifiable patients by index year and group, with the year's total; suppressed as a two-way
    table. Also the years and % combined that the figure may draw (all three cells of the year shown)."""
    years = sorted({int(y) for y in frame["year"].dropna()})
    grid = []
    for year in years:
        cells = [int(frame.loc[(frame["year"] == year) & (frame["group"] == g), "patients"].sum()) for g in GROUPS]
        grid.append([*cells, sum(cells)])
    status = suppress_grid(grid, rows_total=True, columns_total=True) if grid else None
    shown = shown_grid(grid, status) if grid else []
    table = pd.DataFrame(
        [[str(y), *cells] for y, cells in zip(years, shown, strict=True)], columns=["year", *GROUPS, "all"]
    )
    draw_years, shares = [], []
    for year, counts, states in zip(years, grid, status if status is not None else [], strict=True):
        if all(s == "shown" for s in states) and counts[2] >= SMALL_CELL:
            draw_years.append(year)
            shares.append(100.0 * counts[1] / counts[2])
    return table, draw_years, shares


def dose_table(doses: pd.DataFrame, last: int) -> pd.DataFrame:
    rows = []
    for record in doses.itertuples(index=False):
        session = f"{int(record.session)} or later" if int(record.session) >= last else str(int(record.session))
        rows.append(
            {
                "session": session,
                "patients": format_count(record.n),
                "mean units": hide_small(record.mean, record.n),
                "sd": hide_small(record.sd, record.n),
                "median units": hide_small(record.median, record.n),
                "95% CI low": hide_small(record.ci_low, record.n),
                "95% CI high": hide_small(record.ci_high, record.n),
            }
        )
    return pd.DataFrame(
        rows, columns=["session", "patients", "mean units", "sd", "median units", "95% CI low", "95% CI high"]
    )


def quarter_refusals_table(refused: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "drop": refused["drop_id"].astype(str),
            "status": refused["status"].astype(str),
            "received": [f"{t:%Y-%m-%d}" if not pd.isna(t) else "" for t in refused["received_at"]],
            "why": refused["reason"].fillna("").astype(str),
        },
        columns=["drop", "status", "received", "why"],
    )


# Re-exported: the suppression rule lives in pipeline.report.suppression, used through these names too.
__all__ = [
    "COMPLEMENTARY",
    "HIDDEN",
    "SMALL_CELL",
    "SUPPRESSED",
    "estimates_table",
    "flow_counts",
    "flow_excluded",
    "format_count",
    "hide_small",
    "is_small",
    "shown_estimate",
    "suppress_counts",
    "too_small",
]
