"""The synthetic export generator: deterministic, within the contract, and carrying its known truth."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.contract import COLUMNS, FILES, ITEMS, KEYS
from pipeline.ingest.receive import archive_file
from pipeline.ingest.screening import screen_drop
from pipeline.sources.dispatch import parse_drop
from pipeline.tools.synthetic import SyntheticParameters, generate_drop
from pipeline.validation.rows import validate_drop


def read(folder: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_csv(folder / f"{t}.csv", dtype=str, keep_default_na=False) for t in FILES}


@pytest.fixture(scope="module")
def drop(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic") / "site01-drop"
    generate_drop(folder, patients=300, seed=5)
    return folder


def test_same_seed_same_bytes_other_seed_other_bytes(drop: Path, tmp_path: Path) -> None:
    generate_drop(tmp_path / "again", patients=300, seed=5)
    generate_drop(tmp_path / "other", patients=300, seed=6)
    for name in ("patients.csv", "treatments.csv", "assessments.csv", "manifest.json"):
        assert (tmp_path / "again" / name).read_bytes() == (drop / name).read_bytes()
    assert (tmp_path / "other" / "assessments.csv").read_bytes() != (drop / "assessments.csv").read_bytes()
    generate_drop(tmp_path / "gz1", patients=20, seed=1, compress=True)
    generate_drop(tmp_path / "gz2", patients=20, seed=1, compress=True)
    assert (tmp_path / "gz1" / "assessments.csv.gz").read_bytes() == (
        tmp_path / "gz2" / "assessments.csv.gz"
    ).read_bytes()


def test_passes_screening_and_validation_with_nothing_quarantined(drop: Path, tmp_path: Path) -> None:
    received = [archive_file(p, tmp_path / "archive", drop.name) for p in sorted(drop.iterdir())]
    source = parse_drop(drop.name, received)
    screen_drop(source)  # raises on any identifier-like cell
    validated = validate_drop(source, known_patients=set())
    assert {t: len(q) for t, q in validated.quarantined.items()} == {"patients": 0, "treatments": 0, "assessments": 0}


def test_columns_keys_ranges_and_references(drop: Path) -> None:
    tables = read(drop)
    for table, frame in tables.items():
        assert list(frame.columns) == [c.name for c in COLUMNS[table]]
        assert not frame.duplicated(list(KEYS[table])).any()
    patients = set(tables["patients"]["patient_id"])
    assert set(tables["treatments"]["patient_id"]) <= patients
    assert set(tables["assessments"]["patient_id"]) <= patients
    values = tables["assessments"].astype({"value": float})
    ranges = {(i.instrument, i.code): (i.low, i.high) for i in ITEMS}
    for (instrument, item), group in values.groupby(["instrument", "item"]):
        low, high = ranges[(instrument, item)]
        assert group["value"].between(low, high).all(), (instrument, item)
    # Every instrument and both SAQ forms appear.
    assert set(values["instrument"]) == {"sunnybrook", "eface", "saq", "face", "fdi", "house_brackmann"}
    assert {"total_raw", "total_pct"} <= set(values.loc[values["instrument"] == "saq", "item"])
    assert not any(re.search(r"\d{4}-\d{2}-\d{2}", cell) for cell in tables["treatments"]["target"])


def test_botox_is_repeated_about_every_three_months(drop: Path) -> None:
    botox = read(drop)["treatments"].query("modality == 'botox'").astype({"day": int})
    gaps = botox.sort_values(["patient_id", "day"]).groupby("patient_id")["day"].diff().dropna()
    gaps = gaps[gaps > 0]
    assert 80 <= gaps.median() <= 100
    units = botox.astype({"botox_units": float})["botox_units"]
    assert units.between(0, 300, inclusive="right").all()


def treatment_groups(folder: Path) -> pd.DataFrame:
    """Baseline Sunnybrook composite (from items) and combined or not, per patient, from the files alone."""
    tables = read(folder)
    treatments = tables["treatments"].astype({"day": int})
    first = treatments[treatments["day"] >= 0].groupby("patient_id")["day"].min().rename("t0")
    window = treatments.merge(first, on="patient_id")
    window = window[window["day"] <= window["t0"] + 180]
    combined = window.groupby("patient_id")["modality"].nunique().ge(2).rename("combined")
    sb = tables["assessments"].astype({"value": float, "visit_day": int})
    sb = sb[(sb["instrument"] == "sunnybrook") & (sb["item"] == "composite")]
    items = tables["assessments"].astype({"value": float, "visit_day": int})
    items = items[items["instrument"] == "sunnybrook"]
    weights = {
        **{f"vm_{k}": 4 for k in ("brow", "eye_closure", "smile", "snarl", "pucker")},
        **{f"rest_{k}": -5 for k in ("eye", "cheek", "mouth")},
        **{f"syn_{k}": -1 for k in ("brow", "eye_closure", "smile", "snarl", "pucker")},
    }
    items = items[items["item"].isin(weights)]
    derived = (items["value"] * items["item"].map(weights)).groupby([items["patient_id"], items["visit_day"]]).sum()
    recorded = sb.set_index(["patient_id", "visit_day"])["value"]
    composite = derived.combine_first(recorded).rename("composite").reset_index()
    baseline = composite.sort_values("visit_day").groupby("patient_id").first()["composite"]
    return pd.concat([combined, baseline], axis=1).dropna()


def test_treatment_choice_is_confounded_by_baseline_severity(tmp_path: Path) -> None:
    generate_drop(tmp_path / "confounded", patients=1500, seed=3)
    generate_drop(tmp_path / "random", patients=1500, seed=3, params=SyntheticParameters(confounding=0.0))
    confounded = treatment_groups(tmp_path / "confounded").groupby("combined")["composite"].mean()
    randomised = treatment_groups(tmp_path / "random").groupby("combined")["composite"].mean()
    assert confounded[False] - confounded[True] > 8  # combined patients start clearly worse
    assert abs(randomised[False] - randomised[True]) < 3
    assert np.isfinite(confounded).all()
