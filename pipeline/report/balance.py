"""The weighted comparison's balance as the report prints it: Table 1's standardized mean differences before
and after weighting, read from the warehouse's ``covariate_balance`` (the models' own numbers, never
recomputed here), and which comparison's rows the report shows."""

from __future__ import annotations

import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.report.tables import GROUPS, SEX_WORDS
from pipeline.vocabulary import PRIMARY_CONTRAST, outcome_label

SMD_BEFORE = "SMD before weighting"
SMD_AFTER = "SMD after weighting"
# Table 1's categorical titles -> the covariate whose levels the propensity model dummies (name[level]).
CATEGORICAL_COVARIATES = {"Sex": "sex", "Cause of the palsy": "etiology", "Treated before the index visit": "prior"}
NUMERIC_ROWS = {"Age at onset": "age_at_onset", "Time from onset to index visit": "onset_to_index_days"}


def primary_balance(balance: pd.DataFrame, design: AnalysisDesign) -> tuple[pd.DataFrame, str]:
    """The primary comparison's balance rows (combined vs single, the primary timepoint, the primary outcome or
    else the first outcome with rows) and that outcome; empty where the weighted model was not run."""
    if balance is None or balance.empty:
        return pd.DataFrame(columns=["covariate", "smd_unweighted", "smd_weighted"]), ""
    rows = balance[(balance["contrast"] == PRIMARY_CONTRAST) & (balance["timepoint"] == design.primary_timepoint)]
    if rows.empty:
        return pd.DataFrame(columns=["covariate", "smd_unweighted", "smd_weighted"]), ""
    outcome = next((o for o in design.outcomes if o in set(rows["outcome"])), str(rows["outcome"].iloc[0]))
    return rows[rows["outcome"] == outcome].drop_duplicates("covariate").reset_index(drop=True), outcome


def _level_words(column: str) -> dict[str, str]:
    """A level code as Table 1 words it (tables._categorical_rows)."""
    return SEX_WORDS if column == "sex" else {}


def table_one_covariates(characteristics: list[str], outcome: str, outcomes: tuple[str, ...]) -> list[str | None]:
    """For each Table 1 row, the ``covariate_balance`` term it is (None where none is)."""
    level_of: dict[str, dict[str, str]] = {}
    terms: list[str | None] = []
    title = None
    baseline_labels = {outcome_label(o): o for o in outcomes}
    for label in characteristics:
        text = str(label)
        if not text.startswith("  "):
            title = text if text in CATEGORICAL_COVARIATES else None
            numeric = next((c for prefix, c in NUMERIC_ROWS.items() if text.startswith(prefix)), None)
            terms.append(numeric)
            continue
        inner = text.strip()
        if title is not None and inner.endswith(", n (%)"):
            word = inner[: -len(", n (%)")]
            column = CATEGORICAL_COVARIATES[title]
            if column == "prior":
                terms.append("prior_treatment" if word == "yes" else None)
                continue
            words = level_of.setdefault(column, _level_words(column))
            code = next((c for c, w in words.items() if w == word), word.replace(" ", "_"))
            terms.append(f"{column}[{code}]")
            continue
        baseline = next((o for label, o in baseline_labels.items() if inner.startswith(f"{label} (")), None)
        if baseline is None:
            terms.append(None)
        else:
            terms.append("baseline_value" if baseline == outcome else f"severity[{baseline}]")
    return terms


def with_smd(table: pd.DataFrame, balance: pd.DataFrame, outcome: str, outcomes: tuple[str, ...]) -> pd.DataFrame:
    """Table 1 with two columns: each row's standardized mean difference (combined minus single, over the pooled
    SD) before and after inverse-probability weighting, as ``covariate_balance`` holds it; blank where the row is
    no term of the propensity model (a reference level, a dropped covariate) or no weighted model was run."""
    out = table.copy()
    by_term = balance.set_index("covariate") if len(balance) else pd.DataFrame(columns=["smd_unweighted"])
    terms = table_one_covariates(out["characteristic"].tolist(), outcome, outcomes)
    before, after = [], []
    for term in terms:
        if term is None or term not in by_term.index:
            before.append("")
            after.append("")
            continue
        before.append(f"{float(by_term.loc[term, 'smd_unweighted']):+.2f}")
        after.append(f"{float(by_term.loc[term, 'smd_weighted']):+.2f}")
    out[SMD_BEFORE] = before
    out[SMD_AFTER] = after
    return out[["characteristic", *GROUPS, SMD_BEFORE, SMD_AFTER]]
