import json

from pipeline import contract
from pipeline.validation.suites import build_suite, suite_path


def test_json_suites_match_the_contract() -> None:
    """The JSON in expectations/ is what the contract generates: `make suites` after changing either."""
    for table in contract.FILES:
        assert json.loads(suite_path(table).read_text()) == build_suite(table), table


def test_every_item_has_its_range_in_the_suite() -> None:
    suite = build_suite("assessments")
    ranges = [e["kwargs"] for e in suite["expectations"] if e["meta"]["rule"].startswith("item_range:")]
    for item in contract.ITEMS:
        condition = f'instrument=="{item.instrument}" and item in ['
        matching = [
            r for r in ranges if r["row_condition"].startswith(condition) and f'"{item.code}"' in r["row_condition"]
        ]
        assert [(r["min_value"], r["max_value"]) for r in matching] == [(item.low, item.high)], item
