"""The site's answer to the coordinator's request (the second exchange), a file the data owner can read.

The site checks the request before it computes anything: the format, version and checksum; that it is
addressed to this site about a bundle this site sent, over that bundle's models only; that the warehouse is
still the one the bundle was built from; and the limits of docs/network.md ("Rounds"): one answer per
bundle (``protocol.MAX_ANSWERS_PER_BUNDLE``), at most ``protocol.MAX_REQUESTS_PER_QUARTER`` answers a
quarter, and no request from a network of fewer than ``protocol.MIN_SITES_FOR_REQUEST`` sites. Each
refusal is one sentence. The answer: per model, the site's part of the robust variance's meat and its score
(``sufficient.site_meat``) over the same rows as its statistics.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np

from pipeline import __version__
from pipeline.checksums import sha256_of
from pipeline.errors import NetworkInputError, PipelineError
from pipeline.network import protocol
from pipeline.network.bundle import SENT_LOG, content_checksum, local_design, prepared_frame
from pipeline.network.site_frames import model_frames
from pipeline.network.sufficient import MeatRequest, site_meat
from pipeline.quarters import current_quarter
from pipeline.settings import DataHome, ModelSettings

ANSWERED_LOG = "answered.jsonl"


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _checked_request(home: DataHome, path: Path, site: str, now: datetime) -> dict[str, object]:
    name = path.name
    try:
        request = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PipelineError(f"{name} refused: it is not a readable JSON request.") from error
    if not isinstance(request, dict) or request.get("format") != protocol.REQUEST_FORMAT:
        raise PipelineError(f"{name} refused: its format is not {protocol.REQUEST_FORMAT}.")
    if request.get("version") != protocol.VERSION:
        raise PipelineError(f"{name} refused: request version {request.get('version')} is not {protocol.VERSION}.")
    if request.get("checksum") != content_checksum(request):
        raise PipelineError(f"{name} refused: it was altered after the coordinator wrote it (its checksum differs).")
    if request.get("site") != site:
        raise PipelineError(f"{name} refused: it is addressed to site {request.get('site')}, this is site {site}.")
    sent = {str(s["bundle_id"]): s for s in _lines(home.staging / "network" / SENT_LOG)}
    bundle = sent.get(str(request.get("bundle_id")))
    if bundle is None:
        raise PipelineError(
            f"{name} refused: it asks about bundle {request.get('bundle_id')}, which this site never sent."
        )
    asked = [str(m["key"]) for m in request["models"]]  # type: ignore[union-attr]
    foreign = sorted(set(asked) - set(bundle["models"]))  # type: ignore[arg-type]
    if foreign:
        raise PipelineError(f"{name} refused: it asks about model(s) the bundle did not hold: {', '.join(foreign)}.")
    if len(request.get("bundles", {})) < protocol.MIN_SITES_FOR_REQUEST:  # type: ignore[arg-type]
        raise PipelineError(
            f"{name} refused: a request from a network of fewer than {protocol.MIN_SITES_FOR_REQUEST} sites would "
            "tell this site the other site's sums."
        )
    answered = _lines(home.staging / "network" / ANSWERED_LOG)
    if sum(a["bundle_id"] == bundle["bundle_id"] for a in answered) >= protocol.MAX_ANSWERS_PER_BUNDLE:
        raise PipelineError(
            f"{name} refused: bundle {bundle['bundle_id']} was answered already; a bundle is answered once "
            "(repeated queries can reveal patients)."
        )
    quarter = current_quarter(now)
    if sum(a.get("quarter") == quarter for a in answered) >= protocol.MAX_REQUESTS_PER_QUARTER:
        raise PipelineError(
            f"{name} refused: this site answered {protocol.MAX_REQUESTS_PER_QUARTER} requests in {quarter} already, "
            "the network's limit."
        )
    return request | {"data_snapshot": bundle["data_snapshot"]}


def answer_request(home: DataHome, request_path: Path, out: Path, now: datetime | None = None) -> Path:
    """Check the request, compute the site's meat for each model asked, write the answer (and its .sha256
    and the data owner's page .md beside it)."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    if not home.warehouse_path.exists():
        raise PipelineError(f"No published warehouse at {home.warehouse_path}: run a load first.")
    settings = ModelSettings.for_home(home)
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        sites = [str(r[0]) for r in con.execute("SELECT DISTINCT site_id FROM patients").fetchall()]
        site = sites[0] if len(sites) == 1 else ""
        request = _checked_request(home, request_path, site, now)
        snapshot = str(con.execute("SELECT data_snapshot FROM build_info").fetchone()[0])
        if snapshot != request["data_snapshot"]:
            raise PipelineError(
                f"{request_path.name} refused: the warehouse changed since bundle {request['bundle_id']} was built; "
                "send a new bundle instead."
            )
        frames = {m.key: m for m in model_frames(con)}
    models = []
    for asked in request["models"]:  # type: ignore[union-attr]
        model = frames[str(asked["key"])]
        frame, weight = prepared_frame(model, site, settings)
        design = local_design(model, site)
        if tuple(asked["names"]) != design.names:
            raise NetworkInputError(
                f"{request_path.name} refused: model {model.key} names other columns than its bundle."
            )
        meat_request = MeatRequest(
            design.names,
            np.asarray(asked["beta"], dtype=float),
            np.asarray(asked["bread"], dtype=float),
            str(asked["cov_type"]),
        )
        meat = site_meat(frame, design, site, "change", meat_request, weight)
        models.append(
            {
                "key": model.key,
                "names": list(design.names),
                "n": meat.n,
                "cov_type": meat.cov_type,
                "meat": meat.meat.tolist(),
                "score": meat.score.tolist(),
            }
        )
    payload: dict[str, object] = {
        "format": protocol.ANSWER_FORMAT,
        "version": protocol.VERSION,
        "request_id": request["request_id"],
        "site": site,
        "bundle_id": request["bundle_id"],
        "bundles": request["bundles"],
        "created_at": now.isoformat(),
        "code_version": __version__,
        "models": models,
    }
    payload["checksum"] = content_checksum(payload)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1, sort_keys=True, allow_nan=False), encoding="utf-8")
    out.with_name(out.name + ".sha256").write_text(f"{sha256_of(out)}  {out.name}\n", encoding="utf-8")
    out.with_suffix(".md").write_text(_page(payload), encoding="utf-8")
    log = home.staging / "network" / ANSWERED_LOG
    with log.open("a", encoding="utf-8") as handle:
        entry = {
            "request_id": request["request_id"],
            "bundle_id": request["bundle_id"],
            "quarter": current_quarter(now),
        }
        handle.write(json.dumps(entry) + "\n")
    return out


def _page(payload: dict[str, object]) -> str:
    lines = [
        f"# Answer to request {payload['request_id']}: what it holds",
        "",
        f"Site {payload['site']}'s answer to the coordinator's second exchange about bundle {payload['bundle_id']}. "
        "For each model below: the sum over the same patients as the bundle's of each patient's squared residual "
        "(from the pooled coefficients the coordinator sent) times the products of their columns, divided by a "
        "leverage term for HC2/HC3 (the meat), and the sum of residual times columns (the score). No patient's "
        "row, and no count not already in the bundle.",
        "",
    ]
    for model in payload["models"]:  # type: ignore[union-attr]
        lines.append(
            f"- {model['key']}: {model['cov_type']} meat and score over {model['n']} patients, "
            f"columns {', '.join(model['names'])}."
        )
    return "\n".join([*lines, "", f"Checksum of the content: {payload['checksum']}.", ""])
