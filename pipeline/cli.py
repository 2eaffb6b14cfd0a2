"""``synk``: the command line. Errors are one clear sentence, not a traceback."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import time
from pathlib import Path

import duckdb

from pipeline.errors import PipelineError
from pipeline.settings import PROJECT_ROOT, DataHome


def machine_fault(error: BaseException) -> str:
    """What stopped a command that the data did not: a full disk, a file that cannot be opened. What was
    kept is said as it is: a run's notes on the error (``run_all``) say what had been loaded before."""
    text = str(error)
    done = getattr(error, "__notes__", None)
    # A load is one transaction and a publication one rename: what was not finished left nothing behind.
    kept = (
        f"{done[-1]}; nothing half-done was kept" if done else "nothing half-done was kept (a load is one transaction)"
    )
    if getattr(error, "errno", None) == errno.ENOSPC or "No space left" in text:
        return f"the disk of the data home is full; {kept}. Free space and run again."
    if isinstance(error, PermissionError) or "Permission denied" in text:
        return f"a file of the data home cannot be written or read ({type(error).__name__}); check its permissions."
    return (
        f"stopped by {type(error).__name__} reading or writing the data home; {kept}. "
        "Run again with --verbose; if it persists, see docs/runbook.md (When a task fails for another reason)."
    )


def _home(args: argparse.Namespace) -> DataHome:
    return DataHome.resolve(args.home).ensure()


def cmd_generate(args: argparse.Namespace) -> int:
    if args.network:
        from pipeline.tools.synthetic_network import generate_network

        for site in generate_network(Path(args.out), args.network, seed=args.seed):
            print(
                f"Wrote {site['site']}: {site['patients']} patients in {site['home']}/landing (true combined "
                f"effect {site['combined_effect']:.1f})"
            )
        return 0
    if args.surgery_decision is not None:
        from pipeline.tools.synthetic_complications import DEMO_COMPLICATIONS
        from pipeline.tools.synthetic_surgery import SurgeryParameters, generate_surgery_drop

        params = SurgeryParameters(surgery_effect=args.surgery_decision)
        counts = generate_surgery_drop(
            Path(args.out),
            patients=args.patients,
            seed=args.seed,
            params=params,
            site=args.site,
            complication_rates=DEMO_COMPLICATIONS if args.complications else (),
        )
        print(
            f"Wrote drop {Path(args.out).name}: "
            + ", ".join(f"{n} {table} rows" for table, n in counts.items())
            + f" (BoNT patients facing surgery; surgery adds {args.surgery_decision:g} composite points)"
        )
        return 0
    from pipeline.tools.synthetic import SyntheticParameters, generate_drop
    from pipeline.tools.synthetic_complications import DEMO_COMPLICATIONS

    params = SyntheticParameters(
        complications=DEMO_COMPLICATIONS if args.complications else (),
        synergy_pt_sn_on_btx=args.synergy,
        combined_effect=args.effect,
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
        models = (
            f"model run {result.models['run_id']} with {result.models['estimates']} estimates "
            f"({result.models['comparisons']} comparing treatments)"
        )
    print(f"Loaded {len(loaded)} new drop(s); {published}; {models}.")
    for note in [*result.warehouse.get("set_aside", []), *(result.models or {}).get("set_aside", [])]:  # type: ignore[union-attr]
        print(note)
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

    started = time.time()
    path = report_quarter(_home(args), args.quarter, provisional=args.provisional)
    label = "Provisional report written (not in the index)" if args.provisional else "Report written"
    if path.stat().st_mtime < started:  # the release's inputs are unchanged: left as it was
        label = "Report up to date (nothing it rests on changed since it was written), not rewritten"
    print(f"{label}: {path}")
    print(f"PDF: {path.with_name('report.pdf')}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from pipeline.status import drop_lines, status_lines

    lines = drop_lines(_home(args), args.drop) if args.drop else status_lines(_home(args))
    print("\n".join(lines))
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from pipeline.tools.data_dictionary import write_dictionary

    home = _home(args)
    if not home.warehouse_path.exists():
        raise PipelineError(f"No published warehouse at {home.warehouse_path}: run a load first.")
    print(f"Data dictionary written: {write_dictionary(home.warehouse_path, Path(args.out))}")
    return 0


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's help ends with its default, where it has one worth saying (not a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action) or text


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: its --help says what the command does and each option's default."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def cmd_network_bundle(args: argparse.Namespace) -> int:
    from pipeline.network.bundle import build_bundle

    out = build_bundle(_home(args), Path(args.out))
    print(f"Bundle written: {out} (checksum {out.name}.sha256); read {out.with_suffix('.md')} before sending it.")
    return 0


def cmd_network_pool(args: argparse.Namespace) -> int:
    from pipeline.network.coordinator import pool_landing

    result = pool_landing(_home(args))
    for line in result.lines():
        print(line)
    return 0 if not result.refused else 1


def cmd_network_answer(args: argparse.Namespace) -> int:
    from pipeline.network.answer import answer_request

    out = answer_request(_home(args), Path(args.request), Path(args.out))
    print(f"Answer written: {out}; read {out.with_suffix('.md')} before sending it.")
    return 0


def cmd_network_simulate(args: argparse.Namespace) -> int:
    from pipeline.network.simulate import simulate

    for line in simulate([Path(s) for s in args.sites], Path(args.coordinator)):
        print(line)
    return 0


def cmd_network_report(args: argparse.Namespace) -> int:
    from pipeline.network.report import demo_sentences, write_network_report

    home = _home(args)
    print(f"Network report written: {write_network_report(home)}")
    print("\n".join(demo_sentences(home)))
    return 0


def _network_parser(sub: argparse._SubParsersAction) -> None:
    network = sub.add_parser("network", help="a network of clinics: bundles, pooling, rounds (docs/network.md)")
    actions = network.add_subparsers(dest="network_command", required=True)
    bundle = actions.add_parser("bundle", help="write this site's bundle (aggregates only) for the coordinator")
    bundle.add_argument("--home", help="the site's data home")
    bundle.add_argument("--out", required=True, help="the bundle file to write (JSON; a .sha256 and a .md beside it)")
    bundle.set_defaults(func=cmd_network_bundle)
    pool = actions.add_parser("pool", help="receive the bundles in landing/ and pool them (the coordinator)")
    pool.add_argument("--home", help="the coordinating centre's data home")
    pool.set_defaults(func=cmd_network_pool)
    answer = actions.add_parser("answer", help="answer the coordinator's request (the second exchange)")
    answer.add_argument("--home", help="the site's data home")
    answer.add_argument("--request", required=True, help="the request file the coordinator wrote for this site")
    answer.add_argument("--out", required=True, help="the answer file to write")
    answer.set_defaults(func=cmd_network_answer)
    report = actions.add_parser("report", help="write the network's report from the coordinator's warehouse")
    report.add_argument("--home", help="the coordinating centre's data home")
    report.set_defaults(func=cmd_network_report)
    simulate = actions.add_parser("simulate", help="run the whole exchange between data homes on one machine")
    simulate.add_argument("--sites", nargs="+", required=True, help="the sites' data homes (each loaded by synk run)")
    simulate.add_argument("--coordinator", required=True, help="the coordinating centre's data home")
    simulate.set_defaults(func=cmd_network_simulate)


def cmd_crosscheck_export(args: argparse.Namespace) -> int:
    from pipeline.tools.crosscheck_export import export_fits

    print(f"Fits written for the cross-check against R (patient rows; stays in staging/): {export_fits(_home(args))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synk", description="Synkinesis treatment-outcomes pipeline.")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every step")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_CommandParser)

    def with_home(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--home", help="data home (default: $SYNK_HOME, else data/ in the checkout)")
        return p

    gen = sub.add_parser(
        "generate",
        help="write one synthetic, de-identified contract-v1.2 drop",
        description="Write one synthetic, de-identified drop (contract 1.2: patients, treatments, assessments and, "
        "with --complications, complications) into a folder: the pipeline can be tried without clinic data.",
    )
    gen.add_argument("--out", required=True, help="drop folder to write (its name is the drop id)")
    gen.add_argument("--patients", type=int, default=200, help="patients to generate")
    gen.add_argument("--seed", type=int, default=1, help="random seed: the same seed writes the same drop")
    gen.add_argument("--site", default="site01", help="site_id of every row")
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
    gen.add_argument(
        "--surgery-decision",
        type=float,
        default=None,
        metavar="EFFECT",
        help="write BoNT patients whose latest scores drive surgery instead, surgery adding EFFECT Sunnybrook "
        "composite points (issue 31: the target trial 'surgery or more injections?')",
    )
    gen.add_argument(
        "--network",
        type=int,
        default=0,
        help="write a network of this many clinics instead (OUT/<clinic>/landing/...; sizes and effects differ)",
    )
    gen.add_argument(
        "--effect",
        type=float,
        default=8.0,
        help="true 12-month Sunnybrook composite effect of combined treatment at this site (several sites with "
        "different effects: a pooled truth that depends on the estimand)",
    )
    gen.set_defaults(func=cmd_generate)

    run = with_home(
        sub.add_parser(
            "run",
            help="ingest every new drop, publish the warehouse, fit the models",
            description="Ingest every new drop in the landing folder (archive, screen for identifiers, validate; "
            "failing rows go to quarantine with their rule), publish the warehouse, and fit the models when the "
            "data changed. Ends with 1 and the reason when a drop was refused or a load went wrong.",
        )
    )
    run.add_argument("--drop", help="ingest only this drop folder (default: every new drop)")
    run.add_argument(
        "--confirm-retire",
        action="store_true",
        help="confirm a full snapshot held for what it would retire (with --drop: that one only)",
    )
    run.set_defaults(func=cmd_run)

    export = with_home(
        sub.add_parser(
            "crosscheck-export",
            help="refit the models, writing what each fitted to staging/crosscheck/",
            description="Refit the models on the published warehouse and write each fit's analysis frame and "
            "specification to staging/crosscheck/<run_id>/ (patient rows: never published), for the R cross-check "
            "(`make crosscheck`, docs/crosscheck.md).",
        )
    )
    export.set_defaults(func=cmd_crosscheck_export)

    report = with_home(
        sub.add_parser(
            "report",
            help="write a quarter's report",
            description="Write a quarter's report (report.html, report.pdf, figures, tables, manifest.json) under "
            "published/YYYY-Qn/, from the data as loaded by the quarter's end, and list it in published/index.html. "
            "A quarter under way only with --provisional. A release whose inputs are unchanged is left as it is.",
        )
    )
    report.add_argument("--quarter", required=True, help="e.g. 2026Q3: the data as loaded by the end of that quarter")
    report.add_argument(
        "--provisional",
        action="store_true",
        help="a quarter not yet ended: the data loaded so far, marked PROVISIONAL, under published/provisional/",
    )
    report.set_defaults(func=cmd_report)

    status = with_home(
        sub.add_parser(
            "status",
            help="show the load ledger and what the warehouse holds",
            description="Show what needs attention, the drops, the load ledger, the quarantined rows by rule and "
            "what the published warehouse holds; with --drop, one drop's quarantined rows by file and rule.",
        )
    )
    status.add_argument(
        "--drop",
        metavar="ID",
        help="show one drop instead: its quarantined rows by file and rule, as row numbers (never a value)",
    )
    status.set_defaults(func=cmd_status)

    docs = with_home(
        sub.add_parser(
            "docs",
            help="write the warehouse data dictionary and example queries",
            description="Write the published warehouse's data dictionary (tables, columns, keys, comments) and "
            "example queries as Markdown.",
        )
    )
    docs.add_argument("--out", default=str(PROJECT_ROOT / "docs" / "warehouse.md"), help="Markdown file to write")
    docs.set_defaults(func=cmd_docs)
    _network_parser(sub)
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
