"""One page of every validation run, from the validation results GX stored: readable offline.

GX's Data Docs load their styles and scripts from CDNs, so on a hospital machine without the
internet they show an unstyled page whose list of runs (filled in by a script) stays empty. This
page is plain HTML with its style inline, no script and no link off the machine. It shows counts,
and the sentences of drops refused whole (files, columns, rules and rows, never a value): the results
also hold sample cell values of failing rows, which are never read here.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.json_files import read_json

PAGE_NAME = "validation_results.html"
_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 64rem; padding: 0 1rem; color: #1d2430; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .4rem; }
table { border-collapse: collapse; width: 100%; margin-bottom: .6rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #d8dde5; vertical-align: top; }
th { background: #eef1f5; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; font-weight: 600; } .failed { color: #b42318; font-weight: 600; }
.meta { color: #5b6675; }
"""


@dataclass(frozen=True)
class RuleResult:
    rule: str
    columns: str
    checked: int
    failing: int


@dataclass(frozen=True)
class FileValidation:
    drop_id: str
    table: str
    validated_at: datetime
    success: bool
    rules: tuple[RuleResult, ...]


def read_results(gx_root: Path) -> list[FileValidation]:
    """Every stored validation result (validations/<suite>/<drop>/<time>/<drop>.<table>.json), newest first."""
    found = []
    for path in (gx_root / "uncommitted" / "validations").glob("*/*/*/*.json"):
        suite, drop_id, stamp = path.parent.parent.parent.name, path.parent.parent.name, path.parent.name
        try:
            raw = read_json(path)
            validated_at = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ")
        except (OSError, ValueError):
            continue  # not a result of ours (or one being written): the page shows the rest
        rules = tuple(
            RuleResult(
                rule=str(
                    outcome["expectation_config"].get("meta", {}).get("rule") or outcome["expectation_config"]["type"]
                ),
                columns=", ".join(outcome["expectation_config"].get("meta", {}).get("columns", [])),
                checked=int(outcome["result"].get("element_count") or 0),
                failing=int(outcome["result"].get("unexpected_count") or 0),
            )
            for outcome in raw.get("results", [])
        )
        found.append(FileValidation(drop_id, suite, validated_at, bool(raw.get("success")), rules))
    return sorted(found, key=lambda v: (v.validated_at, v.table), reverse=True)


def _file_section(validation: FileValidation) -> str:
    failing = [r for r in validation.rules if r.failing]
    verdict = (
        '<span class="ok">every row passed</span>'
        if validation.success
        else f'<span class="failed">{len(failing)} rule(s) with failing rows (quarantined)</span>'
    )
    rows = "".join(
        f"<tr><td>{html.escape(r.rule)}</td><td>{html.escape(r.columns)}</td>"
        f'<td class="n">{r.checked}</td><td class="n{" failed" if r.failing else ""}">{r.failing}</td></tr>'
        for r in sorted(validation.rules, key=lambda r: (-r.failing, r.rule))
    )
    return (
        f"<h2>{html.escape(validation.drop_id)}: {html.escape(validation.table)}</h2>"
        f'<p class="meta">Validated {validation.validated_at:%Y-%m-%d %H:%M} UTC; {verdict}.</p>'
        "<table><thead><tr><th>rule</th><th>column(s)</th><th>rows checked</th><th>rows failing</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _refused_section(refused: list[tuple[str, str, str, datetime]]) -> str:
    """Drops turned away whole (rejected, or held for a confirmation): most never reached validation, so
    without this the page would not show them at all. Their sentences name files, columns, rules and rows."""
    if not refused:
        return ""
    rows = "".join(
        f"<tr><td>{received_at:%Y-%m-%d %H:%M}</td><td>{html.escape(drop_id)}</td>"
        f'<td class="failed">{html.escape(status)}</td><td>{html.escape(reason)}</td></tr>'
        for drop_id, status, reason, received_at in refused
    )
    return (
        "<h2>Refused drops</h2>"
        '<p class="meta">No row of these drops was loaded or quarantined: each was refused whole, for the reason '
        "given. Fix it and send it again.</p>"
        "<table><thead><tr><th>received (UTC)</th><th>drop</th><th>status</th><th>why</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def write_results_page(gx_root: Path, refused: list[tuple[str, str, str, datetime]] | None = None) -> Path:
    """Write the page of every validation run beside GX's stores, with the drops refused whole (``refused``:
    drop id, status, the sentence and when it was received, newest first); return its path."""
    validations = read_results(gx_root)
    summary = "".join(
        f"<tr><td>{v.validated_at:%Y-%m-%d %H:%M}</td><td>{html.escape(v.drop_id)}</td><td>{html.escape(v.table)}</td>"
        f'<td class="{"ok" if v.success else "failed"}">{"passed" if v.success else "rows quarantined"}</td>'
        f'<td class="n">{sum(r.failing for r in v.rules)}</td></tr>'
        for v in validations
    )
    body = (
        "<h1>Validation results</h1>"
        '<p class="meta">Every file validated against the contract, newest first. Rows that failed a rule '
        "were quarantined with the rule; the rest loaded. Counts only, never a value from a file.</p>"
        "<table><thead><tr><th>validated (UTC)</th><th>drop</th><th>file</th><th>result</th>"
        "<th>rule failures</th></tr></thead>"
        f"<tbody>{summary or '<tr><td colspan=5>No validation run yet.</td></tr>'}</tbody></table>"
        + _refused_section(refused or [])
        + "".join(_file_section(v) for v in validations)
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Validation results</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )
    path = gx_root / PAGE_NAME
    partial = path.with_name(path.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
    return path
