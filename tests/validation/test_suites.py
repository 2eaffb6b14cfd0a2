import json

from pipeline import contract
from pipeline.validation.suites import build_suite, suite_path


def test_json_suites_match_the_contract() -> None:
    """The JSON in expectations/ is what the contract generates: `make suites` after changing either."""
    for table in contract.FILES:
        assert json.loads(suite_path(table).read_text()) == build_suite(table), table


def test_every_item_has_a_range_expectation() -> None:
    suite = build_suite("assessments")
    rules = {e["meta"]["rule"] for e in suite["expectations"]}
    for item in contract.ITEMS:
        assert f"item_range:{item.instrument}.{item.code}" in rules
