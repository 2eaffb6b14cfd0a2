"""The coordinating centre's landing: bundles and answers arrive in its data home's landing/ like drops.

Each file (``*.json``, its ``*.json.sha256`` beside it) is checked before it counts: the format and version
the protocol names, the file's sha256 against its .sha256 file and the content's checksum against the one
it carries (an altered file fails one or the other), a site the network knows (``network.json`` in the
coordinator's home: ``{"sites": [...]}``), and never the same bundle twice. An accepted file is moved into
archive/network/ under its id; a refused one into archive/network/refused/, so nothing is lost; either way a
row in the ledger (staging/network.duckdb, ``network_ledger``) with the file's checksum and, for a refusal,
its one sentence. A refusal never quotes the file's content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipeline.checksums import sha256_of
from pipeline.errors import PipelineError
from pipeline.network import protocol
from pipeline.network.bundle import content_checksum
from pipeline.settings import DataHome

LEDGER_SQL = """
CREATE TABLE IF NOT EXISTS network_ledger (
    received_at TIMESTAMP, file VARCHAR, kind VARCHAR, item_id VARCHAR, site VARCHAR,
    checksum VARCHAR, status VARCHAR, reason VARCHAR
)
"""
ACCEPTED, REFUSED = "accepted", "refused"
KINDS = {protocol.FORMAT: "bundle", protocol.ANSWER_FORMAT: "answer"}


def ledger_path(home: DataHome) -> Path:
    return home.staging / "network.duckdb"


def archive_dir(home: DataHome) -> Path:
    return home.root / "archive" / "network"


def known_sites(home: DataHome) -> tuple[str, ...]:
    path = home.root / "network.json"
    if not path.exists():
        raise PipelineError(
            f'{path} is missing: the coordinator lists the network\'s sites there ({{"sites": [...]}}).'
        )
    try:
        sites = json.loads(path.read_text(encoding="utf-8")).get("sites")
    except (json.JSONDecodeError, AttributeError):
        sites = None
    if not isinstance(sites, list) or not sites or not all(isinstance(s, str) for s in sites):
        raise PipelineError(f"{path}: key sites must be a list of the network's site codes.")
    return tuple(sites)


@dataclass
class Received:
    accepted: list[str] = field(default_factory=list)  # ids
    refused: list[str] = field(default_factory=list)  # one sentence each


def _refusal(path: Path, payload: dict[str, object] | None, sites: tuple[str, ...], seen: set[str]) -> str | None:
    name = path.name
    if payload is None:
        return f"{name} refused: it is not a JSON network bundle or answer."
    kind = KINDS.get(str(payload.get("format")))
    if kind is None:
        return f"{name} refused: its format is not {protocol.FORMAT} or {protocol.ANSWER_FORMAT}."
    if payload.get("version") != protocol.VERSION:
        return (
            f"{name} refused: {kind} version {payload.get('version')} is not the network's version {protocol.VERSION}."
        )
    sidecar = path.with_name(name + ".sha256")
    if not sidecar.exists():
        return f"{name} refused: its checksum file {sidecar.name} is missing."
    stated = sidecar.read_text(encoding="utf-8").split()
    if not stated or stated[0] != sha256_of(path) or payload.get("checksum") != content_checksum(payload):
        return f"{name} refused: it was altered after it was written (its sha256 or its content checksum differs)."
    site = str(payload.get("site"))
    if site not in sites:
        return f"{name} refused: site {site} is not one of the network's sites (network.json)."
    item = str(payload.get("bundle_id") if kind == "bundle" else payload.get("request_id"))
    if str(payload["checksum"]) in seen or f"{kind}:{item}" in seen:
        return f"{name} refused: {kind} {item} of site {site} was received before (a duplicate)."
    return None


def receive(home: DataHome, now: datetime | None = None) -> Received:
    """Check every file in landing/; move each into the archive; record it in the ledger."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    sites = known_sites(home)
    result = Received()
    home.staging.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(ledger_path(home))) as con:
        con.execute(LEDGER_SQL)
        seen = set()
        for kind, item, checksum in con.execute(
            "SELECT kind, item_id, checksum FROM network_ledger WHERE status = ?", [ACCEPTED]
        ).fetchall():
            seen |= {f"{kind}:{item}", str(checksum)}
        for path in sorted(home.landing.glob("*.json")):
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
                payload = payload if isinstance(payload, dict) else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                payload = None
            reason = _refusal(path, payload, sites, seen)
            checksum = sha256_of(path)
            kind = KINDS.get(str((payload or {}).get("format")), "unknown")
            if reason is None and payload is not None:
                item = str(payload.get("bundle_id") if kind == "bundle" else payload.get("request_id"))
                target = archive_dir(home) / f"{kind}s" / f"{item}.json"
                seen |= {f"{kind}:{item}", str(payload["checksum"])}
                result.accepted.append(item)
                status, site = ACCEPTED, str(payload["site"])
            else:
                item, site, status = "", str((payload or {}).get("site", "")), REFUSED
                target = archive_dir(home) / "refused" / f"{now:%Y%m%dT%H%M%S}-{path.name}"
                result.refused.append(str(reason))
            target.parent.mkdir(parents=True, exist_ok=True)
            sidecar = path.with_name(path.name + ".sha256")
            path.replace(target)
            if sidecar.exists():
                sidecar.replace(target.with_name(target.name + ".sha256"))
            page = path.with_suffix(".md")
            if page.exists():
                page.replace(target.with_suffix(".md"))
            con.execute(
                "INSERT INTO network_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [now, path.name, kind, item, site, checksum, status, reason],
            )
    return result


def accepted(home: DataHome, kind: str) -> list[dict[str, object]]:
    """Every accepted file of a kind ('bundle' or 'answer'), oldest first."""
    folder = archive_dir(home) / f"{kind}s"
    items = (
        [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))] if folder.exists() else []
    )
    return sorted(items, key=lambda p: (str(p.get("created_at", "")), str(p.get("site"))))


def latest_bundles(home: DataHome) -> list[dict[str, object]]:
    """Each site's newest accepted bundle, in site order."""
    newest: dict[str, dict[str, object]] = {}
    for bundle in accepted(home, "bundle"):
        newest[str(bundle["site"])] = bundle
    return [newest[s] for s in sorted(newest)]
