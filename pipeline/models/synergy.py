"""Synergy (issue 19): do two add-on modalities together give more than the sum of each alone?

For add-ons A and B on a common background C (possibly none), the interaction
E[C+A+B] - E[C+A] - E[C+B] + E[C] of the mean change from baseline, adjusted as the ANCOVA is: among the
patients of those four combinations, OLS of change on indicators of A, B and A x B, the baseline value, the
baseline severity measures and the covariates (the ANCOVA's own design, ``adjustment_design``, with B and
A x B added), with the ANCOVA's robust errors (HC3, or cluster-robust by site). The A x B coefficient is
the estimate: positive (in the outcome's better direction) is synergy, zero additivity.

Estimated at the design's primary timepoint for every outcome and every pair whose four groups each have at
least ``min_group_size`` classifiable patients; an outcome where a group has fewer patients with a change
gets a row with no estimate and the reason. With no background (C empty) the fourth group is the untreated,
whom the population never holds, so such pairs are listed only where the data have them.

Overlap and balance over the four groups (issue 29), in the note of every estimate: a multinomial logistic
model of the group on the ANCOVA's main terms gives each patient's generalized propensity for each group,
and Walker's preference score generalised to four groups (each propensity over its group's share,
normalised); a patient is in equipoise where every group's preference is at least the two-group bound scaled
to four groups (0.3 x 2 / 4 = 0.15). No more than ``min_equipoise_share`` of the patients in equipoise, or a
model that does not converge (a covariate all but decides the group), fails: ``diagnostics_ok`` false, the
reason first. Balance: the largest |SMD| of a main term between any group and the other three, said (the
ANCOVA adjusts for it; the overlap is what it cannot mend).

Contrast names: ``synergy:A+B|C`` (``synergy:PT+SN|BTX``; ``synergy:PT+SN|`` for no background), method
``ancova``. Multiplicity: each pair is a family of its own (per method, contrast and timepoint, as every
contrast is), never shared with the comparative contrasts: the primary outcome first, then Holm over the
secondaries (``pipeline/models/multiplicity.py``).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from itertools import combinations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from pipeline.analysis_design import AnalysisDesign
from pipeline.contract import combination_sort_key
from pipeline.models import fit_record
from pipeline.models.design_matrix import Contrast, analysis_frames, full_rank_columns
from pipeline.models.estimators import (
    Estimate,
    adjustment_design,
    coefficient,
    failed,
    record_regression,
    robust_fit,
)
from pipeline.models.pairs import CODES, Pair, joined
from pipeline.models.propensity import standardized_differences
from pipeline.models.sensitivity import minimum_detectable_difference
from pipeline.settings import ModelSettings

METHOD = "ancova"


def four_group_overlap(design: pd.DataFrame, groups: pd.Series, settings: ModelSettings) -> tuple[bool, str]:
    """(ok, sentence): the four groups' common support and largest baseline difference. ``design``: the
    ANCOVA's design (its main terms are used), ``groups``: each patient's combination."""
    terms = [c for c in design.columns if c not in ("treated",) and not str(c).startswith("spline[")]
    x = design[terms]
    codes, labels = pd.factorize(groups.loc[design.index], sort=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = sm.MNLogit(codes, x.to_numpy(dtype=float)).fit(disp=0, maxiter=200)
        except (np.linalg.LinAlgError, ValueError) as error:
            return False, f"overlap fails over the four groups: the group model is singular ({error})"
    separated = any(issubclass(w.category, (ConvergenceWarning, PerfectSeparationWarning)) for w in caught)
    if separated or not fit.mle_retvals.get("converged", True):
        return (
            False,
            "overlap fails over the four groups: the group model does not converge (a covariate decides the group)",
        )
    propensity = np.asarray(fit.predict())
    # Walker's preference score for four groups: each group's propensity over its share, normalised to sum
    # to 1 (0.25 each where nothing about the patient favours any group); in equipoise where every group's
    # preference is at least the two-group lower bound scaled to four groups (0.3 x 2 / 4).
    shares = np.bincount(codes, minlength=len(labels)) / len(codes)
    preference = propensity / shares
    preference = preference / preference.sum(axis=1, keepdims=True)
    floor = settings.equipoise_bounds[0] * 2 / len(labels)
    inside = float((preference >= floor).all(axis=1).mean())
    main = [c for c in terms if c != "const"]
    worst = max(
        (
            float(standardized_differences(x[main], (codes == g).astype(float), None).abs().max())
            for g in range(len(labels))
        ),
        default=0.0,
    )
    facts = (
        f"{inside:.0%} of the four groups' patients in equipoise (every group's preference score {floor:.2f} "
        "or more), "
        f"max |SMD| {worst:.2f} of a group against the rest"
    )
    if inside <= settings.min_equipoise_share:
        return False, f"overlap fails over the four groups: {facts}, pass mark {settings.min_equipoise_share:.0%}"
    return True, f"overlap over the four groups: {facts}"


def synergy_pairs(population: pd.DataFrame, min_group_size: int) -> list[Pair]:
    """Every pair (A, B, C) whose four combinations each have at least ``min_group_size`` patients,
    in the order of the contract's codes."""
    counts = population.groupby("combination").size()
    pairs = set()
    for combination in counts.index:
        codes = str(combination).split("+")
        if len(codes) < 2:
            continue
        for a, b in combinations(sorted(codes, key=CODES.index), 2):
            pair = Pair(a, b, joined(set(codes) - {a, b}))
            if all(counts.get(group, 0) >= min_group_size for group in pair.groups):
                pairs.add(pair)
    return sorted(pairs, key=lambda p: (combination_sort_key(p.groups[3]), combination_sort_key(f"{p.a}+{p.b}")))


def interaction(frame: pd.DataFrame, pair: Pair, settings: ModelSettings) -> Estimate:
    """The A x B coefficient of the ANCOVA among the pair's four groups. ``frame``: one outcome at one
    timepoint, ``treated`` = 1 for the groups with A (C+A, C+A+B), ``combination``, ``change``."""
    _, _, with_b, both = pair.groups
    design, notes = adjustment_design(frame, settings)
    notes = list(notes)
    if design is None:
        return failed("; ".join(notes))
    a = design["treated"]
    b = frame.loc[design.index, "combination"].isin([with_b, both]).astype(float)
    widened = pd.concat(
        [
            design[["const"]],
            pd.DataFrame({"A": a, "B": b, "AxB": a * b}, index=design.index),
            design.drop(columns=["const", "treated"]),
        ],
        axis=1,
    )
    kept, dropped = full_rank_columns(widened, keep=4)
    if dropped:
        notes.append("collinear term(s) dropped: " + ", ".join(dropped))
    y = frame.loc[design.index, "change"].astype(float)
    try:
        fit = robust_fit(
            sm.OLS(y.to_numpy(), widened[kept].to_numpy(dtype=float)),
            frame.loc[design.index, "site_id"].astype(str),
            settings,
            notes,
        )
    except (np.linalg.LinAlgError, ValueError) as error:
        return failed("; ".join([*notes, f"fit failed: {error}"]))
    record_regression(
        "synergy", y.to_numpy(), widened[kept], frame.loc[design.index, "site_id"], settings, coefficient="AxB"
    )
    result = coefficient(fit, kept.index("AxB"), notes)
    ok, overlap = four_group_overlap(design, frame["combination"], settings)
    parts = (overlap, result.note) if not ok else (result.note, overlap)
    return replace(result, diagnostics_ok=result.diagnostics_ok and ok, note="; ".join(p for p in parts if p))


def _counts_words(pair: Pair, counts: dict[str, int]) -> str:
    labels = [group or "no treatment" for group in pair.groups]
    return ", ".join(f"{label} {counts[group]}" for label, group in zip(labels, pair.groups, strict=True))


def synergy_rows(
    population: pd.DataFrame, changes: pd.DataFrame, design: AnalysisDesign, settings: ModelSettings
) -> list[dict[str, object]]:
    """One row per pair and outcome at the primary timepoint, in ``model_estimates``' columns (without run_id
    and p_adjusted), with ``converged``."""
    rows: list[dict[str, object]] = []
    timepoint = design.primary_timepoint
    for pair in synergy_pairs(population, settings.min_group_size):
        base, with_a, with_b, both = pair.groups
        contrast = Contrast(pair.name, frozenset({with_a, both}), frozenset({base, with_b}), both, base or "none")
        frames = analysis_frames(population, changes, contrast)
        for outcome in design.outcomes:
            frame = frames.get((outcome, timepoint))
            if frame is None:
                continue
            counts = {group: int((frame["combination"] == group).sum()) for group in pair.groups}
            small = [group or "untreated" for group in pair.groups if counts[group] < settings.min_group_size]
            if small:
                result = failed(
                    f"not estimated: fewer than {settings.min_group_size} patients with a change in the "
                    + " and the ".join(small)
                    + " group"
                )
            else:
                with fit_record.labelled(contrast=pair.name, outcome=outcome, timepoint=timepoint):
                    result = interaction(frame, pair, settings)
                what = (
                    f"interaction: {both} - {with_a} - {with_b} + {base or 'untreated'} "
                    f"(adding {pair.a} and {pair.b} together beyond the sum of adding each"
                    f"{' on ' + base if base else ''}); patients {_counts_words(pair, counts)}"
                )
                result = replace(result, note="; ".join(filter(None, [what, result.note])))
            rows.append(
                {
                    "method": METHOD,
                    "outcome": outcome,
                    "timepoint": timepoint,
                    "contrast": pair.name,
                    **result.columns(),
                    "n_treated": counts[both],
                    "n_control": counts[base],
                    "higher_is_better": design.higher_is_better[outcome],
                    "e_value": float("nan"),
                    "e_value_ci": float("nan"),
                    "mdd": minimum_detectable_difference(result.std_error, settings.power),
                }
            )
    return rows
