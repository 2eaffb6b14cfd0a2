"""Run a GX suite over a pandas frame and return, for every failing row, the rules it broke.

GX validates pandas frames here (not DuckDB tables: GX's SQLAlchemy path cannot read DuckDB).
Only row indexes are taken from GX results: ``unexpected_list`` holds cell values and is never
read, so no value of a row reaches a log. Given a docs folder, each validation runs through a
result is stored there; ``build_data_docs`` renders the site once per ingest run.
"""

from __future__ import annotations

import json
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
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from pipeline.validation import docs_views, gx_metrics  # noqa: E402, F401 (registers the regex metric's faster pandas provider)

DOCS_SITE = "synk"
# What of a result Data Docs may show: counts and shares, no cell.
_COUNT_KEYS = frozenset(
    {
        "element_count",
        "missing_count",
        "missing_percent",
        "unexpected_count",
        "unexpected_percent",
        "unexpected_percent_total",
        "unexpected_percent_nonmissing",
    }
)
_contexts: dict[str, Any] = {}
_suites: dict[tuple[int, str], tuple[str, Any]] = {}
_unrendered: dict[str, list[Any]] = defaultdict(list)  # gx root -> results stored, not yet in Data Docs


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
                    **docs_views.site_views(),
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


def _suite(context: Any, suite_json: dict[str, Any]) -> Any:
    """The suite, added once per context: re-adding compares every expectation and is slow."""
    fingerprint = json.dumps(suite_json, sort_keys=True)
    cached = _suites.get((id(context), suite_json["name"]))
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    suite = context.suites.add_or_update(gx.ExpectationSuite(**json.loads(fingerprint)))
    _suites[(id(context), suite_json["name"])] = (fingerprint, suite)
    return suite


def build_data_docs(gx_root: Path) -> Path:
    """Render the pages of the validation results stored since the last build, and the index of all.

    Only new pages are rendered: a full rebuild re-renders every result ever stored, a cost that
    grows with every hourly load. With nothing stored by this process (a first build, or docs
    deleted), the whole site is rendered."""
    pending = _unrendered.pop(str(gx_root), [])
    index = gx_root / "data_docs" / "index.html"
    _gx_context(gx_root).build_data_docs(
        site_names=[DOCS_SITE], resource_identifiers=pending if pending and index.exists() else None
    )
    return index


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
    suite = _suite(context, suite_json)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, expectation_parameters=parameters, result_format={"result_format": "COMPLETE"})
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
            if rule not in failures[int(index)]:  # a rule may take two expectations (a range's two ends)
                failures[int(index)].append(rule)
    if gx_root is not None:
        # Kept for Data Docs, which are published: counts only, never the unexpected values (a value
        # that slipped the screen would be shown there). The rows are in the quarantine table.
        # (A checkpoint would store it too, but its add_or_update of definitions compares whole suites
        # and costs more than the validation itself.)
        for outcome in result.results:
            outcome.result = {k: v for k, v in outcome.result.items() if k in _COUNT_KEYS}
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
            run_id=RunIdentifier(run_name=run_name),
            batch_identifier=f"{run_name}.{name}",
        )
        context.validation_results_store.set(key, result)
        _unrendered[str(gx_root)].append(key)
    # GX returns results in an order of its own: name a row's rules in the suite's order.
    order = {e["meta"]["rule"]: i for i, e in reversed(list(enumerate(suite_json["expectations"])))}
    return {
        index: sorted(rules, key=lambda r: order.get(r, len(order))) for index, rules in failures.items()
    }, _summary(result)


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
