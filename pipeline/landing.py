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
from dataclasses import dataclass
from pathlib import Path

from pipeline.contract import DROP_ID_PATTERN
from pipeline.sources import ReceivedFile

_DROP_ID = re.compile(DROP_ID_PATTERN)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LandedDrop:
    drop_id: str
    path: Path
    refusal: str | None = None  # why the folder cannot be read as a drop at all


def discover_drops(landing: Path) -> list[LandedDrop]:
    """Every entry of the landing directory, in name order, with a refusal where it is unsafe."""
    if not landing.is_dir():
        return []
    drops: list[LandedDrop] = []
    root = landing.resolve()
    for entry in sorted(landing.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name.startswith(".") and name not in (".", ".."):
            continue  # hidden files (editors, rsync temporaries) are not drops
        if entry.is_symlink():
            drops.append(LandedDrop(_safe_id(name), entry, "it is a symbolic link, which is never followed"))
        elif not entry.is_dir():
            drops.append(LandedDrop(_safe_id(name), entry, "it is a file, not a drop folder"))
        elif not _DROP_ID.match(name) or ".." in name:
            drops.append(
                LandedDrop(
                    _safe_id(name),
                    entry,
                    "its folder name breaks the drop-id rule (letters, digits, '.', '_', '-'; at most 64; no '..')",
                )
            )
        elif entry.resolve().parent != root:
            drops.append(LandedDrop(name, entry, "it resolves outside the landing directory"))
        else:
            drops.append(LandedDrop(name, entry))
    return drops


def _safe_id(name: str) -> str:
    """A printable id for a refused folder: its name may itself be unsafe, so keep only safe characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64].strip(".") or "unnamed"
    return cleaned


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    return ReceivedFile(file=source.name, path=target, sha256=sha, size=target.stat().st_size)
