"""Once there are two or more sites: each site's baseline-adjusted change in the primary outcome at the primary
timepoint (the primary analysis' patients, both groups) against its number of patients, with control limits
around the overall mean. Sites are named by their code only; a site's count goes through the register and the
small-cell rule (with the others hidden as needed, as they add up to the flow's last step), and a site whose
count is not printed is not drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.report.figures import MIN_FONT, png_bytes
from pipeline.report.number_format import signed
from pipeline.report.published_counts import keys
from pipeline.report.register import Register
from pipeline.report.suppression import suppress_counts

TABLE = "site_funnel"
COLUMNS = ["site", "patients", "adjusted mean change"]
LIMITS = ((1.96, "95%"), (3.09, "99.8%"))


def site_rows(changes: pd.DataFrame, outcome: str, higher_is_better: bool) -> pd.DataFrame:
    """One row per patient of the primary analysis: site, improvement (sign-reversed where lower is better) and
    its residual from one line of improvement on baseline over every site (the baseline adjustment)."""
    rows = changes[(changes["outcome"] == outcome) & changes["baseline_value"].notna()].copy()
    if rows.empty:
        return rows.assign(improvement=[], residual=[])
    rows["improvement"] = rows["change"].astype(float) * (1.0 if higher_is_better else -1.0)
    design = np.column_stack([np.ones(len(rows)), rows["baseline_value"].astype(float)])
    coefficients, *_ = np.linalg.lstsq(design, rows["improvement"].to_numpy(), rcond=None)
    rows["residual"] = rows["improvement"].to_numpy() - design @ coefficients
    return rows


def funnel_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per site: its patients (small-cell rule, complementary: the sites add up to a published total) and its
    adjusted mean change (overall mean plus the site's mean residual), printed only where its count is."""
    if rows.empty or rows["site_id"].nunique() < 2:
        return pd.DataFrame(columns=COLUMNS)
    overall = float(rows["improvement"].mean())
    sites = rows.groupby("site_id", sort=True)
    counts = sites.size()
    shown = suppress_counts(counts.tolist())
    adjusted = overall + sites["residual"].mean()
    return pd.DataFrame(
        [
            [str(site), text, signed(adjusted[site]) if text.replace(",", "").isdigit() else ""]
            for site, text in zip(counts.index, shown, strict=True)
        ],
        columns=COLUMNS,
    )


def register_sites(register: Register, table: pd.DataFrame, rows: pd.DataFrame) -> None:
    for i, site in enumerate(table["site"]):
        register.printed_count(
            f"{TABLE}|{site}",
            f"patients of site {site} in the primary analysis",
            keys(rows[rows["site_id"].astype(str) == site]),
            table["patients"].iloc[i],
            (TABLE, i, "patients"),
        )


def funnel_figure(table: pd.DataFrame, rows: pd.DataFrame, outcome_words: str) -> bytes:
    """Each printed site's adjusted mean change against its number of patients, the overall mean and the 95% and
    99.8% limits for a site of each size (the residual SD over the square root of its n)."""
    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    axis = figure.add_subplot()
    overall = float(rows["improvement"].mean())
    sd = float(rows["residual"].std())
    drawn = [
        (str(r.site), int(str(r.patients).replace(",", "")), float(r[COLUMNS.index("adjusted mean change")]))
        for r in table.itertuples(index=False)
        if str(r.patients).replace(",", "").isdigit() and r[COLUMNS.index("adjusted mean change")] != ""
    ]
    biggest = max([n for _, n, _ in drawn] or [len(rows)])
    sizes = np.linspace(2, max(biggest * 1.15, 12), 200)
    axis.axhline(overall, color="#333333", linewidth=1, label="all sites")
    for z, words in LIMITS:
        style = "--" if z < 3 else ":"
        axis.plot(sizes, overall + z * sd / np.sqrt(sizes), color="#999999", linestyle=style, label=f"{words} limits")
        axis.plot(sizes, overall - z * sd / np.sqrt(sizes), color="#999999", linestyle=style)
    for site, n, value in drawn:
        axis.plot([n], [value], marker="o", color="#0072B2", linestyle="none")
        axis.annotate(site, (n, value), textcoords="offset points", xytext=(4, 4), fontsize=MIN_FONT)
    hidden = len(table) - len(drawn)
    if hidden:
        axis.text(0.99, 0.02, f"{hidden} site(s) not shown: too few patients", transform=axis.transAxes,
                  ha="right", fontsize=MIN_FONT)  # fmt: skip
    axis.set_xlim(0, sizes[-1])
    axis.set_xlabel("patients in the primary analysis", fontsize=9)
    axis.set_ylabel("adjusted mean improvement", fontsize=9)
    axis.tick_params(labelsize=MIN_FONT)
    axis.set_title(f"{outcome_words}: each site against its size", fontsize=10, loc="left")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, fontsize=8, frameon=False)
    return png_bytes(figure)
