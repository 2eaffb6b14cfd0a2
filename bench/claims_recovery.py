"""The claims' estimates (issue 19) beside the generator's truth over seeds, fitted straight from generated
frames, as Markdown tables: the PT+SN on BTX synergy (with the default mix of combinations and with its four
groups made common) and the change in days between BoNT injections after surgery, with the hazard ratio.

    .venv/bin/python bench/claims_recovery.py [--patients 3000] [--seeds 10]

The synergy truth is the generator's on the measured Sunnybrook composite at 12 months (``synergy_tables``);
the interval truth is ``surgery_interval_days``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.analysis_design import AnalysisDesign
from pipeline.models.design_matrix import add_severity, load_baselines, load_changes, load_population
from pipeline.models.reliance import load_gaps, reliance_rows
from pipeline.models.synergy import synergy_rows
from pipeline.settings import ModelSettings
from pipeline.tools.synthetic import SyntheticParameters, synergy_tables
from tests.models.test_fit import build_warehouse
from tests.models.test_reliance import warehouse as reliance_warehouse

FOUR_GROUPS = {"combined_mix": (1 / 3, 0, 0, 1 / 3, 1 / 3), "single_mix": (1, 0, 0, 0)}


def synergy(patients: int, seed: int, params: SyntheticParameters) -> tuple[float, float, float, float]:
    frame, scores, truth = synergy_tables(patients, seed, params=params)
    con = duckdb.connect()
    build_warehouse(con, frame, scores)
    settings = ModelSettings()
    population = add_severity(load_population(con, settings.covariates), load_baselines(con), ("sunnybrook_composite",))
    rows = synergy_rows(population, load_changes(con), AnalysisDesign.read(con), settings)
    con.close()
    found = [r for r in rows if r["contrast"] == "synergy:PT+SN|BTX" and r["outcome"] == "sunnybrook_composite"]
    if not found:
        return truth, float("nan"), float("nan"), float("nan")
    return truth, found[0]["estimate"], found[0]["ci_low"], found[0]["ci_high"]


def reliance(
    patients: int, seed: int, params: SyntheticParameters
) -> tuple[dict[tuple[str, str], tuple[float, ...]], float]:
    """Every reliance row's (estimate, ci_low, ci_high), and the truth of the gap-time ratio: the geometric mean
    of the multiple each gap after surgery was made by the days the generator added to it (completed gaps)."""
    con = reliance_warehouse(params, seed, patients)
    rows = reliance_rows(con, ModelSettings())
    gaps = load_gaps(con)
    con.close()
    after = gaps[(gaps["patient_group"] == "surgery") & (gaps["after"] == 1) & (gaps["event"] == 1)]["days"]
    added = params.surgery_interval_days
    ratio = float(np.exp(np.mean(np.log(after / np.maximum(after - added, 30))))) if len(after) else float("nan")
    return {(r["outcome"], r["method"]): (r["estimate"], r["ci_low"], r["ci_high"]) for r in rows}, ratio


# The answers first (ratio scales), then the raw-scale sensitivity rows.
RELIANCE_ROWS = (
    ("botox_interval_days", "aft"),
    ("botox_interval_days", "aft_vs_bont_alone"),
    ("botox_units_per_session", "mixed_log"),
    ("botox_units_per_session", "mixed_log_vs_bont_alone"),
    ("time_to_next_botox", "phreg"),
    ("time_to_next_botox", "phreg_vs_bont_alone"),
    ("botox_interval_days", "mixed"),
    ("botox_interval_days", "mixed_vs_bont_alone"),
    ("botox_units_per_session", "mixed"),
    ("botox_units_per_session", "mixed_vs_bont_alone"),
)


def _truth(key: tuple[str, str], params: SyntheticParameters, gap_ratio: float) -> float | None:
    """The row's truth where the generator defines one on its scale (None: it does not)."""
    outcome, method = key
    null = params.surgery_interval_days == 0 and params.surgery_dose_factor == 1
    if outcome == "botox_interval_days":
        return gap_ratio if method.startswith("aft") else params.surgery_interval_days
    if outcome == "botox_units_per_session":
        return params.surgery_dose_factor if method.startswith("mixed_log") else (0.0 if null else None)
    return 1.0 if null else None  # a hazard ratio under a shifted gap has no single value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=3000)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    seeds = range(args.seeds)
    print(f"## Synergy PT+SN on BTX, {args.patients} patients, confounded by indication\n")
    print("| scenario | seeds | mean truth | mean error | max abs error | within 1.5 | CI covers truth | CI covers 0 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    scenarios = {
        "synergy 3, default mix": SyntheticParameters(synergy_pt_sn_on_btx=3.0),
        "synergy 3, four groups common": SyntheticParameters(synergy_pt_sn_on_btx=3.0, **FOUR_GROUPS),
        "no effect at all, four groups common": SyntheticParameters(
            combined_effect=0.0, synergy_pt_sn_on_btx=0.0, **FOUR_GROUPS
        ),
    }
    for name, params in scenarios.items():
        fits = np.array([synergy(args.patients, seed, params) for seed in seeds])
        truth, estimate, low, high = fits.T
        error = estimate - truth
        print(
            f"| {name} | {len(seeds)} | {truth.mean():.2f} | {np.nanmean(error):+.2f} | {np.nanmax(np.abs(error)):.2f} "
            f"| {int((np.abs(error) < 1.5).sum())} | {int(((low < truth) & (truth < high)).sum())} "
            f"| {int(((low < 0) & (high > 0)).sum())} |"
        )
    print(f"\n## BoNT after surgery, {args.patients} patients, surgery chosen by indication\n")
    print("| scenario | outcome | method | mean estimate | truth | max abs error | CI covers truth |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, params in (
        ("45 days longer, 0.75 x units, gap SD 22", SyntheticParameters()),
        ("45 days longer, 0.75 x units, gap SD 30", SyntheticParameters(interval_spread=3.35)),
        ("no change, gap SD 22", SyntheticParameters(surgery_interval_days=0.0, surgery_dose_factor=1.0)),
    ):
        fits = [reliance(args.patients, seed, params) for seed in seeds]
        for key in RELIANCE_ROWS:
            values = np.array([f[0][key] for f in fits])
            targets = np.array([_truth(key, params, f[1]) for f in fits], dtype=float)
            known = np.isfinite(targets).all()
            error = f"{np.max(np.abs(values[:, 0] - targets)):.2f}" if known else ""
            covers = f"{int(((values[:, 1] < targets) & (targets < values[:, 2])).sum())}/{len(fits)}" if known else ""
            shown = f"{targets.mean():.3g}" if known else ""
            print(f"| {name} | {key[0]} | {key[1]} | {values[:, 0].mean():.3f} | {shown} | {error} | {covers} |")


if __name__ == "__main__":
    main()
