"""The disclosure audit on a data home's published warehouse: the leaks the tables' own rules leave, and none
after the audit's protection; with its time.

    .venv/bin/python bench/disclosure.py --home data --quarter 2026Q4 [--provisional]

It reads the warehouse and its latest model run as ``synk report`` would, registers every count as the tables
print them, audits them with the releases kept in the data home, protects, and audits again. It prints the
leaks by kind and table, never a count.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import duckdb

from pipeline.quarters import release_name
from pipeline.report.disclosure import audit, protect
from pipeline.report.kept_registers import earlier_registers
from pipeline.report.printed import give_up_order, headline_keys, release_register
from pipeline.report.reading import read_warehouse
from pipeline.settings import DataHome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--quarter", required=True, help="YYYYQn")
    parser.add_argument("--provisional", action="store_true")
    args = parser.parse_args()
    home = DataHome.resolve(args.home)
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        data = read_warehouse(con)  # every section's rows too (pipeline/report/sections.py)
    finally:
        con.close()
    release = release_name(args.quarter, args.provisional)
    # The report's own start: every table and section's counts, the answer's and the claims' among them.
    tables, _, register = release_register(data, release)
    earlier = earlier_registers(home, args.quarter, args.provisional)
    started = time.perf_counter()
    before = audit(register, earlier)
    audited = time.perf_counter() - started
    print(
        f"{release}: {len(register.printed())} counts registered, {len(register.patients)} patients, "
        f"{len(earlier)} earlier release(s); {before.atoms} atoms, {before.constraints} distinct known counts, "
        f"{before.targets} targets"
    )
    print(f"before protection: {len(before.leaks)} leak(s) ({audited:.1f} s)")
    for (kind, table), n in sorted(
        Counter((leak.target.kind, leak.target.table or "implied") for leak in before.leaks).items()
    ):
        print(f"  {n:4d}  {kind:10s}  {table}")
    started = time.perf_counter()
    assert data.design is not None
    record = protect(register, earlier, give_up_order(), headline_keys(data.design, tables))
    protected = time.perf_counter() - started
    after = audit(register, earlier)
    print(
        f"after protection ({protected:.1f} s): {len(after.leaks)} leak(s); "
        f"{len(record['cells_hidden_by_audit'])} count(s) hidden and "
        f"{len(record['cells_shown_as_ranges_by_audit'])} shown as ranges by the audit, by table:"
    )
    changed = Counter(
        k.split("|")[0] for k in [*record["cells_hidden_by_audit"], *record["cells_shown_as_ranges_by_audit"]]
    )
    for table, n in sorted(changed.items()):
        print(f"  {n:4d}  {table}")


if __name__ == "__main__":
    main()
