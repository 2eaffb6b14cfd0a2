"""Run a GX suite over a pandas frame and return, for every failing row, the rules it broke.

GX validates pandas frames here (not DuckDB tables: GX's SQLAlchemy path cannot read DuckDB).
Only row indexes are taken from GX results: ``unexpected_list`` holds cell values and is never
read, so no value of a rejected row reaches a log.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from typing import Any

import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no network here, and no telemetry wanted
# GX logs its own start-up chatter at INFO; keep task logs to what a coordinator needs.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

import great_expectations as gx  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

_context: Any = None


def _gx_context() -> Any:
    global _context
    if _context is None:
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            progress_bars=ProgressBarsConfig(globally=False),
            analytics_enabled=False,
        )
        _context = gx.get_context(project_config=config, mode="ephemeral")
    return _context


def validate_frame(
    name: str, frame: pd.DataFrame, suite_json: dict[str, Any], parameters: dict[str, Any]
) -> tuple[dict[int, list[str]], dict[str, Any]]:
    """Failing frame index -> rule names (suite order), and the GX result as a JSON dict."""
    context = _gx_context()
    source_name = f"drop_{name}"
    try:
        source = context.data_sources.get(source_name)
    except (KeyError, ValueError):
        source = context.data_sources.add_pandas(source_name)
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name)
    try:
        batch_definition = asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(**suite_json)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, expectation_parameters=parameters, result_format={"result_format": "COMPLETE"})
    failures: dict[int, list[str]] = defaultdict(list)
    for outcome in result.results:
        if outcome.success:
            continue
        rule = outcome.expectation_config.meta.get("rule", outcome.expectation_config.type)
        indexes = outcome.result.get("unexpected_index_list")
        if indexes is None:
            # An expectation that cannot name rows (a missing column) fails the whole file.
            raise RuntimeError(f"expectation {outcome.expectation_config.type} failed without row indexes")
        for index in indexes:
            failures[int(index)].append(rule)
    return dict(failures), _summary(result)


def _summary(result: Any) -> dict[str, Any]:
    """Counts per expectation for Data Docs and the run summary: no values, no index lists."""
    rows = []
    for outcome in result.results:
        rows.append(
            {
                "expectation": outcome.expectation_config.type,
                "rule": outcome.expectation_config.meta.get("rule"),
                "column": outcome.expectation_config.kwargs.get("column")
                or outcome.expectation_config.kwargs.get("column_list"),
                "success": bool(outcome.success),
                "unexpected_count": int(outcome.result.get("unexpected_count", 0) or 0),
                "element_count": int(outcome.result.get("element_count", 0) or 0),
            }
        )
    return {"success": bool(result.success), "expectations": rows}
