"""A site's analysis frames for the network's models, read from its own warehouse as the models read it
(``pipeline/models/design_matrix.py``): the same population, changes and comparisons, with the network's
columns. The bundle, the site's answer to a request, and the tests' pooled-data reference all build them
here, so the three see the same rows in the same order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.models.design_matrix import Contrast, analysis_frames, load_changes, load_population
from pipeline.network import protocol


@dataclass(frozen=True)
class ModelFrame:
    """One model's rows at one site (or at a home holding several): ``kind`` ancova, iptw or synergy."""

    kind: str
    contrast: str
    outcome: str
    timepoint: str
    frame: pd.DataFrame  # site_id, patient_id, the model's columns, change

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.contrast}|{self.outcome}|{self.timepoint}"

    @property
    def columns(self) -> tuple[str, ...]:
        return {"ancova": protocol.ANCOVA_COLUMNS, "iptw": protocol.IPTW_COLUMNS}.get(
            self.kind, protocol.SYNERGY_COLUMNS
        )


def synergy_contrast() -> Contrast:
    base, with_a, with_b, both = protocol.SYNERGY.groups
    return Contrast(protocol.SYNERGY.name, frozenset({with_a, both}), frozenset({base, with_b}), both, base)


def _synergy_columns(frame: pd.DataFrame) -> pd.DataFrame:
    _, _, with_b, both = protocol.SYNERGY.groups
    b = frame["combination"].isin((with_b, both)).astype(float)
    return frame.assign(with_b=b, interaction=frame["treated"].astype(float) * b)


def model_frames(con: duckdb.DuckDBPyConnection) -> Iterator[ModelFrame]:
    """Every network model's frame at the design's primary outcome and timepoint, in the protocol's order:
    each comparison's ANCOVA and IPTW, then the synergy model."""
    design = AnalysisDesign.read(con)
    population = load_population(con, ())
    changes = load_changes(con)
    outcome, timepoint = design.primary_outcome, design.primary_timepoint
    keep = ["site_id", "patient_id", "combination", "treated", "baseline_value", "change"]
    for contrast in protocol.CONTRASTS:
        frame = analysis_frames(population, changes, contrast).get((outcome, timepoint))
        if frame is None:
            continue
        frame = frame[keep].assign(treated=frame["treated"].astype(float))
        yield ModelFrame("ancova", contrast.name, outcome, timepoint, frame)
        yield ModelFrame("iptw", contrast.name, outcome, timepoint, frame)
    frame = analysis_frames(population, changes, synergy_contrast()).get((outcome, timepoint))
    if frame is not None:
        frame = _synergy_columns(frame[keep].assign(treated=frame["treated"].astype(float)))
        yield ModelFrame("synergy", protocol.SYNERGY.name, outcome, timepoint, frame)


def patients_of(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["site_id"].astype(str), frame["patient_id"].astype(str), strict=True))
