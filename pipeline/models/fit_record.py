"""What each fit fitted, written out for the cross-check against R's reference implementations
(``synk crosscheck-export``, tests/crosscheck/, docs/crosscheck.md).

Each method calls :func:`record` once with the frame it fitted (outcome, design columns as built,
weights, cluster ids) and its specification (design column names, variance type, truncation, family,
scale of the published number). Nothing is recorded unless a recorder is active (:func:`recording`):
in a normal run :func:`record` returns at once. The recorder is a module global, not a context
variable, so the forked fitting workers (pipeline/models/parallel.py) inherit it; which contrast,
outcome and timepoint a fit belongs to is a context variable set by the caller (:func:`labelled`).

The frames hold patient rows: a recorder writes them under the data home's ``staging/`` (never published).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd


@dataclass(frozen=True)
class FittedFrame:
    """One fit: ``method``, its key (contrast, outcome, timepoint), the frame and the specification."""

    method: str
    key: dict[str, str]
    frame: pd.DataFrame
    spec: dict[str, object] = field(default_factory=dict)


class FitRecorder(Protocol):
    def __call__(self, fitted: FittedFrame) -> None: ...


_recorder: FitRecorder | None = None
_label: ContextVar[dict[str, str] | None] = ContextVar("fit_label", default=None)


@contextmanager
def recording(recorder: FitRecorder) -> Iterator[None]:
    """Every :func:`record` call inside goes to ``recorder``."""
    global _recorder
    previous, _recorder = _recorder, recorder
    try:
        yield
    finally:
        _recorder = previous


@contextmanager
def labelled(**key: str | None) -> Iterator[None]:
    """The fits inside belong to ``key`` (contrast, outcome, timepoint); ``labelled()`` with no key: to
    none (a fit inside another, as each site's own ANCOVA, is not recorded)."""
    token = _label.set({k: str(v) for k, v in key.items() if v is not None} if key else None)
    try:
        yield
    finally:
        _label.reset(token)


def on() -> bool:
    """A recorder is active: build a frame for :func:`record` only then (a normal run builds none)."""
    return _recorder is not None


def active() -> bool:
    """A recorder is active and the fits here belong to a key."""
    return _recorder is not None and _label.get() is not None


def record(method: str, frame: pd.DataFrame, key: dict[str, str] | None = None, **spec: object) -> None:
    """Hand the fit to the active recorder (none: nothing happens); ``key``: the fit's own, where it is
    not the label's (a multiplicity family spans many)."""
    key = key or _label.get()
    if _recorder is None or key is None:
        return
    _recorder(FittedFrame(method, dict(key), frame, spec))


class DirectoryRecorder:
    """Writes each fit as ``<method>/<contrast>__<outcome>__<timepoint>.csv`` (the frame, full precision)
    and ``.json`` (key and specification) under ``directory``; several fits of one key (the multiplicity
    families of one run) get a number each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self, fitted: FittedFrame) -> None:
        folder = self.directory / fitted.method
        folder.mkdir(parents=True, exist_ok=True)
        stem = "__".join(fitted.key.get(k, "all") for k in ("contrast", "outcome", "timepoint"))
        path = folder / f"{stem}.csv"
        number = 1
        while path.exists():  # one process per job: a key is never written by two at once
            number += 1
            path = folder / f"{stem}__{number}.csv"
        fitted.frame.to_csv(path, index=False, float_format="%.17g")
        meta = {"method": fitted.method, **fitted.key, **fitted.spec}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str) + "\n")
        os.chmod(path, 0o600)  # patient rows: the owner's only
