"""The published quarterly report end to end: real drops, the real as-of warehouse build, real model fits,
real Chromium (HTML checked at phone and desktop widths, PDF printed) and the PDF's pages rendered to images.

One data home is shared by the module (see conftest.py): its drops were loaded in 2026Q3.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pypdfium2 as pdfium
import pytest
from PIL import Image

from pipeline.errors import PipelineError
from pipeline.report import figures
from pipeline.report.pdf import run_chromium
from pipeline.report.suppression import SECONDARY, SHOWN, SMALL, safe_summary, suppress_grid
from pipeline.settings import DataHome
from pipeline.stages import ingest, report_quarter
from pipeline.tools.synthetic import generate_drop
from pipeline.warehouse import build_warehouse
from tests.report.helpers import light_settings

Q3_END = datetime(2026, 9, 30, 23, 59, 59, 999999)
SMALL_NUMBER = re.compile(r"^(?:[1-9]|10)$")
LABEL_COLUMNS = {"session", "step", "characteristic", "reason", "rule", "why", "drop", "file", "note"}
SHOTS = Path("/tmp/synk-report-checks")  # kept after the run, to look at


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def snapshot_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in (".csv", ".png", ".html")}


def pdf_pages(pdf: Path) -> list[tuple[str, Image.Image]]:
    document = pdfium.PdfDocument(str(pdf))
    try:
        pages = []
        for page in document:
            text = page.get_textpage().get_text_range()
            pages.append((text, page.render(scale=1.0).to_pil().convert("RGB")))
        return pages
    finally:
        document.close()


class Tables(HTMLParser):
    """Every <table> of a page as (header, rows) of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[list[str], list[list[str]]]] = []
        self._cell: list[str] | None = None
        self._row: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append(([], []))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self.tables:
            header, rows = self.tables[-1]
            if not header:
                header.extend(self._row)
            else:
                rows.append(self._row)

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def small_counts_in(header: list[str], rows: list[list[str]]) -> list[tuple[str, str]]:
    """Cells that read as a count from 1 to 10 (a bare number, or one before ' (' as in '7 (12%)')."""
    found = []
    for row in rows:
        for column, cell in zip(header, row, strict=False):
            if column in LABEL_COLUMNS or column == header[0]:
                continue
            if SMALL_NUMBER.match(cell.split(" (")[0].replace(",", "").strip()):
                found.append((column, cell))
    return found


@pytest.fixture(scope="module")
def q3(multisite_home: DataHome) -> dict[str, object]:
    html = report_quarter(multisite_home, "2026Q3", settings=light_settings(), reuse_stored=False)
    return {
        "html": html,
        "files": snapshot_files(html.parent),
        "manifest": json.loads((html.parent / "manifest.json").read_text(encoding="utf-8")),
    }


def test_quarter_is_published_with_every_file_and_a_manifest(multisite_home: DataHome, q3: dict) -> None:
    folder = multisite_home.published / "2026-Q3"
    assert q3["html"] == folder / "report.html"
    names = {p.name for p in folder.iterdir()}
    assert {
        "report.html",
        "report.pdf",
        "manifest.json",
        "table1.csv",
        "estimates.csv",
        "forest_primary.png",
    } <= names
    assert (folder / "report.pdf").read_bytes().startswith(b"%PDF")
    manifest = q3["manifest"]
    assert manifest["quarter"] == "2026Q3" and manifest["provisional"] is False
    assert manifest["data_as_of"].startswith("2026-09-30T23:59:59")
    assert len(manifest["data_snapshot"]) == 64 and manifest["model_run_id"]
    assert manifest["design_settings"]["exposure_window_days"] == 180
    assert manifest["model_settings"] == json.loads(json.dumps(light_settings().as_dict()))
    assert {"python", "duckdb", "statsmodels", "chromium"} <= set(manifest["versions"])
    assert set(manifest["files_sha256"]) == names - {"manifest.json"}
    for name, digest in manifest["files_sha256"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    index = (multisite_home.published / "index.html").read_text(encoding="utf-8")
    assert 'href="2026-Q3/report.html"' in index and 'href="2026-Q3/report.pdf"' in index
    # The disclosure audit is recorded; the register it read names patients, so it stays in the data home.
    audit = manifest["disclosure_audit"]
    assert audit["passed"] is True and audit["releases_read"] == ["2026-Q3"]
    assert audit["counts_registered"] > 100 and audit["targets_checked"] > 0
    assert list((multisite_home.staging / "releases").glob("2026-Q3.001.*.register.json.gz"))
    assert not [p for p in multisite_home.published.rglob("*") if "register" in p.name]


def test_report_has_every_section_in_order_and_is_self_contained(q3: dict) -> None:
    html = q3["html"].read_text(encoding="utf-8")
    headings = [
        "Does adding a modality help?",
        "Key findings",
        "The comparison on every outcome",
        "Patient flow",
        "Who the patients are",
        "Score trajectories",
        "Methods",
        "Limitations",
        "Appendix",
        "Treatment combinations in use",
        "In what order patients received them",
        "How that changed over time",
        "BoNT dose by session number",
        "The three hallmarks of synkinesis",
        "Comparative estimates",
        "Balance and overlap",
        "Data quality this quarter",
    ]
    positions = [html.index(f">{heading}") for heading in headings]
    assert positions == sorted(positions)
    assert "<script" not in html and 'rel="stylesheet"' not in html and 'src="http' not in html
    assert html.count('src="data:image/png;base64,') == len([n for n in q3["files"] if n.endswith(".png")])
    assert "PROVISIONAL" not in html
    assert "Data as loaded by 2026-09-30 23:59 UTC" in html


def test_numbers_match_the_warehouse_as_of_the_quarter_end(multisite_home: DataHome, q3: dict, tmp_path: Path) -> None:
    folder = q3["html"].parent
    warehouse = tmp_path / "as_of.duckdb"
    build_warehouse(multisite_home, warehouse, as_of=Q3_END)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        received, classifiable = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE classifiable) FROM modality_combinations"
        ).fetchone()
        groups = dict(
            con.execute(
                "SELECT is_combined, count(*) FROM modality_combinations WHERE classifiable GROUP BY ALL"
            ).fetchall()
        )
        mean_12m = con.execute(
            "SELECT avg(f.value) FROM followup_scores AS f JOIN modality_combinations AS m USING (site_id, patient_id) "
            "WHERE m.classifiable AND m.is_combined AND f.outcome = 'sunnybrook_composite' AND f.timepoint = '12m'"
        ).fetchone()[0]
        btx = con.execute(
            "SELECT count(*) FROM modality_combinations WHERE classifiable AND combination = 'BTX'"
        ).fetchone()[0]
    finally:
        con.close()
    flow = read_csv(folder / "patient_flow.csv")
    assert flow[0]["patients"] == f"{received:,}" and flow[2]["patients"] == f"{classifiable:,}"
    table1 = read_csv(folder / "table1.csv")
    assert table1[0] == {
        "characteristic": "Patients",
        "single modality": str(groups[False]),
        "combined": str(groups[True]),
        "SMD before weighting": "",
        "SMD after weighting": "",
    }
    trajectory = [
        r
        for r in read_csv(folder / "trajectories.csv")
        if r["outcome"] == "Sunnybrook composite" and r["group"] == "combined" and r["timepoint"] == "12 months"
    ]
    assert trajectory[0]["mean"] == f"{mean_12m:.1f}"
    combinations = {r["combination"]: r["patients"] for r in read_csv(folder / "combinations.csv")}
    assert combinations["BTX"] == str(btx)
    estimates = read_csv(folder / "estimates.csv")
    primary = next(
        r
        for r in estimates
        if r["method"] == "Adjusted (ANCOVA)"
        and r["timepoint"] == "12 months"
        and r["outcome"].startswith("Sunnybrook composite")
        and r["contrast"] == "Combined vs single modality"
    )
    assert primary["benefit"] and primary["diagnostics"] == "passed"
    html = q3["html"].read_text(encoding="utf-8")
    assert f"improved {abs(float(primary['benefit'])):.1f} points" in html  # the summary says the table's number
    assert {"diagnostics", "E-value", "E-value (CI)", "MDD"} <= set(estimates[0])


def test_html_in_headless_chromium_fits_phone_and_desktop(q3: dict, tmp_path: Path) -> None:
    """Open the report in Chromium at phone and desktop widths: screenshots, and a probe (in a copy of the
    page: the published report has no script) that the page never scrolls sideways; wide tables scroll in
    their own box."""
    SHOTS.mkdir(exist_ok=True)
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { const d = document.documentElement;"
        "const imgs = [...document.images].filter(i => i.naturalWidth === 0).length;"
        "const wide = [...document.querySelectorAll('body *')].filter(e => !e.closest('.scroll')"
        " && e.getBoundingClientRect().right > window.innerWidth + 1).length;"
        "const t = document.querySelector('.answer-table');"
        "const fits = t ? (t.scrollWidth <= t.parentElement.clientWidth + 1 ? 1 : 0) : 1;"
        "const row = t ? t.querySelector('tbody tr:not(.outcome-row)') : null;"
        "const cards = row ? (getComputedStyle(row).display === 'block' ? 1 : 0) : 0;"
        "const found = [d.scrollWidth, window.innerWidth, imgs, wide, fits, cards];"
        "document.body.setAttribute('data-probe', found.join(' '));"
        "});</script>"
    )
    probe.write_text(q3["html"].read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    for width in (390, 1280):
        shot = SHOTS / f"report-{width}.png"
        shot.unlink(missing_ok=True)
        run_chromium(q3["html"], f"--window-size={width},2200", f"--screenshot={shot}")
        image = Image.open(shot)
        assert image.size == (width, 2200)
        assert len(set(image.convert("L").resize((40, 80)).getdata())) > 5  # not blank
        dom = run_chromium(probe, f"--window-size={width},900", "--dump-dom", "--virtual-time-budget=5000").stdout
        probed = re.search(r'data-probe="([^"]+)"', dom).group(1).split()
        scroll_width, inner_width, broken, wide, fits, cards = (int(v) for v in probed)
        assert scroll_width <= inner_width, f"page scrolls sideways at {width}px ({scroll_width} > {inner_width})"
        assert wide == 0, f"{wide} element(s) overflow the screen at {width}px outside a table's own scroll box"
        assert broken == 0  # every embedded figure decodes
        # The answer table fits the page without scrolling sideways; on a phone its rows are cards.
        assert fits == 1, f"the answer table scrolls sideways at {width}px"
        assert cards == (1 if width == 390 else 0), f"answer rows as cards at {width}px: {cards}"


def test_pdf_pages_render_and_hold_only_the_html_numbers(q3: dict) -> None:
    pdf = q3["html"].with_name("report.pdf")
    pages = pdf_pages(pdf)
    assert len(pages) >= 5
    SHOTS.mkdir(exist_ok=True)
    for old in SHOTS.glob("pdf-page-*.png"):
        old.unlink()
    for number, (_, image) in enumerate(pages, start=1):
        image.save(SHOTS / f"pdf-page-{number:02d}.png")
        assert 550 <= image.width <= 620 and 780 <= image.height <= 850  # A4 or Letter at 72 dpi
        assert len(set(image.convert("L").resize((30, 40)).getdata())) > 3, f"page {number} is blank"
    text = " ".join(t for t, _ in pages)
    assert "Facial synkinesis outcomes" in pages[0][0] and "Does adding a modality help?" in pages[0][0]
    # Page numbers on every page; the main body (before the appendix's first section) at most 10 pages, the
    # whole PDF at most 30 (the every-estimate tables stay on screen and in the CSVs, with a guide in print).
    for number, (page_text, _) in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page_text, f"page {number} has no page number"
    appendix = next(i for i, (t, _) in enumerate(pages) if "Treatment combinations in use" in t)
    assert 1 <= appendix <= 10, f"the main body runs to {appendix} pages"
    assert len(pages) <= 30, f"the PDF runs to {len(pages)} pages"
    assert "Every estimate: in the files next to this report" in text
    # No raw model term reaches the page (severity[saq], sunnybrook_composite: labels instead).
    assert not re.search(r"severity\[|missing\[|spline\[|sunnybrook_|eface_|face_total|fdi_", text), re.search(
        r".{40}(severity\[|missing\[|spline\[|sunnybrook_|eface_|face_total|fdi_).{40}", text
    )
    assert "Limitations" in text and "PROVISIONAL" not in text
    html_numbers = set(re.findall(r"\d+(?:[.,]\d+)*", q3["html"].read_text(encoding="utf-8")))
    pdf_numbers = set(re.findall(r"\d+(?:[.,]\d+)*", text))
    assert pdf_numbers - html_numbers <= {str(n) for n in range(1, len(pages) + 1)}  # page numbers at most


def test_data_loaded_after_the_quarter_does_not_change_its_report(multisite_home: DataHome, q3: dict) -> None:
    # A new clinic's drop, loaded now (after 2026Q3 ended), and a second drop of a clinic already in.
    generate_drop(multisite_home.landing / "clinic_c-2026-11", patients=60, seed=3, site="clinic_c")
    # Incremental: another seed's visits and treatments are other records, and a full snapshot retiring
    # most of the site's assessments would be held.
    generate_drop(
        multisite_home.landing / "clinic_a-2026-11", patients=130, seed=4, site="clinic_a", snapshot="incremental"
    )
    summary = ingest(multisite_home)
    statuses = {d["drop_id"]: d["status"] for d in summary["drops"]}
    assert statuses["clinic_c-2026-11"] == statuses["clinic_a-2026-11"] == "loaded", statuses
    again = report_quarter(multisite_home, "2026Q3", settings=light_settings(), reuse_stored=False)
    assert snapshot_files(again.parent) == q3["files"]
    manifest = json.loads(again.with_name("manifest.json").read_text(encoding="utf-8"))
    for key in ("data_snapshot", "model_run_id", "data_as_of", "design_settings", "model_settings"):
        assert manifest[key] == q3["manifest"][key], key


def test_unfinished_or_empty_quarters_are_refused_in_one_sentence(multisite_home: DataHome) -> None:
    with pytest.raises(
        PipelineError, match=r"^The 2026-Q4 report cannot be written yet: the quarter ends on 2026-12-31"
    ):
        report_quarter(multisite_home, "2026Q4", now=datetime(2026, 11, 25, 12))
    with pytest.raises(PipelineError, match=r"^No data had been loaded by the end of 2026-Q2 \(2026-06-30\)"):
        report_quarter(multisite_home, "2026Q2")
    assert not (multisite_home.published / "2026-Q4").exists()


def test_provisional_report_is_marked_on_every_page_and_kept_out_of_the_index(multisite_home: DataHome) -> None:
    html = report_quarter(
        multisite_home, "2026Q4", provisional=True, now=datetime(2026, 11, 25, 12), settings=light_settings()
    )
    assert html == multisite_home.published / "provisional" / "2026-Q4" / "report.html"
    text = html.read_text(encoding="utf-8")
    assert 'class="provisional"' in text and "(PROVISIONAL)" in text
    pages = pdf_pages(html.with_name("report.pdf"))
    assert len(pages) >= 5
    assert "<title>Synkinesis outcomes report, 2026 Q4 (PROVISIONAL)</title>" in text  # the PDF's title
    for number, (page_text, image) in enumerate(pages, start=1):
        assert "PROVISIONAL" in page_text, f"page {number}"
        # In the footer too, beside the page number, not only in the header.
        assert re.search(rf"2026 Q4\W+PROVISIONAL\s*Page {number} of", page_text) or re.search(
            rf"Page {number} of {len(pages)}\s*Synkinesis outcomes report, 2026 Q4\W+PROVISIONAL", page_text
        ), page_text[-200:]
        if number in (1, len(pages)):
            image.save(SHOTS / f"provisional-page-{number:02d}.png")
    index = (multisite_home.published / "index.html").read_text(encoding="utf-8")
    assert "provisional" not in index and "2026-Q4" not in index
    # Two consecutive releases: the provisional Q4 one is audited with 2026-Q3's, and no count printed exactly
    # in both differs by 1 to 10 (the quarter's new patients would be a small count).
    manifest = json.loads(html.with_name("manifest.json").read_text(encoding="utf-8"))
    assert manifest["disclosure_audit"]["releases_read"] == ["2026-Q3", "provisional/2026-Q4"]
    q3_folder = multisite_home.published / "2026-Q3"
    for name in ("patient_flow.csv", "combinations.csv", "treatment_order.csv", "table1.csv", "trajectories.csv"):
        before, after = read_csv(q3_folder / name), read_csv(html.with_name(name))
        count_columns = [c for c in after[0] if c in ("patients", "single modality", "combined")] if after else []
        labels = [c for c in (after[0] if after else {}) if c not in count_columns]
        earlier = {tuple(r[c] for c in labels): r for r in before}
        for row in after:
            old = earlier.get(tuple(row[c] for c in labels))
            for column in count_columns:
                a, b = (str(r[column]).split(" (")[0].replace(",", "") for r in (old or row, row))
                if old and a.isdigit() and b.isdigit():
                    assert not 0 < abs(int(b) - int(a)) < 11, (name, row, column)


def test_a_tiny_clinic_publishes_no_small_or_recoverable_count(tiny_home: DataHome) -> None:
    html = report_quarter(tiny_home, "2026Q3", settings=light_settings(), reuse_stored=False)
    folder = html.parent
    seen_suppressed = False
    for path in sorted(folder.glob("*.csv")):
        rows = read_csv(path)
        if not rows:
            continue
        header = list(rows[0])
        assert not small_counts_in(header, [list(r.values()) for r in rows]), path.name
        seen_suppressed |= any("<11" in v for r in rows for v in r.values())
    assert seen_suppressed
    parser = Tables()
    parser.feed(html.read_text(encoding="utf-8"))
    assert len(parser.tables) >= 10
    for header, rows in parser.tables:
        assert not small_counts_in(header, rows), header
    # Complementary: within each group the combinations add up to the group's size in Table 1, so a group
    # with a hidden cell has at least two (or its size is hidden too).
    sizes = {k: v for k, v in read_csv(folder / "table1.csv")[0].items() if k != "characteristic"}
    # The group sizes add up to the classifiable count of the flow. It is printed exactly or, where the audit
    # keeps the headline (the primary analysis, given up last) instead, as a range of ten: never hidden. Shown
    # exactly, no group size is hidden alone.
    flow = read_csv(folder / "patient_flow.csv")
    assert re.fullmatch(r"[\d,]+|[\d,]+ to [\d,]+", flow[2]["patients"]), flow[2]
    if re.fullmatch(r"[\d,]+", flow[2]["patients"]):
        assert [v in ("<11", "suppressed") for v in sizes.values()].count(True) in (0, 2), sizes
    for group in ("single modality", "combined"):
        cells = [r["patients"] for r in read_csv(folder / "combinations.csv") if r["group"] == group]
        hidden = [c for c in cells if c in ("<11", "suppressed")]
        assert len(hidden) != 1 or sizes[group] == "<11", (group, cells)
    # The flow diagram in the HTML shows the same (suppressed) numbers as its CSV.
    for row in flow:
        assert f'<span class="count">{row["patients"].replace("<", "&lt;")}</span>' in html.read_text(encoding="utf-8")
    # The PDF is printed from the HTML and holds no number the HTML does not.
    pages = pdf_pages(folder / "report.pdf")
    text = " ".join(t for t, _ in pages)
    assert "<11" in text
    html_numbers = set(re.findall(r"\d+(?:[.,]\d+)*", html.read_text(encoding="utf-8")))
    assert set(re.findall(r"\d+(?:[.,]\d+)*", text)) - html_numbers <= {str(n) for n in range(1, len(pages) + 1)}
    # PNGs carry no text chunks (no data hidden in metadata).
    for png in folder.glob("*.png"):
        data = png.read_bytes()
        assert b"tEXt" not in data and b"iTXt" not in data and b"zTXt" not in data, png.name


def test_figures_never_draw_a_point_on_fewer_than_11_patients() -> None:
    rows = []
    for group, n in (("combined", 40), ("single modality", 7)):
        for timepoint, mean in (("baseline", 50.0), ("3m", 55.0), ("6m", 58.0), ("12m", 61.0)):
            rows.append(
                {
                    "outcome": "saq",
                    "group": group,
                    "timepoint": timepoint,
                    "n": n,
                    "mean": mean,
                    "sd": 9.0,
                    "ci_low": mean - 3,
                    "ci_high": mean + 3,
                }
            )
    summary = pd.DataFrame(rows)
    labels = {"saq": ("SAQ", "percent score, 20 to 100", False)}
    months = {"baseline": 0, "3m": 3, "6m": 6, "12m": 12}
    drawn = figures.trajectory_figure(safe_summary(summary), ("saq",), labels, months)
    without_small = figures.trajectory_figure(safe_summary(summary[summary["n"] >= 11]), ("saq",), labels, months)
    assert drawn == without_small
    assert drawn != figures.trajectory_figure(safe_summary(summary.assign(n=40)), ("saq",), labels, months)


def test_suppress_grid_leaves_no_line_with_a_recoverable_cell() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        shape = (int(rng.integers(1, 7)), int(rng.integers(1, 5)))
        grid = rng.choice([0, 1, 3, 8, 12, 15, 40, 90], size=shape)
        status = suppress_grid(grid)
        assert ((status == SMALL) == ((grid > 0) & (grid < 11))).all()
        lines = [status[r, :] for r in range(shape[0])] + [status[:, c] for c in range(shape[1])]
        values = [grid[r, :] for r in range(shape[0])] + [grid[:, c] for c in range(shape[1])]
        for line, value in zip(lines, values, strict=True):
            hidden = line != SHOWN
            if hidden.any():
                # Either two or more hidden adding to 11 or more, or nothing left to hide with (all else is 0).
                enough = hidden.sum() >= 2 and value[hidden].sum() >= 11
                assert enough or not ((line == SHOWN) & (value > 0)).any(), (grid, status)
    assert (suppress_grid([[120], [4], [30], [45]])[:, 0] == [SHOWN, SMALL, SECONDARY, SHOWN]).all()


def test_cli_report_refuses_an_unfinished_quarter_in_one_sentence(multisite_home: DataHome) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "report", "--quarter", "2099Q1", "--home", str(multisite_home.root)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("synk: The 2099-Q1 report cannot be written yet")
