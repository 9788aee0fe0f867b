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

from physrep.data.wellformat import Field, WellLayout, finalize_dataset, write_split_files
from physrep.errors import ConfigError

Like = Literal["active_matter", "shear_flow", "rayleigh_benard"]

# The real datasets' grids, time steps and parameters (shared/docs/well_format.md §4).
WELL_LAYOUTS: dict[str, dict] = {
    "active_matter": {
        "extent": [(0.0, 10.0), (0.0, 10.0)],
        "resolution": [256, 256],
        "dt": 0.25,
        "steps": 81,
        "boundaries": {"x": "periodic", "y": "periodic"},
        "fields": (Field("concentration", 0), Field("velocity", 1), Field("D", 2), Field("E", 2)),
        "params": {
            "L": [10.0],
            "alpha": [-1.0, -2.0, -3.0, -4.0, -5.0],
            "zeta": [1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0],
        },
    },
    "shear_flow": {
        "extent": [(0.0, 1.0), (-1.0, 1.0)],
        "resolution": [256, 512],
        "dt": 0.1,
        "steps": 200,
        "boundaries": {"x": "periodic", "y": "periodic"},
        "fields": (Field("tracer", 0), Field("pressure", 0), Field("velocity", 1)),
        "params": {
            "Reynolds": [1e4, 5e4, 1e5, 5e5],
            "Schmidt": [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0],
        },
    },
    "rayleigh_benard": {
        "extent": [(0.0, 4.0), (0.0, 1.0)],
        "resolution": [512, 128],
        "dt": 0.25,
        "steps": 200,
        "boundaries": {"x": "periodic", "y": "wall_dirichlet"},
        "fields": (Field("buoyancy", 0), Field("pressure", 0), Field("velocity", 1)),
        "params": {
            "Rayleigh": [1e6, 1e7, 1e8, 1e9, 1e10],
            "Prandtl": [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0],
        },
    },
}


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


def layout_like(
    like: str,
    resolution: list[int] | None = None,
    steps: int | None = None,
    dataset_name: str | None = None,
) -> WellLayout:
    """The Well layout of `like` (grid, boundaries, fields), at any resolution and length.

    rayleigh_benard's wall-normal axis uses Chebyshev–Gauss nodes, as Dedalus stores it.
    """
    spec = WELL_LAYOUTS[like]
    res = resolution or spec["resolution"]
    coords = {}
    for (name, bc), (lo, hi), n in zip(spec["boundaries"].items(), spec["extent"], res):
        if bc == "periodic":
            coords[name] = lo + (hi - lo) * np.arange(n) / n
        else:
            coords[name] = lo + (hi - lo) * 0.5 * (1 - np.cos(np.pi * (np.arange(n) + 0.5) / n))
    n_steps = steps or spec["steps"]
    return WellLayout(
        dataset_name=dataset_name or like,
        coords=coords,
        time=spec["dt"] * np.arange(n_steps),
        boundaries=dict(spec["boundaries"]),
        fields=spec["fields"],
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
        stem = f"{layout.dataset_name}_" + "_".join(f"{k}_{v:g}" for k, v in params.items())
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
