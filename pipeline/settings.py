"""Where the data lives and the analysis design values, each with the contract's default."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from pipeline.contract import OUTCOMES
from pipeline.errors import PipelineError

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


def _from_file(path: Path, cls: type[T], build: Callable[[dict[str, object]], T], what: str, keys: str) -> T:
    """Settings from a JSON file in the data home where it exists, else the defaults."""
    if not path.exists():
        return cls()
    try:
        return build(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as error:
        raise PipelineError(f"{path} is not a valid {what} file ({error}); its keys are those of {keys}.") from None


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

    def __post_init__(self) -> None:
        names = [t.name for t in self.timepoints]
        problems = []
        if not names or len(set(names)) < len(names) or "baseline" in names:
            problems.append("timepoints need distinct names other than 'baseline'")
        if any(not 0 < t.low <= t.target <= t.high for t in self.timepoints):
            problems.append("each timepoint needs 0 < low <= target <= high (days from t0)")
        if self.primary_timepoint not in names:
            problems.append(f"primary_timepoint must be one of the timepoints ({', '.join(names)})")
        if self.primary_outcome not in OUTCOMES:
            problems.append(f"primary_outcome must be an outcome code ({', '.join(OUTCOMES)})")
        if problems:
            raise ValueError("; ".join(problems))

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def for_home(cls, home: DataHome) -> DesignSettings:
        """The contract's defaults, overridden by ``design.json`` in the data home where it exists."""

        def build(values: dict[str, object]) -> DesignSettings:
            if "timepoints" in values:
                values["timepoints"] = tuple(Timepoint(**t) for t in values["timepoints"])  # type: ignore[union-attr]
            return cls(**values)  # type: ignore[arg-type]

        return _from_file(home.root / "design.json", cls, build, "design", "build_info.design_settings")


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

    @classmethod
    def for_home(cls, home: DataHome) -> ModelSettings:
        """The defaults, overridden by ``models.json`` in the data home where it exists."""
        path = home.root / "models.json"

        def build(values: dict[str, object]) -> ModelSettings:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})  # type: ignore[arg-type]

        settings = _from_file(path, cls, build, "model settings", "model_runs.settings")
        unknown = sorted(set(settings.methods) - set(cls.methods))
        if unknown or not settings.methods:
            raise PipelineError(f"{path}: methods must be some of {', '.join(cls.methods)}; got {unknown or 'none'}.")
        return settings


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
        keys = "max_quarantine_share, max_file_mib, max_rows_per_file, max_cell_chars"
        settings = _from_file(path, cls, lambda values: cls(**values), "ingest settings", keys)
        share = settings.max_quarantine_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise PipelineError(f"{path}: max_quarantine_share must be between 0 and 1.")
        for name in ("max_file_mib", "max_rows_per_file", "max_cell_chars"):
            value = getattr(settings, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PipelineError(f"{path}: {name} must be a whole number of at least 1.")
        return settings


# Airflow wiring names shared by the DAG files (kept here so the DAGs stay logic-free).
WAREHOUSE_ASSET = "synk_outcomes_warehouse"
STORE_WRITER_POOL = "synk_store_writer"
DAG_TAGS = frozenset({"synkinesis", "ingest", "models", "report"})
DAG_OWNER = "synk-data"


def task_retries(default: int) -> int:
    """Retries for DAG tasks; ``SYNK_TASK_RETRIES`` overrides (0 in embedded runs, which report at once)."""
    return int(os.environ.get("SYNK_TASK_RETRIES", default))


def task_retry_delay(minutes: float) -> timedelta:
    """The wait before a task's retry; ``SYNK_TASK_RETRY_DELAY`` (seconds) overrides (the cluster test
    retries a task whose worker it killed without waiting minutes)."""
    seconds = os.environ.get("SYNK_TASK_RETRY_DELAY")
    return timedelta(seconds=float(seconds)) if seconds else timedelta(minutes=minutes)
