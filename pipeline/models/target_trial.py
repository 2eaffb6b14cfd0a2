"""Surgery or more injections? The target trial of docs/target_trial.md, emulated by clone-censor-weight.

Among patients with at least two BoNT sessions and no surgery, every BoNT session from the second on is a
time zero (sequential trials). Each eligible patient-trial is cloned into strategy A (selective neurectomy or
myectomy within 90 days) and strategy B (no surgery for the next 12 months, up to the outcome assessment);
a clone is censored when its patient deviates. Inverse-probability-of-censoring weights come from one pooled
logistic model of "surgery within 90 days of this session" on the session's time-varying covariates (latest
trough composite, its fall since the previous session, sessions and units so far, years since onset) and
the baseline ones (age, sex), stabilized by the marginal share and truncated like the IPTW weights
(``ModelSettings.weight_truncation``); a clone whose weight is truncated is flagged, not hidden. The outcome
(the assessment nearest 12 months after time zero, 300-430 days, in the design's phase window) is compared
by weighted least squares (``WLS`` weights, not frequency weights) adjusted for the time-zero composite, with
a variance clustered by patient: a patient enters several trials, and both arms. The estimand is the
per-protocol effect of the sustained strategies, A minus B.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import duckdb
import numpy as np
import pandas as pd
import statsmodels.api as sm

from pipeline.intervals import ALPHA
from pipeline.models import fit_record
from pipeline.models.estimators import Estimate, failed
from pipeline.models.pairs import AT_TROUGH_CONTRAST, TARGET_TRIAL_CONTRAST
from pipeline.models.propensity import effective_sample_size
from pipeline.models.sensitivity import minimum_detectable_difference
from pipeline.settings import ModelSettings
from pipeline.sql_files import read_sql

CONTRAST = TARGET_TRIAL_CONTRAST
METHOD = "ccw"
SURGERY = ("selective_neurectomy", "selective_myectomy")
GRACE_DAYS = 90  # strategy A: surgery within this many days of time zero
OUTCOME_WINDOW = (300, 430)  # days after time zero an outcome assessment may fall (target: 365)
OUTCOME_TARGET = 365
COVARIATES = ("latest", "fall", "sessions", "units_so_far", "years_since_onset", "age", "female")


def days_since_injection(visits: pd.DataFrame, treatments: pd.DataFrame) -> pd.Series:
    """Days since the last BoNT injection before each visit (NaN before the first). An injection on the visit's
    day is not counted: the clinic assesses before it injects, so a session's visit is a trough."""
    bont = treatments.loc[treatments["modality"] == "botox", ["patient_id", "day"]].sort_values("day")
    left = visits[["patient_id", "visit_day"]].reset_index().sort_values("visit_day")
    joined = pd.merge_asof(
        left,
        bont.rename(columns={"day": "last_day"}),
        left_on="visit_day",
        right_on="last_day",
        by="patient_id",
        allow_exact_matches=False,
    ).set_index("index")
    return (joined["visit_day"] - joined["last_day"]).reindex(visits.index).astype(float)


def person_sessions(patients: pd.DataFrame, treatments: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """One row per BoNT session before any surgery, with its covariates and whether surgery followed within
    90 days (``surgery_90d``), and whether it is an eligible time zero (``eligible``)."""
    bont = treatments[treatments["modality"] == "botox"].sort_values(["patient_id", "day"])
    surgery = treatments[treatments["modality"].isin(SURGERY)].groupby("patient_id")["day"].min()
    rows = bont[["patient_id", "day", "botox_units"]].copy()
    rows["botox_units"] = pd.to_numeric(rows["botox_units"], errors="coerce").fillna(0.0)
    rows["sessions"] = rows.groupby("patient_id").cumcount() + 1
    rows["units_so_far"] = rows.groupby("patient_id")["botox_units"].cumsum() - rows["botox_units"]
    rows["surgery_day"] = rows["patient_id"].map(surgery).astype(float)
    rows = rows[~(rows["surgery_day"] <= rows["day"])]
    latest = scores[["patient_id", "visit_day", "sunnybrook_composite"]].dropna().sort_values("visit_day")
    rows = pd.merge_asof(
        rows.sort_values("day"),
        latest.rename(columns={"visit_day": "latest_day", "sunnybrook_composite": "latest"}),
        left_on="day",
        right_on="latest_day",
        by="patient_id",
    ).sort_values(["patient_id", "day"])
    rows["fall"] = (rows.groupby("patient_id")["latest"].shift(1) - rows["latest"]).fillna(0.0)
    last_visit = scores.groupby("patient_id")["visit_day"].max()
    rows["last_visit"] = rows["patient_id"].map(last_visit)
    people = patients.set_index("patient_id")
    rows["age"] = rows["patient_id"].map(people["age_at_onset"]).astype(float)
    rows["female"] = rows["patient_id"].map(people["sex"]).eq("F").astype(float)
    onset = rows["patient_id"].map(people["onset_to_index_days"]).astype(float)
    rows["years_since_onset"] = (onset + rows["day"]) / 365.25
    rows["surgery_90d"] = (rows["surgery_day"] <= rows["day"] + GRACE_DAYS).astype(int)
    # Administrative end: a time zero needs the whole outcome window before the patient's last record.
    rows["eligible"] = (
        (rows["sessions"] >= 2) & rows["latest"].notna() & (rows["day"] + OUTCOME_WINDOW[1] <= rows["last_visit"])
    )
    return rows.reset_index(drop=True)


@dataclass
class Emulation:
    estimate: Estimate
    outcome: str
    clones: pd.DataFrame  # one row per clone: patient_id, t0, arm, censored, weight, raw_weight, flagged, y
    by_trial: pd.DataFrame  # the diagnostics per trial (session number) and overall
    flagged: pd.DataFrame = field(default_factory=pd.DataFrame)  # clones whose weight was truncated


def _censoring_probability(sessions: pd.DataFrame) -> tuple[np.ndarray, float] | None:
    """P(surgery within 90 days | the session's covariates), pooled over every session from the second on; None
    where no such session, or none, was followed by surgery (nothing to emulate)."""
    at_risk = sessions[(sessions["sessions"] >= 2) & sessions["latest"].notna()]
    if at_risk["surgery_90d"].nunique() < 2:
        return None
    x = sm.add_constant(at_risk[list(COVARIATES)].to_numpy(dtype=float), has_constant="add")
    fit = sm.Logit(at_risk["surgery_90d"].to_numpy(dtype=float), x).fit(disp=0, maxiter=200)
    p = np.full(len(sessions), np.nan)
    p[at_risk.index.to_numpy()] = np.clip(fit.predict(x), 1e-6, 1 - 1e-6)
    return p, float(at_risk["surgery_90d"].mean())


def _outcomes(trials: pd.DataFrame, scores: pd.DataFrame, outcome: str, phase_min_days: float) -> pd.DataFrame:
    """Each trial's outcome assessment: nearest 365 days after time zero within the window and the phase."""
    seen = scores[["patient_id", "visit_day", "days_since_injection", outcome]].dropna(subset=[outcome])
    in_phase = seen["days_since_injection"].isna() | (seen["days_since_injection"] >= phase_min_days)
    joined = trials[["patient_id", "day"]].merge(seen[in_phase], on="patient_id")
    after = joined["visit_day"] - joined["day"]
    joined = joined[(after >= OUTCOME_WINDOW[0]) & (after <= OUTCOME_WINDOW[1])].copy()
    joined["distance"] = (joined["visit_day"] - joined["day"] - OUTCOME_TARGET).abs()
    best = joined.sort_values(["distance", "visit_day"]).drop_duplicates(["patient_id", "day"])
    return best.rename(columns={"visit_day": "outcome_day", outcome: "y", "days_since_injection": "outcome_phase"})[
        ["patient_id", "day", "outcome_day", "outcome_phase", "y"]
    ]


def emulate(
    patients: pd.DataFrame,
    treatments: pd.DataFrame,
    scores: pd.DataFrame,
    outcome: str = "sunnybrook_composite",
    phase_min_days: float = 90.0,
    truncation: float = 10.0,
) -> Emulation:
    """The clone-censor-weight emulation of the target trial on one outcome (module docstring)."""
    scores = scores.assign(days_since_injection=days_since_injection(scores, treatments))
    sessions = person_sessions(patients, treatments, scores)
    censoring = _censoring_probability(sessions)
    if censoring is None:
        note = "not estimated: no BoNT session from a second on was followed by surgery within 90 days, or none not"
        return Emulation(failed(note), outcome, pd.DataFrame(), pd.DataFrame(columns=list(SUMMARY_COLUMNS[2:])))
    p, share = censoring
    sessions["p"] = p
    trials = sessions[sessions["eligible"]]
    outcomes = _outcomes(trials, scores, outcome, phase_min_days)
    trials = trials.merge(outcomes, on=["patient_id", "day"], how="left")
    # A: followed if surgery came within 90 days; its one censoring decision is at time zero.
    a = trials.assign(arm=1, censored=trials["surgery_90d"].eq(0), raw_weight=share / trials["p"])
    # B: followed if no surgery before the outcome assessment; its decisions are the sessions before it.
    b = trials.assign(arm=0)
    b["censored"] = b["surgery_day"] < b["outcome_day"].fillna(b["day"] + OUTCOME_TARGET)
    horizon = b[["patient_id", "day", "outcome_day"]].merge(
        sessions[["patient_id", "day", "p"]].rename(columns={"day": "session_day"}), on="patient_id"
    )
    end = horizon["outcome_day"].fillna(horizon["day"] + OUTCOME_TARGET)
    horizon = horizon[(horizon["session_day"] >= horizon["day"]) & (horizon["session_day"] < end)]
    horizon = horizon.assign(ratio=(1 - share) / (1 - horizon["p"]))
    b = b.merge(horizon.groupby(["patient_id", "day"])["ratio"].prod().rename("raw_weight"), on=["patient_id", "day"])
    clones = pd.concat([a, b], ignore_index=True)
    clones["flagged"] = clones["raw_weight"] > truncation
    clones["weight"] = np.minimum(clones["raw_weight"], truncation)
    clones = clones.rename(columns={"day": "t0"})
    analysed = clones[~clones["censored"] & clones["y"].notna()]
    by_trial = diagnostics(clones)
    flagged = clones[clones["flagged"] & ~clones["censored"]][["patient_id", "t0", "arm", "raw_weight"]]
    return Emulation(_contrast(analysed), outcome, clones, by_trial, flagged.reset_index(drop=True))


def _contrast(analysed: pd.DataFrame) -> Estimate:
    if analysed["arm"].nunique() < 2 or analysed["patient_id"].nunique() < 10:
        return failed("not estimated: fewer than ten patients followed in an arm")
    x = sm.add_constant(analysed[["arm", "latest"]].to_numpy(dtype=float), has_constant="add")
    groups = pd.factorize(analysed["patient_id"])[0]
    fit = sm.WLS(analysed["y"].to_numpy(dtype=float), x, weights=analysed["weight"].to_numpy(dtype=float)).fit(
        cov_type="cluster", cov_kwds={"groups": groups}
    )
    low, high = fit.conf_int(alpha=ALPHA)[1]
    return Estimate(
        estimate=float(fit.params[1]),
        std_error=float(fit.bse[1]),
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(fit.pvalues[1]),
        diagnostics_ok=True,
    )


def diagnostics(clones: pd.DataFrame) -> pd.DataFrame:
    """Per trial (the time zero's session number) and overall: trials, clones, share censored, largest
    weight, effective sample size and flagged clones, per arm."""
    rows = []
    for trial, part in [*clones.groupby("sessions"), ("all", clones)]:
        for arm, clone in part.groupby("arm"):
            kept = clone[~clone["censored"]]
            rows.append(
                {
                    "trial": str(trial),
                    "arm": "A_surgery_within_90d" if arm == 1 else "B_continue_bont",
                    "clones": len(clone),
                    "censored_share": float(clone["censored"].mean()),
                    "followed": len(kept),
                    "largest_weight": float(kept["raw_weight"].max()) if len(kept) else float("nan"),
                    "effective_sample_size": effective_sample_size(kept["weight"].to_numpy()) if len(kept) else 0.0,
                    "flagged": int(kept["flagged"].sum()),
                }
            )
    return pd.DataFrame(rows)


def naive_surgery_comparison(
    patients: pd.DataFrame, treatments: pd.DataFrame, scores: pd.DataFrame, outcome: str = "sunnybrook_composite"
) -> Estimate:
    """The baseline-grouping comparison the issue warns of: patients ever operated against never, on the
    assessment nearest 12 months after their second session, adjusted for the score at that session."""
    scores = scores.assign(days_since_injection=days_since_injection(scores, treatments))
    sessions = person_sessions(patients, treatments, scores)
    first = sessions[sessions["eligible"]].drop_duplicates("patient_id")
    outcomes = _outcomes(first, scores, outcome, 0.0)
    frame = first.merge(outcomes, on=["patient_id", "day"])
    operated = set(treatments.loc[treatments["modality"].isin(SURGERY), "patient_id"])
    frame["arm"] = frame["patient_id"].isin(operated).astype(int)
    return _contrast(frame.assign(weight=1.0))


OUTCOMES = {"sunnybrook_composite": True, "saq": False}  # outcome -> higher is better
PRIMARY_OUTCOME = "sunnybrook_composite"  # the answer's outcome (the report's sentence, the network's bundle)
# What the emulation and its trough sensitivity analysis read.
TABLES = ("patients", "treatments", "instrument_scores", "design_outcomes", "build_info", "followup_scores")
SUMMARY_COLUMNS = (
    "run_id",
    "outcome",
    "trial",
    "arm",
    "clones",
    "censored_share",
    "followed",
    "largest_weight",
    "effective_sample_size",
    "flagged",
)


def phase_min_days(con: duckdb.DuckDBPyConnection) -> float:
    """design.json's outcome_phase_min_days as the build recorded it (90 where the build predates it)."""
    value = con.execute("SELECT design_settings->>'outcome_phase_min_days' FROM build_info").fetchall()
    return float(value[0][0]) if value and value[0][0] is not None else 90.0


def emulation_inputs(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What :func:`emulate` reads from a warehouse (the models run's, or a published one, read-only): patients,
    treatments and scored visits."""
    patients = con.execute(read_sql("models/target_trial_patients.sql")).df()
    treatments = con.execute(read_sql("models/target_trial_treatments.sql")).df()
    scores = con.execute(read_sql("models/target_trial_visits.sql")).df()
    return patients, treatments, scores


def followed_clones(clones: pd.DataFrame) -> pd.DataFrame:
    """The clones followed to an outcome under their strategy, uncensored."""
    return clones[~clones["censored"] & clones["y"].notna()]


def patient_keys(patient_ids: pd.Series) -> list[tuple[str, str]]:
    """The clones' patient ids ("site/patient") as sorted (site, patient) pairs, each once."""
    return [tuple(str(p).split("/", 1)) for p in sorted(set(patient_ids.astype(str)))]  # type: ignore[misc]


def followed_patients(emulation: Emulation) -> dict[int, list[tuple[str, str]]]:
    """Arm (1: surgery within 90 days, 0: no surgery) -> the patients followed to an outcome under it: the n of
    each arm in ``model_estimates``."""
    kept = followed_clones(emulation.clones)
    return {arm: patient_keys(kept.loc[kept["arm"] == arm, "patient_id"]) for arm in (1, 0)}


def target_trial_rows(
    con: duckdb.DuckDBPyConnection, settings: ModelSettings
) -> tuple[list[dict[str, object]], pd.DataFrame]:
    """The emulation's ``model_estimates`` rows (one per outcome, method ``ccw``) and its summary rows (per
    outcome, trial and arm; without run_id). Nothing where the warehouse has no BoNT patient with two
    sessions."""
    inputs, phase = emulation_inputs(con), phase_min_days(con)
    rows, summaries = [], []
    for outcome, better in OUTCOMES.items():
        try:
            emulation = emulate(*inputs, outcome, phase, settings.weight_truncation)
        except Exception as error:  # a failed fit is a result to report, not a crash of the whole run
            estimate, followed = failed(f"fit failed ({outcome}): {type(error).__name__}: {error}"), (0, 0)
        else:
            estimate, clones = emulation.estimate, emulation.clones
            if len(clones):
                followed = tuple(len(followed_patients(emulation)[arm]) for arm in (1, 0))
                note = f"clone-censor-weight over {len(clones) // 2} patient-trials"
                if len(emulation.flagged):
                    note += f"; {len(emulation.flagged)} clones' weights truncated at {settings.weight_truncation:g}"
                estimate = replace(estimate, note=note if estimate.ok else estimate.note)
            else:
                followed = (0, 0)
            summaries.append(emulation.by_trial.assign(outcome=outcome))
        if min(followed) < settings.min_group_size and estimate.ok:  # the small-cell rule, as for every model
            estimate = failed(f"not estimated: fewer than {settings.min_group_size} patients followed in an arm")
        rows.append(
            {
                "method": METHOD,
                "outcome": outcome,
                "timepoint": "12m",
                "contrast": CONTRAST,
                **estimate.columns(),
                "n_treated": followed[0],
                "n_control": followed[1],
                "higher_is_better": better,
                "e_value": float("nan"),
                "e_value_ci": float("nan"),
                "mdd": minimum_detectable_difference(estimate.std_error, settings.power),
            }
        )
    summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    return rows, summary.reindex(columns=[c for c in SUMMARY_COLUMNS if c != "run_id"])


def at_trough_row(
    con: duckdb.DuckDBPyConnection,
    population: pd.DataFrame,
    changes: pd.DataFrame,
    primary: tuple[str, str],
    settings: ModelSettings,
) -> dict[str, object]:
    """The sensitivity analysis of the primary comparison (combined vs single, ANCOVA) restricted to primary
    assessments at a trough of the toxin cycle (design.json's outcome_phase_min_days after the last injection,
    or before any): contrast ``combined_vs_single_at_trough``."""
    from pipeline.models.design_matrix import COMBINED_VS_SINGLE, Contrast, analysis_frames
    from pipeline.models.estimators import ancova

    outcome, timepoint = primary
    phase = con.execute(
        "SELECT site_id, patient_id, days_since_injection FROM followup_scores WHERE outcome = ? AND timepoint = ?",
        [outcome, timepoint],
    ).df()
    minimum = phase_min_days(con)
    trough = phase[phase["days_since_injection"].isna() | (phase["days_since_injection"] >= minimum)]
    kept = changes[(changes["outcome"] == outcome) & (changes["timepoint"] == timepoint)]
    kept = kept.merge(trough[["site_id", "patient_id"]], on=["site_id", "patient_id"])
    frame = analysis_frames(population, kept, Contrast(COMBINED_VS_SINGLE)).get((outcome, timepoint))
    counts = (0, 0) if frame is None else (int(frame["treated"].sum()), int((1 - frame["treated"]).sum()))
    if frame is None or min(counts) < settings.min_group_size:
        estimate = failed(
            f"not estimated: fewer than {settings.min_group_size} patients assessed at a trough in a group"
        )
    else:  # recorded for the cross-check against R (tests/crosscheck/refit.R refits every ancova)
        with fit_record.labelled(contrast=AT_TROUGH_CONTRAST, outcome=outcome, timepoint=timepoint):
            estimate = ancova(frame, settings)
    return {
        "method": "ancova",
        "outcome": outcome,
        "timepoint": timepoint,
        "contrast": AT_TROUGH_CONTRAST,
        **estimate.columns(),
        "n_treated": counts[0],
        "n_control": counts[1],
        "higher_is_better": OUTCOMES.get(outcome, True),
        "e_value": float("nan"),
        "e_value_ci": float("nan"),
        "mdd": minimum_detectable_difference(estimate.std_error, settings.power),
    }
