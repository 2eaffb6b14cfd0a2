"""The reviewer's sections on a small fitted warehouse: Table 1's standardized differences, the preference-score
overlap, the patient flow down to the primary analysis, the responder shares, the trend across releases."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline.report.build import _build
from pipeline.report.reading import read_warehouse
from tests.report.test_build import populate

SMALL = re.compile(r"^(10|[1-9])$")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    warehouse = tmp_path_factory.mktemp("methods") / "outcomes.duckdb"
    con = duckdb.connect(str(warehouse))
    populate(con)
    con.close()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        data = read_warehouse(con)
    finally:
        con.close()
    tables, figs, context, register = _build(data, "2026Q4")
    return warehouse, {"tables": tables, "figures": {f.name: f for f in figs}, "context": context, "register": register}


def query(warehouse: Path, sql: str, parameters: list | None = None) -> pd.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, parameters or []).df()
    finally:
        con.close()


def test_table_one_smd_columns_are_the_warehouse_covariate_balance(built: tuple[Path, dict]) -> None:
    warehouse, result = built
    balance = query(
        warehouse,
        "SELECT covariate, smd_unweighted, smd_weighted FROM covariate_balance WHERE contrast = 'combined_vs_single' "
        "AND timepoint = '12m' AND outcome = 'sunnybrook_composite'",
    ).set_index("covariate")
    table = result["tables"]["table1"].set_index("characteristic")
    assert list(table.columns) == ["single modality", "combined", "SMD before weighting", "SMD after weighting"]
    expected = {
        "Age at onset, years, mean (SD)": "age_at_onset",
        "  male, n (%)": "sex[M]",
        "Time from onset to index visit, months, median (IQR)": "onset_to_index_days",
        "  yes, n (%)": "prior_treatment",
        "  Sunnybrook composite (higher is better)": "baseline_value",  # the analysed outcome's own baseline
        "  SAQ (lower is better)": "severity[saq]",
    }
    for row, term in expected.items():
        assert table.loc[row, "SMD before weighting"] == f"{balance.loc[term, 'smd_unweighted']:+.2f}", row
        assert table.loc[row, "SMD after weighting"] == f"{balance.loc[term, 'smd_weighted']:+.2f}", row
    # The reference level and rows that are no model term stay blank; every term shown is one of the warehouse's.
    assert table.loc["  female, n (%)", "SMD before weighting"] == ""
    assert (table["SMD before weighting"] != "").sum() == len(expected)
