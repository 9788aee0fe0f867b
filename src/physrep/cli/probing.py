"""`physrep embed` and `physrep probe` (frozen probes, or `--finetune` end to end)."""

from __future__ import annotations

import argparse
from pathlib import Path

from physrep.cli.common import csv_list
from physrep.errors import PhysrepError


def args_embed(p: argparse.ArgumentParser) -> None:
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


def window_config(args: argparse.Namespace, encoder: str | None):
    """The WindowConfig of `embed` and `probe`: the `--windows` preset, else the windows
    `encoder` (an encoder.pt) was trained on, else (None: a factory or 'features', with no
    training windows to follow) the defaults; then the key=value overrides."""
    from physrep.config import apply_overrides, from_dict, preset_path, read_yaml, to_dict
    from physrep.data.windows import WindowConfig
    from physrep.eval.embed import encoder_windows
    from physrep.models.export import load_encoder

    if args.windows:
        base = read_yaml(preset_path("windows", args.windows))
    elif encoder is None:
        base = {}
    else:
        base = to_dict(encoder_windows(load_encoder(encoder)))
    return from_dict(WindowConfig, apply_overrides(base, args.overrides))


def _embed(args: argparse.Namespace):
    from physrep.eval.embed import load_or_embed
    from physrep.eval.sources import import_factory

    name = _source_name(args.source)
    factory = _is_factory(args.source)
    no_file = factory or args.source == "features"  # no encoder.pt: no windows, no run folder
    cfg = window_config(args, None if no_file else args.source)
    default = Path("runs") / args.data.name / name if no_file else Path(args.source).parent
    return load_or_embed(
        import_factory(args.source) if factory else args.source,
        args.data,
        args.cache or default / "embeddings",
        cfg=cfg,
        batch_size=args.batch_size,
        dtype=args.dtype,
        tokens=args.tokens,
    )


def run_embed(args: argparse.Namespace) -> int:
    from physrep.eval.ranks import launched_group

    with launched_group() as (rank, _):  # under torchrun each rank embeds a shard
        emb = _embed(args)
    if rank:
        return 0
    rows = ", ".join(f"{k} {len(v)}" for k, v in emb.splits.items())
    shape = emb.splits["train"].tokens.shape[1:]
    print(f"embeddings  {emb.path}\nrows        {rows} (tokens {shape[0]} x {shape[1]})")
    return 0


def args_probe(p: argparse.ArgumentParser) -> None:
    args_embed(p)
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


def run_probe(args: argparse.Namespace) -> int:
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
            probes=csv_list(args.probes, str),
            fractions=csv_list(args.fractions, float),
            seeds=csv_list(args.seeds, int),
            probe_cfg=probe_cfg,
        )
    if args.out:
        write_results(args.out, rows)
    for probe in dict.fromkeys(r["probe"] for r in rows):
        print(f"\n{probe} probe, test MSE on normalised targets (mean ± std over seeds)")
        print(results_table(rows, probe=probe))
    return 0


def _finetune(args: argparse.Namespace) -> list[dict]:
    from physrep.data.validate import present_splits
    from physrep.eval.finetune import FinetuneConfig, finetune
    from physrep.eval.protocols import finetune_rows

    if args.source == "features":
        raise PhysrepError("--finetune needs an encoder file, not 'features'")
    windows = window_config(args, args.source)
    cfg = FinetuneConfig(**({"epochs": args.epochs} if args.epochs else {}))
    splits = tuple(s for s in ("test", "test_ood") if s in present_splits(args.data))
    method = f"{Path(args.source).parent.name}_finetuned"
    rows = []
    for fraction in csv_list(args.fractions, float):
        for seed in csv_list(args.seeds, int):
            result = finetune(args.source, args.data, cfg, fraction, seed, splits, windows)
            rows += finetune_rows(args.data.name, method, result, fraction, seed)
    return rows
