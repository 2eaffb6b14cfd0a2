"""A section of the report is one module, one partial and one line in pipeline/report/sections.py: a toy section
added that way reads the warehouse, publishes a table whose count goes through the register, is worded after
the audit and appears in the page (and its contents) where its slot says; the disclosure bench's register
(printed.release_register, the report's own start) holds its count too."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from pipeline.report import build, printed, sections
from pipeline.report.figures import png_bytes
from pipeline.report.printed import release_register
from pipeline.report.published_counts import keys
from pipeline.report.reading import read_warehouse
from pipeline.report.register import Register
from pipeline.report.report_figures import Figure
from pipeline.report.suppression import format_count
from tests.report.test_build import populate

PARTIAL = """<section id="toy"><h2>Toy section</h2>{% if toy %}<p>{{ toy.sentence }}</p>{% endif %}
<img src="{{ figures.toy.data_uri }}" alt="{{ figures.toy.title }}"></section>
"""


class ToySection:
    """The patients with a baseline Sunnybrook composite: one count, one sentence."""

    name = "toy"
    slot = "after_trajectories"
    partial = "toy.html.j2"
    anchor = "toy"
    title = "A toy section"
    tables = ("toy",)

    def read(self, con: duckdb.DuckDBPyConnection, data: object) -> object:
        return con.execute(
            "SELECT DISTINCT site_id, patient_id FROM followup_scores "
            "WHERE outcome = 'sunnybrook_composite' AND timepoint = 'baseline' ORDER BY ALL"
        ).df()

    def printed(self, found: pd.DataFrame) -> dict[str, pd.DataFrame]:
        return {"toy": pd.DataFrame({"patients with a baseline": [format_count(len(found))]})}

    def register(self, register: Register, tables: dict[str, pd.DataFrame], found: pd.DataFrame) -> None:
        text = tables["toy"]["patients with a baseline"].iloc[0]
        register.printed_count(
            "toy|0", "patients with a baseline", keys(found), text, ("toy", 0, "patients with a baseline")
        )

    def finish(self, register: Register, tables: dict[str, pd.DataFrame], found: pd.DataFrame) -> object:
        return f"{tables['toy']['patients with a baseline'].iloc[0]} patients have a baseline score."

    def figures(self, inputs: object, found: pd.DataFrame) -> list[Figure]:
        figure, axes = plt.subplots(figsize=(2, 1))
        axes.bar(["baseline"], [len(found)])
        png = png_bytes(figure)
        plt.close(figure)
        return [Figure("toy", "Patients with a baseline", "One bar.", png)]

    def context(self, parts: object, found: pd.DataFrame, words: object) -> dict[str, object]:
        return {"toy": {"sentence": words}}


@pytest.fixture()
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "outcomes.duckdb"
    con = duckdb.connect(str(path))
    populate(con)
    con.close()
    return path


def test_a_section_is_one_module_one_partial_and_one_line(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(build.TEMPLATES, templates)
    (templates / "toy.html.j2").write_text(PARTIAL, encoding="utf-8")  # the partial
    monkeypatch.setattr(build, "TEMPLATES", templates)
    monkeypatch.setattr(sections, "SECTIONS", [*sections.SECTIONS, ToySection()])  # the one line
    for module in ("reading", "printed", "context"):  # the names they imported from sections
        target = f"pipeline.report.{module}.{'REPORT_SECTIONS' if module == 'context' else 'SECTIONS'}"
        monkeypatch.setattr(target, sections.SECTIONS)

    html = build.write_report(warehouse, "2026Q4", tmp_path / "published")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        expected = con.execute(
            "SELECT count(DISTINCT (site_id, patient_id)) FROM followup_scores "
            "WHERE outcome = 'sunnybrook_composite' AND timepoint = 'baseline'"
        ).fetchone()[0]
        data = read_warehouse(con)
    finally:
        con.close()
    assert expected >= 11
    page = html.read_text(encoding="utf-8")
    # Its table is published, its sentence worded after the audit, its partial in its slot and in the contents.
    published = pd.read_csv(html.parent / "toy.csv", dtype=str)
    assert published["patients with a baseline"].iloc[0] == format_count(expected)
    assert f"<p>{format_count(expected)} patients have a baseline score.</p>" in page
    assert '<li><a href="#toy">A toy section</a></li>' in page
    assert (html.parent / "toy.png").read_bytes().startswith(b"\x89PNG") and 'alt="Patients with a baseline"' in page
    assert page.index('id="trajectories"') < page.index('id="toy"') < page.index('id="methods"')
    # The disclosure bench starts where the report does: the section's count is in its register, with its patients.
    tables, _, register = release_register(data, "2026Q4")
    assert "toy" in tables and register.cells["toy|0"].value == expected and register.cells["toy|0"].table == "toy"
    assert printed.give_up_order()[0] == "toy"  # a section's table not placed in the order: a detail, given up first


def test_every_section_declares_its_partial_slot_and_tables() -> None:
    for section in sections.SECTIONS:
        assert section.slot in sections.SLOTS, section.name
        assert (build.TEMPLATES / section.partial).exists(), section.partial
        assert set(section.tables) <= set(printed.give_up_order()), section.name
