"""What the published warehouse was built from, kept beside it so the next build can be incremental.

An incremental build copies the published file and recomputes only the patients whose records
changed since that build; it is exact only if everything else that shapes a patient's rows is the
same: the code, the design settings and the SQL. Their fingerprint, with the build's as-of time
and data snapshot, is written here after each publish. No state, a different fingerprint, or a
published file whose ``build_info`` does not match: the next build is a full one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline import __version__
from pipeline.json_files import read_json
from pipeline.settings import DataHome, DesignSettings
from pipeline.sql_files import LAYERS, SQL_DIR, layer_files

SCOPE_SQL = "build/scope.sql"


@dataclass(frozen=True)
class BuildState:
    fingerprint: str
    as_of: datetime
    data_snapshot: str


def fingerprint(design: DesignSettings) -> str:
    digest = hashlib.sha256(f"{__version__}\n{design.to_json()}\n".encode())
    for path in [SQL_DIR / SCOPE_SQL] + [f for layer in LAYERS for f in layer_files(layer)]:
        digest.update(f"{path.relative_to(SQL_DIR)}\n".encode() + path.read_bytes())
    return digest.hexdigest()


def state_path(home: DataHome) -> Path:
    return home.warehouse_dir / ".outcomes.build.json"


def read_state(home: DataHome) -> BuildState | None:
    try:
        raw = read_json(state_path(home))
        return BuildState(raw["fingerprint"], datetime.fromisoformat(raw["as_of"]), raw["data_snapshot"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none yet, or unreadable: a full build


def write_state(home: DataHome, state: BuildState) -> None:
    path = state_path(home)
    partial = path.with_name(path.name + ".partial")
    text = json.dumps(
        {"fingerprint": state.fingerprint, "as_of": state.as_of.isoformat(), "data_snapshot": state.data_snapshot}
    )
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
