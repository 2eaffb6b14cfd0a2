"""One-stage exact pooling of a linear model from the sites' sufficient statistics.

The model: ``y = site fixed effect + x'beta + e`` (common slopes), fitted by (weighted) least squares
over every site's patients without the patients leaving their sites. Each site sends, for the design's
columns fixed before any site computes (``NetworkDesign``: the sites, the common columns such as
category levels and spline bases at agreed knots), X'WX, X'Wy, y'Wy and n (W = I unweighted). The
coordinator solves X'WX beta = X'Wy over the sums: the same beta, residual sum of squares
(y'Wy - 2 beta'X'Wy + beta'X'WX beta) and model-based covariance sigma^2 (X'WX)^-1, sigma^2 = RSS / (n - p),
as the model fitted on the stacked patients.

Robust errors take a second exchange: the coordinator sends each site beta and (X'WX)^-1
(``MeatRequest``), the site answers with its part of the meat (``SiteMeat``): sum w_i^2 e_i^2 x_i x_i'
(HC0), divided by (1 - h_i) (HC2) or (1 - h_i)^2 (HC3) with the leverage h_i = w_i x_i'(X'WX)^-1 x_i,
and the site's score sum_i w_i e_i x_i (for errors clustered by site). The coordinator adds them and
scales as statsmodels does: HC1 by n / (n - p); cluster by G / (G - 1) (n - 1) / (n - p) with t on G - 1
df. The platform's ANCOVA uses HC3, or errors clustered by site from ``min_sites_for_cluster`` sites on
(``pipeline/models/estimators.py``); ``platform_cov_type`` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.errors import NetworkInputError
from pipeline.intervals import interval
from pipeline.models.estimators import Estimate
from pipeline.settings import ModelSettings

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")
LEVERAGE_POWER = {"HC0": 0, "HC1": 0, "HC2": 1, "HC3": 2}


def site_column(site: str) -> str:
    """The name of a site's fixed-effect indicator."""
    return f"site[{site}]"


@dataclass(frozen=True)
class NetworkDesign:
    """What every site's design holds, fixed before the sites compute: the network's sites (the first the
    reference: an intercept and an indicator for each other site) and the common-slope columns, in order,
    each a column of every site's frame (category levels and spline bases already made, on agreed levels
    and knots)."""

    sites: tuple[str, ...]
    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.sites)) != len(self.sites) or not self.sites:
            raise NetworkInputError("Network design: the sites must be named, each once.")
        if len(set(self.columns)) != len(self.columns):
            raise NetworkInputError("Network design: a column is named twice.")

    @property
    def names(self) -> tuple[str, ...]:
        return ("const", *(site_column(s) for s in self.sites[1:]), *self.columns)

    def matrix(self, frame: pd.DataFrame, site: str) -> np.ndarray:
        """The site's rows of the network's design: the intercept, its own indicator, the common columns."""
        if site not in self.sites:
            raise NetworkInputError(f"Network design: site {site} is not one of the network's sites.")
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise NetworkInputError(f"Site {site}: the design frame lacks column(s) {', '.join(missing)}.")
        common = frame[list(self.columns)].to_numpy(dtype=float)
        incomplete = [c for c, bad in zip(self.columns, ~np.isfinite(common).all(axis=0), strict=True) if bad]
        if incomplete:
            raise NetworkInputError(
                f"Site {site}: column(s) {', '.join(incomplete)} hold missing or non-finite values; "
                "a site contributes complete cases only."
            )
        fixed = np.zeros((len(frame), len(self.sites)))
        fixed[:, 0] = 1.0
        if site != self.sites[0]:
            fixed[:, self.sites.index(site)] = 1.0
        return np.hstack([fixed, common])


@dataclass(frozen=True)
class SiteStatistics:
    """What a site sends for one model: X'WX, X'Wy, y'Wy and its number of rows (W = I unweighted)."""

    site: str
    names: tuple[str, ...]
    n: int
    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    weighted: bool


def _outcome(frame: pd.DataFrame, outcome: str, site: str) -> np.ndarray:
    if outcome not in frame.columns:
        raise NetworkInputError(f"Site {site}: the design frame lacks the outcome column {outcome}.")
    y = frame[outcome].to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise NetworkInputError(f"Site {site}: outcome {outcome} holds missing values; complete cases only.")
    return y


def _weights(frame: pd.DataFrame, weight_column: str | None, site: str) -> np.ndarray | None:
    if weight_column is None:
        return None
    if weight_column not in frame.columns:
        raise NetworkInputError(f"Site {site}: the design frame lacks the weight column {weight_column}.")
    w = frame[weight_column].to_numpy(dtype=float)
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise NetworkInputError(f"Site {site}: weight column {weight_column} must be positive and finite.")
    return w


def site_statistics(
    frame: pd.DataFrame, design: NetworkDesign, site: str, outcome: str, weight_column: str | None = None
) -> SiteStatistics:
    """The site's sufficient statistics over its frame (one row per patient, complete cases)."""
    x = design.matrix(frame, site)
    y = _outcome(frame, outcome, site)
    w = _weights(frame, weight_column, site)
    wx = x if w is None else x * w[:, None]
    return SiteStatistics(
        site, design.names, len(frame), wx.T @ x, wx.T @ y, float(y @ (y if w is None else w * y)), w is not None
    )


@dataclass(frozen=True)
class PooledFit:
    """The least-squares fit over every site's statistics."""

    names: tuple[str, ...]
    sites: tuple[str, ...]
    beta: np.ndarray
    bread: np.ndarray  # (X'WX)^-1
    n: int
    rss: float
    weighted: bool

    @property
    def df_resid(self) -> int:
        return self.n - len(self.names)

    @property
    def scale(self) -> float:
        """sigma^2: the residual sum of squares over n - p."""
        return self.rss / self.df_resid

    @property
    def cov_model(self) -> np.ndarray:
        return self.scale * self.bread


def _same_design(parts: Sequence[SiteStatistics | SiteMeat]) -> tuple[str, ...]:
    if not parts:
        raise NetworkInputError("Pooling: no site contributions.")
    names = parts[0].names
    differing = [p.site for p in parts if p.names != names]
    if differing:
        raise NetworkInputError(
            f"Pooling: site(s) {', '.join(differing)} computed over other columns than site {parts[0].site}; "
            "every site must use the network's design."
        )
    sites = [p.site for p in parts]
    twice = sorted({s for s in sites if sites.count(s) > 1})
    if twice:
        raise NetworkInputError(f"Pooling: site(s) {', '.join(twice)} contributed twice.")
    return names


def pool(statistics: Sequence[SiteStatistics]) -> PooledFit:
    """Solve the pooled normal equations; refuse contributions over different columns, a site twice, a mix
    of weighted and unweighted, or a singular X'WX (a column constant or collinear over the network)."""
    names = _same_design(statistics)
    if len({s.weighted for s in statistics}) > 1:
        raise NetworkInputError("Pooling: some sites sent weighted statistics and some unweighted.")
    xtx = sum(s.xtx for s in statistics)
    xty = sum(s.xty for s in statistics)
    yty = float(sum(s.yty for s in statistics))
    n = int(sum(s.n for s in statistics))
    rank = int(np.linalg.matrix_rank(xtx))
    if rank < len(names):
        raise NetworkInputError(
            f"Pooling: the pooled X'X has rank {rank} for {len(names)} columns: a column is constant or collinear "
            "over the network's patients (or a site has no patients); fix the design's columns."
        )
    if n <= len(names):
        raise NetworkInputError(f"Pooling: {len(names)} parameters need more than {len(names)} patients.")
    bread = np.linalg.inv(xtx)
    bread = (bread + bread.T) / 2
    beta = np.linalg.solve(xtx, xty)
    rss = float(yty - 2 * beta @ xty + beta @ xtx @ beta)
    return PooledFit(names, tuple(s.site for s in statistics), beta, bread, n, max(rss, 0.0), statistics[0].weighted)


@dataclass(frozen=True)
class MeatRequest:
    """What the coordinator sends each site for the robust variance: the pooled coefficients and
    (X'WX)^-1 (the leverages need it)."""

    names: tuple[str, ...]
    beta: np.ndarray
    bread: np.ndarray
    cov_type: str


def meat_request(fit: PooledFit, cov_type: str) -> MeatRequest:
    if cov_type not in COV_TYPES or cov_type == "nonrobust":
        raise NetworkInputError(f"Robust variance: cov_type {cov_type} is not one of {', '.join(COV_TYPES[1:])}.")
    return MeatRequest(fit.names, fit.beta, fit.bread, cov_type)


@dataclass(frozen=True)
class SiteMeat:
    """A site's answer: its part of the meat (HC types) and its score sum (cluster by site)."""

    site: str
    names: tuple[str, ...]
    n: int
    cov_type: str
    meat: np.ndarray
    score: np.ndarray


def site_meat(
    frame: pd.DataFrame,
    design: NetworkDesign,
    site: str,
    outcome: str,
    request: MeatRequest,
    weight_column: str | None = None,
) -> SiteMeat:
    """The site's part of the robust variance, over the same frame as its statistics."""
    if request.names != design.names:
        raise NetworkInputError(f"Site {site}: the request names other columns than the network's design.")
    x = design.matrix(frame, site)
    y = _outcome(frame, outcome, site)
    w = _weights(frame, weight_column, site)
    w = np.ones(len(y)) if w is None else w
    residual = y - x @ request.beta
    score = (w * residual) @ x
    if request.cov_type == "cluster":
        meat = np.outer(score, score)
    else:
        scale = (w * residual) ** 2
        power = LEVERAGE_POWER[request.cov_type]
        if power:
            leverage = w * np.einsum("ij,jk,ik->i", x, request.bread, x)
            scale = scale / (1 - leverage) ** power
        meat = (x * scale[:, None]).T @ x
    return SiteMeat(site, design.names, len(y), request.cov_type, meat, score)


@dataclass(frozen=True)
class RobustVariance:
    cov: np.ndarray
    df: int  # the t reference's degrees of freedom
    cov_type: str


def robust_covariance(fit: PooledFit, meats: Sequence[SiteMeat]) -> RobustVariance:
    """The sandwich (X'WX)^-1 M (X'WX)^-1 over every site's meat, scaled as statsmodels scales it."""
    names = _same_design(meats)
    if names != fit.names:
        raise NetworkInputError("Robust variance: the answers name other columns than the pooled fit.")
    if {m.site for m in meats} != set(fit.sites):
        raise NetworkInputError("Robust variance: every site of the fit must answer, and only they.")
    kinds = {m.cov_type for m in meats}
    if len(kinds) != 1:
        raise NetworkInputError("Robust variance: the sites answered with different variance types.")
    cov_type = kinds.pop()
    cov = fit.bread @ sum(m.meat for m in meats) @ fit.bread
    n, p = fit.n, len(fit.names)
    df = fit.df_resid
    if cov_type == "HC1":
        cov = cov * n / (n - p)
    elif cov_type == "cluster":
        groups = len(meats)
        if groups < 2:
            raise NetworkInputError("Robust variance: errors clustered by site need two sites or more.")
        cov = cov * groups / (groups - 1) * (n - 1) / (n - p)
        df = groups - 1
    return RobustVariance((cov + cov.T) / 2, df, cov_type)


def platform_cov_type(n_sites: int, settings: ModelSettings) -> str:
    """The variance the platform's ANCOVA uses for this many sites (``estimators.robust_fit``)."""
    return "cluster" if n_sites >= settings.min_sites_for_cluster else "HC3"


def pooled_estimate(fit: PooledFit, column: str, variance: RobustVariance | None = None, note: str = "") -> Estimate:
    """One coefficient as the platform's Estimate: robust SE (model-based without ``variance``), t interval
    and p with the variance's degrees of freedom."""
    if column not in fit.names:
        raise NetworkInputError(f"Pooled fit: no column {column}.")
    index = fit.names.index(column)
    cov, df = (fit.cov_model, fit.df_resid) if variance is None else (variance.cov, variance.df)
    estimate = float(fit.beta[index])
    se = float(np.sqrt(cov[index, index]))
    low, high = interval(estimate, se, df)
    p_value = float(2 * stats.t.sf(abs(estimate / se), df)) if se > 0 else float("nan")
    return Estimate(estimate, se, low, high, p_value, True, note or None)
