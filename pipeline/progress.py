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
def step(description: str) -> Iterator[None]:
    """Announce a step, then say how long it took; in a terminal the line is rewritten in place."""
    started = time.perf_counter()
    for listener in _listeners:
        listener(description, "start", 0.0)
    if _interactive():
        sys.stderr.write(f"… {description}\r")
        sys.stderr.flush()
    else:
        log.info("%s ...", description)
    yield
    elapsed = time.perf_counter() - started
    for listener in _listeners:
        listener(description, "end", elapsed)
    if _interactive():
        sys.stderr.write(f"✓ {description} ({elapsed:.1f} s)\n")
    else:
        log.info("%s done in %.1f s", description, elapsed)
