"""Comparative models of combined versus single-modality treatment on the published warehouse.

``fit_models(con, settings)`` reads ``modality_combinations``, ``patients`` and ``followup_scores``
and returns rows for ``model_runs``, ``model_estimates`` and ``covariate_balance``.
"""

from pipeline.models.fit import ModelResults, fit_models

__all__ = ["ModelResults", "fit_models"]
