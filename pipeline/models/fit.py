"""Fit every method, contrast, outcome and timepoint; return rows in the contract's columns.

Small groups: where either group of a contrast has fewer than ``min_group_size`` patients with the
outcome at the timepoint, each method gets a row with a NULL estimate, ``diagnostics_ok`` false and
the reason in ``note`` (and a line in ``warnings``), so the report can say why a number is missing.
An outcome/timepoint that no patient of either group has is left out (and listed in ``warnings``).

Numerical warnings of the fits (statsmodels' rank-deficient designs, a Hessian not inverted, numpy's
divisions by zero) are caught, never printed: each is kept in ``numerical_warnings`` with the
contrast and outcome it came from (the caller logs them at DEBUG and counts them in one line).

Run id: the first 16 hex digits of a SHA-256 of the data snapshot, the settings, the code version
and a digest of the analysis inputs themselves: the same data, settings and code give the same
numbers and the same id (a refit replaces its own rows), a change to any of them a new id.
"""

from __future__ import annotations

import hashlib
import json
import warnings as python_warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import duckdb
import numpy as np
import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.models import fit_record
from pipeline.models.aipw import aipw, withheld
from pipeline.models.claims import claim_rows, with_claims
from pipeline.models.design_matrix import (
    Contrast,
    add_severity,
    analysis_frames,
    define_contrasts,
    load_baselines,
    load_changes,
    load_population,
    sites_left_out_note,
    wide_frame,
)
from pipeline.models.estimands import with_roles
from pipeline.models.estimators import Estimate, adjustment_design, ancova, failed, unadjusted
from pipeline.models.imputation import mice
from pipeline.models.measures import measure_rows, with_measures
from pipeline.models.mixed import mixed
from pipeline.models.multiplicity import adjusted_p_values
from pipeline.models.parallel import map_jobs, one_blas_thread, workers_for
from pipeline.models.propensity import Overlap, PropensityResult, contrast_overlap, iptw, no_overlap
from pipeline.models.sensitivity import e_values, minimum_detectable_difference
from pipeline.models.target_trial import SUMMARY_COLUMNS
from pipeline.settings import ModelSettings
from pipeline.versions import package_versions

T = TypeVar("T")
METHODS = ModelSettings.methods  # every method, in the order estimates are listed
PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "duckdb")

ESTIMATE_COLUMNS = (
    "run_id",
    "method",
    "outcome",
    "timepoint",
    "contrast",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "n_treated",
    "n_control",
    "higher_is_better",
    "diagnostics_ok",
    "note",
    "e_value",
    "e_value_ci",
    "mdd",
    "estimand",
    "role",
    "site_spread",
    "converged",
    "boundary",
    "balance_ok",
    "overlap_ok",
)
# Who is in each estimate: its two groups' patients (first_group true: the contrast's first group), as fitted.
ESTIMATE_PATIENT_COLUMNS = (
    "run_id",
    "contrast",
    "outcome",
    "timepoint",
    "method",
    "site_id",
    "patient_id",
    "first_group",
)
RUN_COLUMNS = ("run_id", "started_at", "data_snapshot", "code_version", "settings", "packages")
PREFERENCE_COLUMNS = ("run_id", "contrast", "site_id", "patient_id", "first_group", "preference_score")
BALANCE_COLUMNS = ("run_id", "contrast", "outcome", "timepoint", "covariate", "smd_unweighted", "smd_weighted")
DIAGNOSTICS_COLUMNS = (
    "run_id",
    "contrast",
    "outcome",
    "timepoint",
    "covariates",
    "auc",
    "equipoise_share",
    "ess_treated",
    "ess_control",
    "max_abs_smd_weighted",
    "n_truncated",
    "diagnostics_ok",
    "note",
)


@dataclass
class ModelResults:
    model_runs: pd.DataFrame
    model_estimates: pd.DataFrame
    covariate_balance: pd.DataFrame
    propensity_diagnostics: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    preference_scores: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(PREFERENCE_COLUMNS)))
    numerical_warnings: list[str] = field(default_factory=list)  # "<where>: <Category>: <message>"
    estimate_patients: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(ESTIMATE_PATIENT_COLUMNS))
    )
    # The target trial's emulation per outcome, trial and arm (issue 31; pipeline/models/target_trial.py).
    target_trial_summary: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SUMMARY_COLUMNS)))


@contextmanager
def caught_warnings(into: list[str], where: str) -> Iterator[None]:
    """Keep every warning raised inside (a fit's numerical ones) in ``into`` as "<where>: <Category>:
    <message>", whatever the process's warning filters say: none reaches the console or a task log."""
    with python_warnings.catch_warnings(record=True) as caught:
        python_warnings.simplefilter("always")
        yield
    into.extend(f"{where}: {w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught)


def settings_json(settings: ModelSettings) -> str:
    return json.dumps(settings.as_dict(), sort_keys=True)


def _inputs_digest(population: pd.DataFrame, changes: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for frame in (population, changes):
        digest.update(",".join(frame.columns).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def make_run_id(data_snapshot: str, settings: ModelSettings, code_version: str, inputs_digest: str) -> str:
    key = json.dumps(
        {
            "data_snapshot": data_snapshot,
            "settings": settings.as_dict(),
            "code_version": code_version,
            "inputs": inputs_digest,
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _small_group_note(contrast: Contrast, n_treated: int, n_control: int, minimum: int) -> str:
    groups = [
        label for label, n in ((contrast.treated_label, n_treated), (contrast.control_label, n_control)) if n < minimum
    ]
    return f"not estimated: fewer than {minimum} patients in the {' and the '.join(groups)} group"


def _guarded(method: str, fit: Callable[[], T], fallback: Callable[[str], T]) -> T:
    try:
        return fit()
    except Exception as error:  # a failed fit is a result to report, not a crash of the whole run
        return fallback(f"fit failed ({method}): {type(error).__name__}: {error}")


def _pooled_sd(frame: pd.DataFrame) -> float:
    """Pooled within-group SD of change: the scale of the E-value's standardized difference."""
    groups = [frame.loc[frame["treated"] == g, "change"].astype(float) for g in (1, 0)]
    dof = sum(len(g) - 1 for g in groups)
    if dof <= 0:
        return float("nan")
    return float(np.sqrt(sum(((g - g.mean()) ** 2).sum() for g in groups) / dof))


@dataclass
class _Cell:
    """One contrast, outcome and timepoint: its observed patients and every method's result."""

    contrast: Contrast
    outcome: str
    timepoint: str
    frame: pd.DataFrame
    small_note: str | None
    results: dict[str, tuple[Estimate, int, int]] = field(default_factory=dict)
    # The patients of a method fitted on other rows than the cell's own (mixed: every timepoint fitted; mice:
    # every patient with a baseline); the rest fit the cell's frame.
    patients: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def counts(self) -> tuple[int, int]:
        n_treated = int((self.frame["treated"] == 1).sum())
        return n_treated, len(self.frame) - n_treated


def _group_counts(frame: pd.DataFrame) -> tuple[int, int]:
    patients = frame.drop_duplicates(["site_id", "patient_id"])
    n_treated = int((patients["treated"] == 1).sum())
    return n_treated, len(patients) - n_treated


def _fit_cross_sectional(
    cell: _Cell, settings: ModelSettings, diagnostics: list[dict[str, object]], balance: list[pd.DataFrame]
) -> None:
    """unadjusted, ancova, aipw and iptw on the patients observed at the cell's timepoint."""
    with fit_record.labelled(contrast=cell.contrast.name, outcome=cell.outcome, timepoint=cell.timepoint):
        _fit_cell(cell, settings, diagnostics, balance)


def _fit_cell(
    cell: _Cell, settings: ModelSettings, diagnostics: list[dict[str, object]], balance: list[pd.DataFrame]
) -> None:
    counts, frame = cell.counts, cell.frame
    # One design for ancova and iptw: pooling levels and the rank checks are most of their cost.
    prepared = _guarded("design", lambda: adjustment_design(frame, settings), lambda note: (None, [note]))
    if "unadjusted" in settings.methods:
        cell.results["unadjusted"] = (_guarded("unadjusted", lambda: unadjusted(frame), failed), *counts)
    if "ancova" in settings.methods:
        cell.results["ancova"] = (_guarded("ancova", lambda: ancova(frame, settings, prepared), failed), *counts)
    if "aipw" in settings.methods:
        cell.results["aipw"] = (_guarded("aipw", lambda: aipw(frame, settings, prepared), failed), *counts)
    if "iptw" not in settings.methods:
        return
    weighted = _guarded("iptw", lambda: iptw(frame, settings, prepared), lambda note: PropensityResult(failed(note)))
    cell.results["iptw"] = (weighted.estimate, *counts)
    if weighted.covariates and np.isfinite(weighted.auc):
        key = {"contrast": cell.contrast.name, "outcome": cell.outcome, "timepoint": cell.timepoint}
        diagnostics.append(
            {
                **key,
                "covariates": json.dumps(weighted.covariates),
                "auc": weighted.auc,
                "equipoise_share": weighted.equipoise_share,
                "ess_treated": weighted.ess_treated,
                "ess_control": weighted.ess_control,
                "max_abs_smd_weighted": weighted.max_abs_smd_weighted,
                "n_truncated": weighted.n_truncated,
                "diagnostics_ok": weighted.estimate.diagnostics_ok,
                "note": weighted.estimate.note,
            }
        )
        balance.append(weighted.balance.assign(**key))


def _fit_longitudinal(
    cells: list[_Cell], wide: pd.DataFrame | None, settings: ModelSettings, timepoints: tuple[str, ...]
) -> None:
    """mixed (every follow-up row) and mice (every patient with a baseline), once per contrast and
    outcome; each gives an estimate for every timepoint."""
    by_timepoint = {cell.timepoint: cell for cell in cells}

    def spread(
        method: str, fit: Callable[[], dict[str, Estimate]], counts: tuple[int, int], patients: pd.DataFrame
    ) -> None:
        results = _guarded(method, fit, lambda note: {t: failed(note) for t in by_timepoint})
        for timepoint, cell in by_timepoint.items():
            cell.results[method] = (results.get(timepoint, failed("not estimated: no data at this timepoint")), *counts)
            cell.patients[method] = patients

    label = fit_record.labelled(contrast=cells[0].contrast.name, outcome=cells[0].outcome, timepoint="all")
    with label:
        if "mixed" in settings.methods:
            long = pd.concat([cell.frame for cell in cells], ignore_index=True)
            spread("mixed", lambda: mixed(long, settings, timepoints), _group_counts(long), _patients(long))
        if "mice" in settings.methods and wide is not None:
            key = f"{cells[0].contrast.name}/{cells[0].outcome}"
            spread("mice", lambda: mice(wide, settings, key, timepoints), _group_counts(wide), _patients(wide))


def _patients(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per patient of an analysis frame: site_id, patient_id and first_group."""
    patients = frame.drop_duplicates(["site_id", "patient_id"])
    return pd.DataFrame(
        {
            "site_id": patients["site_id"].astype(str).to_numpy(),
            "patient_id": patients["patient_id"].astype(str).to_numpy(),
            "first_group": (patients["treated"] == 1).to_numpy(),
        }
    )


def _fit_outcome(
    contrast: Contrast,
    outcome: str,
    frames: dict[tuple[str, str], pd.DataFrame],
    wide: pd.DataFrame | None,
    settings: ModelSettings,
    timepoints: tuple[str, ...],
    warnings: list[str],
    diagnostics: list[dict[str, object]],
    balance: list[pd.DataFrame],
    overlap: Overlap | None = None,
) -> list[_Cell]:
    cells = []
    for timepoint in timepoints:
        frame = frames.get((outcome, timepoint))
        if frame is None:
            continue
        cell = _Cell(contrast, outcome, timepoint, frame, None)
        if min(cell.counts) < settings.min_group_size:
            cell.small_note = _small_group_note(contrast, *cell.counts, settings.min_group_size)
            warnings.append(f"{contrast.name}, {outcome} at {timepoint}: {cell.small_note}.")
        cells.append(cell)
    fitted = [cell for cell in cells if cell.small_note is None]
    for cell in fitted:
        _fit_cross_sectional(cell, settings, diagnostics, balance)
    if fitted:
        _fit_longitudinal(fitted, wide, settings, timepoints)
    for cell in cells:
        for method in settings.methods:
            if method in cell.results and overlap is not None:
                result, *counts = cell.results[method]
                result = overlap.apply(result, method)
                cell.results[method] = (withheld(result) if method == "aipw" else result, *counts)
            if method in cell.results:
                result = cell.results[method][0]
                if not result.diagnostics_ok:
                    warnings.append(f"{contrast.name}, {outcome} at {cell.timepoint}, {method}: {result.note}.")
            else:
                cell.results[method] = (failed(cell.small_note or "not estimated"), *cell.counts)
    return cells


@dataclass(frozen=True)
class _OutcomeJob:
    """One contrast and outcome: every timepoint and method, fitted apart from the others."""

    contrast: Contrast
    outcome: str
    frames: dict[tuple[str, str], pd.DataFrame]
    wide: pd.DataFrame | None
    settings: ModelSettings
    timepoints: tuple[str, ...]  # the design's, earliest first
    overlap: Overlap | None  # the contrast's, for every method


@dataclass
class _OutcomeFits:
    cells: list[_Cell]
    warnings: list[str]
    diagnostics: list[dict[str, object]]
    balance: list[pd.DataFrame]
    numerical: list[str] = field(default_factory=list)


def _fit_job(job: _OutcomeJob) -> _OutcomeFits:
    fits = _OutcomeFits([], [], [], [])
    # Caught in the job itself: a worker process's warnings would not reach the parent's filters.
    with caught_warnings(fits.numerical, f"{job.contrast.name}, {job.outcome}"):
        fits.cells = _fit_outcome(
            job.contrast,
            job.outcome,
            job.frames,
            job.wide,
            job.settings,
            job.timepoints,
            fits.warnings,
            fits.diagnostics,
            fits.balance,
            job.overlap,
        )
    return fits


def _estimate_rows(
    population: pd.DataFrame,
    baselines: pd.DataFrame,
    changes: pd.DataFrame,
    contrasts: list[Contrast],
    settings: ModelSettings,
    design: AnalysisDesign,
    warnings: list[str],
    diagnostics: list[dict[str, object]],
    balance: list[pd.DataFrame],
    workers: int,
    overlaps: dict[str, Overlap | None],
    preference: dict[str, pd.DataFrame | None],
    numerical: list[str],
    members: dict[tuple[str, str, str], tuple[pd.DataFrame, dict[str, pd.DataFrame]]] | None = None,
) -> list[dict[str, object]]:
    """Every comparative row; ``members`` gets each cell's patients (its frame's, and the methods' fitted on
    other rows), keyed by (contrast, outcome, timepoint)."""
    missing: dict[str, list[str]] = {}
    jobs: list[_OutcomeJob] = []
    for contrast in contrasts:
        frames = analysis_frames(population, changes, contrast)
        wides = wide_frame(population, baselines, changes, contrast)
        grouped = population.assign(treated=contrast.group(population)).dropna(subset=["treated"])
        # A failed overlap model is the verdict 'no overlap', never no verdict (issue 29).
        overlap = _guarded("overlap", lambda g=grouped: contrast_overlap(g, settings), no_overlap)
        if overlap is not None:
            preference[contrast.name] = overlap.scores
            overlap = overlap.without_scores()  # the jobs need the verdict, not every patient's score
        overlaps[contrast.name] = overlap
        for outcome in design.outcomes:
            if contrast is contrasts[0]:
                for timepoint in design.timepoints:
                    if (outcome, timepoint) not in frames:
                        missing.setdefault(outcome, []).append(timepoint)
            outcome_frames = {key: frame for key, frame in frames.items() if key[0] == outcome}
            jobs.append(
                _OutcomeJob(contrast, outcome, outcome_frames, wides.get(outcome), settings, design.timepoints, overlap)
            )
    rows: list[dict[str, object]] = []
    # Jobs are independent (mice seeds by contrast and outcome); results come back in job order, so
    # warnings and rows are the same on one process or several.
    for job, fits in zip(jobs, map_jobs(_fit_job, jobs, workers), strict=True):
        warnings.extend(fits.warnings)
        numerical.extend(fits.numerical)
        diagnostics.extend(fits.diagnostics)
        balance.extend(fits.balance)
        for cell in fits.cells:
            if members is not None:
                members[(job.contrast.name, job.outcome, cell.timepoint)] = (_patients(cell.frame), cell.patients)
            sd = _pooled_sd(cell.frame)
            if cell.small_note is None and fit_record.on():  # a cell with a group too small has no fit
                fit_record.record(
                    "sensitivity",
                    cell.frame[["treated", "change"]],
                    key={"contrast": job.contrast.name, "outcome": job.outcome, "timepoint": cell.timepoint},
                    sd="pooled within-group SD of change",
                    power=settings.power,
                    alpha=0.05,
                )
            for method in settings.methods:
                result, n_treated, n_control = cell.results[method]
                e_value, e_value_ci = e_values(result.estimate, result.std_error, sd)
                if not np.isfinite(result.ci_low):  # no interval published: no bound of the E-value either
                    e_value_ci = float("nan")
                rows.append(
                    {
                        "method": method,
                        "outcome": job.outcome,
                        "timepoint": cell.timepoint,
                        "contrast": job.contrast.name,
                        **result.columns(),
                        "n_treated": n_treated,
                        "n_control": n_control,
                        "higher_is_better": design.higher_is_better[job.outcome],
                        "e_value": e_value,
                        "e_value_ci": e_value_ci,
                        "mdd": minimum_detectable_difference(result.std_error, settings.power),
                    }
                )
    never = [outcome for outcome, tps in missing.items() if len(tps) == len(design.timepoints)]
    if never:
        warnings.append(f"No follow-up score with a baseline at any timepoint (no estimate) for: {', '.join(never)}.")
    partly = [f"{outcome} at {', '.join(tps)}" for outcome, tps in missing.items() if outcome not in never]
    if partly:
        warnings.append(f"No follow-up score with a baseline, so no estimate, for: {'; '.join(partly)}.")
    return rows


def _estimates_frame(
    rows: list[dict[str, object]], run_id: str, contrasts: list[Contrast], design: AnalysisDesign
) -> pd.DataFrame:
    columns = [c for c in ESTIMATE_COLUMNS if c not in ("run_id", "p_adjusted")]
    frame = pd.DataFrame(rows, columns=columns)
    frame.insert(0, "run_id", run_id)
    frame["p_adjusted"] = adjusted_p_values(
        frame, frame["converged"].astype(bool), design.primary_outcome, design.composite_of
    )
    order = {
        "contrast": {c.name: i for i, c in enumerate(contrasts)},
        "outcome": {o: i for i, o in enumerate(design.outcomes)},
        "timepoint": {t: i for i, t in enumerate(design.timepoints)},
        "method": {m: i for i, m in enumerate(METHODS)},
    }
    keys = pd.DataFrame({k: frame[k].map(v) for k, v in order.items()})
    frame = frame.iloc[keys.sort_values(list(order)).index].reset_index(drop=True)
    return _typed(frame, ESTIMATE_COLUMNS, run_id)


BOOL_COLUMNS = frozenset({"higher_is_better", "diagnostics_ok", "converged", "boundary"})
NULLABLE_BOOL_COLUMNS = frozenset({"balance_ok", "overlap_ok"})  # NULL: the method has no such check
INT_COLUMNS = frozenset({"n_treated", "n_control", "n_truncated", "clones", "followed", "flagged"})
TEXT_COLUMNS = frozenset(
    {
        *("run_id", "method", "outcome", "timepoint", "contrast", "covariate", "covariates", "note"),
        *("estimand", "role", "trial", "arm"),
    }
)


def _typed(frame: pd.DataFrame, columns: tuple[str, ...], run_id: str) -> pd.DataFrame:
    """The contract's columns in order, each with its type (the rest are doubles)."""
    frame = frame.assign(run_id=run_id).reindex(columns=list(columns))
    for column in frame.columns:
        if column in BOOL_COLUMNS:
            frame[column] = frame[column].fillna(False).astype(bool)
        elif column in NULLABLE_BOOL_COLUMNS:
            frame[column] = frame[column].astype("boolean")
        elif column in INT_COLUMNS:
            frame[column] = frame[column].astype("int64")
        elif column in TEXT_COLUMNS:
            frame[column] = frame[column].astype("str")
        else:
            frame[column] = frame[column].astype(float)
    return frame


def fit_models(
    con: duckdb.DuckDBPyConnection,
    settings: ModelSettings = ModelSettings(),  # noqa: B008
    data_snapshot: str = "",
    code_version: str = "",
    workers: int | None = None,
) -> ModelResults:
    """Fit every method for every contrast, outcome and follow-up timepoint.

    ``workers``: processes to fit on; by default every core once the population is large enough to
    repay starting them. The estimates are the same either way."""
    numerical: list[str] = []
    # The measures' and claims' fits (and the overlap's) run here: their warnings are caught as the jobs'.
    with caught_warnings(numerical, "measures and claims"):
        results = _fit_all(con, settings, data_snapshot, code_version, workers, numerical)
    results.numerical_warnings = numerical
    return results


def _fit_all(
    con: duckdb.DuckDBPyConnection,
    settings: ModelSettings,
    data_snapshot: str,
    code_version: str,
    workers: int | None,
    numerical: list[str],
) -> ModelResults:
    started_at = datetime.now(UTC).replace(tzinfo=None)
    warnings: list[str] = []
    design = AnalysisDesign.read(con)
    population = load_population(con, settings.covariates)
    changes = load_changes(con)
    baselines = load_baselines(con)
    measures = tuple(m for m in settings.severity_measures if m in design.outcomes)
    population = add_severity(population, baselines, measures)
    run_id = make_run_id(data_snapshot, settings, code_version, _inputs_digest(population, changes))
    contrasts, contrast_warnings = define_contrasts(population, settings.min_group_size)
    warnings.extend(contrast_warnings)
    diagnostics: list[dict[str, object]] = []
    balance: list[pd.DataFrame] = []
    if workers is None:
        workers = workers_for(len(population))
    overlaps: dict[str, Overlap | None] = {}  # each contrast's, for the measures too
    preference: dict[str, pd.DataFrame | None] = {}  # each contrast's patients' preference scores
    members: dict[tuple[str, str, str], tuple[pd.DataFrame, dict[str, pd.DataFrame]]] = {}
    with one_blas_thread():
        rows = _estimate_rows(
            population,
            baselines,
            changes,
            contrasts,
            settings,
            design,
            warnings,
            diagnostics,
            balance,
            workers,
            overlaps,
            preference,
            numerical,
            members,
        )
    estimates = _estimates_frame(rows, run_id, contrasts, design)
    # Responders and the ordinal House-Brackmann, beside the mean differences (pipeline/models/measures.py).
    measures = measure_rows(population, baselines, changes, contrasts, settings, design, run_id, overlaps)
    estimates = with_measures(estimates, measures)
    # What surgeons claim, tested: synergy and reliance on BoNT after surgery (pipeline/models/claims.py).
    emulation: list[pd.DataFrame] = []  # the target trial's summary (pipeline/models/target_trial.py)
    claims = claim_rows(con, population, changes, design, settings, warnings, emulation)
    estimates = with_claims(estimates, claims, run_id)
    # Each row's estimand and role in the analysis plan (docs/sap.md), claims and measures included.
    estimates = with_roles(_flag_degenerate(_note_sites_left_out(estimates, contrasts, population)), con)
    runs = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "started_at": pd.Timestamp(started_at),
                "data_snapshot": data_snapshot,
                "code_version": code_version,
                "settings": settings_json(settings),
                "packages": json.dumps(package_versions(PACKAGES), sort_keys=True),
            }
        ],
        columns=list(RUN_COLUMNS),
    )
    balance_frame = pd.concat(balance, ignore_index=True) if balance else pd.DataFrame(columns=list(BALANCE_COLUMNS))
    diagnostics_frame = pd.DataFrame(diagnostics, columns=[c for c in DIAGNOSTICS_COLUMNS if c != "run_id"])
    return ModelResults(
        runs,
        estimates,
        _typed(balance_frame, BALANCE_COLUMNS, run_id),
        _typed(diagnostics_frame, DIAGNOSTICS_COLUMNS, run_id),
        warnings,
        _preference_frame(preference, run_id),
        estimate_patients=_estimate_patients_frame(estimates, members, run_id),
        target_trial_summary=_typed(
            pd.concat(emulation, ignore_index=True) if emulation else pd.DataFrame(), SUMMARY_COLUMNS, run_id
        ),
    )


def _note_sites_left_out(estimates: pd.DataFrame, contrasts: list[Contrast], population: pd.DataFrame) -> pd.DataFrame:
    """Each comparison's rows say how many sites it left out for offering only one of its groups."""
    frame = estimates
    sites = int(population["site_id"].nunique())
    for contrast in contrasts:
        left_out = contrast.sites_left_out(population)
        rows = (frame["contrast"] == contrast.name).to_numpy()
        if not left_out or not rows.any():
            continue
        frame = frame.copy() if frame is estimates else frame
        said = sites_left_out_note(left_out, sites)
        frame.loc[rows, "note"] = [f"{said}; {note}" if note else said for note in frame.loc[rows, "note"]]
    return frame


DEGENERATE = "degenerate fit: its standard error is 0 (to rounding) or not finite, so its interval means nothing"


def _flag_degenerate(estimates: pd.DataFrame) -> pd.DataFrame:
    """An estimate whose SE is 0 or not finite (a zero-variance outcome gave SE 0, CI [0, 0]) is flagged."""
    se, value = estimates["std_error"].to_numpy(dtype=float), estimates["estimate"].to_numpy(dtype=float)
    # Zero to rounding: a least-squares fit of a constant leaves residuals of 1e-15, not 0.
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(value) & ~(np.isfinite(se) & (se > 1e-8 * (1 + np.abs(value))))
    if not bad.any():
        return estimates
    frame = estimates.copy()
    frame.loc[bad, "diagnostics_ok"] = False
    frame.loc[bad, "note"] = [f"{DEGENERATE}; {note}" if note else DEGENERATE for note in frame.loc[bad, "note"]]
    return frame


def _estimate_patients_frame(
    estimates: pd.DataFrame,
    members: dict[tuple[str, str, str], tuple[pd.DataFrame, dict[str, pd.DataFrame]]],
    run_id: str,
) -> pd.DataFrame:
    """The patients of every comparative estimate (the responders and ordinal ones too, fitted on the cell's
    frame), so the report reads who is in an estimate rather than choosing them again."""
    frames = []
    for r in estimates[["contrast", "outcome", "timepoint", "method"]].drop_duplicates().itertuples(index=False):
        found = members.get((str(r.contrast), str(r.outcome), str(r.timepoint)))
        if found is None:
            continue
        own, by_method = found
        patients = by_method.get(str(r.method), own)
        frames.append(patients.assign(contrast=r.contrast, outcome=r.outcome, timepoint=r.timepoint, method=r.method))
    if not frames:
        return pd.DataFrame(columns=list(ESTIMATE_PATIENT_COLUMNS))
    frame = pd.concat(frames, ignore_index=True).assign(run_id=run_id).reindex(columns=list(ESTIMATE_PATIENT_COLUMNS))
    frame["first_group"] = frame["first_group"].astype(bool)
    return frame


def _preference_frame(preference: dict[str, pd.DataFrame | None], run_id: str) -> pd.DataFrame:
    """Every contrast's patients with their preference score (Walker et al. 2013), in contrast order."""
    frames = [f.assign(contrast=name) for name, f in preference.items() if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=list(PREFERENCE_COLUMNS))
    frame = pd.concat(frames, ignore_index=True).assign(run_id=run_id).reindex(columns=list(PREFERENCE_COLUMNS))
    frame["first_group"] = frame["first_group"].astype(bool)
    frame["preference_score"] = frame["preference_score"].astype(float)
    for column in ("run_id", "contrast", "site_id", "patient_id"):
        frame[column] = frame[column].astype(str)
    return frame
