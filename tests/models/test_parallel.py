"""Worker processes for the model fits, and the fallback where they cannot start."""

from multiprocessing import get_context

from pipeline.models.parallel import map_jobs


def _square(number: int) -> int:
    return number * number


def _map_in_a_daemon(queue) -> None:
    queue.put(map_jobs(_square, [1, 2, 3], workers=2))


def test_jobs_come_back_in_order_from_two_workers() -> None:
    assert map_jobs(_square, list(range(20)), workers=2) == [n * n for n in range(20)]


def test_a_daemonic_parent_fits_in_one_process_instead() -> None:
    """Some executors run tasks in daemonic processes, which may not start children."""
    context = get_context("fork")
    queue = context.Queue()
    daemon = context.Process(target=_map_in_a_daemon, args=(queue,), daemon=True)
    daemon.start()
    assert queue.get(timeout=60) == [1, 4, 9]
    daemon.join(timeout=60)
    assert daemon.exitcode == 0
