"""Fit independent jobs (one contrast and outcome each) on the cores the process may use.

Each process fits on one BLAS thread: the matrices are small, and two BLAS threads per fit only
contend for the same cores (10,000 patients: 24 s on the default threads, 16 s on one).

Workers are forked, not spawned: a spawned worker imports the parent's ``__main__`` again, so a
statistician's script without a ``__main__`` guard would run its own steps (a load, say) a second
time in each worker. A forked worker only fits: it touches no DuckDB connection or lock the parent
holds, and OpenBLAS stops its threads around a fork.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing import get_context
from typing import TypeVar

from threadpoolctl import threadpool_limits

from pipeline.progress import progress

log = logging.getLogger(__name__)
J = TypeVar("J")
R = TypeVar("R")

# Below this many patients the models take a few seconds, and starting workers (each imports
# pandas and statsmodels) would cost more than it saves.
PARALLEL_MIN_PATIENTS = 1000


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def workers_for(patients: int) -> int:
    return available_cores() if patients >= PARALLEL_MIN_PATIENTS else 1


@contextmanager
def one_blas_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


def _limit_worker() -> None:
    threadpool_limits(limits=1)  # for the worker's whole life


def map_jobs(fit: Callable[[J], R], jobs: list[J], workers: int) -> list[R]:
    """``[fit(job) for job in jobs]``, in order, on up to ``workers`` processes, with progress.

    Where worker processes cannot start (a daemonic parent, as some executors run tasks in), the
    jobs run here, one after another, with a warning: the results are the same, only slower.
    """
    if workers <= 1 or len(jobs) <= 1:
        return _one_by_one(fit, jobs)
    processes = min(workers, len(jobs))
    try:
        with (
            progress(f"Fitting the models on {processes} worker processes", len(jobs), "jobs") as meter,
            ProcessPoolExecutor(
                max_workers=processes, mp_context=get_context("fork"), initializer=_limit_worker
            ) as pool,
        ):
            futures = [pool.submit(fit, job) for job in jobs]
            for _ in as_completed(futures):
                meter.advance()
            return [future.result() for future in futures]
    except (BrokenProcessPool, AssertionError, OSError) as error:
        log.warning("Model fits run in one process: worker processes failed (%s).", type(error).__name__)
        return _one_by_one(fit, jobs)


def _one_by_one(fit: Callable[[J], R], jobs: list[J]) -> list[R]:
    results = []
    with progress("Fitting the models", len(jobs), "jobs") as meter:
        for job in jobs:
            results.append(fit(job))
            meter.advance()
    return results
