"""A one-rule suite for the GX runner's tests: values of "value" must be integers."""

from pipeline.contract import INTEGER_PATTERN
from pipeline.validation.suites import _expectation


def integer_value_suite(name: str) -> dict[str, object]:
    rule = _expectation(
        "expect_column_values_to_match_regex", "type_integer:value", ["value"], column="value", regex=INTEGER_PATTERN
    )
    return {"name": name, "expectations": [rule]}
