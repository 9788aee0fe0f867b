"""How many processes a run has: the launcher's layout (torchrun, SLURM) or the config's."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from physrep.train import TrainConfig


def launcher_layout(cfg: TrainConfig) -> tuple[int, int]:
    """(devices per node, nodes): the launcher's under torchrun or SLURM, else the config's."""
    env = os.environ
    if "LOCAL_WORLD_SIZE" in env and "WORLD_SIZE" in env:  # torchrun
        local = int(env["LOCAL_WORLD_SIZE"])
        return local, int(env["WORLD_SIZE"]) // local
    if "SLURM_NTASKS_PER_NODE" in env and "SLURM_NNODES" in env:
        return int(env["SLURM_NTASKS_PER_NODE"].split("(")[0]), int(env["SLURM_NNODES"])
    return cfg.devices, cfg.num_nodes


def world_size(cfg: TrainConfig) -> int:
    devices, nodes = launcher_layout(cfg)
    return devices * nodes


def launched_processes() -> int:
    """Processes a launcher started for this job: torchrun's or Lightning's re-launch
    (WORLD_SIZE), srun's (SLURM_STEP_NUM_TASKS); 1 when run by hand."""
    env = os.environ
    for key in ("WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        if env.get(key, "").isdigit():
            return int(env[key])
    return 1
