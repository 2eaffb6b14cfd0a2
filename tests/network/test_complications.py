"""Complication rates pooled exactly: counts summed over sites (a code a site never recorded counts its
patients at risk with no event), the interval Clopper-Pearson's on the sums."""

from __future__ import annotations

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from pipeline.errors import NetworkInputError
from pipeline.network.complications import pooled_rates

SITES = pd.DataFrame(
    [
        ("siteA", "modality", "SN", "incomplete_eye_closure", 35, 5),
        ("siteB", "modality", "SN", "incomplete_eye_closure", 60, 9),
        ("siteC", "modality", "SN", "incomplete_eye_closure", 41, 13),
        ("siteA", "modality", "MY", "oral_incompetence", 22, 6),
        ("siteA", "modality", "SN", "oral_incompetence", 35, 0),
        ("siteC", "modality", "MY", "oral_incompetence", 30, 8),
        ("siteC", "modality", "SN", "oral_incompetence", 41, 2),
    ],
    columns=["site_id", "grouping", "group_code", "code", "patients_at_risk", "patients_with"],
)


def test_counts_are_summed_and_the_interval_is_clopper_pearson_on_the_sums() -> None:
    pooled = pooled_rates(SITES).set_index(["group_code", "code"])
    row = pooled.loc[("SN", "incomplete_eye_closure")]
    assert (row["k_sites"], row["patients_at_risk"], row["patients_with"]) == (3, 136, 27)
    low, high = proportion_confint(27, 136, alpha=0.05, method="beta")
    assert row["rate"] == pytest.approx(27 / 136, rel=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-12)


def test_a_code_a_site_never_recorded_still_counts_its_patients_at_risk() -> None:
    """siteB records no oral incompetence: its 60 SN patients are at risk of it with none having it."""
    pooled = pooled_rates(SITES).set_index(["group_code", "code"])
    row = pooled.loc[("SN", "oral_incompetence")]
    assert (row["k_sites"], row["patients_at_risk"], row["patients_with"]) == (3, 136, 2)
    assert pooled.loc[("MY", "incomplete_eye_closure"), "patients_with"] == 0
    assert pooled.loc[("MY", "incomplete_eye_closure"), "patients_at_risk"] == 52


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.assign(patients_with=f["patients_with"].where(f.index != 1, 70)), "more patients with"),
        (lambda f: pd.concat([f, f.iloc[[0]]]), "twice"),
        (lambda f: f.drop(columns="patients_at_risk"), "patients_at_risk"),
        (lambda f: f.assign(patients_at_risk=f["patients_at_risk"].where(f.index != 4, 36)), "different numbers"),
    ],
)
def test_inconsistent_site_counts_are_refused(change, message: str) -> None:
    with pytest.raises(NetworkInputError, match=message):
        pooled_rates(change(SITES))
