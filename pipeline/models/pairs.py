"""The names of the claims' contrasts (issue 19): the synergy contrasts (``synergy:A+B|C``) with their four
groups, and reliance on BoNT after surgery (``after_vs_before_surgery``). Plain data, no fitting, so that
the report can read them (pipeline/report/ imports nothing that fits)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.contract import MODALITY_CODES
from pipeline.vocabulary import TARGET_TRIAL_CONTRAST

PREFIX = "synergy:"
RELIANCE_CONTRAST = "after_vs_before_surgery"
# BoNT after surgery: its outcomes, and the fits that answer it on ratio scales (issue 29), within the surgery
# patients and guarded against drift by the patients on BoNT alone (pipeline/models/reliance.py fits them).
INTERVAL, UNITS, HAZARD = "botox_interval_days", "botox_units_per_session", "time_to_next_botox"
RATIO_WITHIN = {INTERVAL: "aft", UNITS: "mixed_log", HAZARD: "phreg"}
RATIO_AGAINST = {INTERVAL: "aft_vs_bont_alone", UNITS: "mixed_log_vs_bont_alone", HAZARD: "phreg_vs_bont_alone"}
AT_TROUGH_CONTRAST = "combined_vs_single_at_trough"  # its sensitivity analysis: trough assessments only
CODES = tuple(MODALITY_CODES.values())


def joined(codes: set[str] | frozenset[str]) -> str:
    return "+".join(sorted(codes, key=CODES.index))


@dataclass(frozen=True)
class Pair:
    """Add-ons ``a`` and ``b`` (codes, in the contract's order) on ``background`` (codes joined by +, or '')."""

    a: str
    b: str
    background: str

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.a}+{self.b}|{self.background}"

    @property
    def groups(self) -> tuple[str, str, str, str]:
        """The four combinations: C, C+A, C+B, C+A+B ('' for C when there is no background)."""
        base = set(self.background.split("+")) - {""}
        return (
            joined(base),
            joined(base | {self.a}),
            joined(base | {self.b}),
            joined(base | {self.a, self.b}),
        )


def parse(contrast: str) -> Pair | None:
    """The pair of a ``synergy:A+B|C`` contrast name; None for any other contrast."""
    if not contrast.startswith(PREFIX) or "|" not in contrast:
        return None
    added, background = contrast[len(PREFIX) :].split("|", 1)
    a, _, b = added.partition("+")
    return Pair(a, b, background)


def is_claim(contrast: str) -> bool:
    """Whether a model_estimates contrast is one of the claims' (not a comparison of treatments)."""
    return contrast.startswith(PREFIX) or contrast in (RELIANCE_CONTRAST, TARGET_TRIAL_CONTRAST, AT_TROUGH_CONTRAST)
