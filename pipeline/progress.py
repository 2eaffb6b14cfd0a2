"""Progress for long steps: a live line in a terminal, plain log lines under Airflow or CI."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("synk")


def _interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def step(description: str) -> Iterator[None]:
    """Announce a step, then say how long it took; in a terminal the line is rewritten in place."""
    started = time.perf_counter()
    if _interactive():
        sys.stderr.write(f"… {description}\r")
        sys.stderr.flush()
    else:
        log.info("%s ...", description)
    yield
    elapsed = time.perf_counter() - started
    if _interactive():
        sys.stderr.write(f"✓ {description} ({elapsed:.1f} s)\n")
    else:
        log.info("%s done in %.1f s", description, elapsed)
