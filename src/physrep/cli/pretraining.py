"""`physrep pretrain`: its arguments, the config they make, and the run."""

from __future__ import annotations

import argparse
from pathlib import Path


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


def args_pretrain(p: argparse.ArgumentParser) -> None:
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


def run_pretrain(args: argparse.Namespace) -> int:
    from physrep.train import pretrain

    cfg = pretrain_config(args)
    out = args.out or Path("runs") / args.data.name / args.method
    pretrain(cfg, args.data, out, resume=args.resume)
    print(f"wrote {out} (encoder: {out / 'encoder.pt'})")
    return 0
