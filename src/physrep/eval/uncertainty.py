"""Calibrated intervals for a probe's estimate of each trajectory's parameters.

A probe gives a point estimate; a scientist needs to know how far to trust it. Each
parameter's estimate for a trajectory (the mean of its windows' predictions, in normalised
units) is read as a Gaussian whose width is fitted on `valid`: the root-mean-square error of
the probe's trajectory estimates there, one scale per parameter. `valid` is held out of
the probe's fit, so that scale is what the probe's error looks like on simulations it has not
seen; the test rows then report whether nominal intervals hold (coverage of the 50 % and 90 %
intervals), how wide they are in physical units, and the Gaussian's negative log-likelihood
and CRPS (both in normalised units, lower is better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from physrep.data.targets import ParamTargets

LEVELS = (0.5, 0.9)


def normal_quantile(p: float) -> float:
    return float(torch.special.ndtri(torch.tensor(p, dtype=torch.float64)))


@dataclass
class GaussianScale:
    sigma: np.ndarray  # (P,) standard deviation of the error, normalised units

    @classmethod
    def fit(cls, pred: np.ndarray, true: np.ndarray) -> GaussianScale:
        """The scale of each parameter's error over the valid trajectories (never zero)."""
        rms = np.sqrt(((np.asarray(pred) - np.asarray(true)) ** 2).mean(0))
        return cls(np.maximum(rms, 1e-6))

    def interval(self, pred: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """The central `level` interval around `pred` (N, P), normalised units."""
        half = normal_quantile(0.5 + level / 2) * self.sigma
        return pred - half, pred + half


def interval_metrics(
    pred: np.ndarray, true: np.ndarray, scale: GaussianScale, targets: ParamTargets
) -> dict[str, float]:
    """`coverage_50`, `coverage_90` (over parameters and trajectories), per parameter
    `width_50_<p>` / `width_90_<p>` (mean interval width in physical units), `nll` and
    `crps`, of trajectory estimates `pred` against `true` (both (N, P), normalised)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    out: dict[str, float] = {}
    for level in LEVELS:
        lo, hi = scale.interval(pred, level)
        tag = round(100 * level)
        out[f"coverage_{tag}"] = float(((lo <= true) & (true <= hi)).mean())
        width = targets.decode(hi) - targets.decode(lo)
        for i, name in enumerate(targets.names):
            out[f"width_{tag}_{name}"] = float(width[:, i].mean())
    z = (true - pred) / scale.sigma
    out["nll"] = float((0.5 * z**2 + np.log(scale.sigma) + 0.5 * math.log(2 * math.pi)).mean())
    cdf = torch.special.ndtr(torch.from_numpy(z)).numpy()
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    out["crps"] = float(
        (scale.sigma * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))).mean()
    )
    return out
