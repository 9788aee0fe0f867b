"""Training-step throughput of every pretraining method at the `small` benchmark's sizes, on CPU.

One step = the method's own `loss(batch)` (the LightningModule's, with the `small` pretraining
preset's model sections), backward, gradient clipping and a fused AdamW step, at batch 8 of
16 + 16 frames, for the three datasets' window shapes (channels, H x W, periodic axes). Every
method is timed in the same process, on the same random windows, so the ratio to JEPA (the
paper's method) is what to read; absolute windows/s depend on the machine and its load.
Setting `--threads 1` and running one process per core beats 2 threads on a shared machine.

    python benchmarks/method_throughput.py [--threads 2] [--steps 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from physrep.config import load_config, preset_path
from physrep.methods import METHODS, DataShape
from physrep.train import PretrainConfig

BATCH, FRAMES = 8, 16
# (name, channels, (H, W), periodic) of the small benchmark's windows
SHAPES = [
    ("active_matter", 11, (32, 32), (True, True)),
    ("shear_flow", 4, (32, 64), (True, False)),
    ("rayleigh_benard", 4, (64, 32), (False, True)),
]


def build(method: str, channels: int, size: tuple[int, int], periodic: tuple[bool, bool]):
    cfg = load_config(PretrainConfig, preset_path("pretrain", "small"), [f"method={method}"])
    shape = DataShape(channels, FRAMES, size, periodic, n_params=2)
    return METHODS[method].from_config(cfg, shape)


def time_steps(module, batch: dict, steps: int) -> float:
    """Median seconds per training step, after one warm-up step."""
    params = [p for m in module.trainable().values() for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        loss = module.loss(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if i:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, channels, size, periodic in SHAPES:
        gen = torch.Generator().manual_seed(0)
        shape = (BATCH, channels, FRAMES, *size)
        batch = {
            "context": torch.randn(shape, generator=gen),
            "target": torch.randn(shape, generator=gen),
            "params": torch.randn(BATCH, 2, generator=gen),
        }
        base = None
        for method in args.methods.split(","):
            torch.manual_seed(0)
            module = build(method, channels, size, periodic).train()
            seconds = time_steps(module, batch, args.steps)
            base = base or (seconds if method == "jepa" else None)
            n_params = sum(p.numel() for m in module.trainable().values() for p in m.parameters())
            row = {
                "dataset": name,
                "method": method,
                "params_M": round(n_params / 1e6, 3),
                "step_s": round(seconds, 3),
                "windows_per_s": round(BATCH / seconds, 2),
                "vs_jepa": round(base / seconds, 2) if base else None,
            }
            rows.append(row)
            print(
                f"{name:16s} {method:15s} {row['params_M']:7.3f} M  {seconds:6.3f} s/step  "
                f"{row['windows_per_s']:6.2f} windows/s  x{row['vs_jepa'] or float('nan'):.2f}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "batch": BATCH, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
