"""Metrics of a parameter estimate: the paper's MSE on normalised targets, per parameter and
averaged, R², absolute errors in physical units — per window and per trajectory.

Per trajectory, the predictions of a trajectory's windows are averaged first (in normalised
units): one estimate per simulation, which is how a scientist would use the probe.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from physrep.data.targets import ParamTargets
from physrep.losses import effective_rank


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


def embedding_diagnostics(
    tokens: np.ndarray, params_raw: np.ndarray, trajectory: np.ndarray
) -> dict[str, float]:
    """Where the variance of window embeddings goes: a representation can fail a probe by
    collapsing (low rank) or by spending its variance on what the probe must ignore.

    On the mean-pooled embeddings (N, D): `effective_rank` (`physrep.losses.effective_rank`,
    the number the training monitor logs; before standardising, which would lift dimensions
    of negligible variance to full weight). On them standardised: `param_share` (fraction of
    the variance explained by the parameter value, i.e. between-group over total with one
    group per parameter combination), `trajectory_share` (the same with one group per
    trajectory: the part above `param_share` is initial-condition identity) and
    `top_pc_share` (the first principal component's fraction of the variance).
    """
    pooled = (
        tokens.mean(1, dtype=np.float64) if tokens.ndim == 3 else np.asarray(tokens, np.float64)
    )
    sd = pooled.std(0)
    x = (pooled - pooled.mean(0)) / np.where(sd > 0, sd, 1.0)
    total = float((x**2).sum())
    s2 = np.linalg.svd(x, compute_uv=False) ** 2

    def share(labels: np.ndarray) -> float:
        _, group = np.unique(labels, axis=0, return_inverse=True)
        group = group.reshape(-1)
        sums = np.zeros((group.max() + 1, x.shape[1]))
        np.add.at(sums, group, x)
        counts = np.bincount(group)[:, None]
        return float(((sums / counts) ** 2 * counts).sum() / max(total, 1e-300))

    return {
        "effective_rank": effective_rank(torch.tensor(pooled)).item(),
        "param_share": share(np.asarray(params_raw)),
        "trajectory_share": share(np.asarray(trajectory)),
        "top_pc_share": float(s2[0] / max(s2.sum(), 1e-300)),
    }
