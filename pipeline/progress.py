"""Progress for long steps: a live line in a terminal, plain log lines under Airflow or CI."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("synk")

# Listeners get (description, "start" | "end", seconds): the benchmark measures stages through them.
_listeners: list[Callable[[str, str, float], None]] = []


def add_listener(listener: Callable[[str, str, float], None]) -> None:
    _listeners.append(listener)


def remove_listener(listener: Callable[[str, str, float], None]) -> None:
    _listeners.remove(listener)


def _interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def step(description: str, plain: bool = False) -> Iterator[None]:
    """Announce a step, then say how long it took; in a terminal the line is rewritten in place.

    Elsewhere the two lines are logged, or with ``plain`` (a tool's own console, as ``make demo``'s,
    where the log shows warnings only) printed to stderr as they are."""
    started = time.perf_counter()
    for listener in _listeners:
        listener(description, "start", 0.0)
    if _interactive():
        sys.stderr.write(f"… {description}\r")
        sys.stderr.flush()
    elif plain:
        print(f"… {description}", file=sys.stderr, flush=True)
    else:
        log.info("%s ...", description)
    yield
    elapsed = time.perf_counter() - started
    for listener in _listeners:
        listener(description, "end", elapsed)
    if _interactive() or plain:
        sys.stderr.write(f"✓ {description} ({elapsed:.1f} s)\n")
        sys.stderr.flush()
    else:
        log.info("%s done in %.1f s", description, elapsed)


# Under Airflow or CI a line every few seconds: enough to see a step move, few enough to read.
LOG_INTERVAL = 5.0
BAR_WIDTH = 24


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class Progress:
    """Counts done of a known total, with an estimate of the time left (from the pace so far).

    In a terminal a bar is redrawn in place; elsewhere (a task log) a line is logged at most every
    ``interval`` seconds, and one at the end."""

    def __init__(self, description: str, total: int, unit: str, interval: float = LOG_INTERVAL) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.interval = interval
        self.done = 0
        self.started = time.perf_counter()
        self._last_shown = self.started
        self._interactive = _interactive()
        if self._interactive:
            self._draw()
        else:
            log.info("%s: %d %s ...", description, total, unit)

    def left(self) -> float | None:
        """Seconds left at the pace so far; None before the first is done."""
        if not self.done:
            return None
        elapsed = time.perf_counter() - self.started
        return elapsed / self.done * (self.total - self.done)

    def line(self) -> str:
        share = self.done / self.total if self.total else 1.0
        left = self.left()
        estimate = f", about {_duration(left)} left" if left is not None and self.done < self.total else ""
        return f"{self.description}: {self.done} of {self.total} {self.unit} done ({share:.0%}){estimate}"

    def _draw(self) -> None:
        share = self.done / self.total if self.total else 1.0
        filled = int(BAR_WIDTH * share)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.line()}\033[K")
        sys.stderr.flush()

    def advance(self, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        now = time.perf_counter()
        if self._interactive:
            self._draw()
        elif now - self._last_shown >= self.interval and self.done < self.total:
            self._last_shown = now
            log.info("%s", self.line())

    def close(self) -> None:
        elapsed = time.perf_counter() - self.started
        if self._interactive:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()
        else:
            log.info(
                "%s: %d of %d %s done in %s", self.description, self.done, self.total, self.unit, _duration(elapsed)
            )


@contextmanager
def progress(description: str, total: int, unit: str, interval: float = LOG_INTERVAL) -> Iterator[Progress]:
    """A ``Progress`` for a step of ``total`` parts; closed (its last line shown) when the step ends."""
    meter = Progress(description, total, unit, interval)
    try:
        yield meter
    finally:
        meter.close()
