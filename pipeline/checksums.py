"""File checksums, in one home: the archive keys received files by them, the ledger records them, a data
snapshot hashes the loaded ones together, and a report's manifest lists its files'."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20  # read a file in pieces: an export may be larger than memory allows


def sha256_of(path: Path) -> str:
    """A file's sha256, in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def combined_sha256(checksums: Iterable[str]) -> str:
    """One sha256 for several files: of their hex checksums joined in the order given."""
    return hashlib.sha256("".join(checksums).encode()).hexdigest()
