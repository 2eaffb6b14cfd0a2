"""Shared fixtures: hand-made drops written as real files into a fresh data home."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.settings import DataHome

PATIENTS_HEADER = "patient_id,site_id,sex,age_at_onset,side,etiology,index_year,onset_to_index_days"
TREATMENTS_HEADER = "patient_id,site_id,treatment_id,day,modality,botox_units,pt_sessions,target"
ASSESSMENTS_HEADER = "patient_id,site_id,visit_day,instrument,item,value"


def csv_text(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


@pytest.fixture
def home(tmp_path: Path) -> DataHome:
    return DataHome.resolve(tmp_path / "home").ensure()


WriteDrop = Callable[..., Path]


def write_drop_files(
    home: DataHome,
    drop_id: str,
    patients: list[str] | None = None,
    treatments: list[str] | None = None,
    assessments: list[str] | None = None,
    manifest: dict | None = None,
) -> Path:
    """Write a drop folder into the landing directory; rows are CSV lines without the header."""
    folder = home.landing / drop_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, header, rows in (
        ("patients", PATIENTS_HEADER, patients),
        ("treatments", TREATMENTS_HEADER, treatments),
        ("assessments", ASSESSMENTS_HEADER, assessments),
    ):
        (folder / f"{name}.csv").write_text(csv_text(header, rows or []), encoding="utf-8")
    if manifest is not None:
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


@pytest.fixture
def write_drop(home: DataHome) -> WriteDrop:
    def write(drop_id: str, *args: list[str] | None, **kwargs: object) -> Path:
        return write_drop_files(home, drop_id, *args, **kwargs)

    return write


# A small valid site: two patients, BTX+PT for P1 and BTX alone for P2, Sunnybrook and SAQ at baseline.
BASE_PATIENTS = [
    "P1,s1,F,45,L,bell,2020,400",
    "P2,s1,M,60,R,ramsay_hunt,2021,300",
]
BASE_TREATMENTS = [
    "P1,s1,T1,0,botox,25,,orbicularis_oculi",
    "P1,s1,T2,10,physical_therapy,,12,",
    "P2,s1,T1,5,botox,30,,",
]
SUNNYBROOK_ITEMS = {  # resting 5*(1+1+0)=10, voluntary 4*(3+3+4+3+4)=68, synkinesis 1+2+1+0+1=5, composite 53
    "rest_eye": 1,
    "rest_cheek": 1,
    "rest_mouth": 0,
    "vm_brow": 3,
    "vm_eye_closure": 3,
    "vm_smile": 4,
    "vm_snarl": 3,
    "vm_pucker": 4,
    "syn_brow": 1,
    "syn_eye_closure": 2,
    "syn_smile": 1,
    "syn_snarl": 0,
    "syn_pucker": 1,
}


def sunnybrook_rows(patient: str, day: int, items: dict[str, int] | None = None) -> list[str]:
    return [f"{patient},s1,{day},sunnybrook,{item},{value}" for item, value in (items or SUNNYBROOK_ITEMS).items()]


# An embedded Airflow for the DAG tests (tests/dags/, and the network's coordinator DAG in tests/network/):
# SQLite metadata in a temporary data home. Airflow reads its configuration when first imported, so the
# session fixture configures the environment before any test imports it (no test module imports airflow at
# collection). One session fixture for every folder: Airflow can be configured once per process.
@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> DataHome:
    from pipeline.tools import airflow_local

    home = DataHome.resolve(tmp_path_factory.mktemp("airflow_data")).ensure()
    airflow_local.configure(home)
    airflow_local.migrate()
    return home


@pytest.fixture(scope="session")
def dags(airflow_home: DataHome) -> dict[str, object]:
    from pipeline.tools import airflow_local

    return airflow_local.load_dags()
