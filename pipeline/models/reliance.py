"""Reliance on BoNT after surgery (issue 19): do patients need injections less often, or smaller ones, after a
selective neurectomy or myectomy?

Read from ``botox_intervals`` (one row per injection after a patient's first). Within patients who had
surgery (``patient_group = 'surgery'``), from the index visit on (an injection before it is history, not
follow-up), the change after vs before surgery (``contrast = 'after_vs_before_surgery'``, ``timepoint =
'all'``) in:

- ``botox_interval_days``: days between injections, a linear mixed model (statsmodels ``MixedLM``, REML)
  with a random intercept per patient; an interval is after surgery when the surgery came on or before the
  injection that starts it, before surgery when it came after the one that ends it; intervals with the
  surgery inside them are left out. Completed gaps alone miss the long ones (issue 29), so the note gives
  a censored gap-time model beside it: a log-normal AFT of every gap, the open last one censored at the
  last contact, with patient-clustered sandwich errors (``lognormal_aft``). A fit that warns
  (non-convergence, a variance on its boundary) keeps its numbers with ``diagnostics_ok`` false and the
  warning in ``note``.
- ``botox_units_per_session``: units per session, the same model; a session is after surgery when the
  surgery came on or before its day. The note gives the same model of log units too: the ratio of units
  after vs before surgery (doses scale; the difference in raw units leans on the large doses).
- ``time_to_next_botox``: the hazard of the next injection as a recurrent event: each gap is a time to the
  next injection, the last one censored at the patient's last contact (visit or treatment); statsmodels
  ``PHReg`` with a cluster-robust (sandwich) variance by patient. The estimate is the hazard ratio after vs
  before surgery (below 1: the next injection comes later); ``std_error`` is that of its logarithm. The
  note says whether proportional hazards hold (Schoenfeld residuals of ``after`` against the rank of time).

Each is fitted twice: ``mixed`` / ``phreg`` within the surgery patients alone, and ``mixed_vs_bont_alone`` /
``phreg_vs_bont_alone``, the guard against drift: the patients on BoNT alone (no other treatment ever) join
the same model, and every row carries its session-number window (the number of the injection that starts
the interval, or of the session, counted from the index visit on: 1, 2, 3, 4, 5-6, 7 and on) as fixed effects
(with each patient's share of rows in each window, so that they too are compared within patients; for the
hazard, the windows are strata and a term for the surgery patients' own baseline hazard is added).
So a change that comes with the session number anyway (doses titrated up over the first sessions, intervals
drifting) is estimated on patients who never had surgery and taken out: what is left is the change that
comes with surgery, compared over the same calendar of sessions. The first fit's note gives the second's
estimate beside it.

Multiplicity: the three outcomes of one fit kind (within; against BoNT alone) are a family, Holm among
themselves; they share no family with the comparative contrasts or with synergy.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import duckdb
import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.regression.mixed_linear_model import MixedLM

from pipeline.intervals import ALPHA
from pipeline.models import fit_record
from pipeline.models.design_matrix import full_rank_columns
from pipeline.models.efron_residuals import efron_score_residuals
from pipeline.models.estimators import Estimate, failed
from pipeline.models.mixed import mixedlm_sandwich
from pipeline.models.pairs import RELIANCE_CONTRAST
from pipeline.models.random_intercept import fit_random_intercept
from pipeline.models.sensitivity import minimum_detectable_difference
from pipeline.settings import ModelSettings
from pipeline.sql_files import read_sql

CONTRAST = RELIANCE_CONTRAST
TIMEPOINT = "all"
INTERVAL, UNITS, HAZARD = "botox_interval_days", "botox_units_per_session", "time_to_next_botox"
OUTCOMES = (INTERVAL, UNITS, HAZARD)
# Which way is less reliance on BoNT: longer intervals, fewer units, a lower hazard of the next injection.
HIGHER_IS_BETTER = {INTERVAL: True, UNITS: False, HAZARD: False}
WITHIN = {INTERVAL: "mixed", UNITS: "mixed", HAZARD: "phreg"}
AGAINST_BONT_ALONE = {INTERVAL: "mixed_vs_bont_alone", UNITS: "mixed_vs_bont_alone", HAZARD: "phreg_vs_bont_alone"}
METHODS = ("mixed", "phreg", "mixed_vs_bont_alone", "phreg_vs_bont_alone")
# statsmodels' warnings when its first optimiser fails and it retries with the next.
RETRIED, FIRST_FAILED = "Retrying MixedLM optimization", "Maximum Likelihood optimization failed to converge"
WINDOW_EDGES = (1, 2, 3, 4, 5, 7)  # session-number windows: 1, 2, 3, 4, 5-6, 7 and on


def window(session: pd.Series) -> pd.Series:
    """The session-number window of each session number (1, 2, 3, 4, 5-6, 7+)."""
    labels = ["1", "2", "3", "4", "5-6", "7+"]
    codes = np.searchsorted(np.array(WINDOW_EDGES), session.to_numpy(dtype=float), side="right") - 1
    return pd.Series(np.array(labels)[np.clip(codes, 0, len(labels) - 1)], index=session.index)


def load_gaps(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every gap between injections from the index visit on (``event`` 1), and each patient's last one, from
    the last injection to the last contact (``event`` 0), with its phase and the window of its start."""
    frame = con.execute(read_sql("models/botox_gaps.sql")).df()
    # A gap belongs to the phase it began in: one with the surgery inside it counts as before (keeping only
    # the before-surgery gaps short enough to end before it would favour short ones).
    frame["after"] = (frame["phase"] == "after_surgery").astype(float)
    frame["window"] = window(frame["start_session"])
    return frame


def load_sessions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every injection after the first, from the index visit on, with its units, phase and window (session
    numbers counted from the index visit on)."""
    frame = con.execute(read_sql("models/botox_sessions.sql")).df()
    frame["after"] = frame["surgery_before"].astype(float)
    frame["window"] = window(frame["session"])
    return frame


def _patients(frame: pd.DataFrame) -> np.ndarray:
    return pd.factorize(frame["site_id"].astype(str) + "\x1f" + frame["patient_id"].astype(str), sort=True)[0]


def _n(frame: pd.DataFrame) -> int:
    return int(frame[["site_id", "patient_id"]].drop_duplicates().shape[0])


def _windows(frame: pd.DataFrame) -> pd.DataFrame:
    """Dummies of the session-number windows, against the most common one (none where there is one)."""
    counts = frame["window"].value_counts()
    reference = sorted(counts.index, key=lambda w: (-counts[w], w))[0]
    return pd.DataFrame(
        {f"window[{w}]": (frame["window"] == w).astype(float) for w in sorted(counts.index) if w != reference},
        index=frame.index,
    )


def _design(frame: pd.DataFrame, drift: bool) -> pd.DataFrame:
    """const, after, the patient's share of rows after surgery (Mundlak's term: it makes ``after`` a
    within-patient contrast, untouched by patients differing in how often they are injected), and with
    ``drift`` the session-number windows and each patient's share of rows in each (so that the windows too are
    compared within patients: a patient injected more often reaches the later windows sooner)."""
    patient = [frame["site_id"], frame["patient_id"]]
    share = frame["after"].groupby(patient).transform("mean")
    parts = [pd.DataFrame({"const": 1.0, "after": frame["after"], "after_share": share}, index=frame.index)]
    if drift:
        windows = _windows(frame)
        parts.append(windows)
        parts.append(windows.groupby(patient).transform("mean").add_suffix("_share"))
    return pd.concat(parts, axis=1)


def mixed_change(frame: pd.DataFrame, y: str, drift: bool, recorded: bool = True) -> Estimate:
    """The ``after`` coefficient of a linear mixed model of ``y`` with a random intercept per patient
    (``recorded`` false: a fit for a note, not given to the cross-check's recorder).

    Within the surgery patients: statsmodels ``MixedLM`` (REML), its warnings caught and recorded. Against the
    patients on BoNT alone (some ten times the rows): the same model by the project's REML fit
    (``pipeline/models/random_intercept.py``, checked against ``MixedLM`` in the tests), in a second where
    ``MixedLM`` takes a minute."""
    design = _design(frame, drift)
    values = frame[y].to_numpy(dtype=float)
    groups = _patients(frame)
    notes = ["linear mixed model (REML), random intercept per patient, within-patient (Mundlak) term"]
    if drift:
        fit = fit_random_intercept(values, design.to_numpy(dtype=float), groups)
        problems = list(fit.problems)
        if fit.boundary:
            problems.append("patient variance at zero (singular fit)")
        robust = fit.robust_bse if fit.robust_bse is not None else fit.bse_fe
        estimate, se = float(fit.fe_params[1]), float(robust[1])
        half = stats.norm.ppf(1 - ALPHA / 2) * se
        ci, p_value = (estimate - half, estimate + half), float(2 * stats.norm.sf(abs(estimate / se)))
        notes.append("patient-clustered sandwich errors")
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fit = MixedLM(values, design.to_numpy(dtype=float), groups).fit(reml=True, method=["bfgs", "powell"])
            except (np.linalg.LinAlgError, ValueError) as error:
                return failed(f"fit failed (MixedLM): {error}")
        problems = sorted({str(w.message).split("\n")[0] for w in caught})
        # BFGS failing and Powell, tried next, converging is a converged fit: recorded, not a failure.
        if fit.converged and any(p.startswith(RETRIED) for p in problems):
            problems = [p for p in problems if not p.startswith((RETRIED, FIRST_FAILED))]
            notes.append("BFGS did not converge, Powell's method did")
        if not fit.converged:
            problems.append("MixedLM reports no convergence")
        # Patient-clustered sandwich errors on the same fit: a patient's gaps are correlated beyond one random
        # intercept (titration over the course), and the model-based errors covered the truth in 3 of 6 seeds.
        matrix = design.to_numpy(dtype=float)
        robust = mixedlm_sandwich(fit, values, matrix, groups, np.ones((len(values), 1)), groups)
        estimate, se = float(fit.fe_params[1]), float(robust[1])
        half = stats.norm.ppf(1 - ALPHA / 2) * se
        ci, p_value = (estimate - half, estimate + half), float(2 * stats.norm.sf(abs(estimate / se)))
        notes[0] = notes[0].replace("linear mixed model", "linear mixed model (MixedLM)")
        notes.append(f"patient-clustered sandwich errors (model-based SE {float(fit.bse_fe[1]):.2f})")
    if recorded and fit_record.on():
        fit_record.record(
            "mixed",
            design.assign(**{".y": values, ".group": groups, ".cluster": groups}).reset_index(drop=True),
            key={"contrast": CONTRAST, "outcome": INTERVAL if y == "days" else UNITS, "timepoint": TIMEPOINT},
            published=AGAINST_BONT_ALONE[INTERVAL] if drift else WITHIN[INTERVAL],
            y=".y",
            x=[str(c) for c in design.columns],
            coefficients={TIMEPOINT: "after"},
            random="intercept",
            estimation="REML",
            variance="sandwich with the model's marginal V, clustered by patient, times G/(G-1); normal p and CI",
        )
    ok = not problems
    if problems:
        notes.insert(0, "did not converge cleanly: " + "; ".join(problems))
    result = Estimate(estimate, se, ci[0], ci[1], p_value, ok, "; ".join(notes), converged=ok)
    return result if result.ok else failed("; ".join([*notes, "fit failed: non-finite result"]))


def hazard_ratio(frame: pd.DataFrame, drift: bool) -> Estimate:
    """Cox model of the time to the next injection on ``after`` and the patient's share of gaps after surgery
    (Mundlak's within-patient term), with the session-number windows as strata with ``drift``; a
    cluster-robust (sandwich) variance by patient. The estimate is the hazard ratio, ``std_error`` that of its
    log. (Strata by patient would give the same contrast at a hundred times the cost: statsmodels loops over
    strata.)"""
    patients = _patients(frame)
    design = _design(frame, False).drop(columns=["const"])
    if drift:  # the surgery patients' own baseline hazard beside that of the patients on BoNT alone
        design["surgery_group"] = (frame["patient_group"] == "surgery").astype(float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = PHReg(
                frame["days"].to_numpy(dtype=float),
                design.to_numpy(dtype=float),
                status=frame["event"].to_numpy(dtype=float),
                strata=frame["window"].to_numpy() if drift else None,
                ties="efron",
            )
            fit = model.fit()
            # The sandwich by patient. statsmodels' own (fit(groups=...)) turns NaN when any stratum has no
            # event: such a stratum adds nothing to the partial likelihood, so its score residuals are 0 here.
            # Efron's score residuals (PHReg's are Breslow's whatever the ties): the sandwich of R's coxph.
            scores = efron_score_residuals(
                frame["days"].to_numpy(dtype=float),
                frame["event"].to_numpy(dtype=float),
                design.to_numpy(dtype=float),
                np.asarray(fit.params),
                frame["window"].to_numpy() if drift else None,
            )
            by_patient = pd.DataFrame(scores).groupby(patients).sum().to_numpy()
            bread = np.linalg.inv(model.hessian(fit.params))
            covariance = bread @ (by_patient.T @ by_patient) @ bread
        except (np.linalg.LinAlgError, ValueError) as error:
            return failed(f"fit failed (PHReg): {error}")
    if fit_record.on():
        fit_record.record(
            "phreg",
            design.assign(
                **{
                    ".time": frame["days"].to_numpy(dtype=float),
                    ".event": frame["event"].to_numpy(dtype=float),
                    ".strata": frame["window"].to_numpy() if drift else "all",
                    ".cluster": patients,
                }
            ).reset_index(drop=True),
            key={"contrast": CONTRAST, "outcome": HAZARD, "timepoint": TIMEPOINT},
            published=AGAINST_BONT_ALONE[HAZARD] if drift else WITHIN[HAZARD],
            x=[str(c) for c in design.columns],
            coefficient="after",
            ties="efron",
            variance="robust sandwich by patient (Efron score residuals summed by cluster), no small-sample factor",
        )
    problems = sorted({str(w.message).split("\n")[0] for w in caught})
    log_hr, se = float(fit.params[0]), float(np.sqrt(covariance[0, 0]))
    half = stats.norm.ppf(1 - ALPHA / 2) * se
    notes = [
        "hazard ratio of the next injection (Cox, PHReg, Efron ties), within-patient (Mundlak) term, "
        "cluster-robust errors by patient; each patient's last gap censored at their last contact",
        proportional_hazards(fit, frame["days"].to_numpy(dtype=float)),
    ]
    ok = not problems
    if problems:
        notes.insert(0, "PHReg warned: " + "; ".join(problems))
    result = Estimate(
        float(np.exp(log_hr)),
        se,
        float(np.exp(log_hr - half)),
        float(np.exp(log_hr + half)),
        float(2 * stats.norm.sf(abs(log_hr / se))),
        ok,
        "; ".join(notes),
        converged=ok,
    )
    return result if result.ok else failed("; ".join([*notes, "fit failed: non-finite result"]))


def proportional_hazards(fit: object, durations: np.ndarray) -> str:
    """The proportional-hazards check of ``after`` (issue 29), as a sentence for the note: the correlation of
    its Schoenfeld residuals with the rank of the event time (Grambsch and Therneau 1994, the rank
    transform), tested as a Pearson correlation. Where it fails the hazard ratio is an average over
    follow-up of a ratio that changes with the time since the last injection (a gap made longer, not a
    hazard scaled), and the days-between-injections rows are the ones to read."""
    residuals = np.asarray(fit.schoenfeld_residuals)[:, 0]  # type: ignore[attr-defined]
    events = np.isfinite(residuals)
    if events.sum() < 10:
        return "proportional hazards not checked (fewer than 10 events)"
    r, p_value = stats.pearsonr(residuals[events], stats.rankdata(durations[events]))
    if p_value < ALPHA:
        return (
            f"proportional hazards fail (Schoenfeld residuals against time rank: r {r:+.2f}, p {p_value:.3g}): "
            "the hazard ratio averages a ratio that changes with the time since the last injection"
        )
    return f"proportional hazards hold (Schoenfeld residuals against time rank: p {p_value:.2f})"


def _fit(outcome: str, frame: pd.DataFrame, drift: bool) -> Estimate:
    if outcome == HAZARD:
        return hazard_ratio(frame, drift)
    return mixed_change(frame, "days" if outcome == INTERVAL else "units", drift)


def _words(result: Estimate, outcome: str) -> str:
    if not np.isfinite(result.estimate):
        return "not estimated"
    fmt = "{:.2f}" if outcome == HAZARD else "{:.1f}"
    return f"{fmt.format(result.estimate)} ({fmt.format(result.ci_low)} to {fmt.format(result.ci_high)})"


def reliance_rows(con: duckdb.DuckDBPyConnection, settings: ModelSettings) -> list[dict[str, object]]:
    """Two rows per outcome (within the surgery patients; against those on BoNT alone), in ``model_estimates``'
    columns (without run_id and p_adjusted), with ``converged``. None where no patient with surgery had repeat
    injections."""
    minimum = settings.min_group_size
    gaps, sessions = load_gaps(con), load_sessions(con)
    rows: list[dict[str, object]] = []
    for outcome in OUTCOMES:
        data = gaps if outcome != UNITS else sessions
        if outcome == INTERVAL:
            data = data[data["event"] == 1]
        surgery = data[data["patient_group"] == "surgery"]
        alone = data[data["patient_group"] == "bont_alone"]
        n_after, n_before = _n(surgery[surgery["after"] == 1]), _n(surgery[surgery["after"] == 0])
        n_alone = _n(alone)
        if n_after + n_before == 0:
            continue  # no patient with surgery and repeat injections: nothing to say, as no row (not a failed one)
        both = surgery.groupby(["site_id", "patient_id"])["after"].nunique()
        n_both = int((both == 2).sum())
        results: dict[bool, tuple[Estimate, int, int]] = {}
        for drift in (False, True):
            small = min(n_after, n_before) < minimum or (drift and n_alone < minimum)
            if small:
                who = "surgery patients with a " + ("gap" if outcome != UNITS else "session") + " before and after"
                result = failed(
                    f"not estimated: fewer than {minimum} {who} surgery" + (", or on BoNT alone" if drift else "")
                )
            else:
                result = _guarded(outcome, pd.concat([surgery, alone]) if drift else surgery, drift)
            results[drift] = (result, n_after, n_alone if drift else n_before)
        within, against = results[False][0], results[True][0]
        if outcome == INTERVAL:  # the open last gaps too, censored: the long gaps the days rows miss
            every_gap = gaps[gaps["patient_group"].isin(["surgery", "bont_alone"])]
            operated = every_gap[every_gap["patient_group"] == "surgery"]
            within, against = (
                _with_censored_gaps(result, every_gap if drift else operated, drift)
                for result, drift in ((within, False), (against, True))
            )
        if outcome == UNITS:  # units per session are skewed and scale with the dose: the ratio on the log scale too
            within, against = (
                _with_log_ratio(result, pd.concat([surgery, alone]) if drift else surgery, drift)
                for result, drift in ((within, False), (against, True))
            )
        both_words = f"{n_both} surgery patients with both" if n_both >= minimum else f"fewer than {minimum} with both"
        if np.isfinite(within.estimate):
            within = replace(
                within,
                note=f"{within.note}; {both_words}; against patients on BoNT alone over the same session-number "
                f"windows ({AGAINST_BONT_ALONE[outcome]}): {_words(against, outcome)}",
            )
        if np.isfinite(against.estimate):
            against = replace(
                against,
                note=f"{against.note}; surgery patients and patients on BoNT alone ({n_alone}), session-number "
                "windows (1, 2, 3, 4, 5-6, 7+) as fixed effects (strata for the hazard): the drift over sessions "
                "without surgery taken out",
            )
        for method, (result, n_treated, n_control) in (
            (WITHIN[outcome], (within, *results[False][1:])),
            (AGAINST_BONT_ALONE[outcome], (against, *results[True][1:])),
        ):
            rows.append(
                {
                    "method": method,
                    "outcome": outcome,
                    "timepoint": TIMEPOINT,
                    "contrast": CONTRAST,
                    **result.columns(),
                    "n_treated": n_treated,
                    "n_control": n_control,
                    "higher_is_better": HIGHER_IS_BETTER[outcome],
                    "e_value": float("nan"),
                    "e_value_ci": float("nan"),
                    "mdd": float("nan")
                    if outcome == HAZARD
                    else minimum_detectable_difference(result.std_error, settings.power),
                }
            )
    return rows


def lognormal_aft(
    days: np.ndarray, event: np.ndarray, x: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A log-normal accelerated failure time model of gap lengths with censored gaps (``event`` 0: the open
    last gap, cut off at the last contact): maximum likelihood, and patient-clustered sandwich SEs. Returns
    (coefficients, their robust SEs); the log of the residual SD is the last parameter."""
    y = np.log(np.maximum(days, 0.5))
    p = x.shape[1]

    def scores(theta: np.ndarray) -> np.ndarray:
        beta, log_sigma = theta[:p], theta[p]
        sigma = np.exp(log_sigma)
        z = (y - x @ beta) / sigma
        hazard = np.exp(stats.norm.logpdf(z) - stats.norm.logsf(z))
        d_mean = np.where(event == 1, z, hazard) / sigma
        d_log_sigma = np.where(event == 1, z**2 - 1, hazard * z)
        return np.column_stack([x * d_mean[:, None], d_log_sigma])

    def negative_log_likelihood(theta: np.ndarray) -> float:
        beta, log_sigma = theta[:p], theta[p]
        z = (y - x @ beta) / np.exp(log_sigma)
        ll = np.where(event == 1, stats.norm.logpdf(z) - log_sigma, stats.norm.logsf(z))
        return -float(ll.sum())

    start = np.r_[np.linalg.lstsq(x, y, rcond=None)[0], np.log(y.std() + 1e-6)]
    fit = optimize.minimize(negative_log_likelihood, start, jac=lambda t: -scores(t).sum(axis=0), method="BFGS")
    theta = fit.x
    step = 1e-5
    hessian = np.empty((p + 1, p + 1))
    for k in range(p + 1):  # the derivative of the analytic score, by central differences
        shift = np.zeros(p + 1)
        shift[k] = step
        hessian[:, k] = (scores(theta + shift).sum(axis=0) - scores(theta - shift).sum(axis=0)) / (2 * step)
    bread = np.linalg.inv(-hessian)
    by_patient = pd.DataFrame(scores(theta)).groupby(groups).sum().to_numpy()
    g = len(by_patient)
    robust = bread @ (by_patient.T @ by_patient) @ bread * (g / max(g - 1, 1))
    return theta, np.sqrt(np.clip(np.diag(robust), 0, None))


def _with_censored_gaps(result: Estimate, frame: pd.DataFrame, drift: bool) -> Estimate:
    """``result`` with the censored gap-time model beside it in the note: every gap, the open last one censored
    at the last contact, by a log-normal AFT on the same design (issue 29: completed gaps alone miss the long
    ones after surgery). Its time ratio after vs before surgery is the multiple of a gap's length."""
    if not np.isfinite(result.estimate) or frame.empty:
        return result
    frame = frame.reset_index(drop=True)
    design = _design(frame, drift).to_numpy(dtype=float)
    kept = [int(c) for c in full_rank_columns(pd.DataFrame(design), keep=2)[0]]
    try:
        theta, se = lognormal_aft(
            frame["days"].to_numpy(dtype=float), frame["event"].to_numpy(dtype=int), design[:, kept], _patients(frame)
        )
    except (np.linalg.LinAlgError, ValueError):
        return result
    if not np.isfinite([theta[1], se[1]]).all():
        return result
    half = stats.norm.ppf(1 - ALPHA / 2) * se[1]
    words = (
        f"censored gap-time model (log-normal AFT, each open last gap censored at the last contact, "
        f"patient-clustered errors): gaps x {np.exp(theta[1]):.2f} after surgery "
        f"(95% CI {np.exp(theta[1] - half):.2f} to {np.exp(theta[1] + half):.2f})"
    )
    return replace(result, note=f"{result.note}; {words}")


def _with_log_ratio(result: Estimate, frame: pd.DataFrame, drift: bool) -> Estimate:
    """``result`` with the same model of log units beside it in the note: the ratio of units per session after
    vs before surgery (issue 29: a dose is multiplied, not shifted, and a Gaussian model of raw units leans on
    the large doses)."""
    if not np.isfinite(result.estimate) or not (frame["units"] > 0).all():
        return result
    logged = frame.assign(log_units=np.log(frame["units"].astype(float))).reset_index(drop=True)
    try:
        ratio = mixed_change(logged, "log_units", drift, recorded=False)  # a note, not a published estimate
    except (np.linalg.LinAlgError, ValueError):
        return result
    if not np.isfinite(ratio.estimate):
        return result
    words = (
        f"on the log scale: units x {np.exp(ratio.estimate):.2f} after surgery "
        f"(95% CI {np.exp(ratio.ci_low):.2f} to {np.exp(ratio.ci_high):.2f})"
    )
    return replace(result, note=f"{result.note}; {words}")


def _guarded(outcome: str, frame: pd.DataFrame, drift: bool) -> Estimate:
    try:
        return _fit(outcome, frame.reset_index(drop=True), drift)
    except Exception as error:  # a failed fit is a result to report, not a crash of the whole run
        return failed(f"fit failed ({outcome}): {type(error).__name__}: {error}")
