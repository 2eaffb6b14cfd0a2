"""Complication rates pooled exactly: the patients at risk and those with each complication summed over the
sites, the rate with its exact (Clopper-Pearson) interval, as ``complication_rates`` gives one clinic's
(sql/marts/13_complication_rates.sql). A site's table lists only the codes recorded there; its patients at
risk in a group still count, with no event, for a code recorded elsewhere."""

from __future__ import annotations

import pandas as pd

from pipeline.errors import NetworkInputError
from pipeline.intervals import clopper_pearson

GROUP_KEYS = ("grouping", "group_code")
RATE_KEYS = (*GROUP_KEYS, "code")
SITE_COLUMNS = ("site_id", *RATE_KEYS, "patients_at_risk", "patients_with")
POOLED_COLUMNS = (*RATE_KEYS, "k_sites", "patients_at_risk", "patients_with", "rate", "ci_low", "ci_high")


def _checked(site_rates: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in SITE_COLUMNS if c not in site_rates.columns]
    if missing:
        raise NetworkInputError(f"Complication counts: column(s) {', '.join(missing)} missing.")
    frame = site_rates[list(SITE_COLUMNS)].copy()
    for column in ("patients_at_risk", "patients_with"):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any() or (values < 0).any() or (values % 1 != 0).any():
            raise NetworkInputError(f"Complication counts: {column} must be whole numbers of 0 or more.")
        frame[column] = values.astype("int64")
    over = frame.loc[frame["patients_with"] > frame["patients_at_risk"], "site_id"].unique()
    if len(over):
        raise NetworkInputError(
            f"Complication counts: site(s) {', '.join(map(str, over))} have more patients with a complication "
            "than at risk."
        )
    twice = frame.duplicated(["site_id", *RATE_KEYS])
    if twice.any():
        raise NetworkInputError(
            f"Complication counts: site(s) {', '.join(map(str, frame.loc[twice, 'site_id'].unique()))} give a "
            "group and code twice."
        )
    at_risk = frame.groupby(["site_id", *GROUP_KEYS])["patients_at_risk"].nunique()
    uneven = at_risk[at_risk > 1].index.get_level_values("site_id").unique()
    if len(uneven):
        raise NetworkInputError(
            f"Complication counts: site(s) {', '.join(map(str, uneven))} give one group different numbers at risk."
        )
    return frame


def pooled_rates(site_rates: pd.DataFrame) -> pd.DataFrame:
    """``site_rates``: one row per site, grouping, group and code (``SITE_COLUMNS``). One row per grouping,
    group and code: the sites counted, the summed patients at risk and with the code, the rate and its
    Clopper-Pearson 95% interval (``pipeline/intervals.py``)."""
    frame = _checked(site_rates)
    groups = frame[["site_id", *GROUP_KEYS, "patients_at_risk"]].drop_duplicates()
    codes = frame[["code"]].drop_duplicates()
    full = groups.merge(codes, how="cross").merge(
        frame[["site_id", *RATE_KEYS, "patients_with"]], on=["site_id", *RATE_KEYS], how="left"
    )
    full["patients_with"] = full["patients_with"].fillna(0).astype("int64")
    pooled = (
        full.groupby(list(RATE_KEYS), sort=True)
        .agg(
            k_sites=("site_id", "nunique"),
            patients_at_risk=("patients_at_risk", "sum"),
            patients_with=("patients_with", "sum"),
        )
        .reset_index()
    )
    pooled["rate"] = pooled["patients_with"] / pooled["patients_at_risk"].where(pooled["patients_at_risk"] > 0)
    bounds = [
        clopper_pearson(int(k), int(n))
        for k, n in zip(pooled["patients_with"], pooled["patients_at_risk"], strict=True)
    ]
    pooled["ci_low"] = [low for low, _ in bounds]
    pooled["ci_high"] = [high for _, high in bounds]
    return pooled[list(POOLED_COLUMNS)]
