"""A linear mixed model with a random intercept per patient, fitted by REML in a few vectorised
passes over per-patient sums.

statsmodels' ``MixedLM`` fits the same model but loops over patients in Python on every
likelihood evaluation: 9.5 s per model on 3,000 patients (7,500 rows) here, some 30 minutes per
run for a registry of 10,000. With a random intercept alone the covariance of a patient's rows is
``sigma2 (I + gamma J)``, whose inverse and determinant are closed-form, so the REML likelihood
profiled over ``sigma2`` is a function of ``gamma`` alone, maximised by a bounded scalar search.
The tests check the estimates and standard errors against ``MixedLM``. Fixed-effect standard
errors are ``sigma2 (X' V^-1 X)^-1``, as ``MixedLM`` reports them; ``robust_bse`` are the
cluster-robust (sandwich, Liang-Zeger) ones on the same fit, which stay right when the covariance
over time is not the compound symmetry a random intercept implies (variance growing with time,
patients differing in slope): ``(X'V^-1X)^-1 [sum_c X_c'V_c^-1 r_c r_c'V_c^-1 X_c] (X'V^-1X)^-1``
times ``G / (G - 1)`` for ``G`` clusters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

LOG_GAMMA_BOUNDS = (-20.0, 12.0)  # variance ratio tau2 / sigma2 from about 2e-9 to 1.6e5


@dataclass
class RandomInterceptFit:
    fe_params: np.ndarray
    bse_fe: np.ndarray
    sigma2: float
    tau2: float
    boundary: bool = False  # tau2 estimated at zero: a singular fit
    problems: list[str] = field(default_factory=list)
    robust_bse: np.ndarray | None = None  # sandwich SEs, clustered as ``fit_random_intercept`` was asked

    @property
    def converged(self) -> bool:
        return not self.problems


def fit_random_intercept(
    y: np.ndarray, x: np.ndarray, groups: np.ndarray, clusters: np.ndarray | None = None
) -> RandomInterceptFit:
    """REML fit; ``clusters`` (one code per row, each patient within one cluster): the sandwich's
    clusters, the patients themselves by default."""
    order = np.argsort(groups, kind="stable")
    y, x, groups = y[order], x[order], groups[order]
    clusters = groups if clusters is None else np.asarray(clusters)[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes = np.diff(np.r_[starts, len(groups)]).astype(float)
    sum_x = np.add.reduceat(x, starts, axis=0)
    sum_y = np.add.reduceat(y, starts)
    xtx, xty, yty = x.T @ x, x.T @ y, float(y @ y)
    n, p = x.shape

    def solve(gamma: float) -> tuple[np.ndarray, np.ndarray, float]:
        shrink = gamma / (1 + sizes * gamma)  # V^-1 = (I - shrink J) / sigma2 within a patient
        a = xtx - (sum_x * shrink[:, None]).T @ sum_x
        b = xty - sum_x.T @ (shrink * sum_y)
        beta = np.linalg.solve(a, b)
        residual_sums = sum_y - sum_x @ beta
        q = yty - 2 * beta @ xty + beta @ xtx @ beta - float((shrink * residual_sums**2).sum())
        return beta, a, q

    def objective(gamma: float) -> float:
        """-2 x the REML log-likelihood profiled over sigma2, up to a constant."""
        _, a, q = solve(gamma)
        return (n - p) * np.log(q / (n - p)) + float(np.log1p(sizes * gamma).sum()) + np.linalg.slogdet(a)[1]

    problems = []
    if sizes.max() < 2:
        problems.append("random intercept not identifiable: no patient has more than one follow-up value")
    # xatol 1e-9 rather than scipy's 1e-5: the optimum to lme4's precision (a few evaluations more, each
    # closed-form), so the estimates and SEs agree with lmer's to 1e-6 rather than 1e-4 (tests/crosscheck/).
    search = optimize.minimize_scalar(
        lambda v: objective(np.exp(v)), bounds=LOG_GAMMA_BOUNDS, method="bounded", options={"xatol": 1e-9}
    )
    gamma = float(np.exp(search.x))
    boundary = objective(0.0) <= objective(gamma) + 1e-9
    if boundary:
        gamma = 0.0
    elif search.x > LOG_GAMMA_BOUNDS[1] - 0.5:
        problems.append("the patient variance diverged (residual variance near zero)")
    if not search.success:
        problems.append("the REML search did not converge")
    beta, a, q = solve(gamma)
    sigma2 = q / (n - p)
    inverse = np.linalg.inv(a)
    covariance = sigma2 * inverse
    # Sandwich: each patient's score X_i'V_i^-1 r_i (sigma2 cancels between bread and meat), summed by cluster.
    residuals = y - x @ beta
    shrink = gamma / (1 + sizes * gamma)
    scores = (
        np.add.reduceat(x * residuals[:, None], starts, axis=0)
        - sum_x * (shrink * np.add.reduceat(residuals, starts))[:, None]
    )
    cluster_of_patient = pd.factorize(clusters[starts])[0]
    n_clusters = int(cluster_of_patient.max()) + 1
    by_cluster = np.zeros((n_clusters, p))
    np.add.at(by_cluster, cluster_of_patient, scores)
    robust = inverse @ (by_cluster.T @ by_cluster) @ inverse * (n_clusters / max(n_clusters - 1, 1))
    return RandomInterceptFit(
        beta,
        np.sqrt(np.diag(covariance)),
        sigma2,
        gamma * sigma2,
        boundary,
        problems,
        np.sqrt(np.clip(np.diag(robust), 0, None)),
    )
