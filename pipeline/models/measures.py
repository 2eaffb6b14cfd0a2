"""The estimates beside the mean differences: responders (``method = 'responder'``) and House-Brackmann as
an ordinal grade (``method = 'ordinal'``), in ``model_estimates`` with the others.

Their ``estimate`` is on its own scale, said in ``note`` and in docs/warehouse.md: for ``responder`` the
adjusted difference in the share of responders, first group minus second, in percentage points; for
``ordinal`` the odds ratio of a better grade (1 = no difference). Both rows carry ``higher_is_better = true``
(more responders, higher odds of a better grade), whatever the outcome's own direction.
"""

from __future__ import annotations

import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.models import fit_record
from pipeline.models.design_matrix import Contrast, analysis_frames
from pipeline.models.estimators import Estimate, failed
from pipeline.models.multiplicity import adjusted_p_values
from pipeline.models.ordinal import ORDINAL_OUTCOMES, better_grade_odds_ratio
from pipeline.models.propensity import Overlap
from pipeline.models.responders import responder_difference
from pipeline.settings import ModelSettings
from pipeline.yardsticks import responder_threshold

MEASURES = ("responder", "ordinal")


def _baseline_sd(baselines: pd.DataFrame, population: pd.DataFrame, outcome: str) -> float | None:
    chosen = baselines[baselines["outcome"] == outcome].merge(population[["site_id", "patient_id"]])
    return float(chosen["baseline_value"].std(ddof=1)) if len(chosen) > 1 else None


def measure_rows(
    population: pd.DataFrame,
    baselines: pd.DataFrame,
    changes: pd.DataFrame,
    contrasts: list[Contrast],
    settings: ModelSettings,
    design: AnalysisDesign,
    run_id: str,
    overlaps: dict[str, Overlap | None] | None = None,
) -> pd.DataFrame:
    """One row per contrast, outcome (with a responder threshold, or ordinal) and timepoint, in
    ``model_estimates``' columns; the contrast's overlap applied and p-values adjusted as the mean differences'."""
    thresholds = {o: responder_threshold(o, _baseline_sd(baselines, population, o)) for o in design.outcomes}
    rows = []
    for contrast in contrasts:
        frames = analysis_frames(population, changes, contrast)
        for (outcome, timepoint), frame in frames.items():
            if outcome not in design.outcomes:
                continue
            n_treated = int((frame["treated"] == 1).sum())
            n_control = len(frame) - n_treated
            small = min(n_treated, n_control) < settings.min_group_size
            better = design.higher_is_better[outcome]
            fits: dict[str, Estimate] = {}
            stick = thresholds[outcome]
            with fit_record.labelled(contrast=contrast.name, outcome=outcome, timepoint=timepoint):
                if stick.value is not None:
                    fits["responder"] = (
                        failed(f"not estimated: fewer than {settings.min_group_size} patients in a group")
                        if small
                        else responder_difference(frame, settings, better, stick.value, f"{stick.kind}, {stick.source}")
                    )
                if outcome in ORDINAL_OUTCOMES:
                    fits["ordinal"] = (
                        failed(f"not estimated: fewer than {settings.min_group_size} patients in a group")
                        if small
                        else better_grade_odds_ratio(frame, settings, better)
                    )
            overlap = (overlaps or {}).get(contrast.name)
            for method, result in fits.items():
                if overlap is not None:  # the contrast's overlap holds for these estimates as for the others
                    result = overlap.apply(result, method)
                rows.append(
                    {
                        "run_id": run_id,
                        "method": method,
                        "outcome": outcome,
                        "timepoint": timepoint,
                        "contrast": contrast.name,
                        **result.columns(),
                        "n_treated": n_treated,
                        "n_control": n_control,
                        "higher_is_better": True,
                    }
                )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # The same multiplicity as the mean differences (pipeline/models/multiplicity.py), within each measure.
    frame["p_adjusted"] = adjusted_p_values(
        frame, frame["converged"].astype(bool), design.primary_outcome, design.composite_of
    )
    return frame


def with_measures(estimates: pd.DataFrame, measures: pd.DataFrame) -> pd.DataFrame:
    """The estimates with the measures' rows after them, in the estimates' columns and types (no E-value or
    MDD: both are defined on a difference of means)."""
    if measures.empty:
        return estimates
    extra = measures.reindex(columns=estimates.columns)
    extra = extra.astype({c: t for c, t in estimates.dtypes.items() if c not in ("e_value", "e_value_ci", "mdd")})
    return pd.concat([estimates, extra], ignore_index=True)
