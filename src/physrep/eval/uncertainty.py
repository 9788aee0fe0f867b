"""Calibrated intervals for a probe's estimate of each trajectory's parameters.

A probe gives a point estimate; a scientist needs to know how far to trust it. Its errors are
measured on `valid` (held out of the probe's fit) at the trajectory level: each trajectory's
estimate is the mean of its windows' predictions, in normalised units. Intervals are
split-conformal: at level L the half-width of a parameter's interval is the ⌈(n+1)L⌉-th
smallest of the n valid trajectories' absolute errors, so that, for test trajectories drawn
like the valid ones, coverage is at least L whatever the errors' shape (probe errors here are
heavy-tailed: a Gaussian fitted to them over-covers at 50 % while matching 90 %). The
negative log-likelihood and CRPS read the estimate as a Gaussian with the valid root-mean-
square error as its scale (normalised units, lower is better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from physrep.data.targets import ParamTargets

LEVELS = (0.5, 0.9)  # with widths and in the tables
RELIABILITY = tuple(k / 10 for k in range(1, 10))  # coverage at each: the reliability diagram


@dataclass
class TrajectoryErrors:
    """A probe's absolute errors on the valid trajectories, sorted per parameter (n, P)."""

    residuals: np.ndarray

    @classmethod
    def fit(cls, pred: np.ndarray, true: np.ndarray) -> TrajectoryErrors:
        return cls(np.sort(np.abs(np.asarray(pred, np.float64) - true), axis=0))

    @property
    def sigma(self) -> np.ndarray:
        """Root-mean-square error per parameter (never zero): the Gaussian's scale."""
        return np.maximum(np.sqrt((self.residuals**2).mean(0)), 1e-6)

    def half_width(self, level: float) -> np.ndarray:
        """(P,) split-conformal half-width at `level` (the largest error when n is small)."""
        n = len(self.residuals)
        k = min(math.ceil((n + 1) * level), n)
        return self.residuals[k - 1]

    def interval(self, pred: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """The `level` interval around `pred` (N, P), normalised units."""
        half = self.half_width(level)
        return pred - half, pred + half


def interval_metrics(
    pred: np.ndarray, true: np.ndarray, errors: TrajectoryErrors, targets: ParamTargets
) -> dict[str, float]:
    """`coverage_10` ... `coverage_90` (over parameters and trajectories), per parameter
    `width_50_<p>` / `width_90_<p>` (mean interval width in physical units), `nll` and
    `crps`, of trajectory estimates `pred` against `true` (both (N, P), normalised)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    out: dict[str, float] = {}
    for level in RELIABILITY:
        lo, hi = errors.interval(pred, level)
        tag = round(100 * level)
        out[f"coverage_{tag}"] = float(((lo <= true) & (true <= hi)).mean())
        if level in LEVELS:
            width = targets.decode(hi) - targets.decode(lo)
            for i, name in enumerate(targets.names):
                out[f"width_{tag}_{name}"] = float(width[:, i].mean())
    sigma = errors.sigma
    z = (true - pred) / sigma
    out["nll"] = float((0.5 * z**2 + np.log(sigma) + 0.5 * math.log(2 * math.pi)).mean())
    cdf = torch.special.ndtr(torch.from_numpy(z)).numpy()
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    out["crps"] = float((sigma * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))).mean())
    return out
