"""The two-stage meta-analysis equals R's metafor to 1e-6: metafor's reference data sets (dat.bcg log risk
ratios, dat.normand1999 mean differences; yi and vi computed here from the raw columns R sends, and checked
against escalc()), sites' own ANCOVA estimates from simulated clinics, five homogeneous sites (tau^2 = 0)
and two sites. R computes with tests/crosscheck/metafor_reference.R; run with `make crosscheck` or
`pytest -m crosscheck`."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from pipeline.network.meta_analysis import METAFOR_THRESHOLD, MetaAnalysis, leave_one_out, random_effects
from tests.network.test_sufficient import simulated_site

pytestmark = [
    pytest.mark.crosscheck,
    pytest.mark.skipif(shutil.which("Rscript") is None, reason="R (Rscript, r-cran-metafor) is not installed"),
]

SCRIPT = Path(__file__).resolve().parents[1] / "crosscheck" / "metafor_reference.R"
TOLERANCE = 1e-6
TIGHT = 1e-10  # metafor's Fisher-scoring threshold for the exact comparison (its default 1e-5 is replayed too)


def metafor(tmp_path: Path, source: str | pd.DataFrame) -> dict:
    """metafor's results at both thresholds (one R start)."""
    out = tmp_path / "metafor.json"
    if isinstance(source, pd.DataFrame):
        data = tmp_path / "sites.csv"
        source.to_csv(data, index=False)
        args = [str(data), str(out)]
    else:
        args = ["--dataset", source, str(out)]
    thresholds = f"{TIGHT!r},{METAFOR_THRESHOLD!r}"
    subprocess.run(["Rscript", str(SCRIPT), *args, thresholds], check=True, capture_output=True, timeout=120)
    return json.loads(out.read_text())


def close(ours: float, theirs: float | None) -> bool:
    if theirs is None:
        return bool(np.isnan(ours))
    return abs(ours - theirs) <= TOLERANCE * max(1.0, abs(theirs))


@dataclass(frozen=True)
class Case:
    name: str
    yi: np.ndarray
    vi: np.ndarray
    reference: dict


KNHA = {
    "estimate": "estimate", "se": "std_error_hk", "ci_low": "ci_low_hk", "ci_high": "ci_high_hk",
    "p_value": "p_value_hk", "tau2": "tau2", "tau2_ci_low": "tau2_ci_low", "tau2_ci_high": "tau2_ci_high",
    "QE": "q", "QEp": "q_p_value", "pi_low": "pi_low_hk", "pi_high": "pi_high_hk",
}  # fmt: skip
ADHOC = {**KNHA, "se": "std_error", "ci_low": "ci_low", "ci_high": "ci_high", "p_value": "p_value",
         "pi_low": "pi_low", "pi_high": "pi_high"}  # fmt: skip


def differences(result: MetaAnalysis, left: list, reference: dict) -> list[tuple[str, float, float | None]]:
    """Every compared number: (name, ours, metafor's). Left out to one site, metafor gives tau^2 = 0 and
    I^2 = 0; here they are not estimable (NaN): those are checked apart."""
    rows = []
    for test, names in (("knha", KNHA), ("adhoc", ADHOC)):
        rows += [(f"{test}.{key}", float(getattr(result, attr)), reference[test][key]) for key, attr in names.items()]
        rows.append((f"{test}.I2", 100 * result.i2, reference[test]["I2"]))
    fixed = result.fixed
    rows += [(f"fixed.{key}", float(getattr(fixed, attr)), reference["fixed"][key])
             for key, attr in (("estimate", "estimate"), ("se", "std_error"), ("ci_low", "ci_low"),
                               ("ci_high", "ci_high"), ("p_value", "p_value"))]  # fmt: skip
    for key, attr in (("estimate", "estimate"), ("se", "std_error_hk"), ("ci_low", "ci_low_hk"),
                      ("ci_high", "ci_high_hk"), ("tau2", "tau2"), ("QE", "q"), ("I2", "i2")):  # fmt: skip
        for entry, theirs in zip(left, reference["leave1out"][key], strict=True):
            ours = float(getattr(entry.result, attr)) * (100 if key == "I2" else 1)
            if entry.result.k == 1 and key in ("tau2", "I2"):
                assert np.isnan(ours) and theirs == 0, (entry.site, key)
                continue
            rows.append((f"leave1out[{entry.site}].{key}", ours, theirs))
    return rows


def assert_equal_to_metafor(yi: np.ndarray, vi: np.ndarray, reference: dict) -> float:
    """Each of metafor's fits (its threshold replayed here) against ours; the largest difference."""
    labels = [str(i) for i in reference["id"]]
    largest = 0.0
    for fit in reference["fits"]:
        threshold = fit["threshold"]
        result = random_effects(yi, vi, labels, threshold)
        rows = differences(result, leave_one_out(yi, vi, labels, threshold), fit)
        wrong = [(name, ours, theirs) for name, ours, theirs in rows if not close(ours, theirs)]
        assert not wrong, (threshold, wrong)
        largest = max(largest, *(abs(ours - theirs) for _, ours, theirs in rows if theirs is not None))
    return largest


def bcg(reference: dict) -> tuple[np.ndarray, np.ndarray]:
    """Log risk ratios, escalc(measure = "RR") by hand: log(a/(a+b)) - log(c/(c+d)), 1/a - 1/(a+b) + 1/c - 1/(c+d)."""
    raw = pd.DataFrame(reference["raw"])
    a, b, c, d = (raw[col].to_numpy(dtype=float) for col in ("tpos", "tneg", "cpos", "cneg"))
    return np.log(a / (a + b)) - np.log(c / (c + d)), 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)


def normand(reference: dict) -> tuple[np.ndarray, np.ndarray]:
    """Mean differences, escalc(measure = "MD"): m1 - m2, sd1^2/n1 + sd2^2/n2."""
    raw = pd.DataFrame(reference["raw"])
    return (raw["m1i"] - raw["m2i"]).to_numpy(dtype=float), (
        raw["sd1i"] ** 2 / raw["n1i"] + raw["sd2i"] ** 2 / raw["n2i"]
    ).to_numpy(dtype=float)


@pytest.mark.parametrize(("dataset", "effect_sizes"), [("dat.bcg", bcg), ("dat.normand1999", normand)])
def test_metafors_reference_data_sets(tmp_path: Path, dataset: str, effect_sizes) -> None:
    reference = metafor(tmp_path, dataset)
    yi, vi = effect_sizes(reference)
    np.testing.assert_allclose(yi, reference["yi"], rtol=1e-12)
    np.testing.assert_allclose(vi, reference["vi"], rtol=1e-12)
    assert_equal_to_metafor(yi, vi, reference)
    assert [f["threshold"] for f in reference["fits"]] == [TIGHT, METAFOR_THRESHOLD]
    assert reference["fits"][0]["knha"]["tau2"] > 0


def site_ancova_estimates(sizes: dict[str, int], effects: dict[str, float]) -> pd.DataFrame:
    """Each simulated clinic's own ANCOVA of change on group and baseline (HC3), as a site would report it."""
    rows = []
    for seed, (site, n) in enumerate(sizes.items(), start=11):
        frame = simulated_site(site, n, seed)
        frame["change"] += effects[site] * frame["treated"]
        x = sm.add_constant(frame[["treated", "baseline_value", "age"]].to_numpy())
        fit = sm.OLS(frame["change"].to_numpy(), x).fit(cov_type="HC3")
        rows.append({"id": site, "yi": fit.params[1], "vi": fit.bse[1] ** 2})
    return pd.DataFrame(rows)


CASES = {
    "heterogeneous clinics": site_ancova_estimates(
        {"siteA": 40, "siteB": 120, "siteC": 210, "siteD": 85, "siteE": 150},
        {"siteA": 6.0, "siteB": -3.0, "siteC": 1.0, "siteD": 8.0, "siteE": -1.0},
    ),
    "homogeneous five sites": pd.DataFrame(
        {"id": [f"site{i}" for i in range(1, 6)], "yi": [10.2, 9.8, 10.1, 9.9, 10.0], "vi": [4.0, 5.0, 3.0, 6.0, 4.5]}
    ),
    "two sites": pd.DataFrame({"id": ["siteA", "siteB"], "yi": [1.0, 4.0], "vi": [1.0, 1.5]}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_simulated_site_estimates(tmp_path: Path, case: str) -> None:
    sites = CASES[case]
    reference = metafor(tmp_path, sites)
    assert_equal_to_metafor(sites["yi"].to_numpy(), sites["vi"].to_numpy(), reference)
    if case == "homogeneous five sites":
        assert reference["fits"][0]["knha"]["tau2"] == 0 and random_effects(sites["yi"], sites["vi"]).tau2 == 0
