"""The register of published counts: every count of patients a release prints, with the patients it counts.

A table does not format its own counts: it registers each one (:meth:`Register.count`) with the set of
patients behind it, and prints what the register says (:meth:`Register.text`). The disclosure audit
(:mod:`pipeline.report.disclosure`) reads the whole register, with those of earlier releases, and may hide
more cells; the tables are rendered only after it has passed. Cells the tables imply without printing
(e.g. the patients of the combinations that have no contrast of their own, whose number is one published
total minus others) are registered as ``implied``: never printed, but audited like a hidden cell.

A register is kept with the release in the data home (not published: it names patients), so that the next
release can be audited against it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.report.suppression import COMPLEMENTARY, SMALL_CELL, SUPPRESSED, format_count

# A cell's status. SHOWN: printed exactly. SMALL: 1 to 10, printed "<11". SECONDARY: hidden so that
# another cannot be worked out, printed "suppressed". RANGE: printed as "low to high". IMPLIED: never
# printed, but a difference of printed counts, so audited as if hidden.
# WITHHELD: hidden by the audit where even "<11" or "suppressed" would say too much; printed "not shown".
SHOWN, SMALL, SECONDARY, RANGE, IMPLIED, WITHHELD = "shown", "small", "secondary", "range", "implied", "withheld"
HIDDEN_STATUSES = frozenset({SMALL, SECONDARY, IMPLIED, WITHHELD})
NOT_SHOWN = "not shown"

PatientKey = tuple[str, str]


Place = tuple[str, int, str]  # table, row position, column


@dataclass
class Cell:
    key: str  # stable across releases, e.g. "combinations|combined|BTX+PT"
    table: str  # the published file it first appears in ("" for an implied cell)
    population: str  # what it counts, in words
    members: np.ndarray  # sorted indices into the register's patients
    status: str = SHOWN
    low: int | None = None  # RANGE: the printed bounds
    high: int | None = None
    why: str = ""  # set when the audit hid it
    places: list[Place] = field(default_factory=list)  # every (table, row, column) that prints it

    @property
    def value(self) -> int:
        return len(self.members)


def status_of(text: str) -> tuple[str, int | None, int | None] | None:
    """How a table printed a count: (status, low, high), or None when it printed nothing."""
    head = str(text).split(" (")[0].replace(",", "").strip()
    if head == "":
        return None
    if head == SUPPRESSED:
        return SMALL, None, None
    if head == COMPLEMENTARY:
        return SECONDARY, None, None
    if " to " in head:
        low, high = head.split(" to ")
        return RANGE, int(low), int(high)
    return SHOWN, int(head), int(head)


@dataclass
class Register:
    """The counts of one release. ``release``: its folder ("2026-Q3", "provisional/2026-Q4")."""

    release: str
    patients: list[PatientKey] = field(default_factory=list)
    cells: dict[str, Cell] = field(default_factory=dict)
    _index: dict[PatientKey, int] = field(default_factory=dict, repr=False)

    def _members(self, patients: Iterable[PatientKey]) -> np.ndarray:
        indices = set()
        for key in patients:
            key = (str(key[0]), str(key[1]))
            if key not in self._index:
                self._index[key] = len(self.patients)
                self.patients.append(key)
            indices.add(self._index[key])
        return np.array(sorted(indices), dtype=np.int64)

    def count(
        self,
        key: str,
        population: str,
        patients: Iterable[PatientKey],
        status: str | None = None,
        place: Place | None = None,
        low: int | None = None,
        high: int | None = None,
    ) -> Cell:
        """Register a count. ``status``: as the table printed it (its own rule, complementary within the
        table); default SMALL for 1 to 10, else SHOWN. ``place``: where it is printed."""
        members = self._members(patients)
        value = len(members)
        if status is None:
            status = SMALL if 0 < value < SMALL_CELL else SHOWN
        where = f"{key} ({place[0]}, row {place[1] + 1}, {place[2]})" if place else key
        if status == SHOWN and 0 < value < SMALL_CELL:
            raise ValueError(f"register: {where} would print a count from 1 to {SMALL_CELL - 1}")
        if status == SHOWN and low is not None and low != value:
            raise ValueError(f"register: {where} prints a number that is not the count of its patients")
        if status == RANGE and not (low is not None and high is not None and low <= value <= high):
            raise ValueError(f"register: {where} is printed as a range that does not hold it")
        cell = self.cells.get(key)
        if cell is None:
            cell = Cell(key, place[0] if place else "", population, members, status, low, high)
            self.cells[key] = cell
        elif not np.array_equal(cell.members, members):
            raise ValueError(f"register: {where} registered twice with different patients")
        elif cell.status != status and status != IMPLIED:
            if cell.status != IMPLIED:
                raise ValueError(f"register: {where} printed two ways ({cell.status}, {status})")
            cell.status, cell.low, cell.high, cell.table = status, low, high, place[0] if place else ""
        if place:
            cell.places.append(place)
        return cell

    def printed_count(self, key: str, population: str, patients: Iterable[PatientKey], text: str, place: Place) -> None:
        """Register a count as a table printed it (``text``: "42", "<11", "suppressed", "270 to 279")."""
        how = status_of(text)
        if how is None:
            return
        status, low, high = how
        self.count(key, population, patients, status, place, low, high)

    def implied(self, key: str, population: str, patients: Iterable[PatientKey]) -> Cell:
        """Register a count the tables imply without printing it (audited as hidden)."""
        return self.count(key, population, patients, status=IMPLIED)

    def text(self, key: str) -> str:
        """What the release prints for the cell."""
        cell = self.cells[key]
        if cell.status == SMALL:
            return SUPPRESSED
        if cell.status == SECONDARY:
            return COMPLEMENTARY
        if cell.status == WITHHELD:
            return NOT_SHOWN
        if cell.status == RANGE:
            return f"{cell.low:,} to {cell.high:,}"
        if cell.status == IMPLIED:
            raise ValueError(f"register: {key} is implied and is never printed")
        return format_count(cell.value)

    def shown(self, key: str) -> bool:
        return key in self.cells and self.cells[key].status == SHOWN

    def printed(self) -> list[Cell]:
        return [cell for cell in self.cells.values() if cell.status != IMPLIED]

    def hidden_by_audit(self) -> list[Cell]:
        return [cell for cell in self.cells.values() if cell.why]

    # --- kept with the release, for the next release's audit ---

    def save(self, path: Path) -> None:
        payload = {
            "release": self.release,
            "patients": self.patients,
            "cells": [
                {
                    "key": c.key,
                    "table": c.table,
                    "population": c.population,
                    "members": c.members.tolist(),
                    "status": c.status,
                    "low": c.low,
                    "high": c.high,
                }
                for c in self.cells.values()
            ],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with gzip.open(partial, "wt", encoding="utf-8") as handle:
            json.dump(payload, handle)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> Register:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            payload = json.load(handle)
        register = cls(payload["release"])
        register.patients = [tuple(p) for p in payload["patients"]]  # type: ignore[misc]
        register._index = {p: i for i, p in enumerate(register.patients)}
        for c in payload["cells"]:
            register.cells[c["key"]] = Cell(
                c["key"],
                c["table"],
                c["population"],
                np.array(c["members"], dtype=np.int64),
                c["status"],
                c["low"],
                c["high"],
            )
        return register
