"""Metrics of a parameter estimate: the paper's MSE on normalised targets, per parameter and
averaged, R², absolute errors in physical units — per window and per trajectory.

Per trajectory, the predictions of a trajectory's windows are averaged first (in normalised
units): one estimate per simulation, which is how a scientist would use the probe.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from physrep.data.targets import ParamTargets


def per_trajectory(values: np.ndarray, trajectory: np.ndarray) -> np.ndarray:
    """Mean of `values` (N, P) over the windows of each trajectory, in sorted trajectory order."""
    ids, inverse = np.unique(trajectory, return_inverse=True)
    sums = np.zeros((len(ids), values.shape[1]))
    np.add.at(sums, inverse, values)
    return sums / np.bincount(inverse)[:, None]


def regression_metrics(
    pred: np.ndarray,
    true: np.ndarray,
    names: Sequence[str],
    prefix: str = "",
    targets: ParamTargets | None = None,
) -> dict[str, float]:
    """`mse` (mean over parameters), `mse_<p>`, `r2_<p>` and, with `targets`, `mae_<p>` in
    physical units; every key prefixed by `prefix`."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    se = (pred - true) ** 2
    out = {f"{prefix}mse": float(se.mean())}
    variance = true.var(axis=0)
    for i, name in enumerate(names):
        out[f"{prefix}mse_{name}"] = float(se[:, i].mean())
        if variance[i] > 0:
            out[f"{prefix}r2_{name}"] = float(1.0 - se[:, i].mean() / variance[i])
    if targets is not None:
        error = np.abs(targets.decode(pred) - targets.decode(true))
        for i, name in enumerate(names):
            out[f"{prefix}mae_{name}"] = float(error[:, i].mean())
    return out


def estimate_metrics(
    pred: np.ndarray,
    true: np.ndarray,
    trajectory: np.ndarray,
    targets: ParamTargets,
) -> dict[str, float]:
    """Window-level metrics (`mse`, …) and trajectory-level ones (`traj_mse`, …)."""
    names = targets.names
    out = regression_metrics(pred, true, names, targets=targets)
    out.update(
        regression_metrics(
            per_trajectory(pred, trajectory),
            per_trajectory(true, trajectory),
            names,
            prefix="traj_",
            targets=targets,
        )
    )
    return out
