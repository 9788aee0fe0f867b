"""The `physrep` command line.

Each command is a pair of functions: `_args_<name>` declares its arguments, `_run_<name>` does
the work. Any `PhysrepError` (bad file, bad config, bad argument) becomes one line on stderr
and exit code 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from physrep import __version__
from physrep.errors import PhysrepError

EXIT_BAD_INPUT = 2


def _args_inspect(p: argparse.ArgumentParser) -> None:
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


def _run_inspect(args: argparse.Namespace) -> int:
    from physrep.data.validate import check_loads_in_the_well, describe, inspect_dataset

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


def _args_stats(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, help="a Well-format folder; stats come from data/train")


def _run_stats(args: argparse.Namespace) -> int:
    from physrep.data.validate import inspect_dataset
    from physrep.data.wellformat import finalize_dataset

    inspect_dataset(args.dataset, ["train"])
    print(f"wrote {finalize_dataset(args.dataset)}")
    return 0


def _args_synthetic(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    p.add_argument("--config", type=Path, help="YAML config (default: the 'default' preset)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. like=active_matter",
    )


def _run_synthetic(args: argparse.Namespace) -> int:
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


def _args_simulate(p: argparse.ArgumentParser) -> None:
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


def _run_simulate(args: argparse.Namespace) -> int:
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


class _HelpWithMethods(argparse.Action):
    """`physrep pretrain --help`: lists the registered methods, importing them (and torch,
    Lightning) only when help is asked for, so every other command starts fast."""

    def __init__(self, option_strings, dest, method_arg: argparse.Action, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.method_arg = method_arg

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from physrep.methods import METHODS

        self.method_arg.help = f"one of the registered methods: {', '.join(METHODS)}"
        parser.print_help()
        parser.exit()


def _args_pretrain(p: argparse.ArgumentParser) -> None:
    method = p.add_argument("method", help="a registered method")
    p.add_argument(
        "-h", "--help", action=_HelpWithMethods, method_arg=method, help="show this help and exit"
    )
    p.add_argument("--data", type=Path, required=True, help="a Well-format dataset folder")
    p.add_argument(
        "--preset", default="tiny", help="tiny, demo, small or paper (configs/pretrain/)"
    )
    p.add_argument("--config", type=Path, help="a PretrainConfig YAML instead of a preset")
    p.add_argument(
        "--windows",
        help="take the data section from configs/windows/NAME.yaml, e.g. shear_flow_paper",
    )
    p.add_argument("--out", type=Path, help="run folder (default: runs/<dataset>/<method>)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    p.add_argument(
        "--devices", type=int, help="processes per node (DDP when > 1); same as train.devices=N"
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="e.g. train.max_epochs=5 jepa.ema=0.996"
    )


def pretrain_config(args: argparse.Namespace):
    """The PretrainConfig `physrep pretrain` trains with: preset or file, window preset,
    then the method, `--devices` and the key=value overrides, in that order."""
    from physrep.config import apply_overrides, from_dict, preset_path, read_yaml
    from physrep.train import PretrainConfig

    data = read_yaml(args.config or preset_path("pretrain", args.preset))
    if args.windows:
        data["data"] = read_yaml(preset_path("windows", args.windows))
    devices = [] if args.devices is None else [f"train.devices={args.devices}"]
    overrides = [f"method={args.method}", *devices, *args.overrides]
    return from_dict(PretrainConfig, apply_overrides(data, overrides))


def _run_pretrain(args: argparse.Namespace) -> int:
    from physrep.train import pretrain

    cfg = pretrain_config(args)
    out = args.out or Path("runs") / args.data.name / args.method
    pretrain(cfg, args.data, out, resume=args.resume)
    print(f"wrote {out} (encoder: {out / 'encoder.pt'})")
    return 0


def _args_embed(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source",
        help="an exported encoder (encoder.pt), 'features', or module:function (an importable "
        "factory returning an nn.Module or callable: (B,C,T,H,W) -> (B,N,D) or (B,D))",
    )
    p.add_argument("--data", type=Path, required=True, help="a Well-format dataset folder")
    p.add_argument("--cache", type=Path, help="cache folder (default: <encoder folder>/embeddings)")
    p.add_argument("--windows", help="window preset (default: the encoder's training windows)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per encoder call")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16", "bfloat16"],
        help="storage of the cached tokens (probes read float32)",
    )
    p.add_argument(
        "--tokens",
        type=int,
        default=0,
        help="pool each window's tokens to this many (0: keep all)",
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="window overrides, e.g. stride=8"
    )


def _source_name(source: str) -> str:
    """The row name of a source: features, an encoder's run folder, or a factory's function."""
    if source == "features":
        return source
    if _is_factory(source):
        return source.partition(":")[2]
    return Path(source).parent.name


def _is_factory(source: str) -> bool:
    """`module:function` (an importable encoder factory), not a file."""
    return ":" in source and not Path(source).exists()


def _embed(args: argparse.Namespace):
    from physrep.config import apply_overrides, from_dict, preset_path, read_yaml, to_dict
    from physrep.data.windows import WindowConfig
    from physrep.eval.embed import encoder_windows, load_or_embed
    from physrep.eval.sources import import_factory
    from physrep.models.export import load_encoder

    name = _source_name(args.source)
    factory = _is_factory(args.source)
    if args.windows:
        base = read_yaml(preset_path("windows", args.windows))
    elif factory or args.source == "features":
        base = {}  # no training windows to follow: the defaults and the overrides
    else:
        base = to_dict(encoder_windows(load_encoder(args.source)))
    cfg = from_dict(WindowConfig, apply_overrides(base, args.overrides))
    if factory or args.source == "features":
        default = Path("runs") / args.data.name / name
    else:
        default = Path(args.source).parent
    return load_or_embed(
        import_factory(args.source) if factory else args.source,
        args.data,
        args.cache or default / "embeddings",
        cfg=cfg,
        batch_size=args.batch_size,
        dtype=args.dtype,
        tokens=args.tokens,
    )


def _run_embed(args: argparse.Namespace) -> int:
    from physrep.eval.ranks import launched_group

    with launched_group() as (rank, _):  # under torchrun each rank embeds a shard
        emb = _embed(args)
    if rank:
        return 0
    rows = ", ".join(f"{k} {len(v)}" for k, v in emb.splits.items())
    shape = emb.splits["train"].tokens.shape[1:]
    print(f"embeddings  {emb.path}\nrows        {rows} (tokens {shape[0]} x {shape[1]})")
    return 0


def _args_probe(p: argparse.ArgumentParser) -> None:
    _args_embed(p)
    p.add_argument("--probes", default="attentive,linear,mlp,ridge", help="comma-separated")
    p.add_argument("--fractions", default="1.0", help="train-trajectory fractions, e.g. 0.1,1")
    p.add_argument("--seeds", default="0,1,2", help="probe seeds")
    p.add_argument("--out", type=Path, help="write the result rows to this JSON file")
    p.add_argument("--epochs", type=int, help="probe (or fine-tuning) epochs")
    p.add_argument(
        "--finetune",
        action="store_true",
        help="train the encoder end to end with an attentive head (the paper's MPP protocol)",
    )


def _run_probe(args: argparse.Namespace) -> int:
    from physrep.eval.probes import ProbeConfig
    from physrep.eval.protocols import run_probes
    from physrep.eval.results import write_results
    from physrep.eval.tables import results_table

    if args.finetune:
        rows = _finetune(args)
    else:
        probe_cfg = ProbeConfig(**({"epochs": args.epochs} if args.epochs else {}))
        probe_cfg.validate()
        from physrep.eval.ranks import launched_group

        with launched_group() as (rank, _):  # every rank embeds a shard; rank 0 probes
            emb = _embed(args)
        if rank:
            return 0
        method = _source_name(args.source)
        rows = run_probes(
            args.data.name,
            method,
            emb,
            probes=_csv(args.probes, str),
            fractions=_csv(args.fractions, float),
            seeds=_csv(args.seeds, int),
            probe_cfg=probe_cfg,
        )
    if args.out:
        write_results(args.out, rows)
    for probe in dict.fromkeys(r["probe"] for r in rows):
        print(f"\n{probe} probe, test MSE on normalised targets (mean ± std over seeds)")
        print(results_table(rows, probe=probe))
    return 0


def _finetune(args: argparse.Namespace) -> list[dict]:
    from physrep.config import apply_overrides, from_dict, preset_path, read_yaml, to_dict
    from physrep.data.validate import present_splits
    from physrep.data.windows import WindowConfig
    from physrep.eval.embed import encoder_windows
    from physrep.eval.finetune import FinetuneConfig, finetune
    from physrep.eval.protocols import finetune_rows
    from physrep.models.export import load_encoder

    if args.source == "features":
        raise PhysrepError("--finetune needs an encoder file, not 'features'")
    if args.windows:
        base = read_yaml(preset_path("windows", args.windows))
    else:
        base = to_dict(encoder_windows(load_encoder(args.source)))
    windows = from_dict(WindowConfig, apply_overrides(base, args.overrides))
    cfg = FinetuneConfig(**({"epochs": args.epochs} if args.epochs else {}))
    splits = tuple(s for s in ("test", "test_ood") if s in present_splits(args.data))
    method = f"{Path(args.source).parent.name}_finetuned"
    rows = []
    for fraction in _csv(args.fractions, float):
        for seed in _csv(args.seeds, int):
            result = finetune(args.source, args.data, cfg, fraction, seed, splits, windows)
            rows += finetune_rows(args.data.name, method, result, fraction, seed)
    return rows


def _args_benchmark(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="small", help="tiny, demo, small or paper (or a YAML)")
    p.add_argument("--well-dir", type=Path, help="use this Well-format folder, do not simulate")
    p.add_argument("--methods", help="only these methods and controls, e.g. jepa,features,mean")
    p.add_argument(
        "--datasets",
        help="only these datasets of the preset, e.g. active_matter; runs into one --out "
        "build one table",
    )
    p.add_argument("--out", type=Path, help="output folder (default: runs/benchmark/<preset>)")
    p.add_argument(
        "--rerun",
        action="store_true",
        help="recompute the stages whose inputs changed (without it, such a stage is refused)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars (stage lines still print)"
    )
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


def _run_benchmark(args: argparse.Namespace, preset: str | None = None) -> int:
    from physrep.eval.benchmark import Benchmark
    from physrep.eval.preset import load_benchmark
    from physrep.eval.tables import results_table

    preset = preset or args.preset
    methods = _csv(args.methods, str) if getattr(args, "methods", None) else None
    cfg = load_benchmark(preset, methods, getattr(args, "overrides", None))
    out = args.out or Path("runs") / "benchmark" / Path(preset).stem
    start = time.perf_counter()
    well_dir = getattr(args, "well_dir", None)
    notes = _read_notes(getattr(args, "notes", None))
    only = _csv(args.datasets, str) if getattr(args, "datasets", None) else None
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


def _args_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="a finished benchmark folder (with results.json)")
    p.add_argument("--notes", type=Path, help="a markdown file to include")


def _run_report(args: argparse.Namespace) -> int:
    from physrep.eval.report import rewrite_report

    notes = _read_notes(args.notes)
    print(f"report   {rewrite_report(args.out, notes)}\nresults  {args.out / 'results.md'}")
    return 0


def _read_notes(path: Path | None) -> str:
    if path is None:
        return ""
    if not path.is_file():
        raise PhysrepError("no such notes file", path)
    return path.read_text()


def _args_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    p.add_argument(
        "--rerun",
        action="store_true",
        help="recompute the stages whose inputs changed (without it, such a stage is refused)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars (stage lines still print)"
    )


def _run_demo(args: argparse.Namespace) -> int:
    return _run_benchmark(args, preset="demo")


def _csv(text: str, kind: type) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise PhysrepError(f"'{text}' is not a comma-separated list of {kind.__name__}") from None


def _args_estimate(p: argparse.ArgumentParser) -> None:
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


def _run_estimate(args: argparse.Namespace) -> int:
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


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "benchmark": (
        "simulate, pretrain, embed, probe and report a benchmark preset",
        _args_benchmark,
        _run_benchmark,
    ),
    "demo": ("the embedded demo: the `demo` benchmark on shear_flow", _args_demo, _run_demo),
    "embed": ("cache frozen embeddings of every split of a dataset", _args_embed, _run_embed),
    "probe": ("train probes on frozen embeddings, print test errors", _args_probe, _run_probe),
    "estimate": (
        "estimate the parameters of new runs, with intervals, from a benchmark's probes",
        _args_estimate,
        _run_estimate,
    ),
    "report": (
        "rewrite results.md and report.html of a benchmark folder",
        _args_report,
        _run_report,
    ),
    "inspect": ("summarise and validate a Well-format dataset", _args_inspect, _run_inspect),
    "pretrain": (
        "pretrain an encoder on a dataset with a registered method (`--help` lists them)",
        _args_pretrain,
        _run_pretrain,
    ),
    "simulate": (
        "simulate a dataset of shear_flow, rayleigh_benard or active_matter",
        _args_simulate,
        _run_simulate,
    ),
    "stats": ("(re)compute stats.yaml from a dataset's train split", _args_stats, _run_stats),
    "synthetic": (
        "write a synthetic dataset in a real Well layout (tests, benchmarks)",
        _args_synthetic,
        _run_synthetic,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="physrep",
        description="Learn representations of spatiotemporal physical systems and measure how much physics they hold.",
    )
    parser.add_argument("--version", action="version", version=f"physrep {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks"
    )
    for name, (help_text, add_args, run) in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            conflict_handler="resolve",  # a command may bring its own --help
        )
        add_args(p)
        p.set_defaults(run=run)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    # `key=value` overrides may follow options (`--out D like=x`), which argparse's positional
    # matching does not allow after a subcommand; collect them here instead.
    args, extra = parser.parse_known_args(argv)
    stray = [
        e for e in extra if e.startswith("-") or "=" not in e or not hasattr(args, "overrides")
    ]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    # Torch's CPU allocator asks for 2 MB pages (where the kernel grants them on request):
    # training allocates fresh activations every step, and first-touching them in 4 KB pages
    # cost a quarter of a CPU step (README, "Pretraining throughput"). Set it to 0 to opt out.
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    # Stage lines must reach a log file as they happen: redirected stdout is block-buffered,
    # so an hour-long benchmark under nohup would otherwise show nothing until it exits.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    args = parse_args(argv)
    try:
        return args.run(args)
    except PhysrepError as exc:
        if args.debug:
            raise
        print(f"physrep: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("physrep: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
