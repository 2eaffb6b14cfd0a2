"""Synthetic complications (contract 1.2) with known rates, for ``synk generate`` and the tests.

A patient who had a modality has each complication set for it with its rate, once, after their first
treatment of that modality (the event names that treatment); a share of events resolve, after a
number of days whose median is set. The rate is per patient at risk, as ``complication_rates``
counts it under the modality, so the warehouse's rates recover these. Drawn with a generator of
their own: adding complications changes nothing else of a drop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.contract import COLUMNS, SURGICAL_MODALITIES


@dataclass(frozen=True)
class ComplicationRate:
    modality: str  # contract modality (selective_neurectomy, ...)
    code: str  # contract complication code
    rate: float  # share of the patients who had the modality
    resolved_share: float = 0.7  # share of events that resolve
    median_days_to_resolution: int = 60


# The demo's truth: what surgeons quote, roughly (eye closure after neurectomy, lip after myectomy,
# ptosis after BoNT).
DEMO_COMPLICATIONS = (
    ComplicationRate("selective_neurectomy", "incomplete_eye_closure", 0.12, 0.8, 90),
    ComplicationRate("selective_myectomy", "oral_incompetence", 0.2, 0.75, 60),
    ComplicationRate("selective_myectomy", "lower_lip_weakness", 0.15, 0.6, 120),
    ComplicationRate("selective_myectomy", "haematoma", 0.03, 1.0, 14),
    ComplicationRate("botox", "eyelid_ptosis", 0.05, 1.0, 30),
    ComplicationRate("botox", "brow_ptosis", 0.04, 1.0, 45),
)


def complications(treatments: pd.DataFrame, rates: tuple[ComplicationRate, ...], seed: int) -> pd.DataFrame:
    """The complications of these treatments (the contract's treatments frame) drawn at ``rates``."""
    rng = np.random.default_rng([seed, 1219])
    first = (
        treatments.assign(day_n=pd.to_numeric(treatments["day"]))
        .sort_values(["patient_id", "day_n", "treatment_id"], kind="stable")
        .drop_duplicates(["patient_id", "modality"])
    )
    rows = []
    for rate in rates:
        at_risk = first[first["modality"] == rate.modality]
        hit = at_risk[rng.random(len(at_risk)) < rate.rate]
        n = len(hit)
        day = hit["day_n"].to_numpy().astype(int) + rng.integers(1, 15, n)
        surgical = rate.modality in SURGICAL_MODALITIES
        grade = rng.choice(["1", "2", "3"], n, p=[0.6, 0.3, 0.1]) if surgical else np.full(n, "")
        resolved = rng.random(n) < rate.resolved_share
        spread = np.round(rng.lognormal(np.log(rate.median_days_to_resolution), 0.4, n)).astype(int)
        resolved_day = np.where(resolved, (day + np.maximum(spread, 1)).astype(str), "")
        rows.append(
            pd.DataFrame(
                {
                    "patient_id": hit["patient_id"].to_numpy(),
                    "site_id": hit["site_id"].to_numpy(),
                    "treatment_id": hit["treatment_id"].to_numpy(),
                    "day": day,
                    "code": rate.code,
                    "grade": grade,
                    "resolved_day": resolved_day,
                }
            )
        )
    names = [c.name for c in COLUMNS["complications"]]
    if not rows:
        return pd.DataFrame(columns=names)
    frame = pd.concat(rows, ignore_index=True).sort_values(["patient_id", "day", "code"], kind="stable")
    frame = frame.reset_index(drop=True)
    # Numbered per patient: a REDCap project's cx_id is a number, and the two exports of the same data agree.
    frame["complication_id"] = (frame.groupby("patient_id").cumcount() + 1).astype(str)
    return frame[names]


def as_redcap_instances(complications: pd.DataFrame, treatments: pd.DataFrame) -> pd.DataFrame:
    """The complications as a REDCap export holds them: the treatment named by its repeat instance (the
    treatments numbered per record in the order given, as ``flat_export`` numbers them)."""
    instance = treatments.groupby("patient_id").cumcount() + 1
    number = dict(zip(treatments["patient_id"] + "/" + treatments["treatment_id"], instance.astype(str), strict=True))
    out = complications.copy()
    out["treatment_id"] = (out["patient_id"] + "/" + out["treatment_id"]).map(number)
    return out
