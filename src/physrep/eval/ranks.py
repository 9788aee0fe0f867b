"""Where a non-training stage runs: which rank of a launched job this process is, and on
which device.

Embedding is the one such stage worth spreading over a launcher's processes (each rank embeds
a shard; rank 0 joins them); probing and reporting then run once, on rank 0. Under torchrun
(or srun with MASTER_ADDR and MASTER_PORT set) `launched_group` joins the job's process group
for the duration of a command, with NCCL on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from physrep.errors import PhysrepError


def ranks() -> tuple[int, int]:
    """(rank, world size) of the process group, or (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def device() -> torch.device:
    """This process's accelerator (its LOCAL_RANK's GPU under a launcher), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


@contextmanager
def launched_group() -> Iterator[tuple[int, int]]:
    """Join the launcher's process group while the block runs; yields (rank, world size)."""
    from physrep.launch import launched_processes

    world = launched_processes()
    if world <= 1 or dist.is_initialized():
        yield ranks()
        return
    env = os.environ
    env.setdefault("RANK", env.get("SLURM_PROCID", "0"))
    env.setdefault("LOCAL_RANK", env.get("SLURM_LOCALID", "0"))
    env.setdefault("WORLD_SIZE", str(world))
    if "MASTER_ADDR" not in env or "MASTER_PORT" not in env:
        raise PhysrepError(
            f"{world} processes were launched but MASTER_ADDR/MASTER_PORT are not set "
            "(torchrun sets them; under srun, export them)"
        )
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(device())
    dist.init_process_group(backend)
    try:
        yield ranks()
    finally:
        dist.destroy_process_group()
