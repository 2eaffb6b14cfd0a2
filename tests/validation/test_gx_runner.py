"""GX runs and the Data Docs site kept beside them."""

from pathlib import Path

import pandas as pd

from pipeline.validation.gx_runner import build_data_docs, validate_frame
from tests.validation.helpers import integer_value_suite


def test_data_docs_render_new_results_and_list_all(tmp_path: Path) -> None:
    """Each build renders only the results stored since the last one; the index lists every result."""
    frame = pd.DataFrame({"value": pd.Series(["1", "x"], dtype="str")})
    suite = integer_value_suite("docs_check")
    validate_frame("docs_check", frame, suite, {}, tmp_path, "drop-one")
    index = build_data_docs(tmp_path)
    pages = {p: p.stat().st_mtime_ns for p in (tmp_path / "data_docs" / "validations").rglob("*.html")}
    assert len(pages) == 1
    validate_frame("docs_check", frame, suite, {}, tmp_path, "drop-two")
    build_data_docs(tmp_path)
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "data_docs" / "validations").rglob("*.html")}
    assert len(after) == 2
    assert all(after[page] == mtime for page, mtime in pages.items())  # the first page was not rendered again
    text = index.read_text(encoding="utf-8")
    assert "drop-one" in text and "drop-two" in text
