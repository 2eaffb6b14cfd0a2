"""Pooling the sites' bundles: the one-stage fit of each model from the sites' sufficient statistics (with
the robust variance once every contributing site has answered the second exchange), the two-stage
meta-analysis of the sites' own estimates, both side by side; the pooled complication and responder counts.

A site sends its statistics over the intercept and the protocol's columns; within the site its fixed-effect
indicator equals the intercept, so the coordinator expands them into the network's design (``expansion``):
x_full = T x_local, X'X_full = T X'X_local T', and the request it sends back carries T'beta and T'(X'X)^-1 T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.errors import NetworkInputError
from pipeline.network import protocol
from pipeline.network.complications import pooled_rates
from pipeline.network.meta_analysis import random_effects
from pipeline.network.sufficient import (
    NetworkDesign,
    PooledFit,
    RobustVariance,
    SiteMeat,
    SiteStatistics,
    platform_cov_type,
    pool,
    pooled_estimate,
    robust_covariance,
)
from pipeline.settings import ModelSettings

NETWORK_COLUMNS = (
    "run_id",
    "method",
    "outcome",
    "timepoint",
    "contrast",
    "stage",
    "estimate",
    "std_error",
    "std_error_model",
    "ci_low",
    "ci_high",
    "p_value",
    "n_treated",
    "n_control",
    "higher_is_better",
    "diagnostics_ok",
    "k_sites",
    "sites",
    "tau2",
    "tau2_ci_low",
    "tau2_ci_high",
    "i2",
    "pi_low",
    "pi_high",
    "stages_differ",
    "note",
)
SITE_ESTIMATE_COLUMNS = (
    "site_id",
    "method",
    "outcome",
    "timepoint",
    "contrast",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "n_treated",
    "n_control",
    "diagnostics_ok",
)


def expansion(local_names: Sequence[str], design: NetworkDesign, site: str) -> np.ndarray:
    """T (p_full x p_local): the site's local columns (const, protocol columns) in the network's design."""
    full = design.names
    t = np.zeros((len(full), len(local_names)))
    for j, name in enumerate(local_names):
        if name == "const":
            t[0, j] = 1.0
            if site != design.sites[0]:
                t[full.index(f"site[{site}]"), j] = 1.0
        else:
            t[full.index(name), j] = 1.0
    return t


@dataclass(frozen=True)
class OneStage:
    key: str
    design: NetworkDesign
    fit: PooledFit
    expansions: dict[str, np.ndarray]
    entries: dict[str, dict[str, object]]  # site -> its bundle's model entry


def one_stage_fits(
    bundles: Sequence[dict[str, object]], not_pooled: list[dict[str, object]] | None = None
) -> list[OneStage]:
    """Each model that one site or more sent, fitted over the sites that sent it (site order). A model whose
    pooled X'X is singular (no patient of one group at any site that sent it) is left out, and its row, with
    the reason, added to ``not_pooled``: one model that cannot be pooled does not stop the others."""
    by_key: dict[str, dict[str, dict[str, object]]] = {}
    for bundle in bundles:
        for entry in bundle["models"]:  # type: ignore[union-attr]
            by_key.setdefault(str(entry["key"]), {})[str(bundle["site"])] = entry
    fits = []
    for key, entries in by_key.items():
        sites = tuple(sorted(entries))
        first = entries[sites[0]]
        columns = tuple(n for n in first["names"] if n != "const")  # type: ignore[union-attr]
        design = NetworkDesign(sites, columns)
        statistics, expansions = [], {}
        for site in sites:
            entry = entries[site]
            t = expansion(list(entry["names"]), design, site)  # type: ignore[arg-type]
            expansions[site] = t
            statistics.append(
                SiteStatistics(
                    site,
                    design.names,
                    int(entry["n"]),  # type: ignore[arg-type]
                    t @ np.asarray(entry["xtx"], dtype=float) @ t.T,
                    t @ np.asarray(entry["xty"], dtype=float),
                    float(entry["yty"]),  # type: ignore[arg-type]
                    bool(entry["weighted"]),
                )
            )
        try:
            fit = pool(statistics)
        except NetworkInputError:
            if not_pooled is not None:
                reason = (
                    f"over the {len(sites)} site(s) that sent it, one of its groups has no patient or a column is "
                    "collinear (the pooled X'X is singular)"
                )
                not_pooled.append(_not_pooled_row(entries, reason))
            continue
        fits.append(OneStage(key, design, fit, expansions, entries))
    return fits


def _not_pooled_row(entries: dict[str, dict[str, object]], reason: str) -> dict[str, object]:
    first = next(iter(entries.values()))
    n_treated = sum(int(e["counts"]["treated"]) for e in entries.values())  # type: ignore[index]
    return {
        "method": _method(str(first["kind"])),
        "outcome": first["outcome"],
        "timepoint": first["timepoint"],
        "contrast": first["contrast"],
        "stage": "one-stage",
        **dict.fromkeys(("estimate", "std_error", "ci_low", "ci_high", "p_value", "std_error_model"), float("nan")),
        "n_treated": n_treated,
        "n_control": sum(int(e["n"]) for e in entries.values()) - n_treated,  # type: ignore[call-overload]
        "diagnostics_ok": False,
        "k_sites": len(entries),
        "sites": ",".join(sorted(entries)),
        "note": f"not pooled: {reason}",
    }


def local_request(stage: OneStage, site: str, cov_type: str) -> dict[str, object]:
    """What the coordinator asks one site for this model: T'beta and T'(X'WX)^-1 T."""
    t = stage.expansions[site]
    return {
        "key": stage.key,
        "names": list(stage.entries[site]["names"]),  # type: ignore[arg-type]
        "cov_type": cov_type,
        "beta": (t.T @ stage.fit.beta).tolist(),
        "bread": (t.T @ stage.fit.bread @ t).tolist(),
    }


def robust_variance(stage: OneStage, answers: dict[str, dict[str, object]]) -> RobustVariance | None:
    """The sandwich over every contributing site's answer for this model; None until all have answered."""
    if set(answers) != set(stage.design.sites):
        return None
    meats = []
    for site, answer in answers.items():
        t = stage.expansions[site]
        meats.append(
            SiteMeat(
                site,
                stage.design.names,
                int(answer["n"]),  # type: ignore[arg-type]
                str(answer["cov_type"]),
                t @ np.asarray(answer["meat"], dtype=float) @ t.T,
                t @ np.asarray(answer["score"], dtype=float),
            )
        )
    return robust_covariance(stage.fit, meats)


def _method(kind: str) -> str:
    return "ancova" if kind == "synergy" else kind


def one_stage_rows(
    stages: Sequence[OneStage], answers: dict[str, dict[str, dict[str, object]]], higher: dict[str, bool]
) -> list[dict[str, object]]:
    rows = []
    for stage in stages:
        first = next(iter(stage.entries.values()))
        column = str(first["estimated"])
        model_based = pooled_estimate(stage.fit, column)
        variance = robust_variance(stage, answers.get(stage.key, {}))
        result = pooled_estimate(stage.fit, column, variance) if variance is not None else model_based
        notes = [
            f"{variance.cov_type} robust SE from the second exchange"
            if variance is not None
            else "model-based SE (the second exchange has not been answered by every site)"
        ]
        n_treated = sum(int(e["counts"]["treated"]) for e in stage.entries.values())  # type: ignore[index]
        k = len(stage.design.sites)
        if k < 3:
            notes.append(f"k={k}: fewer than 3 sites")
        rows.append(
            {
                "method": _method(str(first["kind"])),
                "outcome": first["outcome"],
                "timepoint": first["timepoint"],
                "contrast": first["contrast"],
                "stage": "one-stage",
                **{c: getattr(result, c) for c in ("estimate", "std_error", "ci_low", "ci_high", "p_value")},
                "std_error_model": model_based.std_error,
                "n_treated": n_treated,
                "n_control": stage.fit.n - n_treated,
                "higher_is_better": higher.get(str(first["outcome"]), True),
                "diagnostics_ok": variance is not None,
                "k_sites": k,
                "sites": ",".join(stage.design.sites),
                "note": "; ".join(notes),
            }
        )
    return rows


def site_estimates(bundles: Sequence[dict[str, object]]) -> pd.DataFrame:
    rows = [{"site_id": b["site"], **e} for b in bundles for e in b["estimates"]]  # type: ignore[union-attr]
    return pd.DataFrame(rows).reindex(columns=list(SITE_ESTIMATE_COLUMNS))


def two_stage_rows(sites: pd.DataFrame) -> list[dict[str, object]]:
    rows = []
    if sites.empty:
        return rows
    for (method, contrast, outcome, timepoint), group in sites.groupby(
        ["method", "contrast", "outcome", "timepoint"], sort=True
    ):
        group = group.sort_values("site_id")
        result = random_effects(group["estimate"], group["std_error"] ** 2, list(group["site_id"]))
        columns = result.columns()
        notes = [n for n in [columns.pop("note")] if n]
        rows.append(
            {
                "method": method,
                "outcome": outcome,
                "timepoint": timepoint,
                "contrast": contrast,
                **columns,
                "std_error_model": float("nan"),
                "n_treated": int(group["n_treated"].sum()),
                "n_control": int(group["n_control"].sum()),
                "higher_is_better": True,
                "diagnostics_ok": bool(group["diagnostics_ok"].all()) and result.k >= 3,
                "sites": ",".join(group["site_id"]),
                "note": "; ".join(notes) or None,
            }
        )
    return rows


def side_by_side(rows: list[dict[str, object]], higher: dict[str, bool]) -> pd.DataFrame:
    """Both stages' rows; ``stages_differ`` where they differ by more than a quarter of the larger SE."""
    frame = pd.DataFrame(rows).reindex(columns=list(NETWORK_COLUMNS))
    frame["higher_is_better"] = frame["outcome"].map(higher).fillna(True).astype(bool)
    frame["stages_differ"] = False
    keys = ["method", "contrast", "outcome", "timepoint"]
    for _, group in frame.groupby(keys):
        if set(group["stage"]) != {"one-stage", "two-stage"}:
            continue
        one = group[group["stage"] == "one-stage"].iloc[0]
        two = group[group["stage"] == "two-stage"].iloc[0]
        differ = abs(one["estimate"] - two["estimate"]) > protocol.STAGES_DIFFER_SE * max(
            one["std_error"], two["std_error"]
        )
        frame.loc[group.index, "stages_differ"] = bool(differ)
    return frame


def cov_type_for(k_sites: int) -> str:
    return platform_cov_type(k_sites, ModelSettings())


def pooled_complications(bundles: Sequence[dict[str, object]]) -> pd.DataFrame:
    """Exact pooled rates per group and code: a site's group counts for a code unless it withheld that code."""
    present, withheld = [], set()
    for bundle in bundles:
        for row in bundle["complications"]:  # type: ignore[union-attr]
            if "withheld_codes" in row:
                withheld |= {(bundle["site"], row["grouping"], row["group_code"], c) for c in row["withheld_codes"]}
                present.append(
                    {
                        "site_id": bundle["site"],
                        **{k: row[k] for k in ("grouping", "group_code")},
                        "patients_at_risk": row["patients_at_risk"],
                    }
                )
            else:
                present.append({"site_id": bundle["site"], **row})
    if not present:
        return pd.DataFrame()
    frame = pd.DataFrame(present)
    groups = frame[["site_id", "grouping", "group_code", "patients_at_risk"]].drop_duplicates()
    codes = sorted(frame["code"].dropna().unique()) if "code" in frame else []
    pooled = []
    for code in codes:
        rows = groups.assign(code=code).merge(
            frame.loc[frame["code"] == code, ["site_id", "grouping", "group_code", "patients_with"]],
            on=["site_id", "grouping", "group_code"],
            how="left",
        )
        rows["patients_with"] = rows["patients_with"].fillna(0).astype("int64")
        keep = [
            (s, g, c, code) not in withheld
            for s, g, c in zip(rows["site_id"], rows["grouping"], rows["group_code"], strict=True)
        ]
        pooled.append(pooled_rates(rows.loc[keep]))
    return pd.concat(pooled, ignore_index=True) if pooled else pd.DataFrame()


def pooled_responders(bundles: Sequence[dict[str, object]]) -> pd.DataFrame:
    rows = [{"site_id": b["site"], **r} for b in bundles for r in b["responders"]]  # type: ignore[union-attr]
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    counts = ["n_treated", "responders_treated", "n_control", "responders_control"]
    pooled = (
        frame.groupby(["contrast", "outcome", "timepoint", "threshold"], sort=True)
        .agg(k_sites=("site_id", "nunique"), **{c: (c, "sum") for c in counts})
        .reset_index()
    )
    return pooled
