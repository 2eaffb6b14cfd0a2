"""Multiplicity: the adjusted p-values of ``model_estimates.p_adjusted``.

A family is one method, contrast and timepoint (the contract's "per method and contrast, at each
timepoint": each timepoint answers its own question, the design's primary timepoint the confirmatory
one, and the methods are alternative analyses of one question, not further tests of it). Within a family,
a serial gatekeeping procedure, whose adjusted p-values are read against 0.05 like any other:

1. the design's primary outcome is tested first, alone, at the full level: its p as it is;
2. the secondary outcomes (every other outcome that is not a subscore of a composite) by Holm among
   themselves, each adjusted p at least the primary's (a secondary claim only once the primary holds);
3. the subscores of a composite (Sunnybrook voluntary, resting and synkinesis under the composite;
   the eFACE scores under its total) by Holm among themselves, at least their composite's adjusted p:
   a composite and its own parts are one finding, not several, so they share no family.

Rows without a p-value, or from a fit that did not converge, are outside every family (their
p_adjusted is missing and they count in no one's Holm). Where the gate itself has no p-value (the
primary outcome, or a subscore's composite, not estimated or not converged) there is no confirmatory
test of what it guards: those p_adjusted are missing too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.models import fit_record
from pipeline.models.estimators import holm


def _gated(p_values: pd.Series, gate: float) -> pd.Series:
    """Holm within ``p_values``, then no smaller than the gate's adjusted p (missing gate: missing)."""
    if not np.isfinite(gate):
        return pd.Series(np.nan, index=p_values.index, dtype=float)
    return np.maximum(holm(p_values), gate)


def family_adjusted(p_values: pd.Series, primary: str, parents: dict[str, str]) -> pd.Series:
    """One family: ``p_values`` by outcome (eligible rows only); ``parents``: subscore -> composite."""
    adjusted = pd.Series(np.nan, index=p_values.index, dtype=float)
    gate = float(p_values.get(primary, np.nan))
    if primary in adjusted.index:
        adjusted[primary] = gate
    parent_of = {o: parents[o] for o in p_values.index if o in parents and o != primary}
    secondaries = [o for o in p_values.index if o != primary and o not in parent_of]
    if secondaries:
        adjusted[secondaries] = _gated(p_values[secondaries], gate)
    for composite in dict.fromkeys(parent_of.values()):
        subscores = [o for o, parent in parent_of.items() if parent == composite]
        composite_gate = float(adjusted.get(composite, np.nan))
        adjusted[subscores] = _gated(p_values[subscores], composite_gate)
    return adjusted


def adjusted_p_values(estimates: pd.DataFrame, eligible: pd.Series, primary: str, parents: dict[str, str]) -> pd.Series:
    """``estimates``: method, contrast, timepoint, outcome, p_value; ``eligible``: rows in a family
    (fitted and converged). Returns p_adjusted aligned with ``estimates``."""
    result = pd.Series(np.nan, index=estimates.index, dtype=float)
    members = estimates[eligible.astype(bool) & estimates["p_value"].notna()]
    for _, family in members.groupby(["method", "contrast", "timepoint"], sort=False):
        by_outcome = family.set_index("outcome")["p_value"].astype(float)
        adjusted = family_adjusted(by_outcome, primary, parents)
        result[family.index] = adjusted.reindex(family["outcome"]).to_numpy()
    if fit_record.on():
        fit_record.record(
            "multiplicity",
            estimates[["method", "contrast", "timepoint", "outcome", "p_value"]].assign(eligible=eligible.astype(bool)),
            key={"contrast": "all", "outcome": "all", "timepoint": "all"},
            family="method, contrast, timepoint; primary alone, then Holm over secondaries, subscores under composite",
            primary=primary,
            parents=parents,
        )
    return result
