"""Dataset commands: `inspect`, `stats`, `synthetic` and `simulate`."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from physrep.errors import PhysrepError


def args_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, help="a Well-format folder (with data/ and stats.yaml)")
    p.add_argument("--split", action="append", help="only these splits (repeatable; default all)")
    p.add_argument(
        "--plot", type=Path, metavar="PNG", help="save a few frames of every channel here"
    )
    p.add_argument(
        "--frames", type=int, default=4, help="frames per channel in the plot (default 4)"
    )
    p.add_argument(
        "--no-scan",
        action="store_true",
        help="skip the NaN/inf and repeated-trajectory scan of every value (fast on huge data)",
    )


def run_inspect(args: argparse.Namespace) -> int:
    from physrep.data.describe import describe
    from physrep.data.validate import check_loads_in_the_well, inspect_dataset

    info = inspect_dataset(
        args.dataset, args.split, scan_values=not args.no_scan, require_stats=True
    )
    check_loads_in_the_well(info)
    print(describe(info))
    print("format      ok: physrep's checks pass and the_well loads every split")
    if args.plot:
        from physrep.data.plot import plot_frames

        print(f"plot        {plot_frames(info.first, args.plot, n_frames=args.frames)}")
    return 0


def args_stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, help="a Well-format folder; stats come from data/train")


def run_stats(args: argparse.Namespace) -> int:
    from physrep.data.validate import inspect_dataset
    from physrep.data.wellformat import finalize_dataset

    inspect_dataset(args.dataset, ["train"])
    print(f"wrote {finalize_dataset(args.dataset)}")
    return 0


def args_synthetic(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    p.add_argument("--config", type=Path, help="YAML config (default: the 'default' preset)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. like=active_matter",
    )


def run_synthetic(args: argparse.Namespace) -> int:
    from physrep.config import load_config, preset_path
    from physrep.data.synthetic import SyntheticConfig, write_synthetic
    from physrep.runinfo import write_run_record

    cfg = load_config(
        SyntheticConfig, args.config or preset_path("synthetic", "default"), args.overrides
    )
    if (args.out / "data").exists():
        raise PhysrepError("already holds a dataset; choose another --out or delete it", args.out)
    write_synthetic(args.out, cfg)
    write_run_record(args.out, cfg, seed=cfg.seed, data_dir=args.out)
    print(f"wrote {args.out} ({cfg.like} layout, synthetic fields)")
    return 0


def args_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("system", help="shear_flow, rayleigh_benard or active_matter")
    p.add_argument(
        "--preset",
        default="tiny",
        help="tiny (CI), small (the CPU benchmark) or well (The Well's sizes, GPU)",
    )
    p.add_argument("--config", type=Path, help="a SimConfig YAML instead of a preset")
    p.add_argument("--out", type=Path, required=True, help="dataset folder (resumed if it exists)")
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel runs (default: one per core)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. ics_per_file=5"
    )


def run_simulate(args: argparse.Namespace) -> int:
    from physrep.config import load_config, preset_path
    from physrep.sim.base import SimConfig
    from physrep.sim.runner import SYSTEMS, simulate_dataset

    if args.system not in SYSTEMS:
        raise PhysrepError(f"unknown dataset '{args.system}' (known: {', '.join(SYSTEMS)})")
    path = args.config or preset_path("sim", f"{args.system}_{args.preset}")
    cfg = load_config(SimConfig, path, args.overrides)
    if cfg.system != args.system:
        raise PhysrepError(f"config is for system '{cfg.system}', not '{args.system}'", path)
    start = time.perf_counter()
    root = simulate_dataset(cfg, args.out, workers=args.workers, progress=not args.no_progress)
    print(
        f"wrote {root} in {time.perf_counter() - start:.1f} s (`physrep inspect {root}` to check it)"
    )
    return 0
