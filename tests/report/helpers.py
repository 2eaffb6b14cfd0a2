"""Shared by the report tests: model settings light enough for a test (fewer imputations)."""

from __future__ import annotations

import dataclasses

from pipeline.settings import ModelSettings

LIGHT = {"mice_imputations": 2, "mice_burn_in": 2, "mixed_random_slope": False, "mixed_maxiter": 50}


def light_settings() -> ModelSettings:
    """The default settings with the slow parts turned down, for whichever fields exist."""
    names = {f.name for f in dataclasses.fields(ModelSettings)}
    return ModelSettings(**{k: v for k, v in LIGHT.items() if k in names})
