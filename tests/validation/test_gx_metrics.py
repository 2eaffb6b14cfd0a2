"""The regex metric computed per distinct value gives GX's own answer for every row."""

import numpy as np
import pandas as pd
import pytest

from pipeline.contract import INTEGER_PATTERN, NUMBER_PATTERN, PATIENT_ID_PATTERN
from pipeline.validation.gx_metrics import match_regex_per_distinct_value
from pipeline.validation.gx_runner import validate_frame
from tests.validation.helpers import integer_value_suite

VALUES = ["12", "12.5", " 7", "-3", "1e3", "", "P000123", "p1", "12\n", "٣", "NaN", "3.", ".5"]


@pytest.mark.parametrize("regex", [INTEGER_PATTERN, NUMBER_PATTERN, PATIENT_ID_PATTERN, "^P", "5$"])
@pytest.mark.parametrize("dtype", ["str", "category", "object"])
def test_same_answer_as_gx_per_row(regex: str, dtype: str) -> None:
    rng = np.random.default_rng(7)
    column = pd.Series(rng.choice(VALUES, size=500), dtype="str").astype(dtype)
    column.index = rng.permutation(1000)[:500]  # a filtered frame's index, not 0..n
    gx_answer = column.astype(str).str.contains(regex)  # GX's pandas implementation
    ours = match_regex_per_distinct_value(column, regex)
    pd.testing.assert_series_equal(ours, gx_answer.astype(bool), check_names=False)


def test_empty_column() -> None:
    assert match_regex_per_distinct_value(pd.Series([], dtype="str"), "^a").empty


def test_gx_validation_uses_it_and_names_the_failing_rows() -> None:
    frame = pd.DataFrame({"value": pd.Series(["1", "2", "x", "3", None, "4.5"], dtype="str").astype("category")})
    suite = integer_value_suite("regex_check")
    failures, summary = validate_frame("regex_check", frame, suite, {})
    assert failures == {2: ["type_integer:value"], 5: ["type_integer:value"]}
    assert summary["expectations"][0]["unexpected_count"] == 2


def test_gx_resolves_the_regex_metric_on_pandas_to_the_distinct_value_provider() -> None:
    from great_expectations.execution_engine import PandasExecutionEngine
    from great_expectations.expectations.registry import get_metric_provider

    from pipeline.validation.gx_metrics import ColumnValuesMatchRegexPerDistinctValue

    provider, _ = get_metric_provider("column_values.match_regex.condition", PandasExecutionEngine())
    assert provider is ColumnValuesMatchRegexPerDistinctValue
