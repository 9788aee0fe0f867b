"""The `physrep` command line.

Each command is a pair of functions: `args_<name>` declares its arguments, `run_<name>` does
the work. They live by group: `datasets` (inspect, stats, synthetic, simulate), `pretraining`
(pretrain), `probing` (embed, probe) and `benchmarks` (benchmark, demo, report, estimate); this
module only builds the parser. Any `PhysrepError` (bad file, bad config, bad argument) becomes
one line on stderr and exit code 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from physrep import __version__
from physrep.cli import benchmarks, datasets, pretraining, probing
from physrep.cli.pretraining import pretrain_config
from physrep.errors import PhysrepError

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "build_parser", "main", "parse_args", "pretrain_config"]

EXIT_BAD_INPUT = 2

COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "benchmark": (
        "simulate, pretrain, embed, probe and report a benchmark preset",
        benchmarks.args_benchmark,
        benchmarks.run_benchmark,
    ),
    "demo": (
        "the embedded demo: the `demo` benchmark on shear_flow",
        benchmarks.args_demo,
        benchmarks.run_demo,
    ),
    "embed": (
        "cache frozen embeddings of every split of a dataset",
        probing.args_embed,
        probing.run_embed,
    ),
    "probe": (
        "train probes on frozen embeddings, print test errors",
        probing.args_probe,
        probing.run_probe,
    ),
    "estimate": (
        "estimate the parameters of new runs, with intervals, from a benchmark's probes",
        benchmarks.args_estimate,
        benchmarks.run_estimate,
    ),
    "report": (
        "rewrite results.md and report.html of a benchmark folder",
        benchmarks.args_report,
        benchmarks.run_report,
    ),
    "inspect": (
        "summarise and validate a Well-format dataset",
        datasets.args_inspect,
        datasets.run_inspect,
    ),
    "pretrain": (
        "pretrain an encoder on a dataset with a registered method (`--help` lists them)",
        pretraining.args_pretrain,
        pretraining.run_pretrain,
    ),
    "simulate": (
        "simulate a dataset of shear_flow, rayleigh_benard or active_matter",
        datasets.args_simulate,
        datasets.run_simulate,
    ),
    "stats": (
        "(re)compute stats.yaml from a dataset's train split",
        datasets.args_stats,
        datasets.run_stats,
    ),
    "synthetic": (
        "write a synthetic dataset in a real Well layout (tests, benchmarks)",
        datasets.args_synthetic,
        datasets.run_synthetic,
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
    # cost a quarter of a CPU step (docs/performance.md). Set it to 0 to opt out.
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
