import json

import pandas as pd

from pipeline import contract
from pipeline.validation.suites import ITEM_INTEGER_GROUP, ITEM_RANGE_GROUP, build_suite, item_groups, suite_path


def test_json_suites_match_the_contract() -> None:
    """The JSON in expectations/ is what the contract generates: `make suites` after changing either."""
    for table in contract.TABLES:
        assert json.loads(suite_path(table).read_text()) == build_suite(table), table


def test_every_item_has_its_range_in_the_suite() -> None:
    suite = build_suite("assessments")
    ranges = [e for e in suite["expectations"] if e["meta"]["rule"].startswith("item_range:")]
    for item in contract.ITEMS:
        matching = [
            e["kwargs"]
            for e in ranges
            if e["meta"]["rule"].startswith(f"item_range:{item.instrument}[") and item.code in e["meta"]["items"]
        ]
        assert [(r["min_value"], r["max_value"]) for r in matching] == [(item.low, item.high)], item


def test_each_row_gets_the_item_rules_of_its_instrument_and_item() -> None:
    frame = pd.DataFrame(
        {"instrument": ["saq", "saq", "sunnybrook", "eface", "saq"], "item": ["q3", "total_pct", "vm_smile", "x", None]}
    )
    groups = item_groups(frame)
    assert groups[ITEM_RANGE_GROUP].tolist() == [
        "item_range:saq[1,5]",
        "item_range:saq[20,100]",
        "item_range:sunnybrook[1,5]",
        "",
        "",
    ]
    assert groups[ITEM_INTEGER_GROUP].tolist() == ["item_integer:saq", "", "item_integer:sunnybrook", "", ""]
