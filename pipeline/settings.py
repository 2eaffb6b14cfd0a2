"""Where the data lives and the analysis design values, each with the contract's default."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from pipeline.contract import OUTCOMES
from pipeline.errors import PipelineError
from pipeline.json_files import UnreadableJson, read_json

PROJECT_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@dataclass(frozen=True)
class DataHome:
    """The data home: ``SYNK_HOME``, ``--home``, or ``data/`` in the checkout."""

    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> DataHome:
        chosen = home or os.environ.get("SYNK_HOME") or PROJECT_ROOT / "data"
        return cls(Path(chosen).expanduser().resolve())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def store_path(self) -> Path:
        return self.staging / "store.duckdb"

    @property
    def lock_path(self) -> Path:
        return self.staging / "store.lock"

    @property
    def warehouse_dir(self) -> Path:
        return self.root / "warehouse"

    @property
    def warehouse_path(self) -> Path:
        return self.warehouse_dir / "outcomes.duckdb"

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def gx_root(self) -> Path:
        """GX's stores: suites and validation results of every load, and the Data Docs site."""
        return self.staging / "gx"

    @property
    def data_docs_index(self) -> Path:
        return self.gx_root / "data_docs" / "index.html"

    @property
    def validation_page(self) -> Path:
        """Every validation run on one page that needs no network (pipeline/validation/results_page.py)."""
        return self.gx_root / "validation_results.html"

    def ensure(self) -> DataHome:
        for folder in (self.landing, self.archive, self.staging, self.warehouse_dir, self.published):
            folder.mkdir(parents=True, exist_ok=True)
        return self


SETTINGS_RULES = "docs/runbook.md, 'Settings files'"  # where each setting's rule is written


def _refusal(path: Path, what: str, problem: str) -> PipelineError:
    return PipelineError(
        f"{path} is not a valid {what} file: {problem}; correct it (each setting's rule is in {SETTINGS_RULES}) "
        "and run again."
    )


def read_settings_file(path: Path, what: str, keys: tuple[str, ...]) -> dict[str, object] | None:
    """A data home's settings file as a JSON object of known keys, or None where there is none. Read like
    a drop's manifest (pipeline/json_files.py): a byte-order mark is allowed, a file nested too deep refused."""
    if not path.exists():
        return None
    try:
        values = read_json(path)
    except UnreadableJson as error:
        raise _refusal(path, what, f"it {error}") from None
    if not isinstance(values, dict):
        raise _refusal(path, what, "it is not a JSON object of settings")
    unknown = sorted(str(key)[:40] for key in values if key not in keys)
    if unknown:
        raise _refusal(path, what, f"unknown key(s) {', '.join(unknown)}; its keys are {', '.join(keys)}")
    return values


def _from_file(path: Path, cls: type[T], build: Callable[[dict[str, object]], T], what: str) -> T:
    """Settings from a JSON file in the data home where it exists, else the defaults."""
    values = read_settings_file(path, what, tuple(f.name for f in fields(cls)))  # type: ignore[arg-type]
    if values is None:
        return cls()
    try:
        return build(values)
    except (ValueError, TypeError) as error:
        raise _refusal(path, what, str(error)) from None


def _whole(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# A timepoint's name is part of published file names (forest_<name>_patient.png) and of table values.
TIMEPOINT_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,15}")


@dataclass(frozen=True)
class Timepoint:
    """A follow-up timepoint: its name and its target and window in days from t0."""

    name: str
    target: int
    low: int
    high: int

    @property
    def months(self) -> int:
        return round(self.target / DAYS_PER_MONTH)

    @property
    def label(self) -> str:
        return f"{self.months} months" if self.months != 1 else "1 month"


DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class DesignSettings:
    """The analysis design of the warehouse contract; every build records the values it used."""

    exposure_window_days: int = 180  # also the landmark
    baseline_lookback_days: int = 90
    timepoints: tuple[Timepoint, ...] = field(
        default=(
            Timepoint("3m", 90, 60, 120),
            Timepoint("6m", 180, 150, 240),
            Timepoint("12m", 365, 300, 430),
        )
    )
    primary_timepoint: str = "12m"
    primary_outcome: str = "sunnybrook_composite"
    # Outcome -> the smallest important difference between groups, in its units, where the department fixes
    # one; every other outcome takes the rule of pipeline/yardsticks.py (published MIC or half a reference SD).
    yardsticks: dict[str, float] = field(default_factory=dict)
    # The toxin-cycle phase window of outcome assessments (issue 31): an outcome assessment counts in the
    # target trial and in the comparisons' trough sensitivity analysis only if it was taken at least this many
    # days after the last BoNT injection (or before any): 90 by default, the trough of a ~3-month effect.
    outcome_phase_min_days: int = 90

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """Each rule the values break (docs/runbook.md, 'Settings files'), in words."""
        problems = []
        if not _whole(self.exposure_window_days, 1):
            problems.append("exposure_window_days must be a whole number of days above 0")
        if not _whole(self.baseline_lookback_days, 0):
            problems.append("baseline_lookback_days must be a whole number of days, 0 or more")
        if not _whole(self.outcome_phase_min_days, 0):
            problems.append(
                "outcome_phase_min_days must be a whole number of days, 0 or more (0: assessments at any phase)"
            )
        if not isinstance(self.timepoints, tuple) or not all(isinstance(t, Timepoint) for t in self.timepoints):
            return [*problems, "timepoints must be a list of objects with name, target, low and high"]
        if any(not _whole(v, 0) for t in self.timepoints for v in (t.target, t.low, t.high)):
            return [*problems, "each timepoint's target, low and high must be whole numbers of days"]
        names = [t.name for t in self.timepoints]
        if not all(isinstance(n, str) and TIMEPOINT_NAME.fullmatch(n) for n in names):
            problems.append(
                "each timepoint name must be 1 to 16 lower-case letters, digits or '_', starting with a letter or "
                "digit (it is part of published file names), e.g. 6m"
            )
        elif not names or len(set(names)) < len(names) or "baseline" in names:
            problems.append("timepoints need distinct names other than 'baseline'")
        if any(not 0 < t.low <= t.target <= t.high for t in self.timepoints):
            problems.append("each timepoint needs 0 < low <= target <= high (days from t0)")
        elif any(a.high >= b.low for a, b in zip(self.timepoints, self.timepoints[1:], strict=False)):
            problems.append(
                "timepoints must be listed earliest first, each window (low to high) ending before the next one's "
                "low, so that no visit counts under two timepoints"
            )
        if self.primary_timepoint not in names:
            problems.append(f"primary_timepoint must be one of the timepoints ({', '.join(map(str, names))})")
        if self.primary_outcome not in OUTCOMES:
            problems.append(f"primary_outcome must be an outcome code ({', '.join(OUTCOMES)})")
        if not isinstance(self.yardsticks, dict) or any(
            o not in OUTCOMES or isinstance(v, bool) or not isinstance(v, int | float) or not v > 0
            for o, v in self.yardsticks.items()
        ):
            problems.append("yardsticks must map outcome codes to positive numbers (points of that outcome)")
        return problems

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def for_home(cls, home: DataHome) -> DesignSettings:
        """The contract's defaults, overridden by ``design.json`` in the data home where it exists."""

        def build(values: dict[str, object]) -> DesignSettings:
            if "timepoints" in values:
                points = values["timepoints"]
                keys = {f.name for f in fields(Timepoint)}
                if not isinstance(points, list) or not all(isinstance(t, dict) and set(t) == keys for t in points):
                    raise ValueError("timepoints must be a list of objects with name, target, low and high")
                values["timepoints"] = tuple(Timepoint(**t) for t in points)
            return cls(**values)  # type: ignore[arg-type]

        return _from_file(home.root / "design.json", cls, build, "design")


@dataclass(frozen=True)
class ModelSettings:
    """Model settings; recorded in ``model_runs.settings``."""

    min_group_size: int = 11  # no model for a group smaller than this (small-cell rule)
    weight_truncation: float = 10.0  # iptw: stabilized weights above this are set to it
    covariates: tuple[str, ...] = (
        "age_at_onset",
        "sex",
        "etiology",
        "onset_to_index_days",
        "prior_treatment",
        "site_id",
    )
    min_sites_for_cluster: int = 10  # cluster-robust errors by site only with enough sites
    # Baseline severity measures in every outcome's models (and every propensity model), those of the
    # design's outcomes; a patient without one gets a missing indicator.
    severity_measures: tuple[str, ...] = ("sunnybrook_composite", "eface_total", "saq")
    # Restricted cubic splines (this many knots; 0: linear only) for the baseline values and the
    # continuous covariates, in the outcome and propensity models of comparisons with enough patients.
    spline_knots: int = 5
    spline_min_patients: int = 300  # fewer: a handful of patients per term (mice went wild at 105)
    # iptw diagnostics' pass marks.
    max_smd: float = 0.1  # every |SMD| after weighting below this
    max_variance_ratio: float = 2.0  # every continuous term's weighted variance ratio within 1/this and this
    equipoise_bounds: tuple[float, float] = (0.3, 0.7)  # preference score range counted as equipoise
    min_equipoise_share: float = 0.2  # share of patients in equipoise above this
    # mixed: with a random slope on time where it converges (else a random intercept only).
    mixed_random_slope: bool = False  # off by default: about 5 times the cost of the intercept-only fit
    mixed_maxiter: int = 200
    # mice: imputed data sets (independent chains), chained-equation cycles per chain (R mice's maxit),
    # and the seed (reproducible).
    mice_imputations: int = 20
    mice_iterations: int = 5
    mice_max_imputed_share: float = 0.5  # above it, diagnostics_ok is false: the number rests on the model
    mice_seed: int = 20261125
    power: float = 0.8  # for the minimum detectable difference
    # Every method by default; a data home may ask for fewer (a quick look at a new site's data).
    methods: tuple[str, ...] = ("unadjusted", "ancova", "iptw", "aipw", "mixed", "mice")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def problems(self) -> list[str]:
        """Each rule the values break (docs/runbook.md, 'Settings files'), in words. Checked where a
        data home's models.json is read; settings made in code (tests) are the code's own."""
        from pipeline.models.design_matrix import KNOWN_COVARIATES
        from pipeline.models.splines import KNOT_QUANTILES

        def listed(value: object, known: tuple[str, ...] | frozenset[str], empty: bool = True) -> bool:
            return (
                isinstance(value, tuple)
                and (empty or bool(value))
                and all(isinstance(v, str) and v in known for v in value)
            )

        def share(value: object) -> bool:
            return _number(value) and 0 <= value <= 1  # type: ignore[operator]

        bounds = self.equipoise_bounds
        rules: dict[str, tuple[bool, str]] = {
            "methods": (
                listed(self.methods, ModelSettings.methods, empty=False),
                f"some of {', '.join(ModelSettings.methods)} (a list, not empty)",
            ),
            "min_group_size": (
                _whole(self.min_group_size, 11),
                "a whole number of at least 11 (the small-cell rule: no model of a group of 1 to 10)",
            ),
            "weight_truncation": (
                _number(self.weight_truncation) and self.weight_truncation > 1,
                "a number above 1 (stabilized weights are about 1)",
            ),  # type: ignore[operator]
            "covariates": (
                listed(self.covariates, KNOWN_COVARIATES),
                f"a list of some of {', '.join(sorted(KNOWN_COVARIATES))}",
            ),
            "min_sites_for_cluster": (_whole(self.min_sites_for_cluster, 2), "a whole number of at least 2"),
            "severity_measures": (
                listed(self.severity_measures, OUTCOMES),
                f"a list of outcome codes ({', '.join(OUTCOMES)})",
            ),
            "spline_knots": (
                self.spline_knots == 0 or (_whole(self.spline_knots, 0) and self.spline_knots in KNOT_QUANTILES),
                f"0 (no splines) or one of {', '.join(map(str, KNOT_QUANTILES))}",
            ),
            "spline_min_patients": (_whole(self.spline_min_patients, 0), "a whole number, 0 or more"),
            "max_smd": (_number(self.max_smd) and self.max_smd > 0, "a number above 0"),  # type: ignore[operator]
            "max_variance_ratio": (
                _number(self.max_variance_ratio) and self.max_variance_ratio > 1,
                "a number above 1",
            ),  # type: ignore[operator]
            "equipoise_bounds": (
                isinstance(bounds, tuple)
                and len(bounds) == 2
                and all(map(_number, bounds))
                and 0 < bounds[0] < bounds[1] < 1,
                "two numbers, low then high, between 0 and 1, e.g. [0.3, 0.7]",
            ),
            "min_equipoise_share": (share(self.min_equipoise_share), "a share between 0 and 1"),
            "mixed_random_slope": (isinstance(self.mixed_random_slope, bool), "true or false"),
            "mixed_maxiter": (_whole(self.mixed_maxiter, 1), "a whole number of at least 1"),
            "mice_imputations": (
                _whole(self.mice_imputations, 2),
                "a whole number of at least 2 (Rubin's rules need two)",
            ),
            "mice_iterations": (_whole(self.mice_iterations, 1), "a whole number of at least 1"),
            "mice_max_imputed_share": (share(self.mice_max_imputed_share), "a share between 0 and 1"),
            "mice_seed": (_whole(self.mice_seed, 0), "a whole number, 0 or more"),
            "power": (_number(self.power) and 0 < self.power < 1, "a number between 0 and 1, e.g. 0.8"),  # type: ignore[operator]
        }
        return [f"{key} must be {rule}" for key, (ok, rule) in rules.items() if not ok]

    @classmethod
    def for_home(cls, home: DataHome) -> ModelSettings:
        """The defaults, overridden by ``models.json`` in the data home where it exists."""
        path = home.root / "models.json"

        def build(values: dict[str, object]) -> ModelSettings:
            settings = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})  # type: ignore[arg-type]
            problems = settings.problems()
            if problems:
                raise ValueError("; ".join(problems))
            return settings

        return _from_file(path, cls, build, "model settings")


@dataclass(frozen=True)
class IngestSettings:
    """When a load that went through is still not a quiet success, and the bounds on what one drop may
    make the ingest read (a file beyond them is refused, not read). ``ingest.json`` in the data home
    overrides the defaults."""

    # A loaded file with more than this share of its rows quarantined fails the run's check: a
    # systematic fault (numbers a tool spelled oddly, a renamed code) looks like this, not like typos.
    max_quarantine_share: float = 0.05
    # The bounds are above a large clinic's export (10,000 patients: 1.2 million assessment rows, 41 MB)
    # and far below what would exhaust the machine (a 150 MB file took 4.6 GB to load).
    max_file_mib: int = 100  # a file's size once decompressed (a .csv.gz is expanded as it is counted)
    max_rows_per_file: int = 2_000_000  # lines of one file
    # The contract's longest cell is a 32-character id: a cell far longer is free text or an attack, and
    # is refused before any pattern is run over it.
    max_cell_chars: int = 256

    @classmethod
    def for_home(cls, home: DataHome) -> IngestSettings:
        """The defaults, overridden by ``ingest.json`` in the data home where it exists."""
        path = home.root / "ingest.json"

        def build(values: dict[str, object]) -> IngestSettings:
            settings = cls(**values)  # type: ignore[arg-type]
            share = settings.max_quarantine_share
            problems = [] if _number(share) and 0 <= share <= 1 else ["max_quarantine_share must be between 0 and 1"]
            problems += [
                f"{name} must be a whole number of at least 1"
                for name in ("max_file_mib", "max_rows_per_file", "max_cell_chars")
                if not _whole(getattr(settings, name), 1)
            ]
            if problems:
                raise ValueError("; ".join(problems))
            return settings

        return _from_file(path, cls, build, "ingest settings")


PAGE_SIZES = ("Letter", "A4")  # the printed report's paper: Letter by default, A4 where departments use it


@dataclass(frozen=True)
class ReportSettings:
    """The printed report's settings: ``report.json`` in the data home (``{"page_size": "A4"}``)."""

    page_size: str = "Letter"

    @classmethod
    def for_home(cls, home: DataHome) -> ReportSettings:
        """Read before any work of a report is done, so a bad file costs nothing."""

        def build(values: dict[str, object]) -> ReportSettings:
            settings = cls(**values)  # type: ignore[arg-type]
            if settings.page_size not in PAGE_SIZES:
                raise ValueError(f"page_size must be one of {', '.join(PAGE_SIZES)}")
            return settings

        return _from_file(home.root / "report.json", cls, build, "report settings")


# Airflow wiring names shared by the DAG files (kept here so the DAGs stay logic-free).
WAREHOUSE_ASSET = "synk_outcomes_warehouse"
STORE_WRITER_POOL = "synk_store_writer"
DAG_TAGS = frozenset({"synkinesis", "ingest", "models", "report", "network"})
DAG_OWNER = "synk-data"


def task_retries(default: int) -> int:
    """Retries for DAG tasks; ``SYNK_TASK_RETRIES`` overrides (0 in embedded runs, which report at once)."""
    return int(os.environ.get("SYNK_TASK_RETRIES", default))


def task_retry_delay(minutes: float) -> timedelta:
    """The wait before a task's retry; ``SYNK_TASK_RETRY_DELAY`` (seconds) overrides (the cluster test
    retries a task whose worker it killed without waiting minutes)."""
    seconds = os.environ.get("SYNK_TASK_RETRY_DELAY")
    return timedelta(seconds=float(seconds)) if seconds else timedelta(minutes=minutes)
