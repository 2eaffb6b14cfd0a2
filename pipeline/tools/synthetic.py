"""Synthetic, de-identified clinic exports (contract v1.2), seeded and deterministic.

The data follow the domain's published figures closely enough to exercise every stage, and they
carry a known truth for the models to recover:

- a latent severity per patient drives every instrument coherently (Sunnybrook, eFACE, SAQ,
  FaCE, FDI, House-Brackmann) through one "facial function" score ``q`` in [0, 1];
- treatment choice is confounded by indication: worse baseline severity makes combined
  treatment likelier (scaled by ``confounding``), and a worse baseline also improves more
  (more room to improve), so the naive difference in change is biased upwards;
- combined treatment adds ``combined_effect`` Sunnybrook-composite points to the 12-month
  change. Every other outcome moves through the same ``q`` (composite = 115 q - 15), so the
  effect on it is the same shift of ``q``, ``combined_effect / 115``, in its own units and
  direction (e.g. SAQ falls about ``combined_effect / 115 x 80`` percent points);
- synergy (issue 19): BTX+PT+SN gets the sum of adding PT and adding SN to BTX (each
  ``combined_effect``) plus ``synergy_pt_sn_on_btx``, so the interaction
  E[BTX+PT+SN] - E[BTX+PT] - E[BTX+SN] + E[BTX] is that parameter (every other triple is
  simply combined: its interaction is ``-combined_effect``);
- BoNT after surgery (issue 19): injections about every 90 days (fewer for a worse baseline,
  ``interval_by_severity`` days per SD, and larger doses, ``units_by_severity``), titrated up
  over the first sessions; every gap that starts on or after a selective neurectomy or myectomy
  is ``surgery_interval_days`` longer, and every session on or after it gets
  ``surgery_dose_factor`` times the units. Surgery is chosen by indication (worse baselines are
  likelier combined), so only a within-patient comparison recovers these.
- complications (contract 1.2, optional) at known rates per modality: ``synthetic_complications.py``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.contract import (
    COLUMNS,
    EFACE_DYNAMIC,
    EFACE_STATIC,
    EFACE_SYNKINESIS,
    FACE_SCORES,
    FDI_SCORES,
    SAQ_ITEMS,
    SUNNYBROOK_SYNKINESIS,
    SUNNYBROOK_VOLUNTARY,
)
from pipeline.sources.redcap import DICTIONARY, RECORDS, flat_export
from pipeline.sources.redcap_dictionary import dictionary_csv
from pipeline.tools.synthetic_complications import ComplicationRate, as_redcap_instances, complications


@dataclass(frozen=True)
class SyntheticParameters:
    combined_effect: float = 8.0  # true 12-month composite change, combined minus single, in points
    confounding: float = 1.0  # how strongly baseline severity drives choosing combined treatment (0: random)
    # Log-odds of choosing combined treatment at an average baseline and age: a site whose clinicians combine
    # more or less often (issue 29's three sites differ in both this and combined_effect).
    combined_log_odds: float = -0.2
    room_to_improve: float = 0.3  # extra 12-month change per composite point below 60 at baseline
    single_gain: float = 6.0  # mean 12-month composite change on a single modality (at a baseline of 60)
    change_sd: float = 6.0  # patient-level noise of the 12-month change
    loss_to_followup: float = 0.15  # share whose follow-up stops early (some before the 180-day landmark)
    off_window_share: float = 0.1  # share of follow-up visits placed outside their window
    item_level_share: float = 0.8  # share of instrument-visits given item by item (the rest as totals)
    items_and_totals_share: float = 0.15  # of item-level ones, the share that also carry recorded totals
    prior_treatment_share: float = 0.1  # share with a treatment before the index visit
    late_modality_share: float = 0.08  # share given a further modality after the exposure window
    # Missing at random given baseline: the log-odds of missing the 12-month visit rise by this much
    # per SD of worse observed baseline (0: no such dropout).
    dropout_by_severity: float = 0.0
    # Further follow-up visits, as (target, low, high) days from t0, beyond the contract's three (e.g. a
    # 24-month visit, for a design with a 24-month timepoint).
    late_visits: tuple[tuple[int, int, int], ...] = ()
    # Issue 19: the interaction of adding PT and SN on BTX (composite points at 12 months, beyond additive).
    # None by default: every combination then gets the same effect, which the comparative tests' truth assumes
    # (`synk generate --synergy 3` for the demo).
    synergy_pt_sn_on_btx: float = 0.0
    surgery_interval_days: float = 45.0  # days added to every gap between injections starting after surgery
    surgery_dose_factor: float = 0.75  # units per session after surgery, as a share of those before
    interval_by_severity: float = 8.0  # days fewer between injections per SD of worse baseline
    interval_spread: float = 2.5  # widens the +-15-day spread of the gaps between injections (1: as drawn)
    units_by_severity: float = 3.0  # units more per session per SD of worse baseline
    # Shares of the combinations among the combined (COMBINED's order) and the single (SINGLE's); None: the
    # defaults (COMBINED_P, SINGLE_P). E.g. a study of the PT+SN synergy makes its four groups common.
    combined_mix: tuple[float, ...] | None = None
    single_mix: tuple[float, ...] | None = None
    # Complications (contract 1.2) with known rates per modality (synthetic_complications.DEMO_COMPLICATIONS,
    # `synk generate --complications`); none: the drop has no complications file, as before 1.2.
    complications: tuple[ComplicationRate, ...] = ()


COMBINED = ("BTX+PT", "BTX+MY", "BTX+PT+MY", "BTX+PT+SN", "BTX+SN")
COMBINED_P = (0.55, 0.15, 0.13, 0.12, 0.05)
SINGLE = ("BTX", "PT", "SN", "OS")
SINGLE_P = (0.6, 0.35, 0.03, 0.02)
CODES = {
    "BTX": "botox",
    "PT": "physical_therapy",
    "SN": "selective_neurectomy",
    "MY": "selective_myectomy",
    "OS": "other_surgery",
}
TARGETS = {
    "botox": ("orbicularis_oculi", "platysma", "depressor_anguli_oris", "mentalis", "buccinator"),
    "physical_therapy": ("", "neuromuscular_retraining", "biofeedback"),
    "selective_neurectomy": ("buccal_branch", "cervical_branch"),
    "selective_myectomy": ("depressor_anguli_oris", "mentalis", "platysma"),
    "other_surgery": ("", "eyelid"),
}
ETIOLOGIES = ("bell", "ramsay_hunt", "tumor", "iatrogenic", "trauma", "infection", "other", "unknown")
ETIOLOGY_P = (0.55, 0.12, 0.1, 0.08, 0.07, 0.03, 0.03, 0.02)
# How often each instrument is taken at a visit.
INSTRUMENT_P = {"sunnybrook": 0.97, "saq": 0.9, "eface": 0.6, "face": 0.35, "fdi": 0.3, "house_brackmann": 0.4}


def _patients(rng: np.random.Generator, n: int, site: str, exported_year: int) -> pd.DataFrame:
    age = np.clip(np.round(rng.normal(45, 15, n)), 5, 95).astype(int)
    age = np.where(age > 89, 90, age)  # HIPAA top code
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:06d}" for i in range(1, n + 1)],
            "site_id": site,
            "sex": rng.choice(["F", "M", "X", "U"], n, p=[0.6, 0.38, 0.01, 0.01]),
            "age_at_onset": age,
            "side": rng.choice(["L", "R", "B"], n, p=[0.49, 0.49, 0.02]),
            "etiology": rng.choice(ETIOLOGIES, n, p=ETIOLOGY_P),
            "index_year": rng.integers(max(2015, exported_year - 10), exported_year + 1, n),
            "onset_to_index_days": np.clip(np.round(rng.lognormal(np.log(400), 0.7, n)), 30, 36500).astype(int),
        }
    )


def _cohort(rng: np.random.Generator, patients: pd.DataFrame, params: SyntheticParameters) -> pd.DataFrame:
    """Severity, index treatment day and follow-up per patient, before any treatment is chosen."""
    n = len(patients)
    severity = rng.normal(0, 1, n)  # higher is worse
    lost = rng.random(n) < params.loss_to_followup
    return pd.DataFrame(
        {
            "patient_id": patients["patient_id"],
            "baseline": np.clip(55 - 15 * severity + rng.normal(0, 4, n), -10, 95),  # true composite at t0
            "t0": np.where(rng.random(n) < 0.7, 0, rng.integers(1, 31, n)),
            "followup_end": np.where(lost, rng.integers(40, 400, n), rng.integers(420, 900, n)),
            "prior": rng.random(n) < params.prior_treatment_share,
            "late": rng.random(n) < params.late_modality_share,
        }
    )


def _choose_treatment(
    rng: np.random.Generator,
    cohort: pd.DataFrame,
    patients: pd.DataFrame,
    observed_baseline: np.ndarray,
    params: SyntheticParameters,
) -> pd.DataFrame:
    """Confounding by indication: clinicians see the baseline score, and a worse one makes combined likelier.

    The choice depends on the observed baseline composite (what the clinic measured) and age; the
    12-month change depends on the true baseline (room to improve) and on the treatment group.
    """
    n = len(cohort)
    severity_seen = (55 - observed_baseline) / 15
    age_z = (patients["age_at_onset"].to_numpy() - 45) / 15
    logit = params.combined_log_odds + params.confounding * (0.9 * severity_seen + 0.2 * age_z)
    combined = rng.random(n) < 1 / (1 + np.exp(-logit))
    cohort = cohort.copy()
    cohort["combined"] = combined
    cohort["combination"] = np.where(
        combined,
        rng.choice(COMBINED, n, p=params.combined_mix or COMBINED_P),
        rng.choice(SINGLE, n, p=params.single_mix or SINGLE_P),
    )
    # Each patient's own treatment effect: combined_effect for a combination, and for BTX+PT+SN the
    # sum of adding PT and adding SN to BTX plus the synergy (issue 19).
    synergic = cohort["combination"].to_numpy() == "BTX+PT+SN"
    cohort["effect"] = params.combined_effect * combined + np.where(
        synergic, params.combined_effect + params.synergy_pt_sn_on_btx, 0.0
    )
    cohort["change_12m"] = (
        params.single_gain
        + params.room_to_improve * (60 - cohort["baseline"].to_numpy())
        + cohort["effect"].to_numpy()
        + rng.normal(0, params.change_sd, n)
    )
    return cohort


SURGERY = ("selective_neurectomy", "selective_myectomy")


def _botox_sessions(
    draws: list[tuple[float, str, int]],
    dose: float,
    start: int,
    end: int,
    surgery: int | None,
    severity: float,
    params: SyntheticParameters,
) -> list[tuple[int, float, str]]:
    """(day, units, target) of each session from ``start`` to ``end``: the random draws of the sessions (unit
    noise, target, gap noise) made as if there were no surgery, so the random stream is the same whatever the
    parameters; gaps starting on or after ``surgery`` are longer, and sessions on or after it smaller."""
    sessions = []
    day, session = start, 0
    while day <= end:
        noise, target, gap_noise = draws[session] if session < len(draws) else (0.0, draws[-1][1], 0)
        after = surgery is not None and day >= surgery
        # Doses are titrated up over the first sessions, then settle.
        units = dose * (1, 1.3, 1.5)[min(session, 2)] + noise + params.units_by_severity * severity
        units *= params.surgery_dose_factor if after else 1.0
        sessions.append((day, min(300.0, max(round(units, 1), 5.0)), target))
        gap = 90 - params.interval_by_severity * severity + params.interval_spread * gap_noise
        day += max(round(gap + (params.surgery_interval_days if after else 0.0)), 30)
        session += 1
    return sessions


def _treatments(
    rng: np.random.Generator, cohort: pd.DataFrame, site: str, params: SyntheticParameters | None = None
) -> pd.DataFrame:
    params = params or SyntheticParameters()
    events: list[tuple[str, str, int, str, float | None, int | None, str]] = []
    for row in cohort.itertuples(index=False):
        end = int(row.t0 + row.followup_end)
        first_event = len(events)
        botox: list[tuple[list[tuple[float, str, int]], float, int]] = []
        modalities = [CODES[c] for c in row.combination.split("+")]
        if row.late:
            extra = [m for m in ("physical_therapy", "botox") if m not in modalities]
            if extra:
                modalities.append(extra[0] + "@late")
        for position, modality in enumerate(modalities):
            late = modality.endswith("@late")
            modality = modality.removesuffix("@late")
            start = int(row.t0) if position == 0 else int(row.t0 + rng.integers(0, 151))
            if late:
                start = int(row.t0 + rng.integers(200, 320))
            if start > end:
                continue
            if modality == "botox":
                dose = float(rng.integers(15, 35))
                day, draws = start, []
                while day <= end:
                    draws.append((float(rng.normal(0, 2)), str(rng.choice(TARGETS[modality])), 0))
                    gap = int(rng.integers(-15, 16))
                    draws[-1] = (*draws[-1][:2], gap)
                    day += 90 + gap
                botox.append((draws, dose, start))
            elif modality == "physical_therapy":
                courses = 1 + int(rng.random() < 0.3)
                for course in range(courses):
                    day = start + course * int(rng.integers(150, 220))
                    if day <= end:
                        events.append(
                            (
                                row.patient_id,
                                modality,
                                day,
                                "",
                                None,
                                int(rng.integers(8, 21)),
                                rng.choice(TARGETS[modality]),
                            )
                        )
            else:
                events.append((row.patient_id, modality, start, "", None, None, rng.choice(TARGETS[modality])))
        surgery_days = [e[2] for e in events[first_event:] if e[1] in SURGERY]
        surgery = min(surgery_days) if surgery_days else None
        severity = (55 - float(row.baseline)) / 15
        for draws, dose, start in botox:
            for day, units, target in _botox_sessions(draws, dose, start, end, surgery, severity, params):
                events.append((row.patient_id, "botox", day, "", units, None, target))
        if row.prior:
            events.append(
                (
                    row.patient_id,
                    "botox",
                    -int(rng.integers(30, 366)),
                    "",
                    float(rng.integers(15, 35)),
                    None,
                    "orbicularis_oculi",
                )
            )
    frame = pd.DataFrame(
        events, columns=["patient_id", "modality", "day", "treatment_id", "botox_units", "pt_sessions", "target"]
    )
    frame = frame.sort_values(["patient_id", "day", "modality"], kind="stable").reset_index(drop=True)
    frame["treatment_id"] = (
        frame["patient_id"].str.replace("P", "T", n=1)
        + "-"
        + (frame.groupby("patient_id").cumcount() + 1).map("{:02d}".format)
    )
    frame["site_id"] = site
    frame["pt_sessions"] = frame["pt_sessions"].astype("Int64")
    return frame[[c.name for c in COLUMNS["treatments"]]]


def _visits(rng: np.random.Generator, cohort: pd.DataFrame, params: SyntheticParameters) -> pd.DataFrame:
    """The index visit (baseline), then visits near 3, 6 and 12 months (some off-window), until follow-up ends."""
    frames = [pd.DataFrame({"patient_id": cohort["patient_id"], "from_t0": -cohort["t0"].to_numpy()})]
    for target, low, high in ((90, 60, 120), (180, 150, 240), (365, 300, 430), (270, 250, 290), *params.late_visits):
        n = len(cohort)
        days = np.clip(np.round(target + rng.normal(0, 12, n)), low, high)
        off = rng.random(n) < params.off_window_share
        outside = np.where(rng.random(n) < 0.5, low - rng.integers(5, 25, n), high + rng.integers(5, 25, n))
        days = np.where(off, outside, days)
        keep = rng.random(n) < (0.5 if target == 270 else 0.92)
        frames.append(pd.DataFrame({"patient_id": cohort["patient_id"][keep], "from_t0": days[keep]}))
    visits = pd.concat(frames, ignore_index=True).merge(cohort[["patient_id", "t0", "followup_end"]], on="patient_id")
    visits = visits[visits["from_t0"] <= visits["followup_end"]]
    visits["visit_day"] = (visits["t0"] + visits["from_t0"]).astype(int)
    visits = visits.drop_duplicates(["patient_id", "visit_day"]).sort_values(["patient_id", "visit_day"])
    return visits[["patient_id", "visit_day", "from_t0"]].reset_index(drop=True)


def _function_at(visits: pd.DataFrame, cohort: pd.DataFrame) -> np.ndarray:
    """Facial function q at each visit: the baseline composite plus the share of the 12-month change reached."""
    joined = visits.merge(cohort[["patient_id", "baseline", "change_12m"]], on="patient_id", how="left")
    reached = np.clip(joined["from_t0"].to_numpy(), 0, None) / 365
    composite = (
        joined["baseline"].to_numpy() + np.nan_to_num(joined["change_12m"].to_numpy()) * np.minimum(reached, 1.2) ** 0.6
    )
    return np.clip((composite + 15) / 115, 0.02, 0.98)


def _followup_items(
    rng: np.random.Generator, followup: pd.DataFrame, cohort: pd.DataFrame, params: SyntheticParameters
) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """Follow-up items, and the true 12-month effect on the measured Sunnybrook composite.

    The effect is set on the latent scale; floors and ceilings of the items shrink it on the
    measured one. So every follow-up visit is scored twice with the same noise, as if combined and
    as if single, and the truth is the mean difference of the composites at 12-month visits. The
    observed items are those of the treatment the patient had (the random stream is as one scoring)."""
    state = rng.bit_generator.state
    worlds = []
    for combined in (True, False):
        rng.bit_generator.state = state
        had = cohort["combined"].to_numpy(dtype=bool)
        # As if combined: the patient's own effect where they had one, else combined_effect; as if single: none.
        shift = np.where(had, 0.0, params.combined_effect) if combined else -cohort["effect"].to_numpy(dtype=float)
        worlds.append(
            _instrument_items(rng, _function_at(followup, cohort.assign(change_12m=cohort["change_12m"] + shift)))
        )
    had = followup[["patient_id"]].merge(cohort[["patient_id", "combined"]], on="patient_id", how="left")["combined"]
    had = had.fillna(False).to_numpy(dtype=bool)
    items = {
        instrument: {code: np.where(had, worlds[0][instrument][code], worlds[1][instrument][code]) for code in codes}
        for instrument, codes in worlds[0].items()
    }
    at_12m = ((followup["from_t0"] >= 300) & (followup["from_t0"] <= 430)).to_numpy()
    composites = [_totals("sunnybrook", world["sunnybrook"], rng)["composite"] for world in worlds]
    truth = float(np.mean(composites[0][at_12m] - composites[1][at_12m])) if at_12m.any() else float("nan")
    return items, truth


def _drop_out(
    rng: np.random.Generator, followup: pd.DataFrame, observed_baseline: pd.Series, params: SyntheticParameters
) -> pd.DataFrame:
    """Missing at random given baseline: a worse observed baseline makes a missed 12-month visit likelier."""
    if params.dropout_by_severity == 0:
        return followup  # draws nothing, so data sets without dropout are unchanged
    severity_seen = (55 - observed_baseline.groupby(level=0).first()) / 15
    logit = -1.5 + params.dropout_by_severity * severity_seen.reindex(followup["patient_id"]).fillna(0).to_numpy()
    missed = (followup["from_t0"].to_numpy() >= 300) & (rng.random(len(followup)) < 1 / (1 + np.exp(-logit)))
    return followup[~missed].reset_index(drop=True)


@dataclass
class _Scored:
    cohort: pd.DataFrame
    baseline_visits: pd.DataFrame
    followup_visits: pd.DataFrame
    baseline_items: dict[str, dict[str, np.ndarray]]
    followup_items: dict[str, dict[str, np.ndarray]]
    observed: pd.Series  # the Sunnybrook composite measured at the index visit, by patient
    truth: float
    synergy_truth: float = float("nan")  # the PT+SN on BTX interaction on the measured composite, when asked


def _treat_and_score(
    rng: np.random.Generator,
    patient_frame: pd.DataFrame,
    cohort: pd.DataFrame,
    visits: pd.DataFrame,
    params: SyntheticParameters,
    with_synergy_truth: bool = False,
) -> _Scored:
    """Score the index visit, choose treatment from it, drop out, then score the follow-up visits."""
    # The index visit is scored before treatment is chosen: the choice sees its Sunnybrook composite.
    baseline_visits = visits[visits["from_t0"] <= 0].reset_index(drop=True)
    followup_visits = visits[visits["from_t0"] > 0].reset_index(drop=True)
    baseline_items = _instrument_items(rng, _function_at(baseline_visits, cohort.assign(change_12m=0.0)))
    observed = pd.Series(
        _totals("sunnybrook", baseline_items["sunnybrook"], rng)["composite"], index=baseline_visits["patient_id"]
    )
    cohort = _choose_treatment(rng, cohort, patient_frame, observed.reindex(cohort["patient_id"]).to_numpy(), params)
    followup_visits = _drop_out(rng, followup_visits, observed, params)
    before = rng.bit_generator.state
    followup_items, truth = _followup_items(rng, followup_visits, cohort, params)
    synergy = float("nan")
    if with_synergy_truth:
        after = rng.bit_generator.state
        synergy = _synergy_truth(rng, before, followup_visits, cohort, params)
        rng.bit_generator.state = after  # the data are the same with or without the truth
    return _Scored(cohort, baseline_visits, followup_visits, baseline_items, followup_items, observed, truth, synergy)


def _synergy_truth(
    rng: np.random.Generator, state: dict, followup: pd.DataFrame, cohort: pd.DataFrame, params: SyntheticParameters
) -> float:
    """The PT+SN on BTX interaction as the measured Sunnybrook composite shows it (floors and ceilings bend an
    additive latent scale): every 12-month visit scored, with the same noise, as if on BTX, BTX+PT, BTX+SN and
    BTX+PT+SN; the truth is the mean of the four composites' interaction contrast."""
    effects = (0.0, params.combined_effect, params.combined_effect)
    effects += (2 * params.combined_effect + params.synergy_pt_sn_on_btx,)
    composites = []
    for effect in effects:
        rng.bit_generator.state = state
        change = cohort["change_12m"] - cohort["effect"] + effect
        items = _instrument_items(rng, _function_at(followup, cohort.assign(change_12m=change)))
        composites.append(_totals("sunnybrook", items["sunnybrook"], rng)["composite"])
    at_12m = ((followup["from_t0"] >= 300) & (followup["from_t0"] <= 430)).to_numpy()
    if not at_12m.any():
        return float("nan")
    base, with_pt, with_sn, both = (c[at_12m] for c in composites)
    return float(np.mean(both - with_pt - with_sn + base))


def analysis_tables(
    patients: int, seed: int, site: str = "site01", params: SyntheticParameters | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """The same cohort, treatment choice and Sunnybrook scores as ``generate_drop``, as the two frames
    the models read (patients with their combination; composite scores at baseline, 3, 6 and 12
    months) and the true 12-month effect on the measured composite, without the export, load and
    warehouse around them: for checking the models against the truth over many seeds quickly.
    Visits fall on the timepoints' targets."""
    patient_frame, scores, scored = _analysis_tables(patients, seed, site, params, with_synergy_truth=False)
    return patient_frame, scores, scored.truth


def synergy_tables(
    patients: int, seed: int, site: str = "site01", params: SyntheticParameters | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """``analysis_tables``' frames (the same data) with the true PT+SN on BTX interaction on the measured
    Sunnybrook composite at 12 months in place of the combined effect."""
    patient_frame, scores, scored = _analysis_tables(patients, seed, site, params, with_synergy_truth=True)
    return patient_frame, scores, scored.synergy_truth


def _analysis_tables(
    patients: int, seed: int, site: str, params: SyntheticParameters | None, with_synergy_truth: bool
) -> tuple[pd.DataFrame, pd.DataFrame, _Scored]:
    params = params or SyntheticParameters()
    rng = np.random.default_rng(seed)
    patient_frame = _patients(rng, patients, site, 2026)
    cohort = _cohort(rng, patient_frame, params)
    keep = rng.random((len(cohort), 3)) < 0.92
    frames = [pd.DataFrame({"patient_id": cohort["patient_id"], "from_t0": 0})]
    for column, target in enumerate((90, 180, 365)):
        frames.append(pd.DataFrame({"patient_id": cohort["patient_id"][keep[:, column]], "from_t0": target}))
    visits = pd.concat(frames, ignore_index=True).merge(cohort[["patient_id", "followup_end"]], on="patient_id")
    visits = visits[visits["from_t0"] <= visits["followup_end"]].reset_index(drop=True)
    scored = _treat_and_score(rng, patient_frame, cohort, visits, params, with_synergy_truth)
    cohort, baseline_visits, followup_visits = scored.cohort, scored.baseline_visits, scored.followup_visits
    observed = scored.observed
    followup = _totals("sunnybrook", scored.followup_items["sunnybrook"], rng)
    timepoint = {0: "baseline", 90: "3m", 180: "6m", 365: "12m"}
    scores = pd.concat(
        [
            baseline_visits.assign(value=observed.to_numpy()),
            followup_visits.assign(value=followup["composite"]),
        ],
        ignore_index=True,
    ).assign(site_id=site, outcome="sunnybrook_composite")
    scores["timepoint"] = scores["from_t0"].map(timepoint)
    patient_frame = patient_frame.merge(cohort[["patient_id", "combination", "prior", "followup_end"]], on="patient_id")
    patient_frame["prior_treatment"] = patient_frame.pop("prior")
    patient_frame["classifiable"] = patient_frame.pop("followup_end") >= 180
    return patient_frame, scores[["site_id", "patient_id", "outcome", "timepoint", "value"]], scored


def treatment_tables(
    patients: int, seed: int, site: str = "site01", params: SyntheticParameters | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The treatments and visits of ``generate_drop`` (same seed, same rows), without the export around them:
    the patients with their combination, the ``treatments`` table and every visit (site_id, patient_id,
    visit_day), for fitting the BoNT-interval models straight from generated data."""
    params = params or SyntheticParameters()
    rng = np.random.default_rng(seed)
    patient_frame = _patients(rng, patients, site, 2026)
    cohort = _cohort(rng, patient_frame, params)
    visits = _visits(rng, cohort, params)
    scored = _treat_and_score(rng, patient_frame, cohort, visits, params)
    treatments = _treatments(rng, scored.cohort, site, params)
    all_visits = pd.concat([scored.baseline_visits, scored.followup_visits], ignore_index=True)
    all_visits = all_visits.assign(site_id=site)[["site_id", "patient_id", "visit_day"]]
    patient_frame = patient_frame.merge(scored.cohort[["patient_id", "combination"]], on="patient_id")
    return patient_frame, treatments, all_visits


def _noisy(rng: np.random.Generator, centre: np.ndarray, sd: float, low: float, high: float) -> np.ndarray:
    return np.clip(np.round(centre + rng.normal(0, sd, len(centre))), low, high)


def _instrument_items(rng: np.random.Generator, q: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Item values per instrument for visits with facial function q (composite = 115 q - 15 in expectation)."""
    bad = 1 - q
    sunnybrook = {
        "rest_eye": (rng.random(len(q)) < bad).astype(float),
        "rest_cheek": _noisy(rng, 2 * bad, 0.4, 0, 2),
        "rest_mouth": (rng.random(len(q)) < bad).astype(float),
    }
    sunnybrook |= {item: _noisy(rng, 1 + 4 * q, 0.5, 1, 5) for item in SUNNYBROOK_VOLUNTARY}
    sunnybrook |= {item: _noisy(rng, 3 * bad, 0.5, 0, 3) for item in SUNNYBROOK_SYNKINESIS}
    direction = np.where(rng.random(len(q)) < 0.7, -1, 1)  # static asymmetry: mostly under, sometimes over
    eface = {item: _noisy(rng, 100 + direction * 60 * bad, 6, 0, 200) for item in EFACE_STATIC}
    eface |= {item: _noisy(rng, 100 * q, 8, 0, 100) for item in EFACE_DYNAMIC}
    eface |= {item: _noisy(rng, 100 * (0.3 + 0.7 * q), 8, 0, 100) for item in EFACE_SYNKINESIS}
    saq = {item: _noisy(rng, 1 + 4 * bad, 0.6, 1, 5) for item in SAQ_ITEMS}
    face = {item: _noisy(rng, 20 + 70 * q, 8, 0, 100) for item in FACE_SCORES}
    fdi = {item: _noisy(rng, 30 + 65 * q, 8, 0, 100) for item in FDI_SCORES}
    house_brackmann = {"grade": _noisy(rng, 6 - 5 * q, 0.4, 1, 6)}
    return {
        "sunnybrook": sunnybrook,
        "eface": eface,
        "saq": saq,
        "face": face,
        "fdi": fdi,
        "house_brackmann": house_brackmann,
    }


def _totals(instrument: str, items: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Recorded totals as the contract defines them from the items."""
    if instrument == "sunnybrook":
        resting = 5 * (items["rest_eye"] + items["rest_cheek"] + items["rest_mouth"])
        voluntary = 4 * sum(items[i] for i in SUNNYBROOK_VOLUNTARY)
        synkinesis = sum(items[i] for i in SUNNYBROOK_SYNKINESIS)
        return {
            "resting_score": resting,
            "voluntary_score": voluntary,
            "synkinesis_score": synkinesis,
            "composite": voluntary - resting - synkinesis,
        }
    if instrument == "eface":
        folded = {i: 100 - np.abs(items[i] - 100) for i in EFACE_STATIC}
        static = sum(folded.values()) / 4
        dynamic = sum(items[i] for i in EFACE_DYNAMIC) / 7
        synkinesis = sum(items[i] for i in EFACE_SYNKINESIS) / 4
        total = (sum(folded.values()) + sum(items[i] for i in EFACE_DYNAMIC + EFACE_SYNKINESIS)) / 15
        return {
            k: np.round(v, 1)
            for k, v in {
                "static_score": static,
                "dynamic_score": dynamic,
                "synkinesis_score": synkinesis,
                "total": total,
            }.items()
        }
    if instrument == "saq":
        raw = sum(items[i] for i in SAQ_ITEMS)
        # Both published forms occur; each recorded total says which it is through its item code.
        use_raw = rng.random(len(raw)) < 0.5
        return {
            "total_raw": np.where(use_raw, raw, np.nan),
            "total_pct": np.where(use_raw, np.nan, np.round(raw / 45 * 100, 1)),
        }
    return {}


def _assessments(
    rng: np.random.Generator,
    visits: pd.DataFrame,
    items_by_instrument: dict[str, dict[str, np.ndarray]],
    params: SyntheticParameters,
    site: str,
) -> pd.DataFrame:
    parts = []
    for instrument, items in items_by_instrument.items():
        taken = rng.random(len(visits)) < INSTRUMENT_P[instrument]
        recorded_only = instrument in ("face", "fdi", "house_brackmann")
        as_items = np.ones(len(visits), bool) if recorded_only else rng.random(len(visits)) < params.item_level_share
        totals = _totals(instrument, items, rng)
        with_totals = ~as_items | (rng.random(len(visits)) < params.items_and_totals_share)
        columns = {code: np.where(taken & as_items, values, np.nan) for code, values in items.items()}
        columns |= {code: np.where(taken & with_totals, values, np.nan) for code, values in totals.items()}
        wide = pd.DataFrame(columns)
        wide["patient_id"] = visits["patient_id"].to_numpy()
        wide["visit_day"] = visits["visit_day"].to_numpy()
        long = wide.melt(id_vars=["patient_id", "visit_day"], var_name="item", value_name="value").dropna()
        long["instrument"] = instrument
        parts.append(long)
    frame = pd.concat(parts, ignore_index=True)
    frame["site_id"] = site
    frame = frame.sort_values(["patient_id", "visit_day", "instrument", "item"], kind="stable")
    return frame[[c.name for c in COLUMNS["assessments"]]].reset_index(drop=True)


def _concat_items(
    first: dict[str, dict[str, np.ndarray]], second: dict[str, dict[str, np.ndarray]]
) -> dict[str, dict[str, np.ndarray]]:
    return {
        inst: {code: np.concatenate([first[inst][code], second[inst][code]]) for code in first[inst]} for inst in first
    }


def _format_value(values: pd.Series) -> pd.Series:
    """Whole numbers without decimals, others with one."""
    whole = np.isclose(values, np.round(values))
    return pd.Series(
        np.where(whole, values.round().astype("int64").astype(str), values.map("{:.1f}".format)), index=values.index
    )


def generate_drop(
    out: Path,
    patients: int,
    seed: int,
    site: str = "site01",
    params: SyntheticParameters | None = None,
    snapshot: str = "full",
    exported_year: int = 2026,
    compress: bool = False,
    export_format: str = "csv",
) -> dict[str, int]:
    """Write patients, treatments and assessments (.csv or .csv.gz) and manifest.json into ``out``.

    With ``export_format="redcap"``, the same data as REDCap exports it from a project built from the
    shipped dictionary: ``redcap_records.csv``, ``redcap_dictionary.csv`` and a manifest saying so.
    """
    params = params or SyntheticParameters()
    rng = np.random.default_rng(seed)
    patient_frame = _patients(rng, patients, site, exported_year)
    cohort = _cohort(rng, patient_frame, params)
    visits = _visits(rng, cohort, params)
    scored = _treat_and_score(rng, patient_frame, cohort, visits, params)
    cohort, baseline_visits, followup_visits = scored.cohort, scored.baseline_visits, scored.followup_visits
    baseline_items, followup_items, truth = scored.baseline_items, scored.followup_items, scored.truth
    treatments = _treatments(rng, cohort, site, params)
    all_visits = pd.concat([baseline_visits, followup_visits], ignore_index=True)
    assessments = _assessments(rng, all_visits, _concat_items(baseline_items, followup_items), params, site)
    assessments["value"] = _format_value(assessments["value"])
    treatments["botox_units"] = treatments["botox_units"].map(lambda v: "" if pd.isna(v) else f"{v:g}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = {"patients": patient_frame, "treatments": treatments, "assessments": assessments}
    if params.complications:
        tables["complications"] = complications(treatments, params.complications, seed)
    if export_format == "redcap":
        _write_redcap(out, tables)
    else:
        suffix = ".csv.gz" if compress else ".csv"
        for name, frame in tables.items():
            # mtime=0 keeps gzip output byte-identical between runs.
            compression = {"method": "gzip", "mtime": 0} if compress else None
            frame.to_csv(out / f"{name}{suffix}", index=False, lineterminator="\n", compression=compression)
    manifest = {
        **({"source": "redcap"} if export_format == "redcap" else {}),
        "site_id": site,
        "exported_on": f"{exported_year}-11-20",
        "snapshot": snapshot,
        "generator": {
            "seed": seed,
            "patients": patients,
            "params": asdict(params),
            # What the models should recover: combined_effect as the measured composite shows it.
            "true_effect_12m_sunnybrook_composite": round(truth, 3),
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {name: len(frame) for name, frame in tables.items()}


def _write_redcap(out: Path, tables: dict[str, pd.DataFrame]) -> None:
    """The tables as REDCap's flat export (the site goes in the manifest) and the shipped dictionary."""
    events = tables.get("complications")
    if events is not None:
        events = as_redcap_instances(events, tables["treatments"])
    flat = flat_export(tables["patients"], tables["treatments"], tables["assessments"], events)
    flat.to_csv(out / RECORDS, index=False, lineterminator="\n")
    (out / DICTIONARY).write_bytes(dictionary_csv().encode("utf-8"))
