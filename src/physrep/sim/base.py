"""What every simulator provides, and the config that drives `physrep simulate`.

A simulator module (`shear_flow`, `rayleigh_benard`, `active_matter`) exposes

    options(cfg: SimConfig) -> dict
        cfg.options over the simulator's defaults, or a ConfigError for an unknown or
        inconsistent knob (the runner calls it before any work starts);
    layout(cfg: SimConfig) -> WellLayout
        the stored grid, output times, boundaries and fields;
    simulate(cfg: SimConfig, params: dict[str, float], seeds: list[int]) -> dict[str, np.ndarray]
        one trajectory per seed (initial conditions drawn from the seed), every field as a
        float32 array (len(seeds), cfg.steps, *cfg.resolution, *tensor_axes) at the stored
        resolution; raises SimulationError (naming the parameters and the time) on blow-up.

The runner (`physrep.sim.runner`) turns a parameter grid into one Well file per combination.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from physrep.errors import ConfigError, PhysrepError

System = Literal["shear_flow", "rayleigh_benard", "active_matter"]


class SimulationError(PhysrepError):
    """A trajectory that blew up (NaN, CFL collapse): names its parameters and time."""


@dataclass
class SimConfig:
    system: System = "shear_flow"
    resolution: list[int] = field(default_factory=lambda: [32, 64])  # stored grid (x, y)
    oversample: int = 1  # simulate on resolution * oversample, store its spectral truncation
    steps: int = 50  # output frames, t = 0, dt_out, ..., (steps - 1) * dt_out
    dt_out: float = 0.1
    params: dict[str, list[float]] = field(default_factory=dict)  # one file per combination
    ics_per_file: int = 2  # trajectories per file, split by trajectory in `split`'s shares
    # train/valid/test shares of each file's trajectories (The Well's 0.8/0.1/0.1); valid and
    # test counts are rounded, at least one each once a file holds three trajectories
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    # the same initial conditions in every file (as The Well's shear_flow runs its 40 ICs at
    # every parameter pair): trajectory k of each file shares a seed and a split, so files
    # differ only by their parameters and no test IC is seen in training
    shared_ics: bool = False
    holdout: dict[str, list[float]] = field(
        default_factory=dict
    )  # files with these values -> test_ood
    seed: int = 0
    device: str = "cpu"  # torch solvers: "cpu" or "cuda"
    batch: int = 0  # torch solvers: trajectories integrated together (0: all of a file)
    options: dict[str, Any] = field(default_factory=dict)  # solver knobs (cfl, max_dt, IC family)
    dataset_name: str | None = None  # default: the system's name

    def validate(self) -> None:
        if len(self.resolution) != 2 or min(self.resolution) < 4:
            raise ConfigError(f"key 'resolution' must be two sizes >= 4, got {self.resolution}")
        if self.oversample < 1 or self.steps < 2 or self.dt_out <= 0 or self.ics_per_file < 1:
            raise ConfigError(
                "keys 'oversample' >= 1, 'steps' >= 2, 'dt_out' > 0, 'ics_per_file' >= 1 required"
            )
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1) > 1e-6:
            raise ConfigError(
                f"key 'split' must be three non-negative shares (train, valid, test) summing to 1, got {self.split}"
            )
        for name, values in self.holdout.items():
            if name not in self.params:
                raise ConfigError(
                    f"key 'holdout.{name}' is not a parameter of the grid ({', '.join(self.params)})"
                )
            missing = [v for v in values if v not in self.params[name]]
            if missing:
                raise ConfigError(f"key 'holdout.{name}': {missing[0]} is not in params.{name}")

    @property
    def sim_resolution(self) -> list[int]:
        return [n * self.oversample for n in self.resolution]


def grid_choice(seeds: Sequence[int], grid_size: int) -> np.ndarray:
    """Which member of a fixed grid of initial conditions each trajectory of one file gets.

    A seeded permutation of the whole grid, cut to the file's trajectories: a file of
    `grid_size` trajectories holds every member once, in an order that mixes them across its
    80/10/10 split (The Well's grids are ordered by knob, so a plain order would leave valid and
    test with the last knob values only); a smaller file gets a seeded subset.
    """
    if len(seeds) > grid_size:
        raise ConfigError(
            f"key 'ics_per_file': the grid of initial conditions has {grid_size} members, "
            f"got {len(seeds)} trajectories per file"
        )
    return np.random.default_rng(list(seeds)).permutation(grid_size)[: len(seeds)]
