"""Quarter arithmetic, in its one home."""

from __future__ import annotations

from datetime import datetime

import pytest

from pipeline.quarters import (
    canonical_quarter,
    current_quarter,
    parse_quarter,
    quarter_before,
    quarter_bounds,
    quarter_folder,
)


@pytest.mark.parametrize(
    ("moment", "current", "before"),
    [
        (datetime(2026, 1, 1, 6), "2026Q1", "2025Q4"),
        (datetime(2026, 3, 31, 23, 59), "2026Q1", "2025Q4"),
        (datetime(2026, 4, 1), "2026Q2", "2026Q1"),
        (datetime(2026, 10, 1, 6), "2026Q4", "2026Q3"),
        (datetime(2026, 12, 31), "2026Q4", "2026Q3"),
    ],
)
def test_the_quarter_of_a_moment_and_the_one_before(moment: datetime, current: str, before: str) -> None:
    assert (current_quarter(moment), quarter_before(moment)) == (current, before)


def test_bounds_and_folder() -> None:
    assert quarter_bounds("2026Q4") == (datetime(2026, 10, 1), datetime(2027, 1, 1))
    assert quarter_bounds("2026Q1") == (datetime(2026, 1, 1), datetime(2026, 4, 1))
    assert quarter_folder(" 2026Q2 ") == "2026-Q2"
    with pytest.raises(ValueError, match="not of the form YYYYQn"):
        parse_quarter("2026-Q5")


@pytest.mark.parametrize("spelling", ["2026Q4", "2026-Q4", "2026-q4", "2026q4", " 2026-Q4 "])
def test_a_quarter_is_read_as_the_tool_writes_it_in_its_own_folders(spelling: str) -> None:
    assert canonical_quarter(spelling) == "2026Q4" and quarter_folder(spelling) == "2026-Q4"


@pytest.mark.parametrize("quarter", ["0000Q1", "1999Q4", "2100Q1", "9999-Q4"])
def test_a_year_outside_the_data_is_refused_with_a_sentence(quarter: str) -> None:
    with pytest.raises(ValueError, match=r"year \d+ is outside 2000 to 2099"):
        parse_quarter(quarter)


@pytest.mark.parametrize("quarter", ["2026Q4x", "2026--Q4", "26Q4", "2026Q4\nx"])
def test_a_quarter_is_matched_whole(quarter: str) -> None:
    with pytest.raises(ValueError, match="not of the form YYYYQn"):
        parse_quarter(quarter)
