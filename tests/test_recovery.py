"""Statistics checked against truth through the whole pipeline: a generated export with a known
combined effect and confounding by indication goes through ingest, warehouse and models; the
adjusted estimate recovers the effect and the naive one does not."""

from __future__ import annotations

import duckdb

from pipeline.run import run_all
from pipeline.settings import DataHome
from pipeline.synthetic import SyntheticParameters, generate_drop


def test_ancova_recovers_the_known_effect_and_the_unadjusted_estimate_is_biased(tmp_path) -> None:
    params = SyntheticParameters(combined_effect=8.0, confounding=1.0)
    home = DataHome.resolve(tmp_path).ensure()
    generate_drop(home.landing / "recovery", patients=700, seed=21, params=params)
    run_all(home)
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT method, estimate, ci_low, ci_high FROM model_estimates WHERE contrast = 'combined_vs_single' "
            "AND outcome = 'sunnybrook_composite' AND timepoint = '12m'"
        ).fetchall()
    finally:
        con.close()
    estimates = {method: (estimate, low, high) for method, estimate, low, high in rows}
    _, low, high = estimates["ancova"]
    assert low < params.combined_effect < high, estimates
    _, naive_low, _ = estimates["unadjusted"]
    assert naive_low > params.combined_effect, estimates  # biased upwards: worse baselines improve more
