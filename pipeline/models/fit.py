"""Fit every method, contrast, outcome and timepoint; return rows in the contract's columns.

Small groups: where either group of a contrast has fewer than ``min_group_size`` patients with the
outcome at the timepoint, each method gets a row with a NULL estimate, ``diagnostics_ok`` false and
the reason in ``note`` (and a line in ``warnings``), so the report can say why a number is missing.
An outcome/timepoint that no patient of either group has is left out (and listed in ``warnings``).

Run id: the first 16 hex digits of a SHA-256 of the data snapshot, the settings, the code version
and a digest of the analysis inputs themselves: the same data, settings and code give the same
numbers and the same id (a refit replaces its own rows), a change to any of them a new id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata

import duckdb
import pandas as pd

from pipeline.contract import OUTCOMES
from pipeline.models.design_matrix import (
    FOLLOWUP_TIMEPOINTS,
    Contrast,
    analysis_frames,
    define_contrasts,
    load_changes,
    load_population,
)
from pipeline.models.estimators import Estimate, ancova, failed, holm, unadjusted
from pipeline.settings import ModelSettings

METHODS = ("unadjusted", "ancova")
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
)
RUN_COLUMNS = ("run_id", "started_at", "data_snapshot", "code_version", "settings", "packages")
BALANCE_COLUMNS = ("run_id", "contrast", "outcome", "covariate", "smd_unweighted", "smd_weighted")


@dataclass
class ModelResults:
    model_runs: pd.DataFrame
    model_estimates: pd.DataFrame
    covariate_balance: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


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


def _fit_cell(frame: pd.DataFrame, method: str, settings: ModelSettings) -> Estimate:
    try:
        return unadjusted(frame) if method == "unadjusted" else ancova(frame, settings)
    except Exception as error:  # a failed fit is a result to report, not a crash of the whole run
        return failed(f"fit failed: {type(error).__name__}: {error}")


def _estimate_rows(
    population: pd.DataFrame,
    changes: pd.DataFrame,
    contrasts: list[Contrast],
    settings: ModelSettings,
    warnings: list[str],
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    missing: dict[str, list[str]] = {}
    for contrast in contrasts:
        frames = analysis_frames(population, changes, contrast)
        for outcome, higher_is_better in OUTCOMES.items():
            for timepoint in FOLLOWUP_TIMEPOINTS:
                frame = frames.get((outcome, timepoint))
                if frame is None:
                    if contrast is contrasts[0]:
                        missing.setdefault(outcome, []).append(timepoint)
                    continue
                n_treated = int((frame["treated"] == 1).sum())
                n_control = len(frame) - n_treated
                small = min(n_treated, n_control) < settings.min_group_size
                if small:
                    note = _small_group_note(contrast, n_treated, n_control, settings.min_group_size)
                    warnings.append(f"{contrast.name}, {outcome} at {timepoint}: {note}.")
                for method in METHODS:
                    result = failed(note) if small else _fit_cell(frame, method, settings)
                    if not small and not result.diagnostics_ok:
                        warnings.append(f"{contrast.name}, {outcome} at {timepoint}, {method}: {result.note}.")
                    rows.append(
                        {
                            "method": method,
                            "outcome": outcome,
                            "timepoint": timepoint,
                            "contrast": contrast.name,
                            "estimate": result.estimate,
                            "std_error": result.std_error,
                            "ci_low": result.ci_low,
                            "ci_high": result.ci_high,
                            "p_value": result.p_value,
                            "n_treated": n_treated,
                            "n_control": n_control,
                            "higher_is_better": higher_is_better,
                            "diagnostics_ok": result.diagnostics_ok,
                            "note": result.note,
                        }
                    )
    never = [outcome for outcome, tps in missing.items() if len(tps) == len(FOLLOWUP_TIMEPOINTS)]
    if never:
        warnings.append(f"No follow-up score with a baseline at any timepoint (no estimate) for: {', '.join(never)}.")
    partly = [f"{outcome} at {', '.join(tps)}" for outcome, tps in missing.items() if outcome not in never]
    if partly:
        warnings.append(f"No follow-up score with a baseline, so no estimate, for: {'; '.join(partly)}.")
    return rows


def _estimates_frame(rows: list[dict[str, object]], run_id: str, contrasts: list[Contrast]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[c for c in ESTIMATE_COLUMNS if c not in ("run_id", "p_adjusted")])
    frame.insert(0, "run_id", run_id)
    frame["p_adjusted"] = float("nan")
    for _, index in frame.groupby(["method", "contrast", "timepoint"], sort=True).groups.items():
        frame.loc[index, "p_adjusted"] = holm(frame.loc[index, "p_value"].astype(float)).to_numpy()
    order = {
        "contrast": {c.name: i for i, c in enumerate(contrasts)},
        "outcome": {o: i for i, o in enumerate(OUTCOMES)},
        "timepoint": {t: i for i, t in enumerate(FOLLOWUP_TIMEPOINTS)},
        "method": {m: i for i, m in enumerate(METHODS)},
    }
    keys = pd.DataFrame({k: frame[k].map(v) for k, v in order.items()})
    frame = frame.iloc[keys.sort_values(list(order)).index].reset_index(drop=True)
    for column in ("estimate", "std_error", "ci_low", "ci_high", "p_value", "p_adjusted"):
        frame[column] = frame[column].astype(float)
    for column in ("n_treated", "n_control"):
        frame[column] = frame[column].astype("int64")
    for column in ("higher_is_better", "diagnostics_ok"):
        frame[column] = frame[column].astype(bool)
    frame["note"] = frame["note"].astype("str")
    return frame[list(ESTIMATE_COLUMNS)]


def fit_models(
    con: duckdb.DuckDBPyConnection,
    settings: ModelSettings = ModelSettings(),  # noqa: B008
    data_snapshot: str = "",
    code_version: str = "",
) -> ModelResults:
    """Fit ``unadjusted`` and ``ancova`` for every contrast, outcome and follow-up timepoint."""
    started_at = datetime.now(UTC).replace(tzinfo=None)
    warnings: list[str] = []
    population = load_population(con, settings.covariates)
    changes = load_changes(con)
    run_id = make_run_id(data_snapshot, settings, code_version, _inputs_digest(population, changes))
    contrasts, contrast_warnings = define_contrasts(population, settings.min_group_size)
    warnings.extend(contrast_warnings)
    rows = _estimate_rows(population, changes, contrasts, settings, warnings)
    estimates = _estimates_frame(rows, run_id, contrasts)
    runs = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "started_at": pd.Timestamp(started_at),
                "data_snapshot": data_snapshot,
                "code_version": code_version,
                "settings": settings_json(settings),
                "packages": json.dumps(package_versions(), sort_keys=True),
            }
        ],
        columns=list(RUN_COLUMNS),
    )
    balance = pd.DataFrame(
        {
            "run_id": pd.Series(dtype="str"),
            "contrast": pd.Series(dtype="str"),
            "outcome": pd.Series(dtype="str"),
            "covariate": pd.Series(dtype="str"),
            "smd_unweighted": pd.Series(dtype=float),
            "smd_weighted": pd.Series(dtype=float),
        }
    )
    return ModelResults(runs, estimates, balance, warnings)
