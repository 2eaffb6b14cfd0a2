"""Run a GX suite over a pandas frame and return, for every failing row, the rules it broke.

GX validates pandas frames here (not DuckDB tables: GX's SQLAlchemy path cannot read DuckDB).
Only row indexes are taken from GX results: ``unexpected_list`` holds cell values and is never
read, so no value of a row reaches a log. Given a docs folder, each validation runs through a
checkpoint that records its result and updates the GX Data Docs site there.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no network here, and no telemetry wanted
# GX logs its own start-up chatter at INFO; keep task logs to what a coordinator needs.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

import great_expectations as gx  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    FilesystemStoreBackendDefaults,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

DOCS_SITE = "synk"
_contexts: dict[str, Any] = {}


def _gx_context(root: Path | None) -> Any:
    """An ephemeral context; with a root, its stores and the Data Docs site live on disk there."""
    key = str(root)
    if key not in _contexts:
        if root is None:
            stores: Any = InMemoryStoreBackendDefaults()
            sites: dict[str, Any] = {}
        else:
            stores = FilesystemStoreBackendDefaults(root_directory=str(root))
            sites = {
                DOCS_SITE: {
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(root / "data_docs"),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                }
            }
        config = DataContextConfig(
            store_backend_defaults=stores,
            data_docs_sites=sites,
            progress_bars=ProgressBarsConfig(globally=False),
            analytics_enabled=False,
        )
        _contexts[key] = gx.get_context(project_config=config, mode="ephemeral")
    return _contexts[key]


def _batch_definition(context: Any, name: str) -> Any:
    try:
        source = context.data_sources.get("drops")
    except KeyError:
        source = context.data_sources.add_pandas("drops")
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name)
    try:
        return asset.get_batch_definition("whole")
    except KeyError:
        return asset.add_batch_definition_whole_dataframe("whole")


def validate_frame(
    name: str,
    frame: pd.DataFrame,
    suite_json: dict[str, Any],
    parameters: dict[str, Any],
    gx_root: Path | None = None,
    run_name: str = "",
) -> tuple[dict[int, list[str]], dict[str, Any]]:
    """Failing frame index -> rule names (suite order), and a summary of the result (counts only)."""
    context = _gx_context(gx_root)
    batch_definition = _batch_definition(context, name)
    suite = context.suites.add_or_update(gx.ExpectationSuite(**suite_json))
    result_format = {"result_format": "COMPLETE"}
    if gx_root is None:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, expectation_parameters=parameters, result_format=result_format)
    else:
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(data=batch_definition, suite=suite, name=f"{run_name}.{name}")
        )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"{run_name}.{name}",
                validation_definitions=[definition],
                result_format=result_format,
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])],
            )
        )
        run = checkpoint.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            run_id=RunIdentifier(run_name=run_name),
        )
        result = next(iter(run.run_results.values()))
    failures: dict[int, list[str]] = defaultdict(list)
    for outcome in result.results:
        if outcome.success:
            continue
        rule = outcome.expectation_config.meta.get("rule", outcome.expectation_config.type)
        indexes = outcome.result.get("unexpected_index_list")
        if indexes is None:
            # Every column a suite names exists once parsing passed, so this is a bug, not bad data.
            raise RuntimeError(f"expectation {outcome.expectation_config.type} failed without row indexes")
        for index in indexes:
            failures[int(index)].append(rule)
    return dict(failures), _summary(result)


def _summary(result: Any) -> dict[str, Any]:
    """Counts per expectation for the run summary: no values, no index lists."""
    rows = []
    for outcome in result.results:
        config = outcome.expectation_config
        rows.append(
            {
                "rule": config.meta.get("rule"),
                "success": bool(outcome.success),
                "unexpected_count": int(outcome.result.get("unexpected_count", 0) or 0),
                "element_count": int(outcome.result.get("element_count", 0) or 0),
            }
        )
    return {"success": bool(result.success), "expectations": rows}
