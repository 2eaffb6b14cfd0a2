"""Cells stripped once per distinct value give what stripping every cell gives."""

import numpy as np
import pandas as pd

from pipeline.sources.reader import strip_cells


def test_same_as_stripping_every_cell() -> None:
    rng = np.random.default_rng(3)
    values = ["a", " a", "a ", "\ta", "", " ", "12", " 12 ", "x y", None]
    frame = pd.DataFrame(
        {name: pd.Series(rng.choice(np.array(values, dtype=object), size=300), dtype="str") for name in "abc"}
    )
    frame.index = rng.permutation(600)[:300]
    expected = frame.apply(lambda col: col.str.strip()).replace("", None)
    pd.testing.assert_frame_equal(strip_cells(frame), expected)


def test_an_empty_frame_keeps_its_columns() -> None:
    frame = pd.DataFrame({"a": pd.Series([], dtype="str")})
    result = strip_cells(frame)
    assert list(result.columns) == ["a"] and result.empty and result["a"].dtype == "str"
