"""The report renders a warehouse file and its model run: it imports nothing from the staging store, the
warehouse build, the model fitting or the stages that run them (pipeline/as_of.py builds what it renders)."""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline.report

# Modules (and packages) the report must not reach: the store and the ingest, the build, the fitting.
FORBIDDEN = (
    "pipeline.store",
    "pipeline.ingest",
    "pipeline.sources",
    "pipeline.warehouse",
    "pipeline.build_state",
    "pipeline.as_of",
    "pipeline.stages",
    "pipeline.models.fit",
    "pipeline.models.estimators",
    "pipeline.models.propensity",
    "pipeline.models.mixed",
    "pipeline.models.random_intercept",
    "pipeline.models.imputation",
    "pipeline.models.parallel",
    "pipeline.models.synergy",
    "pipeline.models.reliance",
    "pipeline.models.claims",
)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_report_imports_nothing_from_the_store_the_build_or_the_fitting() -> None:
    folder = Path(pipeline.report.__file__).parent
    files = sorted(folder.glob("*.py"))
    assert len(files) >= 8
    reached = {
        f"{path.name}: {name}"
        for path in files
        for name in _imports(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN)
    }
    assert not reached, sorted(reached)
