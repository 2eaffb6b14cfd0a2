"""Publish a quarter's report as of the end of that quarter.

``publish_quarter(home, quarter)`` builds the warehouse as loaded by the quarter's end (from the staging
history) into a temporary file, fits the models on it in memory, writes the report from that into
``published/YYYY-Qn/`` (report.html, report.pdf, PNG figures, CSV tables, manifest.json) and rewrites
``published/index.html``. Producing it again later gives the same tables and numbers. ``provisional``:
a quarter not yet ended, on the data loaded so far, into ``published/provisional/YYYY-Qn/``, outside the index.
"""

from __future__ import annotations

import html as html_escape
import json
import os
import platform
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import duckdb

from pipeline import __version__
from pipeline.checksums import sha256_of
from pipeline.errors import NothingToReport, PipelineError
from pipeline.progress import step
from pipeline.quarters import quarter_bounds, quarter_folder, release_name
from pipeline.report.build import write_report
from pipeline.report.pdf import chromium_version, html_to_pdf
from pipeline.report.register import Register
from pipeline.settings import DataHome, DesignSettings, ModelSettings
from pipeline.store.connection import writer_lock
from pipeline.store.ledger import loaded_checksums
from pipeline.versions import package_versions
from pipeline.warehouse import build_warehouse

PACKAGES = ("duckdb", "pandas", "numpy", "scipy", "statsmodels", "matplotlib", "jinja2", "great-expectations")


def _loaded_files(home: DataHome, as_of: datetime) -> int:
    if not home.store_path.exists():
        return 0
    con = duckdb.connect(str(home.store_path), read_only=True)
    try:
        return len(loaded_checksums(con, as_of))
    finally:
        con.close()


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
    return path


def stored_results(
    home: DataHome, snapshot: str, design_json: object, settings: ModelSettings
) -> SimpleNamespace | None:
    """The published warehouse's model run on exactly these data (same snapshot and design), settings and
    code, if there is one: fitting again would give the same numbers (the fit is deterministic), so it is reused."""
    if not home.warehouse_path.exists():
        return None
    wanted = json.loads(json.dumps(settings.as_dict()))
    con = duckdb.connect(str(home.warehouse_path), read_only=True)
    try:
        tables = {n for (n,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if not {"build_info", "model_runs", "model_estimates"} <= tables:
            return None
        built_snapshot, built_design = con.execute("SELECT data_snapshot, design_settings FROM build_info").fetchone()
        if built_snapshot != snapshot or _json(built_design) != _json(design_json):
            return None
        runs = con.execute(
            "SELECT * FROM model_runs WHERE data_snapshot = ? AND code_version = ? ORDER BY started_at DESC, run_id",
            [snapshot, __version__],
        ).df()
        runs = runs[[_json(value) == wanted for value in runs["settings"]]].head(1)
        if runs.empty:
            return None
        run_id = str(runs["run_id"].iloc[0])
        frames = {"model_runs": runs.reset_index(drop=True)}
        for name in ("model_estimates", "covariate_balance", "propensity_diagnostics"):
            frames[name] = (
                con.execute(f"SELECT * FROM {name} WHERE run_id = ?", [run_id]).df() if name in tables else None
            )
        return SimpleNamespace(**frames)
    finally:
        con.close()


def _register_path(home: DataHome, release: str) -> Path:
    """Where a release's register is kept: the data home's staging area, never the published folder."""
    return home.staging / "releases" / f"{release.replace('/', '-')}.register.json.gz"


def earlier_registers(home: DataHome, quarter: str, provisional: bool) -> list[Register]:
    """The registers of the releases a reader may hold beside this one: every release of an earlier quarter,
    final or provisional, and this quarter's provisional release (the latest one written). A final release
    written again is not audited against itself, nor against any later quarter's, so it gives the same numbers."""
    folder = home.staging / "releases"
    this = quarter_folder(quarter)
    found = []
    for path in sorted(folder.glob("*.register.json.gz")) if folder.exists() else []:
        name = path.name.removesuffix(".register.json.gz")
        is_provisional = name.startswith("provisional-")
        period = name.removeprefix("provisional-")
        if period < this or (period == this and is_provisional):
            found.append(Register.load(path))
    return found


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def publish_quarter(
    home: DataHome,
    quarter: str,
    provisional: bool = False,
    now: datetime | None = None,
    settings: ModelSettings | None = None,
    design: DesignSettings | None = None,
    reuse_stored: bool = True,
) -> Path:
    """Write the quarter's report as of its end (see the module); return the report.html path."""
    from pipeline.models.fit import fit_models  # statsmodels loads only when a report is made

    _, end = quarter_bounds(quarter)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    name = quarter_folder(quarter)
    last_day = f"{end - timedelta(days=1):%Y-%m-%d}"
    if end > now and not provisional:
        raise PipelineError(
            f"The {name} report cannot be written yet: the quarter ends on {last_day}; "
            "add --provisional for a report marked PROVISIONAL on the data loaded so far."
        )
    as_of = min(now, end - timedelta(microseconds=1))
    # Under the writer lock: DuckDB lets no one open the store while a load writes it.
    with writer_lock(home, activity=f"checking what was loaded by the end of {name}"):
        loaded = _loaded_files(home, as_of)
    if loaded == 0:
        raise NothingToReport(
            f"No data had been loaded by {'now' if as_of == now else 'the end of ' + name + ' (' + last_day + ')'}: "
            "there is nothing to report on that quarter."
        )
    settings = settings or ModelSettings.for_home(home)  # as `synk run` fits
    target = home.published / "provisional" / name if provisional else home.published / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=target.parent) as scratch:
        scratch_path = Path(scratch)
        warehouse = scratch_path / "as_of.duckdb"
        with writer_lock(home), step(f"build the warehouse as of {as_of:%Y-%m-%d %H:%M}"):
            snapshot = build_warehouse(home, warehouse, design, as_of=as_of)
        con = duckdb.connect(str(warehouse))
        try:
            design_json = con.execute("SELECT design_settings FROM build_info").fetchone()[0]
            results = stored_results(home, snapshot, design_json, settings) if reuse_stored else None
            if results is None:
                with step(f"fit the models for {name}"):
                    results = fit_models(con, settings, data_snapshot=snapshot, code_version=__version__)
        finally:
            con.close()
        folder, private = scratch_path / name, scratch_path / "private"
        private.mkdir()
        earlier = earlier_registers(home, quarter, provisional)
        with step(f"write the {name} report (disclosure audit with {len(earlier)} earlier release(s))"):
            html = write_report(
                warehouse,
                quarter,
                home.published,
                results=results,
                folder=folder,
                as_of=as_of,
                provisional=provisional,
                earlier=earlier,
                register_out=private,
            )
            html_to_pdf(html, folder / "report.pdf")
        runs = results.model_runs
        facts = {
            "data_snapshot": snapshot,
            "model_run_id": str(runs["run_id"].iloc[0]) if len(runs) else None,
            "design_settings": json.loads(design_json) if isinstance(design_json, str) else design_json,
            "model_settings": json.loads(runs["settings"].iloc[0]) if len(runs) else settings.as_dict(),
            "model_packages": json.loads(runs["packages"].iloc[0]) if len(runs) else {},
            "code_version": __version__,
            "disclosure_audit": json.loads((private / "disclosure.json").read_text(encoding="utf-8")),
        }
        _manifest(folder, name.replace("-", ""), as_of, provisional, facts)
        register = _register_path(home, release_name(quarter, provisional))
        register.parent.mkdir(parents=True, exist_ok=True)
        # The register is kept before the release is put in place: a release no later audit reads must not exist.
        shutil.move(private / "register.json.gz", register)
        _replace_folder(folder, target)
    if not provisional:
        write_index(home.published)
    return target / "report.html"
