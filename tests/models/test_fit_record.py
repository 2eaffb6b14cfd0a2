"""The fit record (pipeline/models/fit_record.py): nothing without a recorder; with one, each method's frame
and specification under its contrast, outcome and timepoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.models import fit_record
from pipeline.models.estimators import ancova
from pipeline.models.fit_record import DirectoryRecorder, FittedFrame, labelled, record, recording
from pipeline.settings import ModelSettings


def _frame(n: int = 60, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    treated = np.tile([0, 1], n // 2)
    baseline = rng.normal(50, 10, n)
    return pd.DataFrame(
        {
            "site_id": "site01",
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "outcome": "saq",
            "treated": treated,
            "baseline_value": baseline,
            "change": 5 * treated - 0.3 * baseline + rng.normal(0, 3, n),
            "age_at_onset": rng.normal(45, 12, n),
        }
    )


SETTINGS = ModelSettings(covariates=("age_at_onset",), spline_knots=0)


def test_nothing_is_recorded_without_a_recorder_or_a_label() -> None:
    seen: list[FittedFrame] = []
    with labelled(contrast="c", outcome="saq", timepoint="12m"):
        record("ancova", pd.DataFrame({"a": [1.0]}))  # no recorder
    with recording(seen.append):
        record("ancova", pd.DataFrame({"a": [1.0]}))  # no label
        assert not fit_record.active()
    assert seen == []


def test_the_ancova_records_its_design_and_variance(tmp_path: Path) -> None:
    frame = _frame()
    with recording(DirectoryRecorder(tmp_path)), labelled(contrast="c", outcome="saq", timepoint="12m"):
        result = ancova(frame, SETTINGS)
        with labelled():  # a fit inside another is not recorded
            ancova(frame, SETTINGS)
    written = sorted(p.name for p in (tmp_path / "ancova").iterdir())
    assert written == ["c__saq__12m.csv", "c__saq__12m.json"]
    spec = json.loads((tmp_path / "ancova" / "c__saq__12m.json").read_text())
    assert spec["variance"] == "HC3" and spec["coefficient"] == "treated"
    assert spec["x"] == ["const", "treated", "baseline_value", "age_at_onset"]
    data = pd.read_csv(tmp_path / "ancova" / "c__saq__12m.csv")
    # The recorded frame refits to the published number (full precision, same rows, same columns).
    x = data[spec["x"]].to_numpy()
    beta = np.linalg.lstsq(x, data[".y"].to_numpy(), rcond=None)[0]
    assert abs(beta[1] - result.estimate) < 1e-12


def test_a_patient_alone_on_a_term_is_left_out_and_the_estimate_is_unchanged() -> None:
    frame = _frame()
    frame["severity[saq_other]"] = np.where(np.arange(len(frame)) == 7, np.nan, frame["baseline_value"] * 0.5)
    frame["severity[saq_other]"] += np.random.default_rng(4).normal(0, 5, len(frame))
    frame["outcome"] = "sunnybrook_composite"
    result = ancova(frame, SETTINGS)
    assert "leverage 1" in (result.note or "") and np.isfinite(result.std_error)
    alone = ancova(frame.drop(index=7).reset_index(drop=True), SETTINGS)
    assert abs(result.estimate - alone.estimate) < 1e-9 and abs(result.std_error - alone.std_error) < 1e-9


def test_aipw_records_its_folds_propensities_and_trim(tmp_path: Path) -> None:
    """What tests/crosscheck/refit.R needs to redo AIPW's cross-fitting: the folds, the platform's propensities
    (used where a fold's propensity model did not converge), the trim; psi over the kept patients from the
    recorded frame and propensities gives the published estimate."""
    from pipeline.models.aipw import aipw

    frame = _frame(n=200, seed=5)
    with recording(DirectoryRecorder(tmp_path)), labelled(contrast="c", outcome="saq", timepoint="12m"):
        result = aipw(frame, SETTINGS)
    spec = json.loads((tmp_path / "aipw" / "c__saq__12m.json").read_text())
    assert spec["folds"] == 5 and spec["trim"] == 0.05 and spec["propensity_converged"] is True
    data = pd.read_csv(tmp_path / "aipw" / "c__saq__12m.csv")
    assert sorted(data[".fold"].unique()) == [0, 1, 2, 3, 4]
    x, y, t, e = data[spec["x"]].to_numpy(), data[".y"].to_numpy(), data["treated"].to_numpy(), data[".propensity"]
    m = {}
    for group in (0, 1):
        m[group] = np.empty(len(y))
        for k in range(5):
            rows = (data[".fold"] != k).to_numpy() & (t == group)
            beta = np.linalg.lstsq(x[rows], y[rows], rcond=None)[0]
            m[group][data[".fold"] == k] = x[data[".fold"] == k] @ beta
        m[group] = np.clip(m[group], y[t == group].min(), y[t == group].max())
    kept = ((e >= 0.05) & (e <= 0.95)).to_numpy()
    psi = m[1] - m[0] + t * (y - m[1]) / e - (1 - t) * (y - m[0]) / (1 - e)
    assert abs(psi[kept].mean() - result.estimate) < 1e-10
