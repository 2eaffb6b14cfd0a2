"""What each ``model_estimates`` row estimates, and its role in the analysis plan (docs/sap.md).

``estimand``: ``crude`` (a description, not an effect), ``conditional`` (the covariate-adjusted
difference: under a constant effect the average effect; with effects that differ between patients a
variance-weighted average over the contrast's patients), ``ATE`` (the average effect over every
patient of the contrast's two groups), ``ATE_overlap`` (the average effect among patients whose
propensity lies in AIPW's overlap region), ``interaction`` (synergy's interaction contrast, adjusted),
``within_patient`` (BoNT after surgery: after vs before, within the surgery patients) and ``per_protocol``
(the target trial's clone-censor-weight contrast of two sustained strategies, docs/target_trial.md).

``role``: ``primary`` (the primary method: ANCOVA for the comparisons and synergy, the drift-guarded
fits for BoNT after surgery), ``sensitivity`` (every other adjusted method, the responder and
ordinal measures, the target trial's ``ccw`` rows and the primary comparison at trough assessments)
and ``descriptive``: the unadjusted difference, and every comparison at a timepoint whose target
falls inside the exposure window that decides the groups (issue 29: at 3 and 6 months the outcome is
read while the group is still being decided, so it is not a comparison of treatments as decided; the
note says so). Unadjusted rows are never ``diagnostics_ok``.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd

from pipeline.models.pairs import AT_TROUGH_CONTRAST, RATIO_AGAINST, RELIANCE_CONTRAST, TARGET_TRIAL_CONTRAST, is_claim
from pipeline.settings import DesignSettings

ESTIMANDS = {
    "unadjusted": "crude",
    "ancova": "conditional",
    "mixed": "conditional",
    "mice": "conditional",
    "responder": "conditional",
    "ordinal": "conditional",
    "iptw": "ATE",
    "aipw": "ATE_overlap",
}
PRIMARY_METHOD = "ancova"
RELIANCE_PRIMARY = frozenset(RATIO_AGAINST.values())  # the drift-guarded fits on a ratio scale (issue 29)
INSIDE_WINDOW = "descriptive: the outcome is read inside the {days}-day window that decides the groups"
CRUDE = "descriptive: no adjustment for how the groups differ"


def exposure_window_days(con: duckdb.DuckDBPyConnection) -> int:
    """The build's exposure window (build_info.design_settings), the contract's default without one."""
    try:
        row = con.execute("SELECT design_settings FROM build_info").fetchone()
    except duckdb.Error:
        row = None
    if row and row[0]:
        return int(json.loads(row[0]).get("exposure_window_days", DesignSettings.exposure_window_days))
    return DesignSettings.exposure_window_days


def descriptive_timepoints(con: duckdb.DuckDBPyConnection) -> tuple[frozenset[str], int]:
    """Timepoints whose target falls inside the exposure window, and the window's length in days."""
    days = exposure_window_days(con)
    rows = con.execute("SELECT timepoint FROM design_timepoints WHERE target_days <= ?", [days]).fetchall()
    return frozenset(str(timepoint) for (timepoint,) in rows), days


def _role_and_estimand(method: str, contrast: str, timepoint: str, inside: frozenset[str]) -> tuple[str, str]:
    if contrast == TARGET_TRIAL_CONTRAST:  # surgery or more injections? (issue 31)
        return "sensitivity", "per_protocol"
    if contrast == AT_TROUGH_CONTRAST:  # the primary comparison, trough assessments only
        return "sensitivity", ESTIMANDS.get(method, "conditional")
    if contrast == RELIANCE_CONTRAST:
        return ("primary" if method in RELIANCE_PRIMARY else "sensitivity"), "within_patient"
    if is_claim(contrast):  # synergy
        return ("primary" if method == PRIMARY_METHOD else "sensitivity"), "interaction"
    estimand = ESTIMANDS.get(method, "conditional")
    if method == "unadjusted" or timepoint in inside:
        return "descriptive", estimand
    return ("primary" if method == PRIMARY_METHOD else "sensitivity"), estimand


def with_roles(estimates: pd.DataFrame, con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """``estimates`` with ``estimand`` and ``role``. Unadjusted rows are never ``diagnostics_ok`` (their note
    and the descriptive rows say why at the end of their note."""
    inside, days = descriptive_timepoints(con)
    pairs = [
        _role_and_estimand(str(m), str(c), str(t), inside)
        for m, c, t in zip(estimates["method"], estimates["contrast"], estimates["timepoint"], strict=True)
    ]
    frame = estimates.copy()
    frame["role"] = [role for role, _ in pairs]
    frame["estimand"] = [estimand for _, estimand in pairs]
    estimated = np.isfinite(frame["estimate"].to_numpy(dtype=float))
    crude = (frame["method"] == "unadjusted").to_numpy()
    early = (frame["timepoint"].isin(inside) & ~frame["contrast"].map(is_claim).astype(bool)).to_numpy()
    window = INSIDE_WINDOW.format(days=days)
    notes = list(frame["note"])
    for index, note in enumerate(notes):
        if not estimated[index] or not (crude[index] or early[index]):
            continue
        # The unadjusted note's own lead ('confounded: ...', which the report reads) stays first.
        parts = [note if isinstance(note, str) and note not in ("None", "nan") else ""]
        if crude[index]:
            parts.append(CRUDE)
        if early[index]:
            parts.append(window)
        notes[index] = "; ".join(part for part in parts if part)
    frame["note"] = notes
    frame.loc[crude, "diagnostics_ok"] = False
    return frame
