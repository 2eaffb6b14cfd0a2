"""The analysis design a warehouse was built with, read from the warehouse itself.

The design settings (``pipeline/settings.py``, ``design.json``) reach the build once; the build
publishes them as data (``design_timepoints``, ``design_outcomes``: ``sql/seeds/``). The models and
the report read this class, never a list of their own, so a design change reaches every table,
model and page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb

from pipeline.yardsticks import Yardstick

TOTAL_SCORES = frozenset({"composite", "total"})  # an instrument's whole score, of which the others are parts


@dataclass(frozen=True)
class AnalysisDesign:
    timepoints: tuple[str, ...]  # follow-up timepoints, earliest first
    months: dict[str, int]  # each timepoint's target in months, baseline 0
    labels: dict[str, str]  # each timepoint in words, baseline too
    primary_timepoint: str
    outcomes: tuple[str, ...]  # in the contract's order
    higher_is_better: dict[str, bool]
    primary_outcome: str
    instruments: dict[str, str] = field(default_factory=dict)  # outcome -> its instrument
    scores: dict[str, str] = field(default_factory=dict)  # outcome -> its score within the instrument
    # outcome -> the yardstick of a difference between groups, as the build fixed it (design_outcomes)
    yardsticks: dict[str, Yardstick] = field(default_factory=dict)

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection) -> AnalysisDesign:
        timepoints = con.execute(
            'SELECT timepoint, months, label, is_primary FROM design_timepoints ORDER BY "position"'
        ).fetchall()
        outcomes = con.execute(
            'SELECT outcome, higher_is_better, is_primary, instrument, score FROM design_outcomes ORDER BY "position"'
        ).fetchall()
        sticks = con.execute(
            "SELECT outcome, yardstick, yardstick_kind, yardstick_source FROM design_outcomes"
        ).fetchall()
        return cls(
            timepoints=tuple(name for name, *_ in timepoints),
            months={"baseline": 0, **{name: int(months) for name, months, _, _ in timepoints}},
            labels={"baseline": "baseline", **{name: label for name, _, label, _ in timepoints}},
            primary_timepoint=next(name for name, *_, primary in timepoints if primary),
            outcomes=tuple(name for name, *_ in outcomes),
            higher_is_better={name: bool(better) for name, better, *_ in outcomes},
            primary_outcome=next(name for name, _, primary, *_ in outcomes if primary),
            instruments={name: str(instrument) for name, _, _, instrument, _ in outcomes},
            scores={name: str(score) for name, *_, score in outcomes},
            yardsticks={
                name: Yardstick(name, str(kind or ""), float(value), str(source or ""))
                if value is not None and math.isfinite(value)
                else Yardstick(name, "", None, "")
                for name, value, kind, source in sticks
            },
        )

    @property
    def composite_of(self) -> dict[str, str]:
        """Subscore -> its composite: the other outcomes of an instrument that has a total score
        (``composite`` or ``total``) among the outcomes; an instrument without one (FDI's two
        subscales) has none."""
        totals = {
            self.instruments[o]: o
            for o in self.outcomes
            if self.scores.get(o) in TOTAL_SCORES and o in self.instruments
        }
        return {
            o: totals[self.instruments[o]]
            for o in self.outcomes
            if self.instruments.get(o) in totals and totals[self.instruments[o]] != o
        }

    @property
    def primary_label(self) -> str:
        return self.labels[self.primary_timepoint]

    def label(self, timepoint: str) -> str:
        return self.labels.get(timepoint, timepoint)
