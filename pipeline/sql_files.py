"""SQL lives in ``sql/`` as files; this reads them in build order, and the key each table declares."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.settings import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "sql"
# seeds: the design and the codes, from Python (pipeline/warehouse.py), as tables the others read.
LAYERS = ("seeds", "staging", "core", "marts")
# Table macros the build and the report share (temporary: defined on each connection that calls them).
MACROS_SQL = "macros/placed_on_timepoints.sql"
TOXIN_PHASE_SQL = "macros/toxin_phase.sql"  # days since the last injection: instrument_scores, followup_scores
COMPLICATION_MACROS_SQL = "macros/complication_events.sql"  # complication_rates and the report's Safety section
FLOW_MACROS_SQL = "macros/patient_flow.sql"  # the attrition table and the report's patient flow


def read_sql(relative: str) -> str:
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def layer_files(layer: str) -> list[Path]:
    """A layer's files in name order: a numeric prefix sets the order where one file reads another."""
    return sorted((SQL_DIR / layer).glob("*.sql"))


KEY_LINE = re.compile(r"^-- key: (.+)$\n^CREATE TABLE (\w+) AS", re.M)


def declared_keys() -> dict[str, tuple[str, ...]]:
    """Each table's key, as its file declares it on the line above ``CREATE TABLE`` (``-- key: a, b``; ``one row``
    for a table of a single row): the columns that name one row, unique and never null (tested beside the build)."""
    keys = {}
    for layer in LAYERS:
        for path in layer_files(layer):
            for columns, table in KEY_LINE.findall(path.read_text(encoding="utf-8")):
                keys[table] = () if columns.strip() == "one row" else tuple(c.strip() for c in columns.split(","))
    return keys
