"""``synk``: the command line. Errors are one clear sentence, not a traceback."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from pathlib import Path

import duckdb

from pipeline.errors import PipelineError
from pipeline.settings import PROJECT_ROOT, DataHome


def machine_fault(error: BaseException) -> str:
    """What stopped a command that the data did not: a full disk, a file that cannot be opened."""
    text = str(error)
    if getattr(error, "errno", None) == errno.ENOSPC or "No space left" in text:
        return (
            "the disk of the data home is full; nothing half-done was kept (a load is one transaction). "
            "Free space and run again."
        )
    if isinstance(error, PermissionError) or "Permission denied" in text:
        return f"a file of the data home cannot be written or read ({type(error).__name__}); check its permissions."
    return (
        f"stopped by {type(error).__name__} reading or writing the data home; nothing half-done was kept. "
        "Run again with --verbose; if it persists, see docs/runbook.md (When a task fails for another reason)."
    )


def _home(args: argparse.Namespace) -> DataHome:
    return DataHome.resolve(args.home).ensure()


def cmd_generate(args: argparse.Namespace) -> int:
    from pipeline.tools.synthetic import SyntheticParameters, generate_drop
    from pipeline.tools.synthetic_complications import DEMO_COMPLICATIONS

    params = SyntheticParameters(
        complications=DEMO_COMPLICATIONS if args.complications else (), synergy_pt_sn_on_btx=args.synergy
    )
    counts = generate_drop(
        Path(args.out), patients=args.patients, seed=args.seed, site=args.site, export_format=args.format, params=params
    )
    print(f"Wrote drop {Path(args.out).name}: " + ", ".join(f"{n} {table} rows" for table, n in counts.items()))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.stages import raise_no_estimates, raise_refusals, run_all

    home = _home(args)
    result = run_all(home, only_drop=args.drop, confirm_retire=args.confirm_retire)
    drops = result.ingest["drops"]
    loaded = [d for d in drops if d["status"] == "loaded"]  # type: ignore[union-attr]
    if not result.warehouse["published"]:
        published = f"warehouse unchanged at {result.warehouse['warehouse']}"
    else:
        published = f"warehouse published at {result.warehouse['warehouse']}"
    published += f" ({result.warehouse['analysable_patients']} analysable patients)"
    if result.models is None:
        models = "models not refitted (no new data)"
    else:
        models = f"model run {result.models['run_id']} with {result.models['estimates']} estimates"
    print(f"Loaded {len(loaded)} new drop(s); {published}; {models}.")
    # A refusal, an alert or no estimate at all ends the run non-zero, with its sentence as the last line.
    faults = []
    checks = [lambda: raise_refusals(result.ingest, result.warehouse)]
    if result.models is not None:
        checks.append(lambda: raise_no_estimates(result.models))
    for check in checks:
        try:
            check()
        except PipelineError as fault:
            faults.append(str(fault))
    if faults:
        raise PipelineError(" ".join(faults))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.stages import report_quarter

    path = report_quarter(_home(args), args.quarter, provisional=args.provisional)
    label = "Provisional report written (not in the index)" if args.provisional else "Report written"
    print(f"{label}: {path}")
    print(f"PDF: {path.with_name('report.pdf')}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from pipeline.status import status_lines

    print("\n".join(status_lines(_home(args))))
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from pipeline.tools.data_dictionary import write_dictionary

    home = _home(args)
    if not home.warehouse_path.exists():
        raise PipelineError(f"No published warehouse at {home.warehouse_path}: run a load first.")
    print(f"Data dictionary written: {write_dictionary(home.warehouse_path, Path(args.out))}")
    return 0


def cmd_crosscheck_export(args: argparse.Namespace) -> int:
    from pipeline.tools.crosscheck_export import export_fits

    print(f"Fits written for the cross-check against R (patient rows; stays in staging/): {export_fits(_home(args))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synk", description="Synkinesis treatment-outcomes pipeline.")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every step")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_home(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--home", help="data home (default: $SYNK_HOME, else data/ in the checkout)")
        return p

    gen = sub.add_parser("generate", help="write one synthetic, de-identified contract-v1.2 drop")
    gen.add_argument("--out", required=True, help="drop folder to write (its name is the drop id)")
    gen.add_argument("--patients", type=int, default=200)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--site", default="site01")
    gen.add_argument(
        "--format",
        choices=("csv", "redcap"),
        default="csv",
        help="csv: the contract's three files; redcap: the same data as REDCap's flat export and data dictionary",
    )
    gen.add_argument(
        "--complications",
        action="store_true",
        help="also write complications (contract 1.2) at the demo's known rates per modality",
    )
    gen.add_argument(
        "--synergy",
        type=float,
        default=0.0,
        help="Sunnybrook composite points BTX+PT+SN gains beyond adding PT and SN to BTX each (default 0: additive)",
    )
    gen.set_defaults(func=cmd_generate)

    run = with_home(sub.add_parser("run", help="ingest every new drop, publish the warehouse, fit the models"))
    run.add_argument("--drop", help="ingest only this drop folder")
    run.add_argument(
        "--confirm-retire",
        action="store_true",
        help="confirm a full snapshot held for what it would retire (with --drop: that one only)",
    )
    run.set_defaults(func=cmd_run)

    export = with_home(
        sub.add_parser("crosscheck-export", help="refit the models, writing what each fitted to staging/crosscheck/")
    )
    export.set_defaults(func=cmd_crosscheck_export)

    report = with_home(sub.add_parser("report", help="write a quarter's report"))
    report.add_argument("--quarter", required=True, help="e.g. 2026Q3: the data as loaded by the end of that quarter")
    report.add_argument(
        "--provisional",
        action="store_true",
        help="a quarter not yet ended: the data loaded so far, marked PROVISIONAL, under published/provisional/",
    )
    report.set_defaults(func=cmd_report)

    status = with_home(sub.add_parser("status", help="show the load ledger and what the warehouse holds"))
    status.set_defaults(func=cmd_status)

    docs = with_home(sub.add_parser("docs", help="write the warehouse data dictionary and example queries"))
    docs.add_argument("--out", default=str(PROJECT_ROOT / "docs" / "warehouse.md"))
    docs.set_defaults(func=cmd_docs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("synk").setLevel(logging.INFO if not sys.stderr.isatty() else logging.WARNING)
    try:
        return args.func(args)
    except PipelineError as error:
        print(f"synk: {error}", file=sys.stderr)
        return 1
    except (OSError, duckdb.Error) as error:
        # The machine, not the data: a sentence, never the error's text (a database error may quote a cell).
        print(f"synk: {machine_fault(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("synk: interrupted; nothing half-done was kept (a load is one transaction).", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
