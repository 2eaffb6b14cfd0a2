"""How large a change must be to matter: the yardstick each outcome's difference between groups is read against,
and, apart from it, the threshold of one patient's own change (the responder analysis only).

One rule for every outcome, fixed in the design (never recomputed from a quarter's data):

1. ``design.json``'s ``yardsticks`` (outcome -> points), where the department has fixed one;
2. else a published anchor-based minimal important change (MIC), where it is at least the group's own
   measurement error (the group smallest detectable change, SDC): a difference smaller than that cannot be told
   from noise, so a MIC below it is no yardstick;
3. else half the baseline SD of a fixed reference (the distribution-based convention of Norman, Sloan and
   Wyrwich, Med Care 2003), the SD written here with its source, never the quarter's own;
4. else none (House-Brackmann, a grade): the size of a difference is not judged.

Published values (Bruins et al., Facial Plast Surg Aesthet Med 2021;23(2):75-80: Dutch adults with
long-standing facial palsy; test-retest over 2 weeks, n = 62; anchor-based minimal important change over
1 to 1.5 years, n = 88). Carried here, not read at run time, so that a report is a function of its
warehouse alone.

| instrument | SDC individual | SDC group | MIC improvement |
| FaCE total | 17.6           | 2.9       | 0.7             |
| SAQ total  | 28.2           | 4.6       | 2.8             |
| FDI physical |              |           | 4.4             |
| FDI social |                |           | 0.4             |

FaCE's and SAQ's MICs are below their group SDCs; FDI's group SDC is not published, so its MICs cannot be shown
to clear measurement error: all four take rule 3. No MIC has been published for Sunnybrook or eFACE.

The reference SDs: the Sunnybrook composite's is the baseline SD of a published BoNT series (57.6 +- 20.9,
Ophthalmic Plast Reconstr Surg 2014); no baseline SD of the others is published in the sources this project
carries, so theirs are the classifiable patients' baseline SDs of the registry's reference cohort (the
demonstration cohort, ``synk generate --patients 400 --seed 2026``), fixed here once, until a department fixes
its own in ``design.json``. The report says which rule and which source each yardstick came from.

Responder thresholds (one patient's change beyond that patient's measurement error) are the individual SDC where
published, else one from reliability (Sunnybrook: inter-rater ICC 0.89, Neely et al., Laryngoscope 2010, with
the data's SD: 1.96 x sqrt(2) x SD x sqrt(1 - ICC)), else the MIC. They are never the between-group yardstick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIC = "minimal important change"
SDC = "smallest detectable change"
HALF_SD = "half the reference baseline SD"
DESIGN = "fixed in design.json"
BRUINS_2021 = "Bruins et al. 2021"
NEELY_2010 = "ICC 0.89, Neely et al. 2010, with these data's SD"
NORMAN_2003 = "Norman et al. 2003"
BONT_SERIES_2014 = "the baseline SD of a BoNT series, Ophthalmic Plast Reconstr Surg 2014"
REFERENCE_COHORT = "the baseline SD of the registry's reference cohort, 400 patients, seed 2026"

# Outcome -> published minimal important change (improvement), outcome units.
PUBLISHED_MIC: dict[str, float] = {"face_total": 0.7, "saq": 2.8, "fdi_physical": 4.4, "fdi_social": 0.4}
# Outcome -> published group smallest detectable change: the measurement error of a group mean.
PUBLISHED_SDC_GROUP: dict[str, float] = {"face_total": 2.9, "saq": 4.6}
# Outcome -> published individual smallest detectable change (the responder threshold where there is one).
PUBLISHED_SDC_INDIVIDUAL: dict[str, float] = {"face_total": 17.6, "saq": 28.2}
# Outcome -> inter-rater ICC, for an individual SDC computed from the data's SD where none is published.
RELIABILITY_ICC: dict[str, float] = {"sunnybrook_composite": 0.89}
# Outcome -> (reference baseline SD, its source), for the distribution-based yardstick.
REFERENCE_SD: dict[str, tuple[float, str]] = {
    "sunnybrook_composite": (20.9, BONT_SERIES_2014),
    "sunnybrook_voluntary": (11.8, REFERENCE_COHORT),
    "sunnybrook_resting": (5.2, REFERENCE_COHORT),
    "sunnybrook_synkinesis": (2.3, REFERENCE_COHORT),
    "eface_total": (11.3, REFERENCE_COHORT),
    "eface_static": (8.8, REFERENCE_COHORT),
    "eface_dynamic": (14.0, REFERENCE_COHORT),
    "eface_synkinesis": (10.2, REFERENCE_COHORT),
    "saq": (11.6, REFERENCE_COHORT),
    "face_total": (12.1, REFERENCE_COHORT),
    "fdi_physical": (11.0, REFERENCE_COHORT),
    "fdi_social": (11.9, REFERENCE_COHORT),
}


@dataclass(frozen=True)
class Yardstick:
    outcome: str
    kind: str  # MIC, HALF_SD, DESIGN or SDC (a responder threshold); "" when there is none
    value: float | None  # in the outcome's units, always positive
    source: str

    @property
    def words(self) -> str:
        if self.value is None:
            return "none (the size of a difference is not judged)"
        short = {MIC: "MIC", SDC: "SDC", HALF_SD: "half SD", DESIGN: "design"}.get(self.kind, self.kind)
        return f"{short} {self.value:.1f} ({self.source})"


def sdc_from_icc(sd: float, icc: float) -> float:
    """The individual smallest detectable change: 1.96 x sqrt(2) x SD x sqrt(1 - ICC)."""
    return 1.96 * math.sqrt(2.0) * sd * math.sqrt(1.0 - icc)


def yardstick(outcome: str, fixed: float | None = None) -> Yardstick:
    """The yardstick of a difference between groups on ``outcome`` (the module's rule); ``fixed``: the value
    ``design.json`` fixes for it, if any."""
    if fixed is not None:
        return Yardstick(outcome, DESIGN, float(fixed), "the department's design")
    mic, error = PUBLISHED_MIC.get(outcome), PUBLISHED_SDC_GROUP.get(outcome)
    if mic is not None and error is not None and mic >= error:
        return Yardstick(outcome, MIC, mic, f"anchor-based, {BRUINS_2021}")
    if outcome in REFERENCE_SD:
        sd, source = REFERENCE_SD[outcome]
        why = ""
        if mic is not None:
            why = (
                f"; the published MIC {mic:g} is below the group's measurement error {error:g}"
                if error is not None
                else f"; the published MIC {mic:g} cannot be shown to clear the group's measurement error"
            )
        return Yardstick(outcome, HALF_SD, round(sd / 2, 1), f"{NORMAN_2003}; half of {sd:g}, {source}{why}")
    return Yardstick(outcome, "", None, "")


def responder_threshold(outcome: str, baseline_sd: float | None = None) -> Yardstick:
    """A patient's own change that counts as a response: beyond measurement error for that patient (the
    individual SDC, published or from reliability with ``baseline_sd``, the data's SD); else the MIC. None where
    neither exists."""
    if outcome in PUBLISHED_SDC_INDIVIDUAL:
        return Yardstick(outcome, SDC, PUBLISHED_SDC_INDIVIDUAL[outcome], BRUINS_2021)
    if outcome in RELIABILITY_ICC and baseline_sd is not None and math.isfinite(baseline_sd) and baseline_sd > 0:
        return Yardstick(outcome, SDC, round(sdc_from_icc(baseline_sd, RELIABILITY_ICC[outcome]), 1), NEELY_2010)
    if outcome in PUBLISHED_MIC:
        return Yardstick(outcome, MIC, PUBLISHED_MIC[outcome], BRUINS_2021)
    return Yardstick(outcome, "", None, "")
