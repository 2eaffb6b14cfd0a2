"""Site-stratified inverse-probability weights: each site fits its own propensity model and weights its own
patients, so that the weighted contributions pool exactly (``sufficient.site_statistics`` with a weight
column). The model and the weights are the platform's (``pipeline/models/propensity.py``): a logistic model
of the first group, stabilized ATE weights P(T)/e and (1 - P(T))/(1 - e) with the site's own P(T), truncated."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.errors import NetworkInputError
from pipeline.models.propensity import _stabilized_weights, propensity_fit

PROPENSITY_CLIP = 1e-6  # as the platform's iptw


def site_iptw_weights(
    frame: pd.DataFrame, predictors: Sequence[str], site: str, treated: str = "treated", truncation: float = np.inf
) -> np.ndarray:
    """The stabilized IPTW weight of each row of one site's frame, from a propensity model fitted on that
    site's rows alone (an intercept and ``predictors``)."""
    missing = [c for c in (treated, *predictors) if c not in frame.columns]
    if missing:
        raise NetworkInputError(f"Site {site}: the frame lacks column(s) {', '.join(missing)} for the propensity.")
    group = frame[treated].to_numpy(dtype=float)
    if not np.isin(group, (0.0, 1.0)).all() or group.min() == group.max():
        raise NetworkInputError(f"Site {site}: column {treated} must be 0 or 1 and hold both groups.")
    design = pd.concat([pd.DataFrame({"const": 1.0}, index=frame.index), frame[list(predictors)]], axis=1)
    fit, _ = propensity_fit(group, design, truncation)
    propensity = np.clip(np.asarray(fit.predict()), PROPENSITY_CLIP, 1 - PROPENSITY_CLIP)  # type: ignore[attr-defined]
    return _stabilized_weights(group, propensity, truncation)
