"""Every release's register, kept in the data home so that each later release is audited against it.

A reader may keep every release ever written, so every one keeps its own register, never overwritten:
``staging/releases/<release>.<sequence>.<written>.<content hash>.register.json.gz`` (``<release>`` as
``2026-Q4`` or ``provisional-2026-Q4``; the sequence counts that release's writings from 1). A release
written again with the same counts (the same content hash) adds no file. A register kept before
registers were kept per writing (``<release>.register.json.gz``) is read as that release's first one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.quarters import quarter_folder
from pipeline.report.register import Register
from pipeline.settings import DataHome

SUFFIX = ".register.json.gz"
BUNDLE_PREFIX = "bundle-"  # a network bundle's register (pipeline/network/bundle.py): it leaves the home too
_NAME = re.compile(
    r"\A(?P<release>(?:provisional-)?\d{4}-Q[1-4])(?:\.(?P<seq>\d+)\.\d{8}T\d{6}Z\.(?P<hash>[0-9a-f]+))?\Z"
)


@dataclass(frozen=True)
class KeptRegister:
    path: Path
    release: str  # as in the file name: "2026-Q4", "provisional-2026-Q4"
    sequence: int  # 1 for the release's first writing (and for a register kept the old way)
    digest: str  # "" for a register kept the old way

    @property
    def provisional(self) -> bool:
        return self.release.startswith("provisional-")

    @property
    def period(self) -> str:
        return self.release.removeprefix("provisional-")


def folder_of(home: DataHome) -> Path:
    """The data home's staging area, never the published folder: a register names patients."""
    return home.staging / "releases"


def kept(home: DataHome) -> list[KeptRegister]:
    """Every register kept, oldest first: by quarter, a quarter's provisional releases before its final one,
    each release's writings in order. Files of another name are not registers and are left alone."""
    folder = folder_of(home)
    found = []
    for path in folder.glob(f"*{SUFFIX}") if folder.exists() else []:
        match = _NAME.match(path.name.removesuffix(SUFFIX))
        if match:
            found.append(KeptRegister(path, match["release"], int(match["seq"] or 1), match["hash"] or ""))
    return sorted(found, key=lambda k: (k.period, not k.provisional, k.sequence, k.path.name))


def earlier_kept(home: DataHome, quarter: str, provisional: bool) -> list[KeptRegister]:
    """The kept registers of the releases a reader may hold beside this one: every release of an earlier quarter,
    final or provisional, and every provisional release of this quarter ever written (a reader may keep the
    first and the third). A final release written again is not audited against itself, nor against any
    later quarter's, so it gives the same numbers."""
    this = quarter_folder(quarter)
    return [k for k in kept(home) if k.period < this or (k.period == this and k.provisional)]


def bundle_registers(home: DataHome) -> list[Path]:
    """The register of every network bundle the site has sent: the coordinating centre holds them all."""
    folder = folder_of(home)
    return sorted(folder.glob(f"{BUNDLE_PREFIX}*{SUFFIX}")) if folder.exists() else []


def earlier_registers(home: DataHome, quarter: str, provisional: bool) -> list[Register]:
    """The registers of ``earlier_kept``, read, and of every network bundle sent. A provisional one is named
    with its writing ("provisional/2026-Q4 #2"), a quarter's final release being written once (again only
    with the same counts)."""
    found = [Register.load(path) for path in bundle_registers(home)]
    for item in earlier_kept(home, quarter, provisional):
        register = Register.load(item.path)
        if item.provisional:
            register.release = f"{register.release} #{item.sequence}"
        found.append(register)
    return found


def content_digest(path: Path) -> str:
    """The register's counts and patients, hashed (not the gzip file, whose header holds the time written)."""
    with gzip.open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def keep_register(home: DataHome, release: str, written: Path, now: datetime | None = None) -> Path:
    """Keep the register at ``written`` (the release ``release``: "2026-Q4", "provisional/2026-Q4") as a file
    of its own beside every earlier one; return its path. The same counts kept before: that file."""
    name = release.replace("/", "-")
    digest = content_digest(written)
    same = [k for k in kept(home) if k.release == name]
    for item in same:
        if item.digest == digest[:16]:
            written.unlink()
            return item.path
    folder = folder_of(home)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}"
    sequence = max((k.sequence for k in same), default=0) + 1
    partial = folder / f".{name}.{os.getpid()}.partial"
    shutil.copyfile(written, partial)
    try:
        while True:
            target = folder / f"{name}.{sequence:03d}.{stamp}.{digest[:16]}{SUFFIX}"
            try:
                os.link(partial, target)  # whole, and never over another writing's file
                break
            except FileExistsError:
                sequence += 1
    finally:
        partial.unlink()
    written.unlink()
    return target
