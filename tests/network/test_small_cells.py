"""What leaves a site: a category level, or a cross-product cell, of 1 to 10 patients is found, and merged
into its named neighbour or left out, and the statistics then sent show no cell of 1 to 10 patients (an
independent check reading X'X itself)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.network.small_cells import (
    DROPPED,
    LEFT_OUT,
    MERGED,
    SmallCell,
    disclosure_safe,
    small_cells,
    too_many_parameters,
)
from pipeline.network.sufficient import NetworkDesign, site_statistics


def site_design(n: int = 200, rare: int = 6, seed: int = 3) -> pd.DataFrame:
    """A site's ANCOVA design: etiology levels bell (most), trauma (some) and a rare tumour level of ``rare``
    patients (reference 'other'), sex, a baseline and the group."""
    rng = np.random.default_rng(seed)
    etiology = np.array(["bell"] * (n - rare - 65) + ["trauma"] * 40 + ["other"] * 25 + ["tumour"] * rare)
    rng.shuffle(etiology)
    frame = pd.DataFrame(
        {
            "const": 1.0,
            "treated": (np.arange(n) % 2).astype(float),
            "baseline_value": rng.uniform(10, 90, n),
            "sex[F]": (rng.random(n) < 0.5).astype(float),
        }
    )
    for level in ("bell", "trauma", "tumour"):
        frame[f"etiology[{level}]"] = (etiology == level).astype(float)
    frame["change"] = rng.normal(0, 5, n)
    return frame


def cells_in_xtx(xtx: np.ndarray, names: tuple[str, ...], indicators: list[str]) -> list[int]:
    """Every count a reader of X'X can work out for the indicators (their 1s and 0s, each pair's four cells)."""
    n = round(float(xtx[0, 0]))
    index = [names.index(c) for c in indicators]
    counts = []
    for a in index:
        ones = round(float(xtx[a, 0]))
        counts += [ones, n - ones]
        for b in index:
            if b > a:
                both = round(float(xtx[a, b]))
                other = round(float(xtx[b, 0]))
                counts += [both, ones - both, other - both, n - ones - other + both]
    return counts


def test_a_rare_level_is_reported_without_its_count() -> None:
    cells = small_cells(site_design())
    assert SmallCell(("etiology[tumour]",), "1s") in cells
    assert all("6" not in cell.sentence() for cell in cells)


def test_a_rare_level_is_merged_into_its_named_neighbour() -> None:
    design = site_design()
    safe = disclosure_safe(design.drop(columns="change"), {"etiology[tumour]": "etiology[trauma]"})
    assert safe.withheld is None
    assert [(a.column, a.action, a.into) for a in safe.actions] == [("etiology[tumour]", MERGED, "etiology[trauma]")]
    assert "etiology[tumour]" not in safe.design and len(safe.design) == len(design)
    assert safe.design["etiology[trauma]"].sum() == 40 + 6
    assert small_cells(safe.design) == []
    assert "merged into etiology[trauma]" in safe.actions[0].sentence()


def test_a_rare_level_without_a_neighbour_is_left_out() -> None:
    design = site_design()
    safe = disclosure_safe(design.drop(columns="change"), {})
    assert [(a.column, a.action) for a in safe.actions] == [("etiology[tumour]", LEFT_OUT)]
    assert len(safe.design) == len(design) - 6 and "etiology[tumour]" not in safe.design
    assert small_cells(safe.design) == []


def test_the_statistics_sent_after_merging_show_no_cell_of_1_to_10() -> None:
    """The site's frame keeps the network's columns (the merged level's column zeroed); an independent
    reading of the X'X it sends finds no count from 1 to 10, where the unmerged X'X shows one."""
    frame = site_design()
    network = NetworkDesign(("siteA", "siteB"), tuple(c for c in frame.columns if c not in ("const", "change")))
    indicators = ["treated", "sex[F]", "etiology[bell]", "etiology[trauma]", "etiology[tumour]"]
    raw = site_statistics(frame, network, "siteA", "change")
    assert any(0 < c < 11 for c in cells_in_xtx(raw.xtx, raw.names, indicators))
    safe = disclosure_safe(frame, {"etiology[tumour]": None}, keep_columns=True)
    assert [(a.column, a.into) for a in safe.actions] == [("etiology[tumour]", None)]
    sent = site_statistics(safe.design, network, "siteA", "change")
    assert not any(0 < c < 11 for c in cells_in_xtx(sent.xtx, sent.names, indicators))


def test_a_small_cross_product_cell_is_found_and_mended() -> None:
    """Few treated patients among the trauma ones: a cell of the pair (treated, trauma), not of either alone."""
    design = site_design(rare=20).drop(columns="change")
    trauma = design.index[design["etiology[trauma]"] == 1]
    design.loc[trauma, "treated"] = 0.0
    design.loc[trauma[:4], "treated"] = 1.0
    assert SmallCell(("treated", "etiology[trauma]"), "both") in small_cells(design)
    safe = disclosure_safe(design, {"etiology[trauma]": "etiology[bell]"})
    assert safe.withheld is None and small_cells(safe.design) == []
    assert safe.actions[0].column == "etiology[trauma]" and safe.actions[0].into == "etiology[bell]"


def test_a_small_treated_group_withholds_the_model_and_small_zeros_drop_the_column() -> None:
    design = site_design().drop(columns="change")
    design["treated"] = 0.0
    design.loc[:7, "treated"] = 1.0
    safe = disclosure_safe(design, {"etiology[tumour]": "etiology[trauma]"})
    assert safe.withheld is not None and "treated" in safe.withheld
    nearly_all = site_design(rare=30).drop(columns="change").assign(**{"sex[F]": 1.0})
    nearly_all.loc[:4, "sex[F]"] = 0.0
    safe = disclosure_safe(nearly_all, {})
    assert [(a.column, a.action) for a in safe.actions] == [("sex[F]", DROPPED)]


@pytest.mark.parametrize(("rows", "parameters", "sent"), [(100, 10, True), (99, 10, False), (40, 5, False)])
def test_parameters_at_most_a_tenth_of_the_rows(rows: int, parameters: int, sent: bool) -> None:
    assert (too_many_parameters(rows, parameters) is None) is sent
