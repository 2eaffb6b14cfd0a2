"""The analysis frames: who is compared with whom, on what, with which covariates.

Population: classifiable patients of ``modality_combinations`` (follow-up reaches the landmark),
joined to ``patients`` for the covariates. Outcome rows: follow-up rows of ``followup_scores``
(the design's timepoints) with both a value and a baseline value. Everything is sorted by site and patient
so that a fit on the same data always sees the same rows in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from pipeline.contract import combination_sort_key
from pipeline.vocabulary import PRIMARY_CONTRAST, contrast_name

COMBINED_VS_SINGLE = PRIMARY_CONTRAST

# How each covariate the settings may name enters a model.
NUMERIC_COVARIATES = frozenset({"age_at_onset", "onset_to_index_days", "index_year"})
BINARY_COVARIATES = frozenset({"prior_treatment"})
CATEGORICAL_COVARIATES = frozenset({"sex", "etiology", "site_id", "side"})
KNOWN_COVARIATES = NUMERIC_COVARIATES | BINARY_COVARIATES | CATEGORICAL_COVARIATES

SEVERITY = "severity"  # population columns severity[<outcome>]: baseline severity measures


def _check_covariates(covariates: tuple[str, ...]) -> None:
    unknown = sorted(set(covariates) - KNOWN_COVARIATES)
    if unknown:
        raise ValueError(
            f"Unknown covariate(s) in the model settings: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(KNOWN_COVARIATES))}."
        )


def load_population(con: duckdb.DuckDBPyConnection, covariates: tuple[str, ...]) -> pd.DataFrame:
    """Classifiable patients with their combination, group and covariates, one row each."""
    _check_covariates(covariates)
    extra = "".join(f", p.{name}" for name in dict.fromkeys(covariates) if name != "site_id")
    frame = con.execute(
        "SELECT m.site_id, m.patient_id, m.combination, m.is_combined" + extra + " "
        "FROM modality_combinations AS m INNER JOIN patients AS p USING (site_id, patient_id) "
        "WHERE m.classifiable AND m.combination IS NOT NULL "
        "ORDER BY m.site_id, m.patient_id"
    ).df()
    frame["is_combined"] = frame["is_combined"].astype(bool)
    return frame.reset_index(drop=True)


def load_changes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Follow-up rows with both a value and a baseline value (so a change from baseline)."""
    return con.execute(
        "SELECT site_id, patient_id, outcome, timepoint, days_from_t0, baseline_value, "
        '"value" - baseline_value AS change '
        "FROM followup_scores "
        "WHERE timepoint <> 'baseline' AND \"value\" IS NOT NULL AND baseline_value IS NOT NULL "
        "ORDER BY site_id, patient_id, outcome, timepoint"
    ).df()


def add_severity(population: pd.DataFrame, baselines: pd.DataFrame, measures: tuple[str, ...]) -> pd.DataFrame:
    """``population`` with a ``severity[<measure>]`` column per baseline severity measure (the patient's
    baseline value of that outcome, missing where the patient has none): one covariate set for every
    outcome, so SAQ's models see baseline Sunnybrook as much as Sunnybrook's see baseline SAQ."""
    wide = baselines[baselines["outcome"].isin(measures)].pivot_table(
        index=["site_id", "patient_id"], columns="outcome", values="baseline_value", aggfunc="first"
    )
    wide = wide.reindex(columns=list(measures))
    wide.columns = [f"{SEVERITY}[{m}]" for m in measures]
    return population.merge(wide.reset_index(), on=["site_id", "patient_id"], how="left", validate="one_to_one")


def severity_matrix(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The severity columns of a design: every ``severity[<measure>]`` of ``frame`` but the frame's own
    outcome's (that one is ``baseline_value``); a missing value is set to the mean of the others and
    flagged in ``missing[<measure>]`` (the missing-indicator method: a baseline, not an outcome, so
    it is unbiased for the group effect in a randomised or adjusted comparison)."""
    own = str(frame["outcome"].iloc[0]) if "outcome" in frame and len(frame) else None
    columns: dict[str, pd.Series] = {}
    notes: list[str] = []
    for name in frame.columns:
        if not str(name).startswith(f"{SEVERITY}["):
            continue
        measure = str(name)[len(SEVERITY) + 1 : -1]
        if measure == own:
            continue
        values = frame[name].astype(float)
        if values.notna().sum() < 2 or values.nunique(dropna=True) <= 1:
            continue
        absent = values.isna()
        columns[str(name)] = values.fillna(values.mean())
        if absent.any():
            columns[f"missing[{measure}]"] = absent.astype(float)
    if any(c.startswith("missing[") for c in columns):
        notes.append("missing baseline severity measures by missing indicators")
    return pd.DataFrame(columns, index=frame.index), notes


def load_baselines(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every baseline value, follow-up or not: the population that multiple imputation completes."""
    return con.execute(
        'SELECT site_id, patient_id, outcome, "value" AS baseline_value FROM followup_scores '
        "WHERE timepoint = 'baseline' AND \"value\" IS NOT NULL ORDER BY site_id, patient_id, outcome"
    ).df()


@dataclass(frozen=True)
class Contrast:
    """Two groups: ``treated`` minus ``control``. ``None`` means any combined / any single combination."""

    name: str
    treated: frozenset[str] | None = None
    control: frozenset[str] | None = None
    treated_label: str = "combined"
    control_label: str = "single modality"

    def group(self, population: pd.DataFrame) -> pd.Series:
        """1 for the first group, 0 for the second, NaN for patients in neither, and for every patient of a
        site with no patient in one of the groups (see :func:`sites_left_out`)."""
        membership = self._membership(population)
        left_out = sites_left_out(population, membership)
        if left_out:
            membership[population["site_id"].astype(str).isin(left_out).to_numpy()] = np.nan
        return membership

    def _membership(self, population: pd.DataFrame) -> pd.Series:
        combined = population["is_combined"].astype(bool)
        combination = population["combination"].astype(str)
        in_treated = combined if self.treated is None else combination.isin(self.treated)
        in_control = ~combined if self.control is None else combination.isin(self.control)
        return pd.Series(np.where(in_treated, 1.0, np.where(in_control, 0.0, np.nan)), index=population.index)

    def sites_left_out(self, population: pd.DataFrame) -> list[str]:
        return sites_left_out(population, self._membership(population))


def sites_left_out(population: pd.DataFrame, membership: pd.Series) -> list[str]:
    """The sites left out of a comparison: those with no patient in one of its groups, where another site
    has both. A clinic that does not offer one of the treatments cannot inform the comparison (a structural
    positivity violation: its site would decide the group), so the comparison is among the sites that
    offer both. With one site, or no site with both groups, nothing is left out."""
    if "site_id" not in population or population["site_id"].nunique() < 2:
        return []
    arms = pd.DataFrame({"site": population["site_id"].astype(str).to_numpy(), "arm": membership.to_numpy()})
    arms = arms.dropna(subset=["arm"])
    both = arms.groupby("site")["arm"].nunique() == 2
    if not both.any():
        return []
    sites = sorted(population["site_id"].astype(str).unique())
    return [site for site in sites if not both.get(site, False)]


def sites_left_out_note(left_out: list[str], sites: int) -> str:
    """The estimate's note for the sites left out (counted, not named: a reader may know which site is small)."""
    which = "1 site" if len(left_out) == 1 else f"{len(left_out)} sites"
    return (
        f"{which} of {sites} left out: no patient in one of the groups there, so it cannot inform this "
        "comparison (it is among the sites that offer both)"
    )


def define_contrasts(population: pd.DataFrame, min_group_size: int) -> tuple[list[Contrast], list[str]]:
    """``combined_vs_single``, then each combined combination with enough patients against the most
    common single modality (ties broken by the contract's modality order)."""
    contrasts = [Contrast(COMBINED_VS_SINGLE)]
    warnings: list[str] = []
    counts = population.groupby("combination").size()
    single = [c for c in counts.index if "+" not in c]
    if not single:
        warnings.append("No classifiable patient on a single modality: no combination-specific contrasts.")
        return contrasts, warnings
    reference = sorted(single, key=lambda c: (-counts[c], combination_sort_key(c)))[0]
    combined = sorted((c for c in counts.index if "+" in c), key=lambda c: (-counts[c], combination_sort_key(c)))
    for combination in combined:
        if counts[combination] < min_group_size:
            warnings.append(
                f"{combination}: fewer than {min_group_size} classifiable patients; "
                f"no {combination}_vs_{reference} contrast."
            )
            continue
        contrasts.append(
            Contrast(
                contrast_name(combination, reference),
                frozenset({combination}),
                frozenset({reference}),
                combination,
                reference,
            )
        )
    return contrasts, warnings


def analysis_frames(
    population: pd.DataFrame, changes: pd.DataFrame, contrast: Contrast
) -> dict[tuple[str, str], pd.DataFrame]:
    """Per (outcome, timepoint): the patients of either group with a change, with ``treated`` 0/1."""
    grouped = population.assign(treated=contrast.group(population)).dropna(subset=["treated"])
    merged = grouped.merge(
        changes[["site_id", "patient_id", "outcome", "timepoint", "days_from_t0", "baseline_value", "change"]],
        on=["site_id", "patient_id"],
        how="inner",
        validate="one_to_many",
    )
    merged["treated"] = merged["treated"].astype(int)
    frames = {}
    for key, frame in merged.groupby(["outcome", "timepoint"], sort=True):
        frames[(str(key[0]), str(key[1]))] = frame.sort_values(["site_id", "patient_id"]).reset_index(drop=True)
    return frames


def wide_frame(
    population: pd.DataFrame, baselines: pd.DataFrame, changes: pd.DataFrame, contrast: Contrast
) -> dict[str, pd.DataFrame]:
    """Per outcome: the patients of either group with a baseline value, one row each, with
    ``change_3m``, ``change_6m`` and ``change_12m`` (missing where not observed)."""
    grouped = population.assign(treated=contrast.group(population)).dropna(subset=["treated"])
    grouped["treated"] = grouped["treated"].astype(int)
    by_timepoint = changes.pivot_table(
        index=["site_id", "patient_id", "outcome"], columns="timepoint", values="change", aggfunc="first"
    )
    by_timepoint.columns = [f"change_{t}" for t in by_timepoint.columns]
    merged = grouped.merge(baselines, on=["site_id", "patient_id"], how="inner", validate="one_to_many").merge(
        by_timepoint.reset_index(), on=["site_id", "patient_id", "outcome"], how="left", validate="one_to_one"
    )
    return {
        str(outcome): frame.sort_values(["site_id", "patient_id"]).reset_index(drop=True)
        for outcome, frame in merged.groupby("outcome", sort=True)
    }


def _level_counts(values: np.ndarray) -> dict[str, int]:
    levels, counts = np.unique(values, return_counts=True)
    return {str(level): int(count) for level, count in zip(levels, counts, strict=True)}


def _most_common(counts: dict[str, int]) -> str:
    return sorted(counts, key=lambda level: (-counts[level], level))[0]


def _categorical(values: pd.Series, min_level_size: int) -> tuple[np.ndarray, list[str]]:
    """Collapse levels with fewer than ``min_level_size`` patients to 'other'; if that pooled level is
    still too small it joins the most common level, so no dummy rests on a handful of patients.
    (numpy string arrays: this runs for every covariate of every comparison.)"""
    notes: list[str] = []
    name = values.name
    values = np.where(values.isna().to_numpy(), "missing", values.astype(str).to_numpy(dtype=object)).astype(str)
    counts = _level_counts(values)
    rare = sorted(level for level, count in counts.items() if count < min_level_size)
    if rare and len(counts) > 1:
        values = np.where(np.isin(values, rare), "other", values)
        counts = _level_counts(values)
        notes.append(f"{name} levels with fewer than {min_level_size} patients pooled as 'other'")
        if counts.get("other", min_level_size) < min_level_size and len(counts) > 1:
            largest = _most_common({level: n for level, n in counts.items() if level != "other"})
            values = np.where(values == "other", largest, values)
            notes[-1] += f" and, still too few, with '{largest}'"
    return values, notes


def covariate_matrix(
    frame: pd.DataFrame, covariates: tuple[str, ...], min_level_size: int
) -> tuple[pd.DataFrame, list[str]]:
    """The covariate columns of the ANCOVA design (numeric; dummies against the most common level),
    with notes on what was pooled or dropped. Rows with a missing numeric covariate are kept only
    if the caller drops them (see ``complete_cases``)."""
    columns: dict[str, pd.Series] = {}
    notes: list[str] = []
    for name in dict.fromkeys(covariates):
        if name in NUMERIC_COVARIATES or name in BINARY_COVARIATES:
            values = frame[name].astype(float)
            if values.nunique(dropna=True) <= 1:
                notes.append(f"{name} dropped (no variation)")
                continue
            columns[name] = values
            continue
        levels, pooled = _categorical(frame[name], min_level_size)
        notes.extend(pooled)
        counts = _level_counts(levels)
        if len(counts) <= 1:
            notes.append(f"{name} dropped (a single level)")
            continue
        reference = _most_common(counts)
        for level in sorted(counts):
            if level != reference:
                columns[f"{name}[{level}]"] = pd.Series((levels == level).astype(float), index=frame.index)
    return pd.DataFrame(columns, index=frame.index), notes


def full_rank_columns(design: pd.DataFrame, keep: int) -> tuple[list[str], list[str]]:
    """Columns kept so the design has full column rank: the first ``keep`` always, then each further
    column only if it adds to the rank. Returns (kept, dropped).

    One QR decomposition: a column adds to the rank of those before it exactly when its diagonal
    entry of R is not negligible (the tolerance of ``numpy.linalg.matrix_rank``); a column found
    dependent lies in the span of the kept ones, so testing against all earlier columns is the same."""
    values = design.to_numpy(dtype=float)
    if values.shape[1] == 0:
        return [], []
    diagonal = np.zeros(values.shape[1])  # with fewer rows than columns, the last ones add nothing
    found = np.abs(np.diag(np.linalg.qr(values, mode="r")))
    diagonal[: len(found)] = found
    tolerance = diagonal.max() * max(values.shape) * np.finfo(float).eps
    columns = [str(c) for c in design.columns]
    kept = columns[:keep] + [c for c, d in zip(columns[keep:], diagonal[keep:], strict=True) if d > tolerance]
    dropped = [c for c, d in zip(columns[keep:], diagonal[keep:], strict=True) if d <= tolerance]
    return kept, dropped
