"""How large a change must be to matter: the yardstick each outcome's difference is read against.

Published values (Bruins et al., Facial Plast Surg Aesthet Med 2021;23(2):75-80: Dutch adults with
long-standing facial palsy; test-retest over 2 weeks, n = 62; anchor-based minimal important change over
1 to 1.5 years, n = 88). Carried here, not read at run time, so that a report is a function of its
warehouse alone.

| instrument | SDC individual | SDC group | MIC improvement |
| FaCE total | 17.6           | 2.9       | 0.7             |
| SAQ total  | 28.2           | 4.6       | 2.8             |
| FDI physical |              |           | 4.4             |
| FDI social |                |           | 0.4             |

No minimal important change has been published for Sunnybrook, eFACE or House-Brackmann. For the
Sunnybrook composite there is reliability (inter-rater ICC 0.89 to 0.93, Neely et al., Laryngoscope 2010),
from which the individual smallest detectable change follows as 1.96 x sqrt(2) x SD x sqrt(1 - ICC), with the
data's own SD (here: the SD of baseline scores). We take the lower ICC, 0.89, so that a difference is not
called larger than measurement error too readily. Nothing comparable is published for eFACE: its
differences are reported without a yardstick, and the report says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIC = "minimal important change"
SDC = "smallest detectable change"
BRUINS_2021 = "Bruins et al. 2021"
NEELY_2010 = "ICC 0.89, Neely et al. 2010, with these data's SD"

# Outcome -> published minimal important change (improvement), outcome units.
PUBLISHED_MIC: dict[str, float] = {"face_total": 0.7, "saq": 2.8, "fdi_physical": 4.4, "fdi_social": 0.4}
# Outcome -> published individual smallest detectable change (the responder threshold where there is one).
PUBLISHED_SDC_INDIVIDUAL: dict[str, float] = {"face_total": 17.6, "saq": 28.2}
# Outcome -> inter-rater ICC, for an SDC computed from the data's SD where no MIC is published.
RELIABILITY_ICC: dict[str, float] = {"sunnybrook_composite": 0.89}


@dataclass(frozen=True)
class Yardstick:
    outcome: str
    kind: str  # MIC or SDC, "" when there is none
    value: float | None  # in the outcome's units, always positive
    source: str

    @property
    def words(self) -> str:
        if self.value is None:
            return "no yardstick published"
        short = "MIC" if self.kind == MIC else "SDC"
        return f"{short} {self.value:.1f} ({self.source})"


def sdc_from_icc(sd: float, icc: float) -> float:
    """The individual smallest detectable change: 1.96 x sqrt(2) x SD x sqrt(1 - ICC)."""
    return 1.96 * math.sqrt(2.0) * sd * math.sqrt(1.0 - icc)


def yardstick(outcome: str, baseline_sd: float | None = None) -> Yardstick:
    """The outcome's minimal important change where published, else its smallest detectable change where
    one can be had, else none. ``baseline_sd``: the data's SD of the outcome, for an SDC from reliability."""
    if outcome in PUBLISHED_MIC:
        return Yardstick(outcome, MIC, PUBLISHED_MIC[outcome], BRUINS_2021)
    if outcome in RELIABILITY_ICC and baseline_sd is not None and math.isfinite(baseline_sd) and baseline_sd > 0:
        return Yardstick(outcome, SDC, round(sdc_from_icc(baseline_sd, RELIABILITY_ICC[outcome]), 1), NEELY_2010)
    return Yardstick(outcome, "", None, "")


def responder_threshold(outcome: str, baseline_sd: float | None = None) -> Yardstick:
    """A patient's own change that counts as a response: beyond measurement error for that patient (the
    individual SDC, published or from reliability); else the MIC. None where neither exists."""
    if outcome in PUBLISHED_SDC_INDIVIDUAL:
        return Yardstick(outcome, SDC, PUBLISHED_SDC_INDIVIDUAL[outcome], BRUINS_2021)
    return yardstick(outcome, baseline_sd)
