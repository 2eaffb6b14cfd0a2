"""Synthetic BoNT patients who face "surgery or more injections?" (issue 31), seeded and deterministic.

Every patient has botulinum toxin every 91-130 days from the index visit. A trough visit (before the
injection, 91+ days after the last) is scored at every session; patients not yet operated also come back
2-6 weeks after some injections (a peak visit, ``peak_visit_share``). The truth planted:

- facial function drifts per patient (``drift_sd`` composite points a year, some worse, some better), so
  the latest scores tell more than the baseline;
- from the second session on, the surgeon looks at the latest trough score and its change since the
  previous session: worse and falling scores make selective neurectomy or myectomy likelier (decided at the
  session, done 20-80 days later) - confounding that changes over time, which baseline adjustment misses;
- surgery adds ``surgery_effect`` composite points to every later assessment (SAQ moves with it through
  the same facial function q: composite = 115 q - 15, SAQ percent = (1 + 4 (1 - q)) x 9 / 45 x 100);
- an assessment 14-56 days after an injection (peak) gains ``peak_bonus`` points, one 91+ days after
  (trough) none; only patients on injections alone have peak visits, so an analysis that ignores the phase
  favours injections.

``surgery_tables`` gives the frames the target-trial emulation reads; ``generate_surgery_drop`` writes the
same data as a contract drop (``synk generate --surgery-decision EFFECT``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.contract import COLUMNS, SAQ_ITEMS
from pipeline.tools.synthetic import (
    TARGETS,
    SyntheticParameters,
    _assessments,
    _concat_items,
    _format_value,
    _instrument_items,
    _patients,
    _totals,
)
from pipeline.tools.synthetic_complications import ComplicationRate, complications

SURGERY = ("selective_neurectomy", "selective_myectomy")
PEAK_DAYS = (14, 56)  # an assessment this many days after an injection sees its peak effect


@dataclass(frozen=True)
class SurgeryParameters:
    surgery_effect: float = 8.0  # composite points surgery adds to every later assessment
    peak_bonus: float = 8.0  # composite points an assessment 14-56 days after an injection gains
    drift_sd: float = 8.0  # SD of each patient's drift in composite points a year
    decision_intercept: float = -2.6  # log-odds of deciding on surgery at a session, at a latest composite of 45
    decision_by_score: float = 1.0  # log-odds more per 10 points worse latest composite
    decision_by_fall: float = 0.8  # log-odds more per 10 points fallen since the previous session
    peak_visit_share: float = 0.5  # share of injections followed by a peak visit (patients not operated)


@dataclass
class SurgeryTables:
    patients: pd.DataFrame  # the contract's patients columns
    treatments: pd.DataFrame  # the contract's treatments columns (BoNT sessions and surgeries)
    scores: pd.DataFrame  # patient_id, visit_day, sunnybrook_composite, saq (every visit, every instrument)
    truth: dict[str, float]  # the per-protocol effect at 12 months, trough, on each outcome
    items: dict[str, dict[str, np.ndarray]]  # item values of every visit, in scores' row order


def _q(composite: np.ndarray) -> np.ndarray:
    return np.clip((composite + 15) / 115, 0.02, 0.98)


def _measured(items: dict[str, dict[str, np.ndarray]], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    composite = _totals("sunnybrook", items["sunnybrook"], rng)["composite"]
    saq = sum(items["saq"][i] for i in SAQ_ITEMS) / 45 * 100
    return composite, saq


def surgery_tables(
    patients: int, seed: int, params: SurgeryParameters | None = None, site: str = "site01"
) -> SurgeryTables:
    """The patients, their sessions and surgeries, every visit's scores, and the truth (see the module)."""
    p = params or SurgeryParameters()
    rng = np.random.default_rng(seed)
    frame = _patients(rng, patients, site, 2026)
    n = len(frame)
    severity = rng.normal(0, 1, n)
    base = 45 - 10 * severity
    drift = rng.normal(0, p.drift_sd, n)
    end = rng.integers(600, 1100, n)  # the export's cut, days after the index visit
    dose = rng.integers(15, 35, n).astype(float)
    age_z = (frame["age_at_onset"].to_numpy() - 45) / 15

    def latent(days: np.ndarray, who: np.ndarray) -> np.ndarray:
        return base[who] + drift[who] * days / 365

    visits: list[pd.DataFrame] = []
    item_parts: list[dict[str, dict[str, np.ndarray]]] = []
    sessions: list[tuple[int, int, float]] = []
    surgery_day = np.full(n, np.inf)
    day = np.zeros(n)
    previous = np.full(n, np.nan)
    last_injection = np.full(n, np.nan)
    session = 0
    active = np.ones(n, bool)
    while active.any():
        who = np.flatnonzero(active)
        t = day[who]
        since = t - last_injection[who]
        c = latent(t, who) + p.surgery_effect * (t >= surgery_day[who])
        items = _instrument_items(rng, _q(c))
        composite, _ = _measured(items, rng)
        visits.append(pd.DataFrame({"who": who, "visit_day": t.astype(int), "since": since}))
        item_parts.append(items)
        # The surgeon decides at the session from the trough score just taken and its change since the last.
        fall = np.nan_to_num(previous[who] - composite)
        logit = p.decision_intercept + p.decision_by_score * (45 - composite) / 10 + p.decision_by_fall * fall / 10
        logit += 0.2 * age_z[who]
        open_ = (session >= 1) & ~np.isfinite(surgery_day[who]) & (t + 90 <= end[who])
        decide = open_ & (rng.random(len(who)) < 1 / (1 + np.exp(-logit)))
        surgery_day[who[decide]] = t[decide] + rng.integers(20, 81, int(decide.sum()))
        units = dose[who] * (1, 1.3, 1.5)[min(session, 2)] + 3 * severity[who] + rng.normal(0, 2, len(who))
        for i, u in zip(who, units, strict=True):
            sessions.append((int(i), int(day[i]), float(min(300.0, max(round(u, 1), 5.0)))))
        # A peak visit 2-6 weeks after this injection, for patients on injections alone.
        peak = (rng.random(len(who)) < p.peak_visit_share) & ~np.isfinite(surgery_day[who])
        peak_day = t + rng.integers(14, 43, len(who))
        peak &= peak_day <= end[who]
        if peak.any():
            pw = who[peak]
            pt = peak_day[peak]
            pc = latent(pt, pw) + p.peak_bonus
            visits.append(pd.DataFrame({"who": pw, "visit_day": pt.astype(int), "since": pt - t[peak]}))
            item_parts.append(_instrument_items(rng, _q(pc)))
        previous[who] = composite
        last_injection[who] = t
        day[who] = t + rng.integers(91, 131, len(who))
        active &= day <= end
        session += 1
    visit_frame = pd.concat(visits, ignore_index=True)
    items = item_parts[0]
    for part in item_parts[1:]:
        items = _concat_items(items, part)
    composite, saq = _measured(items, rng)
    ids = frame["patient_id"].to_numpy()
    scores = pd.DataFrame(
        {
            "patient_id": ids[visit_frame["who"].to_numpy()],
            "visit_day": visit_frame["visit_day"].to_numpy(),
            "sunnybrook_composite": composite,
            "saq": np.round(saq, 1),
        }
    )
    treatments = _treatment_rows(rng, ids, sessions, surgery_day, end, site)
    truth = _truth(seed, p, base, drift, visit_frame)
    order = np.lexsort((scores["visit_day"].to_numpy(), scores["patient_id"].to_numpy()))
    scores = scores.iloc[order].reset_index(drop=True)
    items = {inst: {code: values[order] for code, values in codes.items()} for inst, codes in items.items()}
    return SurgeryTables(frame, treatments, scores, truth, items)


def _treatment_rows(
    rng: np.random.Generator,
    ids: np.ndarray,
    sessions: list[tuple[int, int, float]],
    surgery_day: np.ndarray,
    end: np.ndarray,
    site: str,
) -> pd.DataFrame:
    rows = [(ids[i], "botox", d, u, str(rng.choice(TARGETS["botox"]))) for i, d, u in sessions]
    for i in np.flatnonzero(np.isfinite(surgery_day) & (surgery_day <= end)):
        modality = SURGERY[int(rng.random() < 0.5)]
        rows.append((ids[i], modality, int(surgery_day[i]), np.nan, str(rng.choice(TARGETS[modality]))))
    frame = pd.DataFrame(rows, columns=["patient_id", "modality", "day", "botox_units", "target"])
    frame = frame.sort_values(["patient_id", "day", "modality"], kind="stable").reset_index(drop=True)
    frame["treatment_id"] = (
        frame["patient_id"].str.replace("P", "T", n=1)
        + "-"
        + (frame.groupby("patient_id").cumcount() + 1).map("{:02d}".format)
    )
    frame["site_id"] = site
    frame["pt_sessions"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    return frame[[c.name for c in COLUMNS["treatments"]]]


def _truth(
    seed: int, p: SurgeryParameters, base: np.ndarray, drift: np.ndarray, visits: pd.DataFrame
) -> dict[str, float]:
    """The per-protocol effect on the measured scores at a 12-month trough: trough visits 300-430 days into
    follow-up, scored with and without surgery's effect under common random numbers (floors and ceilings
    bend the latent scale a little)."""
    trough = visits[(visits["since"] >= 91) & (visits["visit_day"] >= 300)]
    who = trough["who"].to_numpy()
    c = base[who] + drift[who] * trough["visit_day"].to_numpy() / 365
    differences = {"sunnybrook_composite": [], "saq": []}
    for draw in range(10):
        measured = []
        for shift in (p.surgery_effect, 0.0):
            rng = np.random.default_rng([seed, 31, draw])
            measured.append(_measured(_instrument_items(rng, _q(c + shift)), rng))
        differences["sunnybrook_composite"].append(np.mean(measured[0][0] - measured[1][0]))
        differences["saq"].append(np.mean(measured[0][1] - measured[1][1]))
    return {k: float(np.mean(v)) for k, v in differences.items()}


def generate_surgery_drop(
    out: Path,
    patients: int,
    seed: int,
    params: SurgeryParameters | None = None,
    site: str = "site01",
    complication_rates: tuple[ComplicationRate, ...] = (),
) -> dict[str, int]:
    """Write the tables as a contract drop (patients, treatments, assessments, manifest.json) into ``out``;
    with ``complication_rates``, a complications file too (drawn as the main generator draws them)."""
    p = params or SurgeryParameters()
    tables = surgery_tables(patients, seed, p, site)
    rng = np.random.default_rng([seed, 32])
    visits = tables.scores[["patient_id", "visit_day"]]
    # The Sunnybrook the surgeon decided on is in the export at every visit, item by item; the other
    # instruments are taken as the main generator takes them.
    others = {k: v for k, v in tables.items.items() if k != "sunnybrook"}
    sunnybrook = pd.DataFrame(tables.items["sunnybrook"]).assign(
        patient_id=visits["patient_id"].to_numpy(), visit_day=visits["visit_day"].to_numpy()
    )
    sunnybrook = sunnybrook.melt(id_vars=["patient_id", "visit_day"], var_name="item", value_name="value")
    assessments = pd.concat(
        [_assessments(rng, visits, others, SyntheticParameters(), site), sunnybrook.assign(instrument="sunnybrook")]
    )
    assessments["site_id"] = site
    assessments = assessments.sort_values(["patient_id", "visit_day", "instrument", "item"], kind="stable")
    assessments = assessments[[c.name for c in COLUMNS["assessments"]]].reset_index(drop=True)
    assessments["value"] = _format_value(assessments["value"])
    treatments = tables.treatments.copy()
    treatments["botox_units"] = treatments["botox_units"].map(lambda v: "" if pd.isna(v) else f"{v:g}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {"patients": tables.patients, "treatments": treatments, "assessments": assessments}
    if complication_rates:
        written["complications"] = complications(treatments, complication_rates, seed)
    for name, frame in written.items():
        frame.to_csv(out / f"{name}.csv", index=False, lineterminator="\n")
    manifest = {
        "site_id": site,
        "exported_on": "2026-11-20",
        "snapshot": "full",
        "generator": {
            "seed": seed,
            "patients": patients,
            "surgery_decision": asdict(p),
            "true_effect_surgery_within_90d_vs_continue_bont": {k: round(v, 3) for k, v in tables.truth.items()},
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {name: len(frame) for name, frame in written.items()}
