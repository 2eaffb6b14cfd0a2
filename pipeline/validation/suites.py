"""The GX suites, generated from the contract and kept as JSON in ``expectations/``.

``python -m pipeline.validation.suites`` rewrites the JSON files; a test fails when they and
the contract drift apart. Each expectation's ``meta`` names the rule a failing row is
quarantined under and the columns it concerns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import contract as c
from pipeline.settings import PROJECT_ROOT
from pipeline.validation.distinct import distinct_pairs

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
CURRENT_YEAR = "current_year"  # a suite parameter, filled at validation time
PATIENT_IS_KNOWN = "patient_is_known"  # computed per drop: the row's patient is in the drop or loaded
TEXT_SUFFIX = "__text"
# Recorded totals must agree with items: the check is computed per row (in SQL, by the scoring
# formulas) into this column, and the suite's expectation reports it.
TOTALS_CHECK = "totals_check"
TOTALS_RULE = "totals_disagree"
# Complications name a treatment of their patient (the drop's or one loaded): computed per drop, like
# patient_is_known, into these columns (null where no treatment is named), and the suite reports them.
TREATMENT_IS_KNOWN = "treatment_is_known"
TREATMENT_MODALITY = "treatment_modality"
RESOLVED_ORDER = "resolved_order_ok"  # false where resolved_day is before day; null where either is empty
# False where the complication's day is before the day of the treatment it names; null where it names none
# (or one not known) or its day is empty.
TREATMENT_ORDER = "treatment_order_ok"
# The rules that depend on a row's instrument and item (its item code, range and integer-ness) are
# computed per drop into columns (item_groups): one expectation each over those columns, instead of
# one per instrument or range with a row condition. GX's cost is per expectation, and a row condition
# costs a pandas query per metric: 25 such expectations were 80% of an assessments validation.
INSTRUMENT_ITEM = "instrument_item"  # "instrument:item" where the instrument is the contract's
ITEM_LOW = "item_low"  # the row's item range, from the contract (null for an unknown item)
ITEM_HIGH = "item_high"
INTEGER_ITEM_TEXT = "value__integer_text"  # the value's text where the item must be an integer, else null
# The precise rule a failing row broke is named from these, so a quarantine reason says which range.
ITEM_RANGE_GROUP = "item_range_group"
ITEM_INTEGER_GROUP = "item_integer_group"
ITEM_RANGE_RULE = "item_range"
ITEM_INTEGER_RULE = "item_integer"
# A rule whose failing rows are named by a column of the frame: the totals check names the score
# that disagreed, the item rules the instrument and range.
REFINED_RULES = {TOTALS_RULE: TOTALS_CHECK, ITEM_RANGE_RULE: ITEM_RANGE_GROUP, ITEM_INTEGER_RULE: ITEM_INTEGER_GROUP}
# Numeric columns are validated twice: as text (name + TEXT_SUFFIX) for their type, as numbers for range.
# The text is the number's canonical spelling (pipeline/sources/numbers.py: '3.0' and '3e0' are '3'), so
# the integer pattern asks for an integral value; a cell that is no number keeps its own text and fails.

_PATTERNS = {
    "patient_id": c.PATIENT_ID_PATTERN,
    "site_id": c.SITE_ID_PATTERN,
    "treatment_id": c.TREATMENT_ID_PATTERN,
    "target": c.TARGET_PATTERN,
    "complication_id": c.COMPLICATION_ID_PATTERN,
}
_CODE_SETS = {
    "sex": c.SEXES,
    "side": c.SIDES,
    "etiology": c.ETIOLOGIES,
    "modality": c.MODALITIES,
    "instrument": c.INSTRUMENTS,
    "code": c.COMPLICATION_CODES,
}
_RANGES: dict[str, tuple[float, float | dict[str, str], bool]] = {
    # column: (min, max, strict_min)
    "age_at_onset": (0, c.AGE_TOP_CODE, False),
    "index_year": (c.MIN_INDEX_YEAR, {"$PARAMETER": CURRENT_YEAR}, False),
    "onset_to_index_days": (0, 36500, False),
    "day": (-3650, 7300, False),
    "botox_units": (0, 300, True),
    "pt_sessions": (1, 200, False),
    "visit_day": (-3650, 7300, False),
    "grade": (1, c.CLAVIEN_DINDO_MAX, False),
    "resolved_day": (-3650, 7300, False),
}


def _expectation(kind: str, rule: str, columns: list[str], **kwargs: object) -> dict[str, object]:
    return {"type": kind, "kwargs": kwargs, "meta": {"rule": rule, "columns": columns}}


def _column_rules(table: str) -> list[dict[str, object]]:
    rules: list[dict[str, object]] = []
    for column in c.COLUMNS[table]:
        name = column.name
        if column.required:
            # Numeric columns are checked for presence as text: a non-number is a type fault, not a missing value.
            present = name + TEXT_SUFFIX if column.kind != "text" else name
            rules.append(
                _expectation("expect_column_values_to_not_be_null", f"required:{name}", [name], column=present)
            )
        if column.kind in ("integer", "number"):
            pattern = c.INTEGER_PATTERN if column.kind == "integer" else c.NUMBER_PATTERN
            rules.append(
                _expectation(
                    "expect_column_values_to_match_regex",
                    f"type_{column.kind}:{name}",
                    [name],
                    column=name + TEXT_SUFFIX,
                    regex=pattern,
                )
            )
        if name in _PATTERNS:
            rules.append(
                _expectation(
                    "expect_column_values_to_match_regex", f"pattern:{name}", [name], column=name, regex=_PATTERNS[name]
                )
            )
        if name in _CODE_SETS:
            rules.append(
                _expectation(
                    "expect_column_values_to_be_in_set",
                    f"code_set:{name}",
                    [name],
                    column=name,
                    value_set=list(_CODE_SETS[name]),
                )
            )
        if name in _RANGES:
            low, high, strict = _RANGES[name]
            rules.append(
                _expectation(
                    "expect_column_values_to_be_between",
                    f"range:{name}",
                    [name],
                    column=name,
                    min_value=low,
                    max_value=high,
                    strict_min=strict,
                )
            )
    key = list(c.KEYS[table])
    rules.append(_expectation("expect_compound_columns_to_be_unique", "duplicate_key", key, column_list=key))
    return rules


def _known_patient_rule() -> dict[str, object]:
    """Rows of treatments and assessments must name a patient of the drop or one already loaded.

    Whether a row's patient is known is computed per drop into ``patient_is_known``; the known keys
    themselves are not a suite parameter, since GX copies an expectation's whole configuration on
    every metric it resolves (with 10,000 keys: 9 s of a 10,000-patient validation)."""
    return _expectation(
        "expect_column_values_to_be_in_set",
        "unknown_patient",
        ["site_id", "patient_id"],
        column=PATIENT_IS_KNOWN,
        value_set=[True],
    )


def _treatment_rules() -> list[dict[str, object]]:
    return [
        _known_patient_rule(),
        _expectation(
            "expect_column_values_to_not_be_null",
            "botox_units_required",
            ["modality", "botox_units"],
            column="botox_units",
            row_condition='modality=="botox"',
            condition_parser="pandas",
        ),
        _expectation(
            "expect_column_values_to_be_null",
            "botox_units_only_for_botox",
            ["modality", "botox_units"],
            column="botox_units",
            row_condition='modality!="botox"',
            condition_parser="pandas",
        ),
        _expectation(
            "expect_column_values_to_be_null",
            "pt_sessions_only_for_physical_therapy",
            ["modality", "pt_sessions"],
            column="pt_sessions",
            row_condition='modality!="physical_therapy"',
            condition_parser="pandas",
        ),
    ]


def _complication_rules() -> list[dict[str, object]]:
    """A complication names a known patient, a treatment of that patient (where it names one) given on or
    before the day it was noted, resolves on or after that day, and a code that needs an operation names no
    non-surgical treatment."""
    return [
        _known_patient_rule(),
        _expectation(
            "expect_column_values_to_be_in_set",
            "unknown_treatment",
            ["site_id", "patient_id", "treatment_id"],
            column=TREATMENT_IS_KNOWN,
            value_set=[True],
        ),
        _expectation(
            "expect_column_values_to_be_in_set",
            "day_before_treatment",
            ["day", "treatment_id"],
            column=TREATMENT_ORDER,
            value_set=[True],
        ),
        _expectation(
            "expect_column_values_to_be_in_set",
            "resolved_before_day",
            ["day", "resolved_day"],
            column=RESOLVED_ORDER,
            value_set=[True],
        ),
        _expectation(
            "expect_column_values_to_be_in_set",
            "code_needs_surgery",
            ["code", "treatment_id"],
            column=TREATMENT_MODALITY,
            value_set=list(c.SURGICAL_MODALITIES),
            row_condition=" or ".join(f'code=="{code}"' for code in c.CODES_AFTER_SURGERY),
            condition_parser="pandas",
        ),
    ]


def _assessment_rules() -> list[dict[str, object]]:
    rules = [
        _known_patient_rule(),
        _expectation(
            "expect_column_values_to_be_null",
            TOTALS_RULE,
            ["instrument", "item", "value"],
            column=TOTALS_CHECK,
        ),
    ]
    rules.append(
        _expectation(
            "expect_column_values_to_be_in_set",
            "item_code",
            ["instrument", "item"],
            column=INSTRUMENT_ITEM,
            value_set=[f"{item.instrument}:{item.code}" for item in c.ITEMS],
        )
    )
    # The row's range is its item's (item_groups); the meta states every range and its items, so the
    # suite still says what each item may hold.
    ranges = {
        rule: {"min_value": items[0].low, "max_value": items[0].high, "items": [item.code for item in items]}
        for rule, items in _items_by_rule(_range_rule).items()
    }
    for low, high in ((ITEM_LOW, "value"), ("value", ITEM_HIGH)):
        expectation = _expectation(
            "expect_column_pair_values_a_to_be_greater_than_b",
            ITEM_RANGE_RULE,
            ["instrument", "item", "value"],
            column_A=high,
            column_B=low,
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        )
        expectation["meta"]["ranges"] = ranges
        rules.append(expectation)
    integers = _items_by_rule(_integer_rule)
    expectation = _expectation(
        "expect_column_values_to_match_regex",
        ITEM_INTEGER_RULE,
        ["instrument", "item", "value"],
        column=INTEGER_ITEM_TEXT,
        regex=c.INTEGER_PATTERN,
    )
    expectation["meta"]["items"] = {rule: [item.code for item in items] for rule, items in integers.items()}
    rules.append(expectation)
    return rules


def _range_rule(item: c.Item) -> str:
    return f"item_range:{item.instrument}[{item.low:g},{item.high:g}]"


def _integer_rule(item: c.Item) -> str:
    return f"item_integer:{item.instrument}" if item.integer else ""


def _items_by_rule(rule_of: Callable[[c.Item], str]) -> dict[str, list[c.Item]]:
    """The contract's items grouped by the rule that applies to them (none: left out), in contract order."""
    groups: dict[str, list[c.Item]] = {}
    for item in c.ITEMS:
        if rule := rule_of(item):
            groups.setdefault(rule, []).append(item)
    return groups


def item_groups(assessments: pd.DataFrame) -> dict[str, pd.Series]:
    """Per assessment row, what its instrument and item make of it: the "instrument:item" pair (null
    for an instrument not in the contract), the item's range, the value's text where it must be an
    integer, and the names of the range and integer rules ("" where none applies)."""
    # Map the few distinct (instrument, item) pairs, then spread them over the rows.
    codes, pairs = distinct_pairs(assessments["instrument"], assessments["item"])
    items = {(item.instrument, item.code): item for item in c.ITEMS}
    found = [items.get(pair) for pair in pairs]

    def spread(values: list[object], dtype: str) -> pd.Series:
        return pd.Series(pd.array(values, dtype=dtype)[codes], index=assessments.index)

    def categorical(labels: list[str | None]) -> pd.Series:
        # Categorical: a few distinct labels over a million rows.
        categories = sorted({label for label in labels if label is not None} | {""})
        position = {label: i for i, label in enumerate(categories)}
        pair_codes = np.array([-1 if label is None else position[label] for label in labels], dtype=np.int32)
        return pd.Series(pd.Categorical.from_codes(pair_codes[codes], categories=categories), index=assessments.index)

    integer = spread([item is not None and item.integer for item in found], "bool").to_numpy()
    return {
        INSTRUMENT_ITEM: categorical([f"{a}:{b}" if a in c.INSTRUMENTS and b is not None else None for a, b in pairs]),
        ITEM_LOW: spread([np.nan if item is None else item.low for item in found], "float64"),
        ITEM_HIGH: spread([np.nan if item is None else item.high for item in found], "float64"),
        INTEGER_ITEM_TEXT: assessments["value" + TEXT_SUFFIX].where(integer),
        ITEM_RANGE_GROUP: categorical([_range_rule(item) if item else "" for item in found]),
        ITEM_INTEGER_GROUP: categorical([_integer_rule(item) if item else "" for item in found]),
    }


def build_suite(table: str) -> dict[str, object]:
    rules = _column_rules(table)
    if table == "treatments":
        rules += _treatment_rules()
    elif table == "assessments":
        rules += _assessment_rules()
    elif table == "complications":
        rules += _complication_rules()
    return {
        "name": table,
        "expectations": rules,
        "meta": {"contract": f"clinic-export v{c.CONTRACT_VERSION}", "generated_by": "pipeline.validation.suites"},
    }


def suite_path(table: str) -> Path:
    return EXPECTATIONS_DIR / f"{table}.json"


def load_suite(table: str) -> dict[str, object]:
    return json.loads(suite_path(table).read_text(encoding="utf-8"))


def write_suites() -> None:
    for table in c.TABLES:
        suite_path(table).write_text(json.dumps(build_suite(table), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_suites()
