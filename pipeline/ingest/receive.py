"""Find drops in the landing directory and keep every received file in the archive.

A drop is a folder whose name is its id. Names that break the contract's rule, symbolic
links and anything that resolves outside the landing directory are refused before a byte of
them is read.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.checksums import sha256_of
from pipeline.contract import DROP_ID_PATTERN
from pipeline.errors import DropRejected
from pipeline.ingest.screening import name_rules, safe_name
from pipeline.settings import IngestSettings
from pipeline.sources import ReceivedFile

_DROP_ID = re.compile(DROP_ID_PATTERN)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LandedDrop:
    drop_id: str
    path: Path
    refusal: str | None = None  # why the folder cannot be read as a drop at all


def discover_drops(landing: Path) -> tuple[list[LandedDrop], list[str]]:
    """Every entry of the landing directory, in name order, with a refusal where it is unsafe; and the
    hidden folders, which are never read (a copy in progress may use one) but are named, not ignored."""
    if not landing.is_dir():
        return [], []
    drops: list[LandedDrop] = []
    hidden: list[str] = []
    root = landing.resolve()
    for entry in sorted(landing.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name.startswith("."):
            if entry.is_dir() and not entry.is_symlink():
                hidden.append("." + safe_name(name[1:], "folder"))
            continue  # hidden files (editors, rsync temporaries) are not drops
        if entry.is_symlink():
            drops.append(LandedDrop(refused_id(name), entry, "it is a symbolic link, which is never followed"))
        elif not entry.is_dir():
            drops.append(LandedDrop(refused_id(name), entry, "it is a file, not a drop folder"))
        elif not _DROP_ID.fullmatch(name) or ".." in name:
            drops.append(
                LandedDrop(
                    refused_id(name),
                    entry,
                    "its folder name breaks the drop-id rule (letters, digits, '.', '_', '-'; at most 64; no '..')",
                )
            )
        elif name_rules(name):
            drops.append(
                LandedDrop(
                    refused_id(name),
                    entry,
                    "its folder name looks like it holds an identifier ("
                    + ", ".join(rule.replace("_", " ") for rule in name_rules(name))
                    + "); name drop folders by site and month, e.g. clinic_a-2026-11",
                )
            )
        elif entry.resolve().parent != root:
            drops.append(LandedDrop(refused_id(name), entry, "it resolves outside the landing directory"))
        else:
            drops.append(LandedDrop(name, entry))
    return drops, hidden


def refused_id(name: str) -> str:
    """The id a refused folder is recorded under: unique to the name as received, and never a valid
    drop id ('~' is outside the rule), so it cannot overwrite the record of a drop that loaded
    ('clinic_a 2026' and 'clinic_a_2026' stay two drops). Its readable part is the name with unsafe
    characters replaced, unless that still looks like an identifier."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    cleaned = re.sub(r"^[^A-Za-z0-9]+", "", re.sub(r"[^A-Za-z0-9._-]", "_", name))[:48] or "unnamed"
    if name_rules(cleaned):
        cleaned = "withheld-folder-name"
    return f"{cleaned}~{digest}"


def list_drop_files(drop: LandedDrop) -> tuple[list[Path], list[str]]:
    """Regular files of a drop, and the names of entries that are refused (links, folders)."""
    files: list[Path] = []
    refused: list[str] = []
    for entry in sorted(drop.path.iterdir(), key=lambda p: p.name):
        if entry.is_symlink() or not entry.is_file():
            refused.append(entry.name)
        else:
            files.append(entry)
    return files, refused


def archive_file(source: Path, archive_root: Path, drop_id: str) -> ReceivedFile:
    """Copy a received file into ``archive/<drop>/<sha256>/<name>`` (written whole, then renamed)."""
    sha = sha256_of(source)
    target_dir = archive_root / drop_id / sha[:16]
    target = target_dir / source.name
    if not target.exists():
        target_dir.mkdir(parents=True, exist_ok=True)
        partial = target_dir / f".{source.name}.partial"
        shutil.copyfile(source, partial)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    # Recorded and printed under a safe name: a received name may hold an identifier or a formula.
    return ReceivedFile(file=safe_name(source.name), path=target, sha256=sha, size=target.stat().st_size)


def check_limits(drop_id: str, received: list[ReceivedFile], limits: IngestSettings) -> None:
    """Refuse a file larger (once decompressed) or longer than the limits, counted in a stream so that a
    small .gz that expands to gigabytes is never held in memory."""
    faults = []
    max_bytes = limits.max_file_mib << 20
    for item in received:
        size, lines = expanded_size(item.path, item.file.endswith(".gz"), max_bytes)
        if size > max_bytes:
            faults.append(
                DropRejected(
                    drop_id,
                    f"{item.file} is larger than {limits.max_file_mib} MiB"
                    + (" once decompressed" if item.file.endswith(".gz") else "")
                    + " (the ingest limit max_file_mib).",
                    "Check the export (10,000 patients make 41 MiB); if it is right, raise max_file_mib in "
                    "ingest.json in the data home.",
                )
            )
        elif lines > limits.max_rows_per_file:
            faults.append(
                DropRejected(
                    drop_id,
                    f"{item.file} has more than {limits.max_rows_per_file:,} lines (the ingest limit "
                    "max_rows_per_file).",
                    "Check the export; if it is right, raise max_rows_per_file in ingest.json in the data home.",
                )
            )
    if faults:
        raise DropRejected.all_of(drop_id, faults)


def expanded_size(path: Path, gzipped: bool, max_bytes: int) -> tuple[int, int]:
    """(bytes, line ends) of a file as its reader will see it, stopping once past ``max_bytes``.
    A gzip file that cannot be read is left to the parser, which names the fault."""
    size = lines = 0
    with path.open("rb") as handle:
        if not gzipped:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                size += len(chunk)
                lines += chunk.count(b"\n")
                if size > max_bytes:
                    break
            return size, lines
        inflate = zlib.decompressobj(wbits=31)
        try:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                while chunk:
                    out = inflate.decompress(chunk, _CHUNK)
                    size += len(out)
                    lines += out.count(b"\n")
                    if size > max_bytes:
                        return size, lines
                    chunk = inflate.unconsumed_tail
                    if inflate.eof:  # a file of several gzip members: the next one starts here
                        chunk = inflate.unused_data + chunk
                        inflate = zlib.decompressobj(wbits=31)
        except zlib.error:
            pass
    return size, lines
