"""Compare two data homes table by table: the published warehouse and the latest report's CSV tables.

For a change that must not change behaviour (a refactor): run ``make demo`` before and after into two
homes, then ``python bench/compare_homes.py BEFORE AFTER``. Columns that record when or by which run
something happened (timestamps, run ids, package versions) are left out; every other cell must match.
A table only one side has is listed, not failed: a new table is a new feature, not a changed number.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import pandas as pd

# When or by which run: different on every run by design.
VOLATILE = {
    "built_at",
    "as_of",
    "started_at",
    "received_at",
    "loaded_at",
    "run_id",
    "packages",
    "data_snapshot",
    "first_drop_id",
    "last_drop_id",
    "drop_id",
    "design_settings",
    "code_version",
}
VOLATILE_CSV = {"quarter_load_ledger.csv", "quarter_refused_drops.csv"}  # drop names and receipt times


def _tables(path: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(path), read_only=True) as con:
        names = [n for (n,) in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        return {name: con.execute(f'SELECT * FROM "{name}"').df() for name in names}


def _same(before: pd.DataFrame, after: pd.DataFrame) -> str:
    columns = [c for c in before.columns if c not in VOLATILE]
    if [c for c in after.columns if c not in VOLATILE] != columns:
        return f"columns differ: {sorted(set(before.columns) ^ set(after.columns))}"
    if len(before) != len(after):
        return f"{len(before)} rows before, {len(after)} after"
    if not columns:
        return ""
    left = before[columns].astype(str).sort_values(columns).reset_index(drop=True)
    right = after[columns].astype(str).sort_values(columns).reset_index(drop=True)
    differing = [c for c in columns if not left[c].equals(right[c])]
    return f"values differ in {differing}" if differing else ""


def _report_folder(home: Path) -> Path | None:
    found = sorted(home.glob("published/*/report.html")) + sorted(home.glob("published/provisional/*/report.html"))
    return found[-1].parent if found else None


def compare(before: Path, after: Path) -> list[str]:
    problems, lines = [], []
    old, new = (_tables(home / "warehouse" / "outcomes.duckdb") for home in (before, after))
    for name in sorted(set(old) | set(new)):
        if name not in old or name not in new:
            lines.append(f"  {name}: only {'after' if name in new else 'before'}")
            continue
        verdict = _same(old[name], new[name])
        lines.append(f"  {name}: {len(new[name])} rows, {verdict or 'same'}")
        if verdict:
            problems.append(f"warehouse {name}: {verdict}")
    print(f"Warehouse tables ({before.name} -> {after.name}):")
    print("\n".join(lines))
    folders = [_report_folder(home) for home in (before, after)]
    if None in folders:
        problems.append("a home has no report")
        return problems
    print(f"Report CSV files ({folders[0]} -> {folders[1]}):")
    for csv in sorted({p.name for p in folders[0].glob("*.csv")} | {p.name for p in folders[1].glob("*.csv")}):
        a, b = folders[0] / csv, folders[1] / csv
        if not a.exists() or not b.exists():
            print(f"  {csv}: only {'after' if b.exists() else 'before'}")
            continue
        if csv in VOLATILE_CSV:
            print(f"  {csv}: not compared (drop names and receipt times)")
            continue
        verdict = _same(pd.read_csv(a, dtype=str), pd.read_csv(b, dtype=str))
        print(f"  {csv}: {verdict or 'same'}")
        if verdict:
            problems.append(f"report {csv}: {verdict}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    problems = compare(args.before, args.after)
    print("\n".join(["", "Differences:", *problems]) if problems else "\nNo differences.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
