"""Synthetic complications: contract-valid, at the rates set, and adding them changes nothing else of a drop."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.contract import COLUMNS, KEYS, SURGICAL_MODALITIES
from pipeline.sources.redcap import RECORDS
from pipeline.tools.synthetic import SyntheticParameters, generate_drop
from pipeline.tools.synthetic_complications import DEMO_COMPLICATIONS, ComplicationRate

FILES = ("patients.csv", "treatments.csv", "assessments.csv", "manifest.json")


def read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, dtype=str, keep_default_na=False)


def test_complications_name_their_treatment_and_follow_the_contract(tmp_path: Path) -> None:
    params = SyntheticParameters(complications=DEMO_COMPLICATIONS)
    generate_drop(tmp_path / "d", patients=400, seed=3, params=params)
    cx, tx = read(tmp_path / "d", "complications.csv"), read(tmp_path / "d", "treatments.csv")
    assert list(cx.columns) == [c.name for c in COLUMNS["complications"]]
    assert not cx.duplicated(list(KEYS["complications"])).any()
    named = cx.merge(tx, on=["site_id", "patient_id", "treatment_id"], how="left", suffixes=("", "_tx"))
    assert named["modality"].notna().all()
    # Each code follows the modality it was set for, after that treatment; graded where surgical.
    set_for = {r.code: r.modality for r in DEMO_COMPLICATIONS}
    assert (named["code"].map(set_for) == named["modality"]).all()
    assert (named["day"].astype(int) > named["day_tx"].astype(int)).all()
    surgical = named["modality"].isin(SURGICAL_MODALITIES)
    assert (named.loc[surgical, "grade"] != "").all() and (named.loc[~surgical, "grade"] == "").all()
    resolved = named[named["resolved_day"] != ""]
    assert (resolved["resolved_day"].astype(int) > resolved["day"].astype(int)).all()
    assert 0 < len(resolved) < len(named)


def test_a_rate_of_zero_gives_none_and_a_rate_of_one_gives_every_patient_at_risk(tmp_path: Path) -> None:
    rates = (
        ComplicationRate("botox", "eyelid_ptosis", 0.0),
        ComplicationRate("selective_myectomy", "oral_incompetence", 1.0, 0.0),
    )
    generate_drop(tmp_path / "d", patients=150, seed=4, params=SyntheticParameters(complications=rates))
    cx, tx = read(tmp_path / "d", "complications.csv"), read(tmp_path / "d", "treatments.csv")
    assert set(cx["code"]) == {"oral_incompetence"}
    assert set(cx["patient_id"]) == set(tx.loc[tx["modality"] == "selective_myectomy", "patient_id"])
    assert (cx["resolved_day"] == "").all()


def test_adding_complications_changes_nothing_else_of_the_drop(tmp_path: Path) -> None:
    generate_drop(tmp_path / "without", patients=80, seed=5)
    generate_drop(tmp_path / "with", patients=80, seed=5, params=SyntheticParameters(complications=DEMO_COMPLICATIONS))
    assert not (tmp_path / "without" / "complications.csv").exists()
    for name in FILES[:3]:
        assert (tmp_path / "without" / name).read_bytes() == (tmp_path / "with" / name).read_bytes(), name


def test_the_redcap_export_names_the_treatment_by_its_instance(tmp_path: Path) -> None:
    params = SyntheticParameters(complications=DEMO_COMPLICATIONS)
    generate_drop(tmp_path / "csv", patients=150, seed=6, params=params)
    generate_drop(tmp_path / "rc", patients=150, seed=6, params=params, export_format="redcap")
    cx, tx = read(tmp_path / "csv", "complications.csv"), read(tmp_path / "csv", "treatments.csv")
    flat = read(tmp_path / "rc", RECORDS)
    instances = flat[flat["redcap_repeat_instrument"] == "complication"]
    assert len(instances) == len(cx)
    tx = tx.assign(instance=(tx.groupby("patient_id").cumcount() + 1).astype(str))
    expected = cx.merge(tx, on=["patient_id", "treatment_id"])[["patient_id", "complication_id", "instance"]]
    got = instances.rename(columns={"record_id": "patient_id", "cx_id": "complication_id"})
    got = got[["patient_id", "complication_id", "cx_treatment_id"]]
    merged = expected.merge(got, on=["patient_id", "complication_id"])
    assert len(merged) == len(cx) and (merged["instance"] == merged["cx_treatment_id"]).all()
