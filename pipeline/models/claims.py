"""What surgeons claim, tested (issue 19): the synergy rows (:mod:`pipeline.models.synergy`) and the rows of
reliance on BoNT after surgery (:mod:`pipeline.models.reliance`), as ``model_estimates`` rows of the run.

Multiplicity: neither shares a family with the comparative contrasts. Each synergy pair is a family of its
own, as every contrast is (per method, contrast and timepoint: the primary outcome first, then Holm over the
secondaries, subscores under their composite). The reliance rows' families are ``reliance.FAMILY``'s (the
three answers against BoNT alone, ``aft_vs_bont_alone``, ``mixed_log_vs_bont_alone`` and
``phreg_vs_bont_alone``, are one; the within-patient ones another; the raw-scale sensitivity rows of each
kind two more), Holm among themselves: none of them is the design's primary outcome.
The target trial "surgery or more injections?" (:mod:`pipeline.models.target_trial`, issue 31) adds its two
``ccw`` rows (Sunnybrook composite, SAQ), a family of their own, Holm between them, and the primary comparison
restricted to trough assessments (contrast ``combined_vs_single_at_trough``, a sensitivity analysis, alone).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.models import fit_record
from pipeline.models.estimators import holm
from pipeline.models.multiplicity import adjusted_p_values
from pipeline.models.reliance import CONTRAST, FAMILY, reliance_rows
from pipeline.models.synergy import synergy_rows
from pipeline.models.target_trial import AT_TROUGH_CONTRAST as AT_TROUGH
from pipeline.models.target_trial import CONTRAST as TARGET_TRIAL
from pipeline.models.target_trial import TABLES as TRIAL_TABLES
from pipeline.models.target_trial import at_trough_row, target_trial_rows
from pipeline.settings import ModelSettings


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?",
            [name],
        ).fetchall()[0][0]  # fetchall: a fetchone would leave the result open on the caller's connection
    )


def claim_rows(
    con: duckdb.DuckDBPyConnection,
    population: pd.DataFrame,
    changes: pd.DataFrame,
    design: AnalysisDesign,
    settings: ModelSettings,
    warnings: list[str],
    emulation: list[pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The synergy, reliance and target-trial rows with ``p_adjusted`` (without run_id); empty where there is
    nothing to fit. A warehouse without ``botox_intervals`` (one built before it existed) gets no reliance rows.
    ``emulation`` receives the target trial's summary (per outcome, trial and arm)."""
    rows = synergy_rows(population, changes, design, settings)
    if _has_table(con, "botox_intervals"):
        rows += reliance_rows(con, settings)
    if all(_has_table(con, t) for t in TRIAL_TABLES):
        trial_rows, summary = target_trial_rows(con, settings)
        rows += trial_rows
        primary = (design.primary_outcome, design.primary_timepoint)
        rows.append(at_trough_row(con, population, changes, primary, settings))
        if emulation is not None:
            emulation.append(summary)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    converged = frame["converged"].astype(bool)
    for r in frame[~frame["diagnostics_ok"].astype(bool)].itertuples():
        warnings.append(f"{r.contrast}, {r.outcome} at {r.timepoint}, {r.method}: {r.note}.")
    frame["p_adjusted"] = np.nan
    synergy = ~frame["contrast"].isin([CONTRAST, TARGET_TRIAL, AT_TROUGH])
    trial = frame["contrast"].isin([TARGET_TRIAL, AT_TROUGH])
    for contrast in (TARGET_TRIAL, AT_TROUGH):  # each a family of its own
        family = (frame["contrast"] == contrast) & converged
        if family.any():
            frame.loc[family, "p_adjusted"] = holm(frame.loc[family, "p_value"]).to_numpy()
            if fit_record.on():
                fit_record.record(
                    "multiplicity_holm",
                    frame.loc[family, ["method", "contrast", "timepoint", "outcome", "p_value"]],
                    key={"contrast": contrast, "outcome": "all", "timepoint": "all"},
                    family="the target trial's outcomes (or the trough comparison alone): Holm among themselves",
                )
    if synergy.any():
        part = frame[synergy]
        frame.loc[synergy, "p_adjusted"] = adjusted_p_values(
            part, converged[synergy], design.primary_outcome, design.composite_of
        ).to_numpy()
    reliance = ~synergy & ~trial & converged
    for name in dict.fromkeys(FAMILY.values()):
        family = reliance & frame["method"].map(FAMILY).eq(name)
        if family.any():
            frame.loc[family, "p_adjusted"] = holm(frame.loc[family, "p_value"]).to_numpy()
            if fit_record.on():
                fit_record.record(
                    "multiplicity_holm",
                    frame.loc[family, ["method", "contrast", "timepoint", "outcome", "p_value"]],
                    key={"contrast": CONTRAST, "outcome": "all", "timepoint": "all"},
                    family=f"the reliance rows of one kind of fit ({name}): Holm among themselves",
                )
    return frame


def with_claims(estimates: pd.DataFrame, claims: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """The run's estimates with the claims' rows after them, in the estimates' columns and types."""
    if claims.empty:
        return estimates
    extra = claims.assign(run_id=run_id).reindex(columns=estimates.columns)
    extra = extra.astype(dict(estimates.dtypes.items()))
    return pd.concat([estimates, extra], ignore_index=True)
