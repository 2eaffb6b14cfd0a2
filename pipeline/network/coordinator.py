"""The coordinating centre: receive what landed, pool the sites' newest bundles, publish the network's
warehouse (warehouse/network.duckdb), and write the second exchange's requests (requests/<site>/).

``pool_landing`` is what ``synk network pool`` and the DAG's tasks call, in three steps any of which can run
alone: ``receive`` (landing.py), ``publish_network`` and ``write_requests``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.checksums import sha256_of
from pipeline.errors import PipelineError
from pipeline.network import protocol
from pipeline.network.bundle import content_checksum
from pipeline.network.landing import Received, accepted, latest_bundles, receive
from pipeline.network.pooling import (
    NETWORK_COLUMNS,
    cov_type_for,
    local_request,
    one_stage_fits,
    one_stage_rows,
    pooled_complications,
    pooled_responders,
    side_by_side,
    site_estimates,
    two_stage_rows,
)
from pipeline.settings import DataHome
from pipeline.warehouse import STORAGE_VERSION, sql_string

NETWORK_WAREHOUSE = "network.duckdb"


def network_warehouse(home: DataHome) -> Path:
    return home.warehouse_dir / NETWORK_WAREHOUSE


def requests_dir(home: DataHome) -> Path:
    return home.root / "requests"


def _higher(bundles: list[dict[str, object]]) -> dict[str, bool]:
    higher: dict[str, bool] = {}
    for bundle in bundles:
        for e in [*bundle["estimates"], *bundle["responders"]]:  # type: ignore[misc]
            higher[str(e["outcome"])] = bool(e["higher_is_better"])
    return higher


def _answers_for(home: DataHome, bundles: list[dict[str, object]]) -> dict[str, dict[str, dict[str, object]]]:
    """model key -> site -> that site's answer, from answers to requests about the sites' current bundles."""
    current = {str(b["site"]): str(b["bundle_id"]) for b in bundles}
    found: dict[str, dict[str, dict[str, object]]] = {}
    for answer in accepted(home, "answer"):
        if current.get(str(answer["site"])) != answer.get("bundle_id") or answer.get("bundles") != current:
            continue  # a request about other bundles (an older round)
        for model in answer["models"]:  # type: ignore[union-attr]
            found.setdefault(str(model["key"]), {})[str(answer["site"])] = model
    return found


def network_tables(home: DataHome) -> dict[str, pd.DataFrame]:
    """The network's tables from the sites' newest bundles and the answers about them."""
    bundles = latest_bundles(home)
    if not bundles:
        raise PipelineError(f"No accepted bundle in {home.root}: nothing to pool.")
    higher = _higher(bundles)
    not_pooled: list[dict[str, object]] = []
    stages = one_stage_fits(bundles, not_pooled)
    sites = site_estimates(bundles)
    rows = [*one_stage_rows(stages, _answers_for(home, bundles), higher), *not_pooled, *two_stage_rows(sites)]
    estimates = side_by_side(rows, higher)
    run_id = content_checksum({"bundles": [b["checksum"] for b in bundles]})[:16]
    estimates["run_id"] = run_id
    estimates = estimates.sort_values(["contrast", "method", "outcome", "timepoint", "stage"]).reset_index(drop=True)
    network_sites = pd.DataFrame(
        [
            {k: b[k] for k in ("site", "bundle_id", "created_at", "data_snapshot", "code_version", "checksum")}
            | {"left_out": json.dumps(b["left_out"])}
            for b in bundles
        ]
    )
    return {
        "network_estimates": estimates[list(NETWORK_COLUMNS)],
        "network_site_estimates": sites,
        "network_complication_rates": pooled_complications(bundles),
        "network_responders": pooled_responders(bundles),
        "network_sites": network_sites,
    }


def publish_network(home: DataHome) -> Path:
    """Build warehouse/network.duckdb in a new file and put it in place (no reader sees half a build)."""
    tables = network_tables(home)
    target = network_warehouse(home)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(target.name + ".building")
    building.unlink(missing_ok=True)
    with duckdb.connect() as con:
        con.execute(f"ATTACH {sql_string(building)} AS network (STORAGE_VERSION '{STORAGE_VERSION}')")
        for name, frame in tables.items():
            if frame.empty:
                continue
            con.register("frame", frame)
            con.execute(f"CREATE TABLE network.{name} AS SELECT * FROM frame")
            con.unregister("frame")
        con.execute("DETACH network")
    os.replace(building, target)
    return target


def _write_json(path: Path, payload: dict[str, object]) -> Path:
    payload["checksum"] = content_checksum(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, sort_keys=True, allow_nan=False), encoding="utf-8")
    path.with_name(path.name + ".sha256").write_text(f"{sha256_of(path)}  {path.name}\n", encoding="utf-8")
    return path


def write_requests(home: DataHome, now: datetime | None = None) -> list[Path]:
    """One request per site for the robust variance of every model it contributed to (the second exchange),
    unless one was written for these bundles already or the network has fewer than 3 sites for the model."""
    bundles = latest_bundles(home)
    current = {str(b["site"]): str(b["bundle_id"]) for b in bundles}
    stages = [s for s in one_stage_fits(bundles) if len(s.design.sites) >= protocol.MIN_SITES_FOR_REQUEST]
    written = []
    created = (now or datetime.now(UTC)).replace(microsecond=0)
    for site, bundle_id in current.items():
        models = [local_request(s, site, cov_type_for(len(s.design.sites))) for s in stages if site in s.design.sites]
        path = requests_dir(home) / site / f"{bundle_id}-round2.json"
        if not models or path.exists():
            continue
        payload: dict[str, object] = {
            "format": protocol.REQUEST_FORMAT,
            "version": protocol.VERSION,
            "request_id": f"{bundle_id}-round2",
            "round": 2,
            "site": site,
            "bundle_id": bundle_id,
            "bundles": current,
            "created_at": created.isoformat(),
            "models": models,
        }
        written.append(_write_json(path, payload))
    return written


@dataclass
class PoolResult:
    received: Received
    warehouse: Path | None
    requests: list[Path] = field(default_factory=list)

    @property
    def refused(self) -> list[str]:
        return self.received.refused

    def lines(self) -> list[str]:
        lines = [f"Accepted {len(self.received.accepted)} file(s); refused {len(self.received.refused)}."]
        lines += self.received.refused
        if self.warehouse is not None:
            lines.append(f"Network warehouse published at {self.warehouse}.")
        lines += [f"Request written: {p}" for p in self.requests]
        return lines


def pool_landing(home: DataHome) -> PoolResult:
    received = receive(home)
    warehouse = publish_network(home) if latest_bundles(home) else None
    return PoolResult(received, warehouse, write_requests(home) if warehouse else [])


# The DAG's tasks (dags/pool_network_bundles.py): each returns what Airflow may keep (plain values).
def receive_task(home: DataHome) -> dict[str, object]:
    received = receive(home)
    return {"accepted": received.accepted, "refused": received.refused}


def publish_task(home: DataHome) -> str:
    return str(publish_network(home)) if latest_bundles(home) else ""


def requests_task(home: DataHome) -> list[str]:
    return [str(p) for p in write_requests(home)] if latest_bundles(home) else []


def check_refusals_task(received: dict[str, object]) -> None:
    """Fail (once, with the sentences) where a file was refused: the coordinator must hear of it."""
    refused = received.get("refused") or []
    if refused:
        raise PipelineError(" ".join(str(r) for r in refused))  # type: ignore[union-attr]
