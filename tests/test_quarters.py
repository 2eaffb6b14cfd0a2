"""Quarter arithmetic, in its one home."""

from __future__ import annotations

from datetime import datetime

import pytest

from pipeline.quarters import current_quarter, parse_quarter, quarter_before, quarter_bounds, quarter_folder


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
