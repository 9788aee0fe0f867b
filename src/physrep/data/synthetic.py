"""Synthetic datasets with the exact layout of The Well's three datasets, and no physics.

They exist so that every stage (format checks, windows, throughput benchmarks, pipeline
smoke runs) can be exercised at any size in seconds. The fields are sums of drifting,
decaying Fourier modes whose decay rate and drift speed depend on the parameters, so a probe
has something to find; physrep's simulators (`physrep simulate`) make the real data.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from physrep.data.well_datasets import WELL_LAYOUTS, file_stem, layout_like
from physrep.data.wellformat import WellLayout, finalize_dataset, write_split_files
from physrep.errors import ConfigError

Like = Literal["active_matter", "shear_flow", "rayleigh_benard"]


@dataclass
class SyntheticConfig:
    like: Like = "shear_flow"
    resolution: list[int] | None = None  # default: the real grid / 8
    steps: int = 48
    trajectories_per_file: int = 10
    params: dict[str, list[float]] = field(default_factory=dict)  # default: 2 values each
    modes: int = 4
    seed: int = 0
    dataset_name: str | None = None  # default: the `like` name

    def validate(self) -> None:
        if self.resolution is not None and (len(self.resolution) != 2 or min(self.resolution) < 4):
            raise ConfigError(f"key 'resolution' must be two sizes >= 4, got {self.resolution}")
        if self.steps < 2 or self.trajectories_per_file < 1:
            raise ConfigError("keys 'steps' >= 2 and 'trajectories_per_file' >= 1 are required")
        unknown = set(self.params) - set(WELL_LAYOUTS[self.like]["params"])
        if unknown:
            raise ConfigError(
                f"key 'params.{sorted(unknown)[0]}' is not a parameter of {self.like}"
            )


def write_synthetic(out: str | Path, cfg: SyntheticConfig) -> Path:
    """Write a complete dataset folder: every parameter combination as one file per split."""
    spec = WELL_LAYOUTS[cfg.like]
    res = cfg.resolution or [n // 8 for n in spec["resolution"]]
    layout = layout_like(cfg.like, res, cfg.steps, cfg.dataset_name)
    grid = {
        k: cfg.params.get(k, v if len(v) == 1 else [v[0], v[-1]]) for k, v in spec["params"].items()
    }
    rng = np.random.default_rng(cfg.seed)
    for combo in itertools.product(*grid.values()):
        params = dict(zip(grid, combo))
        data = synthetic_fields(layout, params, cfg.trajectories_per_file, cfg.modes, rng)
        stem = file_stem(cfg.like, layout.dataset_name, params)
        write_split_files(out, stem, layout, params, data)
    finalize_dataset(out)
    return Path(out)


def synthetic_fields(
    layout: WellLayout, params: dict[str, float], n_traj: int, modes: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Random drifting, decaying modes; decay and drift speed are set by the parameters."""
    varying = list(params.values())[-2:]  # the two governing parameters come last
    scaled = [np.log10(v) if v > 100 else v for v in varying]
    decay = 0.02 * (1.0 + abs(scaled[-1]) / 5.0)
    speed = 0.2 * (1.0 + abs(scaled[0]) / 5.0)
    x, y = layout.coords.values()
    lx = float(x.max() - x.min()) * len(x) / max(len(x) - 1, 1)
    ly = float(y.max() - y.min()) * len(y) / max(len(y) - 1, 1)
    t = np.asarray(layout.time)[:, None, None]
    X, Y = np.meshgrid(x, y, indexing="ij")
    n_dims = len(layout.coords)
    out = {}
    for f in layout.fields:
        comps = n_dims**f.order
        arr = np.zeros((n_traj, len(t), len(x), len(y), comps), dtype=np.float32)
        for b in range(n_traj):
            for c in range(comps):
                acc = np.zeros((len(t), len(x), len(y)))
                for _ in range(modes):
                    kx, ky = rng.integers(1, 4, size=2)
                    phase = rng.uniform(0, 2 * np.pi)
                    amp = rng.normal() / modes
                    arg = 2 * np.pi * (kx * (X - speed * t) / lx + ky * Y / ly) + phase
                    acc += amp * np.exp(-decay * (kx**2 + ky**2) * t) * np.cos(arg)
                arr[b, ..., c] = acc
        out[f.name] = arr.reshape(arr.shape[:4] + (n_dims,) * f.order)
    return out
