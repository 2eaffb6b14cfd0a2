"""Responder analysis: the share of patients whose own change reaches the individual threshold, compared
between groups as an adjusted risk difference.

A patient responds when their own improvement (change from baseline, sign-reversed where a lower score is
better) reaches the outcome's responder threshold (:func:`pipeline.yardsticks.responder_threshold`: the
individual smallest detectable change where one is known, else the minimal important change). The adjusted
risk difference is the treated coefficient of a linear probability model on the ANCOVA design (group,
baseline, covariates) with HC3 (or site-clustered) robust errors: a difference of proportions that needs no
rare-outcome approximation and reads directly as percentage points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from pipeline.models.estimators import Estimate, adjustment_design, coefficient, failed, record_regression, robust_fit
from pipeline.settings import ModelSettings

PERCENTAGE_POINTS = 100.0


def responded(frame: pd.DataFrame, higher_is_better: bool, threshold: float) -> pd.Series:
    """1 where the patient's own improvement reaches the threshold, else 0."""
    improvement = frame["change"].astype(float) * (1.0 if higher_is_better else -1.0)
    return (improvement >= threshold).astype(float)


TOO_FEW = "too few responders to compare"


def too_few_responders(response: pd.Series, treated: pd.Series, least: int) -> str:
    """The note of a comparison with fewer than ``least`` responders (or non-responders) in a group, else "":
    a difference in shares resting on a handful of patients is not read as an answer (docs/warehouse.md)."""
    counts = [int(response[side].sum()) for side in (treated, ~treated)]
    counts += [int((1 - response[side]).sum()) for side in (treated, ~treated)]
    if min(counts) >= least:
        return ""
    return f"not estimated: {TOO_FEW} (fewer than {least} responders or non-responders in a group)"


def responder_difference(
    frame: pd.DataFrame, settings: ModelSettings, higher_is_better: bool, threshold: float, threshold_words: str
) -> Estimate:
    """Adjusted difference in the share of responders, first group minus second, in percentage points."""
    response = responded(frame, higher_is_better, threshold)
    design, notes = adjustment_design(frame, settings)
    notes = [f"responder: own improvement of at least {threshold:g} points ({threshold_words})", *notes]
    if design is None:
        return failed("; ".join(notes))
    outcome = response.loc[design.index]
    if outcome.nunique() < 2:
        return failed("; ".join([*notes, "not estimated: every patient responded, or none did"]))
    fewest = too_few_responders(response, frame["treated"] == 1, settings.min_group_size)
    if fewest:
        return failed("; ".join([*notes, fewest]))
    fit = robust_fit(sm.OLS(outcome.to_numpy(), design), frame.loc[design.index, "site_id"], settings, notes)
    record_regression(
        "responder", outcome.to_numpy(), design, frame.loc[design.index, "site_id"], settings, scale=PERCENTAGE_POINTS
    )
    index = list(design.columns).index("treated")
    result = coefficient(fit, index, [*notes, "linear probability model"])
    if not result.ok:
        return result
    scale = PERCENTAGE_POINTS
    return Estimate(
        result.estimate * scale,
        result.std_error * scale,
        result.ci_low * scale,
        result.ci_high * scale,
        result.p_value,
        True,
        result.note,
    )


def responder_shares(frame: pd.DataFrame, higher_is_better: bool, threshold: float) -> tuple[float, float]:
    """The crude share of responders in the first and the second group (0 to 1)."""
    response = responded(frame, higher_is_better, threshold)
    treated = frame["treated"] == 1
    return float(np.mean(response[treated])), float(np.mean(response[~treated]))
