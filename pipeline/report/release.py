"""Release a quarter's report: render a warehouse file as of the quarter's end, and put it in place.

``release_quarter(home, quarter, warehouse, as_of)`` renders a warehouse built as of the quarter's end with
its model run (``pipeline/as_of.py`` makes it) into ``published/YYYY-Qn/`` (report.html, report.pdf, PNG
figures, CSV tables, manifest.json), audited against every earlier release, and rewrites
``published/index.html``. ``provisional``: a quarter not yet ended, on the data loaded so far, into
``published/provisional/YYYY-Qn/``, outside the index. It reads nothing but that file, the earlier
releases' registers and the published index (``index.json``: the earlier quarters' primary estimates, for the
trend across releases): no store, no build, no fitting.
"""

from __future__ import annotations

import html as html_escape
import json
import os
import platform
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import duckdb

from pipeline import __version__
from pipeline.checksums import sha256_of
from pipeline.progress import step
from pipeline.quarters import quarter_folder, release_name
from pipeline.report.build import write_report
from pipeline.report.kept_registers import bundle_registers, earlier_kept, earlier_registers, keep_register, kept
from pipeline.report.pdf import chromium_version, html_to_pdf
from pipeline.report.trend import write_index_json
from pipeline.settings import DataHome, ModelSettings, ReportSettings
from pipeline.versions import package_versions

PACKAGES = ("duckdb", "pandas", "numpy", "scipy", "statsmodels", "matplotlib", "jinja2", "great-expectations")


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "pipeline": __version__}
    versions |= package_versions(PACKAGES)
    versions["chromium"] = chromium_version()
    return versions


def _manifest(folder: Path, quarter: str, as_of: datetime, provisional: bool, facts: dict[str, object]) -> Path:
    files = {p.name: sha256_of(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != "manifest.json"}
    manifest = {
        "quarter": quarter,
        "provisional": provisional,
        "data_as_of": f"{as_of:%Y-%m-%dT%H:%M:%S.%f}",
        **facts,
        "versions": _versions(),
        "files_sha256": files,
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def _replace_folder(built: Path, target: Path) -> None:
    """Put a fully written folder in place of ``target`` (a reader never sees half a report)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old.{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(built, target)
    shutil.rmtree(old, ignore_errors=True)


def write_index(published: Path) -> Path:
    """``published/index.html``: every published quarter, newest first (provisional reports are not listed)."""
    rows = []
    for folder in sorted(published.glob("[0-9][0-9][0-9][0-9]-Q[1-4]"), reverse=True):
        manifest_path = folder / "manifest.json"
        if not (folder / "report.html").exists() or not manifest_path.exists():
            continue
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        name = html_escape.escape(folder.name)
        rows.append(
            f'<li><a href="{name}/report.html">{name.replace("-", " ")}</a> '
            f'(<a href="{name}/report.pdf">PDF</a>, <a href="{name}/manifest.json">manifest</a>): data as loaded by '
            f"{html_escape.escape(str(manifest.get('data_as_of', ''))[:10])}, model run "
            f"{html_escape.escape(str(manifest.get('model_run_id') or 'none'))}</li>"
        )
    body = "\n".join(rows) or "<li>No quarter published yet.</li>"
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Synkinesis outcomes: published quarterly reports</title>
<style>
  body {{ margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1a1a1a; }}
  main {{ max-width: 44rem; margin: 0 auto; padding: 1rem; }}
  li {{ margin: 0.4rem 0; }}
  a {{ color: #0072B2; }}
</style>
</head>
<body>
<main>
<h1>Facial synkinesis outcomes: quarterly reports</h1>
<p>Each report uses the data as loaded by the end of its quarter, so it does not change when later data arrive.</p>
<ul>
{body}
</ul>
</main>
</body>
</html>
"""
    path = published / "index.html"
    path.write_text(page, encoding="utf-8")
    write_index_json(published)  # the same releases, machine-readable, with each one's primary estimate
    return path


def _facts(warehouse: Path) -> dict[str, object]:
    """What the manifest says the release rests on, read from the warehouse file itself."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        snapshot, design, code = con.execute(
            "SELECT data_snapshot, design_settings, code_version FROM build_info"
        ).fetchone()
        run = con.execute(
            "SELECT run_id, settings, packages FROM model_runs ORDER BY started_at DESC, run_id LIMIT 1"
        ).fetchone()
    return {
        "data_snapshot": snapshot,
        "model_run_id": run[0] if run else None,
        "design_settings": json.loads(design) if isinstance(design, str) else design,
        "model_settings": json.loads(run[1]) if run else {},
        "model_packages": json.loads(run[2]) if run and run[2] else {},
        "code_version": code,
    }


def release_folder(home: DataHome, quarter: str, provisional: bool) -> Path:
    name = quarter_folder(quarter)
    return home.published / "provisional" / name if provisional else home.published / name


def unchanged_release(
    home: DataHome,
    quarter: str,
    provisional: bool,
    snapshot: str,
    settings: ModelSettings,
    as_of: datetime,
    last_received: datetime | None,
    build_fingerprint: str,
) -> Path | None:
    """The quarter's release already written from these very inputs, whose report.html writing it again
    would only replace with the same one; None where anything it rests on differs: the data loaded by
    ``as_of`` (``snapshot``), anything received since it was written (a refused drop is in the report's
    ledger), the code, SQL and design (``build_fingerprint``, pipeline/build_state.py's), the model settings,
    an earlier release's register (the disclosure audit) or the paper size."""
    folder = release_folder(home, quarter, provisional)
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        written_as_of = datetime.fromisoformat(str(manifest["data_as_of"]))
        written = manifest_path.stat().st_mtime
    except (OSError, ValueError, KeyError):
        return None
    same_inputs = (
        manifest.get("data_snapshot") == snapshot
        and manifest.get("build_fingerprint") == build_fingerprint
        and manifest.get("model_settings") == json.loads(json.dumps(settings.as_dict()))
        and (last_received is None or not written_as_of < last_received <= as_of)
    )
    name = release_name(quarter, provisional).replace("/", "-")
    own = [k for k in kept(home) if k.release == name]  # this release's register, kept as it was written
    others = [k.path for k in earlier_kept(home, quarter, provisional) if k.release != name]
    others += bundle_registers(home)
    if not same_inputs or not own or not (folder / "report.pdf").exists():
        return None
    if any(path.exists() and path.stat().st_mtime > written for path in [*others, home.root / "report.json"]):
        return None
    return folder / "report.html" if (folder / "report.html").exists() else None


def release_quarter(
    home: DataHome,
    quarter: str,
    warehouse: Path,
    as_of: datetime,
    provisional: bool = False,
    build_fingerprint: str = "",
) -> Path:
    """Render ``warehouse`` (as of ``as_of``, with its model run) as the quarter's release; return report.html.
    ``build_fingerprint``: the code, SQL and design it was built with, kept in the manifest (unchanged_release)."""
    name = quarter_folder(quarter)
    target = release_folder(home, quarter, provisional)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=target.parent) as scratch:
        scratch_path = Path(scratch)
        folder, private = scratch_path / name, scratch_path / "private"
        private.mkdir()
        earlier = earlier_registers(home, quarter, provisional)
        with step(f"write the {name} report (disclosure audit with {len(earlier)} earlier release(s))"):
            html = write_report(
                warehouse,
                quarter,
                home.published,
                folder=folder,
                as_of=as_of,
                provisional=provisional,
                earlier=earlier,
                register_out=private,
                page_size=ReportSettings.for_home(home).page_size,
            )
            html_to_pdf(html, folder / "report.pdf")
        facts = {
            **_facts(warehouse),
            # The code, SQL and design the warehouse was built with (as pipeline/build_state.py keeps for the
            # published one): a release written again from the same inputs is left as it is (unchanged_release).
            "build_fingerprint": build_fingerprint,
            "disclosure_audit": json.loads((private / "disclosure.json").read_text(encoding="utf-8")),
        }
        _manifest(folder, name.replace("-", ""), as_of, provisional, facts)
        # The register is kept before the release is put in place: a release no later audit reads must not exist.
        keep_register(home, release_name(quarter, provisional), private / "register.json.gz")
        _replace_folder(folder, target)
    if not provisional:
        write_index(home.published)
    return target / "report.html"
