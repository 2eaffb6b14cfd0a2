"""The report's signed differences: a sign always, and no "-0.0"."""

from __future__ import annotations

import pytest

from pipeline.report.number_format import signed


@pytest.mark.parametrize(
    ("value", "text"), [(6.75, "+6.8"), (-4.0, "-4.0"), (-0.04, "0.0"), (0.04, "0.0"), (0.0, "0.0"), (-0.05001, "-0.1")]
)
def test_a_signed_difference_prints_its_sign_and_never_minus_zero(value: float, text: str) -> None:
    assert signed(value) == text


def test_digits_are_the_callers() -> None:
    assert signed(-0.004, 2) == "0.00" and signed(1.234, 2) == "+1.23"
