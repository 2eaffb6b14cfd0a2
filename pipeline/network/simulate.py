"""The whole exchange between data homes on one machine (tests, the demo): each site writes its bundle into
its own outbox/, the file is copied into the coordinator's landing/, the coordinator pools and writes each
site a request, each site answers into its outbox/, the answers are copied over, the coordinator pools
again (robust SEs) and writes the network report. Every step is a file, as between hospitals."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipeline.errors import PipelineError
from pipeline.network.answer import answer_request
from pipeline.network.bundle import build_bundle
from pipeline.network.coordinator import pool_landing
from pipeline.network.report import demo_sentences, write_network_report
from pipeline.settings import DataHome


def outbox(home: DataHome) -> Path:
    return home.root / "outbox"


def send(path: Path, landing: Path) -> Path:
    """Copy a file and its .sha256 into a landing folder (what a site's data owner sends)."""
    landing.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path.with_name(path.name + ".sha256"), landing / (path.name + ".sha256"))
    return Path(shutil.copy2(path, landing / path.name))


def _site_code(home: DataHome) -> str:
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        return str(con.execute("SELECT min(site_id) FROM patients").fetchone()[0])


def simulate(site_roots: Sequence[Path], coordinator_root: Path, now: datetime | None = None) -> list[str]:
    sites = [DataHome.resolve(p) for p in site_roots]
    coordinator = DataHome.resolve(coordinator_root).ensure()
    missing = [str(h.root) for h in sites if not h.warehouse_path.exists()]
    if missing:
        raise PipelineError(f"No published warehouse in {', '.join(missing)}: load each site with synk run first.")
    codes = {_site_code(h): h for h in sites}
    network = coordinator.root / "network.json"
    if not network.exists():
        network.write_text(json.dumps({"sites": sorted(codes)}, indent=1), encoding="utf-8")
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    lines = []
    for code, home in sorted(codes.items()):
        bundle = build_bundle(home, outbox(home) / f"{code}-{moment:%Y%m%dT%H%M%S}.json", created_at=moment)
        send(bundle, coordinator.landing)
        lines.append(f"{code}: bundle {bundle.name} sent")
    first = pool_landing(coordinator)
    lines += first.lines()
    for request in first.requests:
        code = request.parent.name
        home = codes[code]
        answer = answer_request(
            home, request, outbox(home) / f"answer-{request.name}", now=moment + timedelta(seconds=1)
        )
        send(answer, coordinator.landing)
        lines.append(f"{code}: answer {answer.name} sent")
    if first.requests:
        lines += pool_landing(coordinator).lines()
    report = write_network_report(coordinator)
    lines.append(f"Network report written: {report}")
    lines += demo_sentences(coordinator)
    return lines
