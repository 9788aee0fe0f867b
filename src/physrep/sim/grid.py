"""Grid helpers shared by the periodic simulators."""

from __future__ import annotations

import torch


def box_coarsen(f: torch.Tensor, k: int) -> torch.Tensor:
    """Average over a box of k fine cells centred on every k-th node of axes 1, 2 (periodic);
    trailing axes (vector and tensor components) are carried along.

    Centred, not a plain block mean, so stored values sit at the stored coordinates i·dx; for
    even k the two end cells of the box get half weight (its width is exactly one coarse cell).
    """
    if k == 1:
        return f
    offsets = range(-(k // 2), k // 2 + 1)
    weights = [0.5 / k if k % 2 == 0 and abs(o) == k // 2 else 1.0 / k for o in offsets]
    for axis in (1, 2):
        f = sum(w * torch.roll(f, -o, dims=axis) for o, w in zip(offsets, weights))
    return f[:, ::k, ::k]
