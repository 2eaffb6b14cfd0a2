"""The report renders the warehouse file it is given and its model run, and nothing else: an allow-list of
the pipeline modules it may import (words, design, settings, SQL files, errors), so that a new import of the
store, the build, the fitting or the stages fails here (pipeline/as_of.py builds what it renders)."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline.report

# What the report may import from pipeline/, besides pipeline.report itself: plain words, the design and
# settings it reads, its SQL files, errors, and small helpers that read no data.
ALLOWED = (
    "pipeline.__version__",
    "pipeline.analysis_design",  # the design, as the warehouse holds it
    "pipeline.build_state.fingerprint",  # a hash of the code, SQL and design (reads no data)
    "pipeline.checksums",
    "pipeline.contract",
    "pipeline.csv_safety",
    "pipeline.errors",
    "pipeline.intervals",
    "pipeline.models.pairs",  # the claims' contrast names: plain data, no fitting
    "pipeline.progress",
    "pipeline.quarters",
    "pipeline.settings",
    "pipeline.sql_files",
    "pipeline.versions",
    "pipeline.vocabulary",
    "pipeline.yardsticks",
)
# Known exceptions, by file, each to be removed: the claims section still chooses its patients with the models'
# readers of the warehouse (the comparative estimates' patients are the warehouse's estimate_patients); the
# target trial's section (issue 31) emulates the trial again on the warehouse's rows to find the patients behind
# its counts, checked against the run's stored ccw estimate, until the run stores its clones' patients.
EXCEPTIONS = {
    "claims.py": ("pipeline.models.design_matrix",),
    "target_trial.py": ("pipeline.models.target_trial",),
}


def _imports(path: Path) -> set[str]:
    """Each pipeline name a module imports, as module.name (``from pipeline.x import y`` -> pipeline.x.y)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {n for n in names if n == "pipeline" or n.startswith("pipeline.")}


def _allowed(name: str, path: Path) -> bool:
    allowed = ("pipeline.report", *ALLOWED, *EXCEPTIONS.get(path.name, ()))
    return any(name == a or name.startswith(a + ".") for a in allowed)


def _report_files() -> list[Path]:
    folder = Path(pipeline.report.__file__).parent
    return sorted(folder.rglob("*.py"))


def test_the_report_imports_only_the_allowed_pipeline_modules() -> None:
    files = _report_files()
    assert len(files) >= 8
    reached = {f"{path.name}: {name}" for path in files for name in _imports(path) if not _allowed(name, path)}
    assert not reached, sorted(reached)


def test_the_allow_list_refuses_the_store_the_build_and_the_fitting() -> None:
    here = Path("answer.py")
    for name in (
        "pipeline.store.connection.open_store",
        "pipeline.warehouse.build_and_publish",
        "pipeline.build_state.read_state",
        "pipeline.models.fit.fit_models",
        "pipeline.models.design_matrix.load_population",
        "pipeline.stages.run_models",
        "pipeline.as_of.build_as_of",
    ):
        assert not _allowed(name, here), name


def test_the_report_opens_the_warehouse_in_one_place() -> None:
    """The file it is given: one read-only connection in build.py (and the release's facts, read-only)."""
    opened = {
        f"{path.name}:{i}"
        for path in _report_files()
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "duckdb.connect(" in line
    }
    assert {entry.split(":")[0] for entry in opened} <= {"build.py", "release.py"}, sorted(opened)
    for entry in opened:
        name, number = entry.split(":")
        line = (Path(pipeline.report.__file__).parent / name).read_text(encoding="utf-8").splitlines()[int(number) - 1]
        assert "read_only=True" in line, entry
