"""Benchmark: GX validation of one drop, per file, and one Data Docs update, at a few sizes.

    .venv/bin/python bench/validation.py [--sizes 200 10000] [--repeats 3] [--root <checkout>]

``--root`` runs another checkout's ``pipeline`` (e.g. a ``git worktree`` of an older commit) with this
environment, so that before and after are measured on the same machine in the same way. Each size: a
generated drop, parsed once, then validated ``--repeats`` times (the median is printed, after one
warm-up that builds GX's context); then one Data Docs update after a further validation.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    from pipeline.sources import ReceivedFile
    from pipeline.sources.dispatch import parse_drop
    from pipeline.tools.synthetic import generate_drop
    from pipeline.validation import gx_runner, rows

    seconds: dict[str, list[float]] = {}
    validate_frame = gx_runner.validate_frame

    def timed(name: str, *rest: object, **keywords: object) -> object:
        start = time.perf_counter()
        result = validate_frame(name, *rest, **keywords)  # type: ignore[arg-type]
        seconds.setdefault(name, []).append(time.perf_counter() - start)
        return result

    rows.validate_frame = timed  # type: ignore[assignment]
    print(f"root: {args.root.resolve()}\n")
    print("| patients | rows | file | validation, s (median) |")
    print("| ---: | ---: | --- | ---: |")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "drop"
            counts = generate_drop(folder, size, seed=3)
            received = [
                ReceivedFile(p.name, p, hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size)
                for p in sorted(folder.iterdir())
            ]
            drop = parse_drop("bench", received)
            rows.validate_drop(drop, set())  # warm-up: GX's context, the suites
            seconds.clear()
            whole = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                rows.validate_drop(drop, set())
                whole.append(time.perf_counter() - start)
            for name, times in seconds.items():
                print(f"| {size:,} | {counts.get(name, 0):,} | {name} | {statistics.median(times):.2f} |")
            print(f"| {size:,} | | whole drop (validate_drop) | {statistics.median(whole):.2f} |")
            docs = Path(tmp) / "gx"
            rows.validate_drop(drop, set(), gx_root=docs)
            gx_runner.build_data_docs(docs)  # the first build renders the whole site
            rows.validate_drop(drop, set(), gx_root=docs)
            start = time.perf_counter()
            gx_runner.build_data_docs(docs)
            print(f"| {size:,} | | Data Docs update (3 new pages) | {time.perf_counter() - start:.2f} |")


if __name__ == "__main__":
    main()
