"""Shear-flow solver speed: IF-RK4 steps/s on 1 thread, batched vs one-by-one, and Dedalus.

Cases: the Dedalus example's IC at 64×128 and 128×256 (Re = 1e4, fixed dt = 1e-3). Batched
throughput is trajectories·steps/s for 8 trajectories in one batch vs 8 runs of batch 1. When
dedalus is importable, the same case runs in Dedalus (RK443, the same step count, its 3/2
dealiasing) and the table gives our speed-up.

    OMP_NUM_THREADS=1 python benchmarks/sim_shear_flow.py [--steps 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time

import numpy as np
import torch

from physrep.sim.shear_flow import RANDOM_DEFAULTS, ShearFlowSolver, random_initial_fields

GRIDS = [(64, 128), (128, 256)]
NU, DT, BATCH = 1e-4, 1e-3, 8


def ours(nx: int, ny: int, batch: int, steps: int) -> float:
    """Steps/s of one batch of `batch` trajectories (after a few warm-up steps)."""
    solver = ShearFlowSolver(nx, ny, NU, NU)
    u, v, s = (
        np.stack(f)
        for f in zip(*(random_initial_fields(k, nx, ny, RANDOM_DEFAULTS) for k in range(batch)))
    )
    flow = solver.from_velocity(torch.from_numpy(np.stack((u, v), 1)), torch.from_numpy(s))
    for _ in range(3):
        flow = solver.step(flow, DT)
    start = time.perf_counter()
    for _ in range(steps):
        flow = solver.step(flow, DT)
    return steps / (time.perf_counter() - start)


def dedalus(nx: int, ny: int, steps: int) -> float:
    """Steps/s of the Dedalus example (RK443) on the same grid and IC, after warm-up."""
    from physrep.sim.shear_flow_dedalus import dedalus_shear_flow

    u0, v0, s0 = random_initial_fields(0, nx, ny, RANDOM_DEFAULTS)
    solver, _, _ = dedalus_shear_flow(nx, ny, NU, NU, np.stack((u0, v0)), s0)
    for _ in range(3):
        solver.step(DT)
    start = time.perf_counter()
    for _ in range(steps):
        solver.step(DT)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--json", help="also save the table here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    have_dedalus = importlib.util.find_spec("dedalus") is not None
    rows = []
    for nx, ny in GRIDS:
        single = ours(nx, ny, 1, args.steps)
        batched = BATCH * ours(nx, ny, BATCH, max(args.steps // BATCH, 10))
        row = {
            "grid": f"{nx}x{ny}",
            "steps_per_s": single,
            "ms_per_step": 1e3 / single,
            f"batch{BATCH}_traj_steps_per_s": batched,
            "batch_speedup": batched / single,
        }
        if have_dedalus:
            row["dedalus_steps_per_s"] = dedalus(nx, ny, args.steps)
            row["speedup_vs_dedalus"] = single / row["dedalus_steps_per_s"]
        rows.append(row)
    keys = list(rows[0])
    print("  ".join(f"{k:>24}" for k in keys))
    for row in rows:
        print(
            "  ".join(f"{v:>24.4g}" if isinstance(v, float) else f"{v:>24}" for v in row.values())
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
