"""The primary estimate across releases: every published quarter's answer on the primary outcome (combined vs
single, adjusted, benefit to the right), read from the published index of releases, and this release's own.

Each release publishes its primary estimate as it printed it (``primary_estimate.json``, numbers only, never a
count); ``published/index.json`` (written with ``index.html``) lists every final release with it. A report
reads only the releases of earlier quarters, so writing it again later gives the same plot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from pipeline.report.figures import MIN_FONT, _message, png_bytes
from pipeline.report.number_format import signed
from pipeline.vocabulary import outcome_label

ESTIMATE_FILE = "primary_estimate.json"
INDEX_FILE = "index.json"
COLUMNS = ["release", "outcome", "timepoint", "difference in improvement", "95% CI low", "95% CI high", "verdict"]


def estimate_record(release: str, outcome: str, timepoint: str, better: object, low: object, high: object,
                    verdict: str) -> dict[str, object]:  # fmt: skip
    """The primary estimate of a release as it printed it (None where it printed none)."""

    def number(value: object) -> float | None:
        return round(float(value), 4) if isinstance(value, int | float) and pd.notna(value) else None

    return {
        "release": release,
        "outcome": outcome,
        "timepoint": timepoint,
        "better": number(better),
        "low": number(low),
        "high": number(high),
        "verdict": verdict,
    }


def index_entries(published: Path) -> list[dict[str, object]]:
    """The final releases of ``published/``, oldest first, each with its primary estimate where it has one."""
    entries = []
    for folder in sorted(published.glob("[0-9][0-9][0-9][0-9]-Q[1-4]")):
        if not (folder / "report.html").exists() or not (folder / "manifest.json").exists():
            continue
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        path = folder / ESTIMATE_FILE
        primary = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        entries.append(
            {
                "release": folder.name,
                "data_as_of": str(manifest.get("data_as_of", ""))[:10],
                "model_run_id": manifest.get("model_run_id"),
                "primary_estimate": primary,
            }
        )
    return entries


def write_index_json(published: Path) -> Path:
    path = published / INDEX_FILE
    path.write_text(json.dumps({"releases": index_entries(published)}, indent=2) + "\n", encoding="utf-8")
    return path


def trend_table(published: Path | None, release: str, own: dict[str, object]) -> pd.DataFrame:
    """One row per release up to this one: the earlier quarters from the index (final releases only), then this
    release's own estimate. Rows on another outcome or timepoint than this release's are left out (a changed
    design is not a trend)."""
    rows = []
    index = published / INDEX_FILE if published else None
    if index is not None and index.exists():
        for entry in json.loads(index.read_text(encoding="utf-8")).get("releases", []):
            primary = entry.get("primary_estimate")
            if str(entry.get("release", "")) < release.split("/")[-1] and primary:
                rows.append(primary)
    rows.append(own)
    rows = [r for r in rows if (r.get("outcome"), r.get("timepoint")) == (own["outcome"], own["timepoint"])]
    return pd.DataFrame(
        [
            [
                r["release"],
                outcome_label(str(r["outcome"])),
                r["timepoint"],
                "" if r["better"] is None else signed(r["better"]),
                "" if r["low"] is None else signed(r["low"]),
                "" if r["high"] is None else signed(r["high"]),
                r["verdict"],
            ]
            for r in rows
        ],
        columns=COLUMNS,
    )


def trend_figure(table: pd.DataFrame, threshold: float | None, outcome_words: str) -> bytes:
    """The primary estimate of each release with its 95% CI, oldest left; the yardstick dashed."""
    figure = Figure(figsize=(6.4, 2.8), layout="constrained")
    shown = table[table["difference in improvement"] != ""] if len(table) else table
    if shown.empty:
        _message(figure, "No primary estimate published yet.")
        return png_bytes(figure)
    axis = figure.add_subplot()
    positions = list(range(len(table)))
    for x, row in zip(positions, table.itertuples(index=False), strict=True):
        value = row[COLUMNS.index("difference in improvement")]
        if value == "":
            axis.text(x, 0, "not estimable", fontsize=MIN_FONT, ha="center", va="bottom", color="#777777")
            continue
        low, high = float(row[COLUMNS.index("95% CI low")]), float(row[COLUMNS.index("95% CI high")])
        axis.plot([x, x], [low, high], color="#0072B2", linewidth=2)
        axis.plot([x], [float(value)], marker="D", color="#0072B2", markersize=6, linestyle="none")
    axis.axhline(0, color="#333333", linewidth=0.8)
    if threshold is not None:
        axis.axhline(threshold, color="#009E73", linewidth=1.2, linestyle="--", label="important-change yardstick")
        axis.legend(loc="best", fontsize=8, frameon=False)
    axis.set_xticks(positions, [str(r).replace("-", " ") for r in table["release"]], fontsize=MIN_FONT)
    axis.set_xlim(-0.6, len(table) - 0.4)
    axis.tick_params(axis="y", labelsize=MIN_FONT)
    axis.set_ylabel("difference in improvement", fontsize=9)
    axis.set_title(f"{outcome_words}: combined vs single, adjusted, each release", fontsize=10, loc="left")
    return png_bytes(figure)
