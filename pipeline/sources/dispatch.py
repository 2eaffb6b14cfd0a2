"""Which source reads a drop: manifest.json's "source" picks the parser (the clinic CSV files by default).

Whatever the source, a number column that spells missing values with a marker refuses the drop.

An ``exported_on`` after tomorrow (UTC: a day for a clinic's time zone and clock) refuses the drop
(rule ``exported_on_future``): loaded, it would hold every genuine export of the site after it as
older until that day came; ``latest_exported_on`` is the bound, and the order check ignores a drop
loaded before this rule that is dated past it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from pipeline.errors import DropRejected
from pipeline.ingest.screening import safe_name
from pipeline.json_files import UnreadableJson, read_json
from pipeline.sources import MANIFEST, Manifest, ReceivedFile, SourceDrop, clinic_csv, redcap
from pipeline.sources.numbers import refuse_missing_markers

# manifest.json "source" -> the parser that reads such a drop
SOURCES: dict[str, Callable[[str, list[ReceivedFile], Manifest], SourceDrop]] = {
    "clinic_csv": clinic_csv.parse_source,
    "redcap": redcap.parse_source,
}
_MANIFEST_MAX_BYTES = 64 << 10  # a manifest is a few lines; a file listing of a few files
EXPORTED_ON_FUTURE = "exported_on_future"
EXPORT_CLOCK_SKEW = timedelta(days=1)  # a clinic east of the server may already be a day ahead
_MANIFEST_FIX = (
    'Write it as a JSON object such as {"site_id": "dal01", "exported_on": "2026-11-20", "snapshot": "full"}.'
)


def latest_exported_on(today: date | None = None) -> str:
    """The latest exported_on a drop may carry: today (UTC) and one day of clock skew."""
    return ((today or datetime.now(UTC).date()) + EXPORT_CLOCK_SKEW).isoformat()


def _check_exported_on(drop_id: str, exported: str) -> None:
    latest = latest_exported_on()
    if exported > latest:
        raise DropRejected(
            drop_id,
            f"{MANIFEST} field 'exported_on' is {exported}, a day still to come (rule {EXPORTED_ON_FUTURE}: "
            f"at most {latest}, today allowing a day for time zones); loaded, it would hold every later export "
            "of the site as older.",
            "Write the day the data were exported (YYYY-MM-DD) in manifest.json and send the drop again as a "
            "new folder.",
        )


def read_manifest(drop_id: str, received: ReceivedFile | None) -> Manifest:
    if received is None:
        return Manifest()
    if received.size > _MANIFEST_MAX_BYTES:
        raise DropRejected(drop_id, f"{MANIFEST} is larger than {_MANIFEST_MAX_BYTES // 1024} KiB.", _MANIFEST_FIX)
    try:
        raw = read_json(received.path)
    except UnreadableJson as exc:
        raise DropRejected(drop_id, f"{MANIFEST} {exc}.", _MANIFEST_FIX) from None
    if not isinstance(raw, dict):
        raise DropRejected(drop_id, f"{MANIFEST} is not a JSON object.")
    snapshot = raw.get("snapshot", "full")
    if snapshot not in ("full", "incremental"):
        raise DropRejected(drop_id, f"{MANIFEST} field 'snapshot' must be 'full' or 'incremental'.")
    confirm = raw.get("confirm_retire", False)
    if not isinstance(confirm, bool):
        raise DropRejected(drop_id, f"{MANIFEST} field 'confirm_retire' must be true or false.")
    site = raw.get("site_id")
    exported = raw.get("exported_on")
    if exported is not None:
        try:
            exported = date.fromisoformat(str(exported)).isoformat()
        except ValueError:
            raise DropRejected(
                drop_id, f"{MANIFEST} field 'exported_on' is not a date written YYYY-MM-DD.", _MANIFEST_FIX
            ) from None
        _check_exported_on(drop_id, exported)
    return Manifest(
        site_id=str(site) if site is not None else None,
        exported_on=exported,
        snapshot=snapshot,
        confirm_retire=confirm,
        source=str(raw.get("source", "clinic_csv")),
        files=_listed_files(drop_id, raw.get("files")),
        raw=raw,
    )


def _listed_files(drop_id: str, files: object) -> dict[str, dict[str, object]] | None:
    """manifest.json's optional "files": {"patients.csv": {"bytes": 1234, "sha256": "..."}, ...}."""
    if files is None:
        return None
    fault = DropRejected(
        drop_id,
        f"{MANIFEST} field 'files' must map each file name to its \"bytes\" (a whole number) and/or "
        '"sha256" (64 hex digits).',
        _MANIFEST_FIX,
    )
    if not isinstance(files, dict) or not files:
        raise fault
    for listed in files.values():
        if not isinstance(listed, dict) or not set(listed) <= {"bytes", "sha256"} or not listed:
            raise fault
        size, sha = listed.get("bytes"), listed.get("sha256")
        if (size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0)) or (
            sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha))
        ):
            raise fault
    return {safe_name(str(name)): listed for name, listed in files.items()}


def parse_drop(drop_id: str, received: list[ReceivedFile]) -> SourceDrop:
    """Read a drop's archived files into text frames; raise DropRejected on any file-level fault."""
    manifest = read_manifest(drop_id, next((item for item in received if item.file == MANIFEST), None))
    parser = SOURCES.get(manifest.source)
    if parser is None:
        raise DropRejected(
            drop_id,
            f"{MANIFEST} field 'source' names no source the pipeline reads.",
            f"Leave it out for the three contract files, or give one of: {', '.join(SOURCES)}.",
        )
    drop = parser(drop_id, received, manifest)
    refuse_missing_markers(drop)
    return drop
