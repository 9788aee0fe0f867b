"""Benchmark commands: `benchmark`, `demo`, `report` and `estimate`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from physrep.cli.common import csv_list, read_notes
from physrep.errors import PhysrepError


def args_benchmark(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="small", help="tiny, demo, small or paper (or a YAML)")
    p.add_argument("--well-dir", type=Path, help="use this Well-format folder, do not simulate")
    p.add_argument("--methods", help="only these methods and controls, e.g. jepa,features,mean")
    p.add_argument(
        "--datasets",
        help="only these datasets of the preset, e.g. active_matter; runs into one --out "
        "build one table",
    )
    p.add_argument("--out", type=Path, help="output folder (default: runs/benchmark/<preset>)")
    _args_rerun_and_progress(p)
    p.add_argument(
        "--notes", type=Path, help="a markdown file to include in results.md and the report"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print, per dataset and method, windows per split, optimiser steps, tokens x "
        "width, parameters, the bytes of every checkpoint and embedding cache, and a time "
        "estimate; compute and write nothing",
    )
    p.add_argument(
        "--throughput",
        type=Path,
        metavar="YAML",
        help="with --dry-run: clips/s per method for the time estimate, instead of measuring "
        "them here, e.g. '{jepa: {train: 120.0, embed: 900.0}, features: {embed: 5000.0}}'; a "
        "variant (jepa_paper) or random_init without an entry takes its method's",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="preset overrides, e.g. pretrain_seeds=[0,1,2] 'pretrain_overrides.data.augment=[shift]'",
    )


def run_benchmark(args: argparse.Namespace, preset: str | None = None) -> int:
    from physrep.eval.benchmark import Benchmark
    from physrep.eval.preset import load_benchmark
    from physrep.eval.tables import results_table

    preset = preset or args.preset
    methods = csv_list(args.methods, str) if getattr(args, "methods", None) else None
    cfg = load_benchmark(preset, methods, getattr(args, "overrides", None))
    out = args.out or Path("runs") / "benchmark" / Path(preset).stem
    start = time.perf_counter()
    well_dir = getattr(args, "well_dir", None)
    notes = read_notes(getattr(args, "notes", None))
    only = csv_list(args.datasets, str) if getattr(args, "datasets", None) else None
    bench = Benchmark(
        cfg, out, well_dir, rerun=args.rerun, progress=not args.no_progress, notes=notes, only=only
    )
    throughput = getattr(args, "throughput", None)
    if throughput and not args.dry_run:
        raise PhysrepError("--throughput only shapes the estimate of --dry-run")
    if getattr(args, "dry_run", False):
        from physrep.eval.plan import dry_run

        print(dry_run(bench, throughput))
        return 0
    rows = bench.run()
    print(f"\n{cfg.headline_probe} probe, test MSE on normalised targets (mean ± std over seeds)")
    print(results_table(rows, probe=cfg.headline_probe))
    print(f"\nresults  {out / 'results.md'}\nreport   {out / 'report.html'}")
    print(f"finished in {time.perf_counter() - start:.0f} s")
    return 0


def args_report(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "out", type=Path, nargs="?", help="a finished benchmark folder (with results.json)"
    )
    p.add_argument("--notes", type=Path, help="a markdown file to include")
    p.add_argument(
        "--docs",
        type=Path,
        metavar="MD",
        help="rewrite every '<!-- results: FOLDER -->' block of this markdown file (e.g. "
        "docs/results.md) from the folder it names",
    )


def run_report(args: argparse.Namespace) -> int:
    if args.out is None and args.docs is None:
        raise PhysrepError("report needs a benchmark folder, or --docs FILE, or both")
    if args.out is not None:
        from physrep.eval.report import rewrite_report

        notes = read_notes(args.notes)
        print(f"report   {rewrite_report(args.out, notes)}\nresults  {args.out / 'results.md'}")
    if args.docs is not None:
        from physrep.eval.readme_results import update

        print(f"{args.docs}: {'updated' if update(args.docs) else 'already up to date'}")
    return 0


def _args_rerun_and_progress(p: argparse.ArgumentParser) -> None:
    """The flags `benchmark` and `demo` share."""
    p.add_argument(
        "--rerun",
        action="store_true",
        help="recompute the stages whose inputs changed (without it, such a stage is refused)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars (stage lines still print)"
    )


def args_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    _args_rerun_and_progress(p)


def run_demo(args: argparse.Namespace) -> int:
    return run_benchmark(args, preset="demo")


def args_estimate(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dir",
        metavar="RUN",
        type=Path,
        help="a benchmark folder (it keeps each source's probe)",
    )
    p.add_argument("files", type=Path, nargs="+", help="Well-format files, or folders of them")
    p.add_argument("--dataset", help="which of the run's datasets (when it has several)")
    p.add_argument("--method", default="jepa", help="the encoder (default: jepa)")
    p.add_argument("--probe", help="the probe (default: the run's headline probe)")
    p.add_argument("--pretrain-seed", type=int, help="default: the newest saved probe")
    p.add_argument("--level", type=float, default=0.9, help="interval level (default: 0.9)")
    p.add_argument("--out", type=Path, help="also write the estimates to this CSV file")


def run_estimate(args: argparse.Namespace) -> int:
    from physrep.eval.estimate import run_estimate
    from physrep.eval.report import recorded_headline_probe

    probe = args.probe or recorded_headline_probe(args.run_dir)
    print(
        run_estimate(
            args.run_dir,
            args.files,
            args.dataset,
            args.method,
            probe,
            args.pretrain_seed,
            args.level,
            args.out,
        )
    )
    return 0
