"""Reliance on BoNT after surgery (issue 19): do patients need injections less often, or smaller ones, after a
selective neurectomy or myectomy?

Read from ``botox_intervals`` (one row per injection after a patient's first). Within patients who had
surgery (``patient_group = 'surgery'``), from the index visit on (an injection before it is history, not
follow-up), the change after vs before surgery (``contrast = 'after_vs_before_surgery'``, ``timepoint =
'all'``) in:

- ``botox_interval_days``, the answer (issue 29): a censored gap-time model, ``aft`` / ``aft_vs_bont_alone``:
  a log-normal accelerated failure time model of every gap, each patient's open last gap censored at the
  last contact, with patient-clustered sandwich errors (``lognormal_aft``). Its estimate is the time ratio
  (a gap's length after surgery as a multiple of before), ``std_error`` that of its logarithm. An interval
  is after surgery when the surgery came on or before the injection that starts it; one with the surgery
  inside it counts as before. Beside it, as a sensitivity analysis on the days scale, ``mixed`` /
  ``mixed_vs_bont_alone``: a linear mixed model (REML, random intercept per patient, patient-clustered
  sandwich errors) of the completed gaps alone, which misses the long ones (issue 29 measured -3 to -8 days
  with a realistic gap spread). A fit that warns (non-convergence, a variance on its boundary) keeps its
  numbers with ``diagnostics_ok`` false and the warning in ``note``.
- ``botox_units_per_session``, the answer: ``mixed_log`` / ``mixed_log_vs_bont_alone``, the same mixed model
  of log units: the ratio of units per session after vs before surgery (a dose is multiplied, not shifted;
  a Gaussian model of raw units leans on the large doses), ``std_error`` that of its log. Beside it, on the
  raw scale, ``mixed`` / ``mixed_vs_bont_alone``. A session is after surgery when the surgery came on or
  before its day.
- ``time_to_next_botox``: the hazard of the next injection as a recurrent event: each gap is a time to the
  next injection, the last one censored at the patient's last contact (visit or treatment); statsmodels
  ``PHReg`` with a cluster-robust (sandwich) variance by patient. The estimate is the hazard ratio after vs
  before surgery (below 1: the next injection comes later); ``std_error`` is that of its logarithm. The
  note says whether proportional hazards hold (Schoenfeld residuals of ``after`` against the rank of time).

Each is fitted twice: within the surgery patients alone (``aft``, ``mixed_log``, ``phreg``, ``mixed``), and
against the patients on BoNT alone (``..._vs_bont_alone``), the guard against drift: the patients on BoNT
alone (no other treatment ever) join the same model, and every row carries its session-number window (the
number of the injection that starts the interval, or of the session, counted from the index visit on: 1, 2,
3, 4, 5-6, 7 and on) as fixed effects (with each patient's share of rows in each window, so that they too are
compared within patients; for the hazard, the windows are strata and a term for the surgery patients' own
baseline hazard is added). So a change that comes with the session number anyway (doses titrated up over the
first sessions, intervals drifting) is estimated on patients who never had surgery and taken out: what is
left is the change that comes with surgery, compared over the same calendar of sessions. The guarded ratio
fits are the answer (``RATIO_AGAINST``, the report leads with them); each row's note gives the other fit.

Multiplicity (``FAMILY``): the three answers (guarded ratio fits and hazard) are a family, Holm among
themselves; so are the three within-patient ones, and the raw-scale sensitivity rows of each kind. None
shares a family with the comparative contrasts or with synergy.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
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
from pipeline.models.pairs import HAZARD, INTERVAL, RATIO_AGAINST, RATIO_WITHIN, RELIANCE_CONTRAST, UNITS
from pipeline.models.random_intercept import fit_random_intercept
from pipeline.models.sensitivity import minimum_detectable_difference
from pipeline.settings import ModelSettings
from pipeline.sql_files import read_sql

CONTRAST = RELIANCE_CONTRAST
TIMEPOINT = "all"
OUTCOMES = (INTERVAL, UNITS, HAZARD)
# Which way is less reliance on BoNT: longer intervals, fewer units, a lower hazard of the next injection.
HIGHER_IS_BETTER = {INTERVAL: True, UNITS: False, HAZARD: False}
WITHIN = {INTERVAL: "mixed", UNITS: "mixed", HAZARD: "phreg"}
AGAINST_BONT_ALONE = {INTERVAL: "mixed_vs_bont_alone", UNITS: "mixed_vs_bont_alone", HAZARD: "phreg_vs_bont_alone"}
METHODS = tuple(dict.fromkeys([*RATIO_AGAINST.values(), *RATIO_WITHIN.values(), *AGAINST_BONT_ALONE.values(), "mixed"]))
# Estimates on a ratio scale (model_estimates' benefit is not given for them: sql/marts/06_model_estimates.sql).
RATIO_METHODS = frozenset({*RATIO_WITHIN.values(), *RATIO_AGAINST.values()})
# The multiplicity families, Holm within each.
FAMILY = (
    {m: "answer" for m in RATIO_AGAINST.values()}
    | {m: "answer, within" for m in RATIO_WITHIN.values()}
    | {"mixed_vs_bont_alone": "days and units", "mixed": "days and units, within"}
)
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


def mixed_change(frame: pd.DataFrame, y: str, drift: bool) -> Estimate:
    """The ``after`` coefficient of a linear mixed model of ``y`` (days, units or log_units) with a random
    intercept per patient.

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
    if fit_record.on():
        outcome, logged = (INTERVAL, False) if y == "days" else (UNITS, y == "log_units")
        methods = (RATIO_WITHIN, RATIO_AGAINST) if logged else (WITHIN, AGAINST_BONT_ALONE)
        fit_record.record(
            "mixed",
            design.assign(**{".y": values, ".group": groups, ".cluster": groups}).reset_index(drop=True),
            key={"contrast": CONTRAST, "outcome": outcome, "timepoint": TIMEPOINT},
            published=methods[drift][outcome],
            exponentiate=logged,  # the row is the ratio: its estimate and interval exp() of the coefficient's
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


def _words(result: Estimate, ratio: bool) -> str:
    if not np.isfinite(result.estimate):
        return "not estimated"
    fmt = "{:.2f}" if ratio else "{:.1f}"
    return f"{fmt.format(result.estimate)} ({fmt.format(result.ci_low)} to {fmt.format(result.ci_high)})"


# What each fit reads: every gap (the open last one censored), the completed gaps alone, or the sessions.
EVERY_GAP, COMPLETED_GAPS, SESSIONS = "every gap", "completed gaps", "sessions"


def _fits(outcome: str) -> list[tuple[str, str, str, Callable[[pd.DataFrame, bool], Estimate]]]:
    """(within method, guarded method, rows read, fit) of an outcome: the answer's first."""
    if outcome == INTERVAL:
        return [
            (RATIO_WITHIN[outcome], RATIO_AGAINST[outcome], EVERY_GAP, aft_ratio),
            (WITHIN[outcome], AGAINST_BONT_ALONE[outcome], COMPLETED_GAPS, lambda f, d: mixed_change(f, "days", d)),
        ]
    if outcome == UNITS:
        return [
            (RATIO_WITHIN[outcome], RATIO_AGAINST[outcome], SESSIONS, units_ratio),
            (WITHIN[outcome], AGAINST_BONT_ALONE[outcome], SESSIONS, lambda f, d: mixed_change(f, "units", d)),
        ]
    return [(WITHIN[outcome], AGAINST_BONT_ALONE[outcome], EVERY_GAP, hazard_ratio)]


SENSITIVITY_WORDS = {
    COMPLETED_GAPS: "a sensitivity analysis on the days scale: completed gaps only, so the long open last gaps "
    "are missed; the answer is the censored gap-time model ({answer})",
    SESSIONS: "a sensitivity analysis on the raw scale; the answer is the ratio on the log scale ({answer})",
}


def reliance_rows(con: duckdb.DuckDBPyConnection, settings: ModelSettings) -> list[dict[str, object]]:
    """Two rows per fit (within the surgery patients; against those on BoNT alone), in ``model_estimates``'
    columns (without run_id and p_adjusted), with ``converged``. None where no patient with surgery had repeat
    injections."""
    gaps, sessions = load_gaps(con), load_sessions(con)
    frames = {EVERY_GAP: gaps, COMPLETED_GAPS: gaps[gaps["event"] == 1], SESSIONS: sessions}
    rows: list[dict[str, object]] = []
    for outcome in OUTCOMES:
        answer = ""
        for within_method, against_method, read, fit in _fits(outcome):
            data = frames[read]
            surgery = data[data["patient_group"] == "surgery"]
            if _n(surgery) == 0:
                break  # no patient with surgery and repeat injections: nothing to say, as no row (not a failed one)
            pair = _pair(outcome, data, fit, settings.min_group_size, (within_method, against_method))
            if answer and read in SENSITIVITY_WORDS:
                for row in pair:
                    row["note"] = f"{row['note']}; {SENSITIVITY_WORDS[read].format(answer=answer)}"
            answer = answer or f"{against_method}: {_words_of(pair[1])}"
            rows += pair
    for row in rows:
        row["mdd"] = (
            float("nan")
            if row["method"] in RATIO_METHODS
            else minimum_detectable_difference(float(row["std_error"]), settings.power)  # type: ignore[arg-type]
        )
    return rows


def _words_of(row: dict[str, object]) -> str:
    estimate = Estimate(float(row["estimate"]), float(row["std_error"]), float(row["ci_low"]), float(row["ci_high"]))  # type: ignore[arg-type]
    return _words(estimate, row["method"] in RATIO_METHODS)


def _pair(
    outcome: str,
    data: pd.DataFrame,
    fit: Callable[[pd.DataFrame, bool], Estimate],
    minimum: int,
    methods: tuple[str, str],
) -> list[dict[str, object]]:
    """The within-patient row and the row guarded against drift (surgery patients with those on BoNT alone)."""
    surgery = data[data["patient_group"] == "surgery"]
    alone = data[data["patient_group"] == "bont_alone"]
    n_after, n_before = _n(surgery[surgery["after"] == 1]), _n(surgery[surgery["after"] == 0])
    n_alone = _n(alone)
    both = surgery.groupby(["site_id", "patient_id"])["after"].nunique()
    n_both = int((both == 2).sum())
    results: dict[bool, tuple[Estimate, int, int]] = {}
    for drift in (False, True):
        if min(n_after, n_before) < minimum or (drift and n_alone < minimum):
            who = "surgery patients with a " + ("session" if outcome == UNITS else "gap") + " before and after"
            result = failed(
                f"not estimated: fewer than {minimum} {who} surgery" + (", or on BoNT alone" if drift else "")
            )
        else:
            result = _guarded(fit, pd.concat([surgery, alone]) if drift else surgery, drift, outcome)
        results[drift] = (result, n_after, n_alone if drift else n_before)
    within, against = results[False][0], results[True][0]
    ratio = methods[0] in RATIO_METHODS
    both_words = f"{n_both} surgery patients with both" if n_both >= minimum else f"fewer than {minimum} with both"
    if np.isfinite(within.estimate):
        within = replace(
            within,
            note=f"{within.note}; {both_words}; against patients on BoNT alone over the same session-number "
            f"windows ({methods[1]}): {_words(against, ratio)}",
        )
    if np.isfinite(against.estimate):
        against = replace(
            against,
            note=f"{against.note}; surgery patients and patients on BoNT alone ({n_alone}), session-number "
            "windows (1, 2, 3, 4, 5-6, 7+) as fixed effects (strata for the hazard): the drift over sessions "
            "without surgery taken out",
        )
    return [
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
        }
        for method, (result, n_treated, n_control) in (
            (methods[0], (within, *results[False][1:])),
            (methods[1], (against, *results[True][1:])),
        )
    ]


def lognormal_aft(
    days: np.ndarray, event: np.ndarray, x: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool]:
    """A log-normal accelerated failure time model of gap lengths with censored gaps (``event`` 0: the open
    last gap, cut off at the last contact): maximum likelihood, and patient-clustered sandwich SEs. Returns
    (coefficients, their robust SEs, converged); the log of the residual SD is the last parameter (R's
    ``survreg(dist = "lognormal", robust = TRUE)`` times G/(G-1): tests/crosscheck/refit.R)."""
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
    fit = optimize.minimize(
        negative_log_likelihood, start, jac=lambda t: -scores(t).sum(axis=0), method="BFGS", options={"gtol": 1e-8}
    )
    theta = fit.x
    # BFGS reports precision loss at an optimum it cannot refine: a score of (almost) zero is converged.
    converged = bool(fit.success) or float(np.abs(scores(theta).sum(axis=0)).max()) < 1e-4
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
    return theta, np.sqrt(np.clip(np.diag(robust), 0, None)), converged


def aft_ratio(frame: pd.DataFrame, drift: bool) -> Estimate:
    """The censored gap-time model: every gap, each open last one censored at the last contact, by a log-normal
    AFT on the design of :func:`_design` (issue 29: completed gaps alone miss the long ones after surgery). The
    estimate is the time ratio after vs before surgery, the multiple of a gap's length; ``std_error`` that of
    its log."""
    frame = frame.reset_index(drop=True)
    design = _design(frame, drift)
    kept = [int(c) for c in full_rank_columns(pd.DataFrame(design.to_numpy(dtype=float)), keep=2)[0]]
    design = design.iloc[:, kept]
    days, event, groups = frame["days"].to_numpy(dtype=float), frame["event"].to_numpy(dtype=int), _patients(frame)
    theta, se, converged = lognormal_aft(days, event, design.to_numpy(dtype=float), groups)
    if fit_record.on():
        fit_record.record(
            "aft",
            design.assign(**{".time": np.maximum(days, 0.5), ".event": event, ".cluster": groups}).reset_index(
                drop=True
            ),
            key={"contrast": CONTRAST, "outcome": INTERVAL, "timepoint": TIMEPOINT},
            published=RATIO_AGAINST[INTERVAL] if drift else RATIO_WITHIN[INTERVAL],
            x=[str(c) for c in design.columns],
            coefficient="after",
            distribution="lognormal",
            variance="robust sandwich by patient (score contributions summed by cluster) times G/(G-1)",
        )
    log_ratio, log_se = float(theta[1]), float(se[1])
    notes = [
        "censored gap-time model: log-normal accelerated failure time, each open last gap censored at the last "
        "contact, within-patient (Mundlak) term, patient-clustered errors; the estimate is the multiple of a "
        f"gap's length after surgery (residual SD on the log scale {np.exp(theta[-1]):.2f})"
    ]
    if not converged:
        notes.insert(0, "did not converge cleanly: the optimiser stopped short of the maximum likelihood")
    return _ratio_estimate(log_ratio, log_se, converged, notes)


def units_ratio(frame: pd.DataFrame, drift: bool) -> Estimate:
    """The mixed model of :func:`mixed_change` on log units: the ratio of units per session after vs before
    surgery (issue 29: a dose is multiplied, not shifted, and a Gaussian model of raw units leans on the large
    doses); ``std_error`` that of its log."""
    if not (frame["units"] > 0).all():
        return failed("not estimated on the log scale: a session recorded with no units")
    logged = frame.assign(log_units=np.log(frame["units"].astype(float))).reset_index(drop=True)
    fit = mixed_change(logged, "log_units", drift)
    if not np.isfinite(fit.estimate):
        return fit
    notes = [str(fit.note).replace("linear mixed model", "linear mixed model of log units"), "the ratio of units"]
    return _ratio_estimate(fit.estimate, fit.std_error, fit.diagnostics_ok, notes)


def _ratio_estimate(log_ratio: float, log_se: float, ok: bool, notes: list[str]) -> Estimate:
    if not (np.isfinite(log_ratio) and np.isfinite(log_se) and log_se > 0):
        return failed("; ".join([*notes, "fit failed: non-finite result"]))
    half = stats.norm.ppf(1 - ALPHA / 2) * log_se
    return Estimate(
        float(np.exp(log_ratio)),
        log_se,
        float(np.exp(log_ratio - half)),
        float(np.exp(log_ratio + half)),
        float(2 * stats.norm.sf(abs(log_ratio / log_se))),
        ok,
        "; ".join(notes),
        converged=ok,
    )


def _guarded(fit: Callable[[pd.DataFrame, bool], Estimate], frame: pd.DataFrame, drift: bool, outcome: str) -> Estimate:
    try:
        return fit(frame.reset_index(drop=True), drift)
    except Exception as error:  # a failed fit is a result to report, not a crash of the whole run
        return failed(f"fit failed ({outcome}): {type(error).__name__}: {error}")
