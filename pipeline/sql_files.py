"""SQL lives in ``sql/`` as files; this reads them in build order."""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "sql"
LAYERS = ("staging", "core", "marts")


def read_sql(relative: str) -> str:
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def layer_files(layer: str) -> list[Path]:
    """A layer's files in name order: a numeric prefix sets the order where one file reads another."""
    return sorted((SQL_DIR / layer).glob("*.sql"))
