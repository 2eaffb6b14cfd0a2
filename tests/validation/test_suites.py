import json
import re

import pandas as pd

from pipeline import contract
from pipeline.validation.suites import (
    INSTRUMENT_ITEM,
    INTEGER_ITEM_TEXT,
    ITEM_HIGH,
    ITEM_INTEGER_GROUP,
    ITEM_LOW,
    ITEM_RANGE_GROUP,
    ITEM_RANGE_RULE,
    build_suite,
    item_groups,
    suite_path,
)


def test_json_suites_match_the_contract() -> None:
    """The JSON in expectations/ is what the contract generates: `make suites` after changing either."""
    for table in contract.TABLES:
        assert json.loads(suite_path(table).read_text()) == build_suite(table), table


def test_every_item_has_its_range_in_the_suite() -> None:
    suite = build_suite("assessments")
    ranges = [e["meta"]["ranges"] for e in suite["expectations"] if e["meta"]["rule"] == ITEM_RANGE_RULE]
    assert len(ranges) == 2 and ranges[0] == ranges[1]  # the range's two ends, each one expectation
    for item in contract.ITEMS:
        matching = [
            (r["min_value"], r["max_value"])
            for rule, r in ranges[0].items()
            if rule.startswith(f"item_range:{item.instrument}[") and item.code in r["items"]
        ]
        assert matching == [(item.low, item.high)], item


def test_each_row_gets_the_item_rules_of_its_instrument_and_item() -> None:
    frame = pd.DataFrame(
        {
            "instrument": ["saq", "saq", "sunnybrook", "eface", "saq", "tinnitus"],
            "item": ["q3", "total_pct", "vm_smile", "x", None, "q1"],
            "value__text": ["3", "45.5", "4", "1", "2", "7"],
        }
    )
    groups = item_groups(frame)
    assert groups[ITEM_RANGE_GROUP].tolist() == [
        "item_range:saq[1,5]",
        "item_range:saq[20,100]",
        "item_range:sunnybrook[1,5]",
        "",
        "",
        "",
    ]
    assert groups[ITEM_INTEGER_GROUP].tolist() == ["item_integer:saq", "", "item_integer:sunnybrook", "", "", ""]
    # An unknown instrument or a missing item is another rule's fault, not an item code's.
    assert groups[INSTRUMENT_ITEM].isna().tolist() == [False] * 4 + [True] * 2
    assert groups[ITEM_LOW].tolist()[:3] == [1, 20, 1] and groups[ITEM_HIGH].tolist()[:3] == [5, 100, 5]
    assert groups[ITEM_LOW].isna().tolist() == [False] * 3 + [True] * 3
    assert groups[INTEGER_ITEM_TEXT].tolist()[0] == "3" and groups[INTEGER_ITEM_TEXT].tolist()[2] == "4"
    assert groups[INTEGER_ITEM_TEXT].isna().tolist() == [False, True, False, True, True, True]


def test_every_pattern_of_the_suites_is_matched_whole() -> None:
    """GX searches with each pattern, and Python's `$` matches before a final newline: "s1\\n" passed the
    site-id rule, "3\\n" the integer rule. The CSV reader trims cells; a source that does not must not pass."""
    from pipeline.validation.gx_metrics import match_regex_per_distinct_value

    patterns = {
        e["meta"]["rule"]: e["kwargs"]["regex"]
        for table in contract.TABLES
        for e in build_suite(table)["expectations"]
        if "regex" in e["kwargs"]
    }
    assert {"pattern:patient_id", "pattern:site_id", "pattern:treatment_id", "pattern:target"} <= set(patterns)
    for rule, regex in patterns.items():
        plain = next(v for v in ("s1", "3", "abc") if re.search(regex, v))
        column = pd.Series([plain, plain + "\n"], dtype="str")
        assert match_regex_per_distinct_value(column, regex).tolist() == [True, False], rule
