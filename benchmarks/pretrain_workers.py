"""Two pretraining runs one after the other (one process, all threads) against side by side
(physrep.eval.parallel: one process each, one thread each), on a user's Well-format dataset
and the `small` pretraining preset cut to a few steps. Prints wall seconds and the ratio.

    python benchmarks/pretrain_workers.py DATASET_DIR [--method jepa] [--steps 40] \
        [key=value ...]   # the benchmark's window settings, e.g. 'data.resize=[32,64]'
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from physrep.config import apply_overrides, from_dict, preset_path, read_yaml, to_dict
from physrep.eval.parallel import PretrainJob, run_jobs
from physrep.train import PretrainConfig, pretrain


def config(method: str, seed: int, steps: int, overrides: list[str]):
    data = {**read_yaml(preset_path("pretrain", "small")), "method": method, "seed": seed}
    cfg = apply_overrides(data, [f"train.max_steps={steps}", "train.loggers=[]", *overrides])
    return from_dict(PretrainConfig, cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--method", default="jepa")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfgs = [config(args.method, seed, args.steps, args.overrides) for seed in (0, 1)]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for seed, cfg in enumerate(cfgs):
            pretrain(cfg, args.data, Path(tmp) / f"one-{seed}", progress=False, quiet=True)
        one_by_one = time.perf_counter() - start
        jobs = [
            PretrainJob((args.method, s), to_dict(c), args.data, Path(tmp) / f"pair-{s}", False)
            for s, c in enumerate(cfgs)
        ]
        start = time.perf_counter()
        for _ in run_jobs(jobs, workers=2):
            pass
        side_by_side = time.perf_counter() - start
    print(
        f"{args.method}, 2 runs x {args.steps} steps: one after the other {one_by_one:.1f} s, "
        f"side by side {side_by_side:.1f} s, ratio {one_by_one / side_by_side:.2f}"
    )


if __name__ == "__main__":
    main()
