"""The network's statistics against their references, the figures the closing note of issue 30 quotes:
the one-stage pooled fit from sufficient statistics against statsmodels on the stacked patients (four
simulated clinics, one of 40 patients; OLS and site-stratified IPTW WLS, every variance type), and the
two-stage meta-analysis against R's metafor (its reference data sets and simulated site estimates, the
crosscheck's cases).

    PYTHONPATH=. .venv/bin/python bench/network_agreement.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.network.site_weights import site_iptw_weights
from pipeline.network.sufficient import NetworkDesign, pool, site_statistics
from tests.network import test_meta_analysis_vs_metafor as versus_metafor
from tests.network import test_sufficient as sufficient

PREDICTORS = ["baseline_value", "age", "sex[F]"]


def one_stage() -> list[tuple[str, float]]:
    """(what, largest relative difference over every coefficient)."""
    sizes = sufficient.SIZES
    frames = {s: sufficient.simulated_site(s, n, seed) for seed, (s, n) in enumerate(sizes.items(), start=1)}
    design = NetworkDesign(tuple(sizes), tuple(c for c in frames["siteA"].columns if c not in ("site_id", "change")))
    x, y, sites = sufficient.stacked(frames, design)
    rows = []
    fit = pool([site_statistics(f, design, s, "change") for s, f in frames.items()])
    reference = sm.OLS(y, x).fit()
    rows += [("OLS estimate", sufficient.relative(fit.beta, reference.params))]
    rows += [("OLS model-based SE", sufficient.relative(np.sqrt(np.diag(fit.cov_model)), reference.bse))]
    for cov_type in ("HC0", "HC1", "HC2", "HC3", "cluster"):
        _, variance = sufficient.exchange(frames, design, cov_type)
        kwargs = {"cov_kwds": {"groups": pd.factorize(sites)[0]}} if cov_type == "cluster" else {}
        robust = sm.OLS(y, x).fit(cov_type=cov_type, **kwargs)
        rows.append((f"OLS {cov_type} SE", sufficient.relative(np.sqrt(np.diag(variance.cov)), robust.bse)))
    weighted = {s: f.assign(weight=site_iptw_weights(f, PREDICTORS, s, truncation=10.0)) for s, f in frames.items()}
    w = pd.concat(weighted.values(), ignore_index=True)["weight"].to_numpy()
    fit = pool([site_statistics(f, design, s, "change", "weight") for s, f in weighted.items()])
    reference = sm.WLS(y, x, weights=w).fit()
    rows += [("IPTW estimate", sufficient.relative(fit.beta, reference.params))]
    rows += [("IPTW model-based SE", sufficient.relative(np.sqrt(np.diag(fit.cov_model)), reference.bse))]
    for cov_type in ("HC0", "HC1", "HC3"):
        _, variance = sufficient.exchange(weighted, design, cov_type, "weight")
        robust = sm.WLS(y, x, weights=w).fit(cov_type=cov_type)
        rows.append((f"IPTW {cov_type} SE", sufficient.relative(np.sqrt(np.diag(variance.cov)), robust.bse)))
    return rows


def two_stage() -> list[tuple[str, float]]:
    """(case, largest absolute difference over every number compared, at both thresholds)."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, effect_sizes in (("dat.bcg", versus_metafor.bcg), ("dat.normand1999", versus_metafor.normand)):
            reference = versus_metafor.metafor(Path(folder), name)
            rows.append((name, versus_metafor.assert_equal_to_metafor(*effect_sizes(reference), reference)))
        for name, sites in versus_metafor.CASES.items():
            reference = versus_metafor.metafor(Path(folder), sites)
            largest = versus_metafor.assert_equal_to_metafor(sites["yi"].to_numpy(), sites["vi"].to_numpy(), reference)
            rows.append((name, largest))
    return rows


def main() -> None:
    print("| one-stage vs stacked patients (statsmodels) | largest relative difference |\n| --- | --- |")
    for what, value in one_stage():
        print(f"| {what} | {value:.1e} |")
    print("\n| two-stage vs metafor | largest absolute difference |\n| --- | --- |")
    for what, value in two_stage():
        print(f"| {what} | {value:.1e} |")


if __name__ == "__main__":
    main()
