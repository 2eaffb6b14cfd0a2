"""Benchmark: wall time, peak memory and rows per second of every stage, from one clinic to a registry.

    .venv/bin/python bench/run.py [--sizes 1000 10000 50000] [--out bench/results.md]

For each size: ``synk generate`` an export, then one full pass (``run_all``) in a fresh data
home, timing each stage as the pipeline reports it; a floor (a bare DuckDB script that reads
the three CSV files with their types and computes the Sunnybrook composite per visit); an
incremental drop of 1% new patients on top of the 10,000; and how long each DAG file takes to
import. Peak memory is the process's resident set plus its children's unique memory (the model
fits' forked workers share the parent's pages until they write them), sampled every 20 ms
within each stage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import duckdb
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline import progress  # noqa: E402
from pipeline.settings import DataHome  # noqa: E402
from pipeline.stages import fit_models, ingest, publish_warehouse, write_report  # noqa: E402
from pipeline.tools.synthetic import generate_drop  # noqa: E402

# Stage of each leaf step the pipeline reports, by the start of its description. The steps that
# wrap others ("build and publish the warehouse", "republish ...") are left out, not counted twice.
STAGES = (
    ("parse", "parse"),
    ("de-identification screen", "screen"),
    ("validate", "validate"),
    ("load", "load"),
    ("update the GX Data Docs", "validate"),
    ("build staging/", "build"),
    ("build core/", "build"),
    ("build marts/", "build"),
    ("fit comparative models", "models"),
    ("write the", "report"),
)


class Meter:
    """Wall time and peak RSS per stage, from the pipeline's own progress steps."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self.seconds: dict[str, float] = defaultdict(float)
        self.peaks: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._open: list[str] = []
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = self.process.memory_info().rss
            for child in self.process.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # it ended between listing and reading
                    rss += child.memory_full_info().uss
            self.peak = max(self.peak, rss)
            for stage in self._open:
                self.peaks[stage] = max(self.peaks[stage], rss)
            time.sleep(0.02)

    def listener(self, description: str, event: str, seconds: float) -> None:
        text = description.split(": ", 1)[-1]
        stage = next((name for prefix, name in STAGES if text.startswith(prefix)), None)
        if stage is None:
            return
        if event == "start":
            self._open.append(stage)
        else:
            self._open.remove(stage)
            self.seconds[stage] += seconds

    def close(self) -> None:
        self._stop.set()


def floor(drop: Path) -> tuple[float, int]:
    """A bare DuckDB script: read the three typed CSVs, compute the Sunnybrook composite per visit."""
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"CREATE TABLE p AS SELECT * FROM read_csv('{drop}/patients.csv', header = true)")
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{drop}/treatments.csv', header = true)")
    con.execute(
        f"CREATE TABLE a AS SELECT * FROM read_csv('{drop}/assessments.csv', header = true, "
        "columns = {'patient_id': 'VARCHAR', 'site_id': 'VARCHAR', 'visit_day': 'INTEGER', 'instrument': 'VARCHAR', "
        "'item': 'VARCHAR', 'value': 'DOUBLE'})"
    )
    visits = con.execute(
        "SELECT count(*) FROM (SELECT site_id, patient_id, visit_day, "
        "sum(CASE WHEN item LIKE 'vm_%' THEN 4 * value WHEN item LIKE 'rest_%' THEN -5 * value "
        "WHEN item LIKE 'syn_%' THEN -value END) AS composite "
        "FROM a WHERE instrument = 'sunnybrook' GROUP BY ALL)"
    ).fetchone()[0]
    con.close()
    return time.perf_counter() - started, visits


def measure(size: int, work: Path, extra: int = 0) -> dict[str, object]:
    home = DataHome.resolve(work / f"home-{size}").ensure()
    drop = home.landing / f"bench-{size}"
    started = time.perf_counter()
    counts = generate_drop(drop, patients=size, seed=size, site="bench")
    generate_seconds = time.perf_counter() - started
    rows = sum(counts.values())
    meter = Meter()
    progress.add_listener(meter.listener)
    try:
        started = time.perf_counter()
        ingest(home)
        publish_warehouse(home)
        full_load = time.perf_counter() - started
        fit_models(home)
        write_report(home, "2026Q4", provisional=True)  # the quarter is not over: a provisional report
        total = time.perf_counter() - started
        incremental = None
        if extra:
            # 1% new patients of the same site, as an incremental drop.
            new = home.landing / f"bench-{size}-incremental"
            generate_drop(new, patients=extra, seed=size + 1, site="bench", snapshot="incremental")
            for name in ("patients.csv", "treatments.csv", "assessments.csv"):
                path = new / name
                text = path.read_text().replace("P0", "N0").replace("T0", "U0")
                path.write_text(text)
            started = time.perf_counter()
            ingest(home)
            publish_warehouse(home)
            incremental = time.perf_counter() - started
    finally:
        progress.remove_listener(meter.listener)
        meter.close()
    floor_seconds, _ = floor(drop)
    return {
        "size": size,
        "rows": rows,
        "generate": generate_seconds,
        "total": total,
        "seconds": dict(meter.seconds),
        "peaks": dict(meter.peaks),
        "peak": meter.peak,
        "floor": floor_seconds,
        "full_load": full_load,
        "incremental": incremental,
    }


def dag_import_times() -> dict[str, float]:
    times = {}
    for path in sorted((ROOT / "dags").glob("*.py")):
        code = (
            f"import time, runpy; t = time.perf_counter(); runpy.run_path({str(path)!r}); "
            "print(time.perf_counter() - t)"
        )
        # Airflow itself is imported first, as the DAG processor has it loaded already.
        code = "import airflow.sdk; " + code
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
        )
        times[path.name] = float(out.stdout.strip().splitlines()[-1])
    return times


def table(results: list[dict[str, object]], imports: dict[str, float]) -> str:
    mib = 1024 * 1024
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 1024**3:.0f} GiB, "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}.",
        f"Command: `.venv/bin/python bench/run.py --sizes {' '.join(str(r['size']) for r in results)}`",
        "",
        "| patients | input rows | stage | wall s | peak RSS MiB | rows/s |",
        "| ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        rows = int(r["rows"])
        for stage in ("parse", "screen", "validate", "load", "build", "models", "report"):
            seconds = r["seconds"].get(stage)  # type: ignore[union-attr]
            if seconds is None:
                continue
            peak = r["peaks"].get(stage, 0) / mib  # type: ignore[union-attr]
            lines.append(f"| {r['size']} | {rows} | {stage} | {seconds:.1f} | {peak:.0f} | {rows / seconds:,.0f} |")
        lines.append(
            f"| {r['size']} | {rows} | **whole run** | {r['total']:.1f} | {int(r['peak']) / mib:.0f} | "
            f"{rows / float(r['total']):,.0f} |"
        )
        lines.append(
            f"| {r['size']} | {rows} | floor (bare DuckDB) | {r['floor']:.1f} | | {rows / float(r['floor']):,.0f} |"
        )
        times_floor = float(r["full_load"]) / float(r["floor"])
        lines.append(
            f"| {r['size']} | {rows} | full load (ingest + publish; {times_floor:.0f}x the floor) | "
            f"{r['full_load']:.1f} | | |"
        )
        if r["incremental"] is not None:
            share = float(r["incremental"]) / float(r["full_load"])
            lines.append(
                f"| {r['size']} | +1% | incremental drop (ingest + publish; {share:.2f} of the full load) | "
                f"{r['incremental']:.1f} | | |"
            )
    lines += ["", "DAG file import (after `import airflow.sdk`):", ""]
    lines += [f"- `{name}`: {seconds:.3f} s" for name, seconds in imports.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.md"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="synk-bench-") as work:
        for size in args.sizes:
            print(f"benchmarking {size} patients ...", file=sys.stderr)
            results.append(measure(size, Path(work), extra=size // 100 if size == 10000 else 0))
    text = table(results, dag_import_times())
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
