"""Model settings from the data home's models.json, and stores made before contract 1.1."""

from __future__ import annotations

import json

import duckdb
import pytest

from pipeline.errors import PipelineError
from pipeline.settings import DataHome, ModelSettings
from pipeline.store.connection import open_store


def test_models_json_overrides_the_defaults_and_bad_files_are_refused(tmp_path) -> None:
    home = DataHome.resolve(tmp_path).ensure()
    assert ModelSettings.for_home(home) == ModelSettings()
    (home.root / "models.json").write_text(json.dumps({"methods": ["unadjusted", "ancova"], "mice_imputations": 5}))
    settings = ModelSettings.for_home(home)
    assert settings.methods == ("unadjusted", "ancova") and settings.mice_imputations == 5
    (home.root / "models.json").write_text(json.dumps({"methods": ["bayes"]}))
    with pytest.raises(PipelineError, match="methods must be some of"):
        ModelSettings.for_home(home)
    (home.root / "models.json").write_text(json.dumps({"imputations": 5}))
    with pytest.raises(PipelineError, match="not a valid model settings file"):
        ModelSettings.for_home(home)


def test_a_store_made_before_contract_1_1_gains_the_new_columns(tmp_path) -> None:
    home = DataHome.resolve(tmp_path).ensure()
    con = duckdb.connect(str(home.store_path))
    con.execute(
        "CREATE TABLE model_estimates (run_id VARCHAR, method VARCHAR, outcome VARCHAR, timepoint VARCHAR, "
        "contrast VARCHAR, estimate DOUBLE, std_error DOUBLE, ci_low DOUBLE, ci_high DOUBLE, p_value DOUBLE, "
        "p_adjusted DOUBLE, n_treated BIGINT, n_control BIGINT, higher_is_better BOOLEAN, "
        "diagnostics_ok BOOLEAN, note VARCHAR)"
    )
    con.execute(
        "CREATE TABLE covariate_balance (run_id VARCHAR, contrast VARCHAR, outcome VARCHAR, covariate VARCHAR, "
        "smd_unweighted DOUBLE, smd_weighted DOUBLE)"
    )
    con.execute("INSERT INTO model_estimates (run_id, method) VALUES ('old', 'ancova')")
    con.close()
    with open_store(home) as store:
        columns = {
            table: {row[0] for row in store.execute(f"DESCRIBE {table}").fetchall()}
            for table in ("model_estimates", "covariate_balance", "propensity_diagnostics")
        }
        kept = store.execute("SELECT run_id, e_value FROM model_estimates").fetchall()
    assert {"e_value", "e_value_ci", "mdd"} <= columns["model_estimates"]
    assert "timepoint" in columns["covariate_balance"]
    assert "equipoise_share" in columns["propensity_diagnostics"]
    assert kept == [("old", None)]
