"""Calendar quarters, the unit of the department's reports: one home for their arithmetic."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pipeline.errors import PipelineError

# 2026Q4, and 2026-Q4 as the tool names its own folders; q in either case. Matched whole (fullmatch).
QUARTER_PATTERN = re.compile(r"(\d{4})-?[Qq]([1-4])")
FIRST_YEAR, LAST_YEAR = 2000, 2099  # a report's year: no exported visit is older, and none is a century ahead


def parse_quarter(quarter: str) -> tuple[int, int]:
    """``"2026Q4"`` (or ``"2026-Q4"``, ``"2026q4"``) -> ``(2026, 4)``; a sentence saying what is wrong otherwise."""
    match = QUARTER_PATTERN.fullmatch(str(quarter).strip())
    if not match:
        raise ValueError(
            f"Quarter {quarter!r} is not of the form YYYYQn, e.g. 2026Q4 or 2026-Q4 (a year, 'Q', then 1 to 4)."
        )
    year, number = int(match.group(1)), int(match.group(2))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(
            f"The quarter's year {year} is outside {FIRST_YEAR} to {LAST_YEAR}; give the year of the data, e.g. 2026Q4."
        )
    return year, number


def canonical_quarter(quarter: str) -> str:
    """``"2026-Q4"``, ``"2026q4"`` -> ``"2026Q4"``: the one spelling the stages pass on."""
    year, number = parse_quarter(quarter)
    return f"{year}Q{number}"


def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    """[start, end) of the quarter, UTC (naive)."""
    year, number = parse_quarter(quarter)
    start = datetime(year, 3 * number - 2, 1)
    end = datetime(year + 1, 1, 1) if number == 4 else datetime(year, 3 * number + 1, 1)
    return start, end


def quarter_folder(quarter: str) -> str:
    """``"2026Q4"`` -> ``"2026-Q4"``, the published folder's name."""
    year, number = parse_quarter(quarter)
    return f"{year}-Q{number}"


def release_name(quarter: str, provisional: bool) -> str:
    """A release's name, its folder under ``published/``: ``2026-Q4`` or ``provisional/2026-Q4``."""
    return f"{'provisional/' if provisional else ''}{quarter_folder(quarter)}"


def current_quarter(moment: datetime | None = None) -> str:
    """The quarter ``moment`` (default now) falls in."""
    moment = moment or datetime.now(UTC)
    return f"{moment.year}Q{(moment.month - 1) // 3 + 1}"


def quarter_before(moment: datetime) -> str:
    """The quarter that ended before ``moment``: the report DAG runs on the first day of the next."""
    year, number = parse_quarter(current_quarter(moment))
    return f"{year - 1}Q4" if number == 1 else f"{year}Q{number - 1}"


def report_cutoff(quarter: str, provisional: bool = False, now: datetime | None = None) -> datetime:
    """The instant a quarter's report is written as of: the quarter's last moment, or (``provisional``, a
    quarter under way) now. A quarter not yet ended is refused, saying so, unless ``provisional``."""
    _, end = quarter_bounds(quarter)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if end > now and not provisional:
        raise PipelineError(
            f"The {quarter_folder(quarter)} report cannot be written yet: the quarter ends on "
            f"{end - timedelta(days=1):%Y-%m-%d}; add --provisional for a report marked PROVISIONAL on the data "
            "loaded so far."
        )
    return min(now, end - timedelta(microseconds=1))
