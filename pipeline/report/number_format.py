"""How the report prints a signed difference: with its sign, and never as "-0.0"."""

from __future__ import annotations


def signed(value: float, digits: int = 1) -> str:
    """``+6.8``, ``-4.0``; a value that rounds to zero prints ``0.0`` (a "-0.0" reads as a typo to a surgeon,
    and whether an interval crosses zero is said in words beside it)."""
    text = f"{value:+.{digits}f}"
    return text[1:] if float(text) == 0 else text
