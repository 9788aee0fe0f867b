"""`physrep benchmark --dry-run`: what a benchmark will compute and store, before it runs.

A paper-sized benchmark trains dozens of 224² encoders and caches hundreds of GB, so its cost
should be read before a GPU-day is spent. It writes nothing and reads no field values:
windows are counted from the files' shapes or, before simulation, from the sim preset laid out
as physrep.sim.runner.plan lays it out; encoders are built on the `meta` device. Bytes:

- embedding cache = windows × tokens × width × dtype bytes (float32 4, float16 and bfloat16
  2), tokens after `embed_tokens` pooling; plus 12 P + 16 B per window of small arrays
  (params float32, params_raw float64, trajectory and start int64; P parameters);
- encoder.pt = 4 × the encoder's state dict; each Lightning checkpoint (last.ckpt, best.ckpt)
  = 4 × (the module's state dict + AdamW's two moments of every trainable parameter).

Time = clips / throughput (clips/s): measured here (one warmup and two timed steps with a tiny
batch at the real shape) or read from a file (`Throughput`); validation at the embedding rate.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from physrep.config import read_yaml
from physrep.data.targets import ParamTargets
from physrep.data.validate import inspect_dataset, present_splits
from physrep.data.well_datasets import layout_like
from physrep.data.wellformat import BC_CODES
from physrep.data.windows import WindowConfig
from physrep.errors import ConfigError, PhysrepError
from physrep.eval.benchmark import Benchmark
from physrep.eval.embed import EVAL_SPLITS, FEATURES
from physrep.eval.features import features_per_channel, physics_features
from physrep.eval.tokens import pool_tokens
from physrep.launch import world_size
from physrep.methods import METHODS, DataShape
from physrep.train import PretrainConfig, data_shape

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
CHECKPOINTS = 2  # last.ckpt and best.ckpt
MEASURE_BATCH = 2  # windows per timed step
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # where throughput is measured


@dataclass
class Layout:
    """What the planner needs of a dataset; it has the attributes `train.data_shape` reads of
    a WellWindows, so the plan sizes models exactly as training does."""

    n_channels: int
    resolution: tuple[int, ...]  # stored grid
    frame_shape: tuple[int, int]  # after the crop and resize of the windows it was made for
    boundaries: list[tuple[int, int]]
    param_names: list[str]
    files: dict[str, list[tuple[int, int]]]  # split -> (trajectories, steps) per file
    origin: str  # where the counts come from


@dataclass
class Encoder:
    tokens: int  # after embed_tokens pooling
    width: int
    params: int  # 0 for the features
    encoder_bytes: int  # encoder.pt
    checkpoint_bytes: int  # one Lightning checkpoint; 0 when nothing is trained


@dataclass
class Row:
    """One source of one dataset; sizes and times are per run (per pretraining seed)."""

    name: str
    runs: int
    pretrain_windows: tuple[int, int] | None  # (train, valid); None when nothing is trained
    steps: int
    encoder: Encoder
    cache_bytes: int  # token bytes of the embedding cache, every split
    extra_bytes: int  # its per-window arrays
    pretrain_s: float
    embed_s: float


def frame_shape(resolution: tuple[int, ...], cfg: WindowConfig) -> tuple[int, int]:
    """(H, W) after crop and resize, as WellWindows.frame_shape."""
    if cfg.resize is not None:
        return tuple(cfg.resize)
    crop = cfg.crop or [None] * len(resolution)
    return tuple(len(range(n)[slice(*c) if c else slice(None)]) for n, c in zip(resolution, crop))


def layout_from_data(root: Path, cfg: WindowConfig) -> Layout:
    """Shapes and counts of an existing dataset, from its files' headers."""
    info = inspect_dataset(root, present_splits(root), scan_values=False)
    first = info.splits["train"][0]
    per_traj = [f.params for f in info.splits["train"] for _ in range(f.n_trajectories)]
    return Layout(
        n_channels=len(first.channel_names),
        resolution=first.resolution,
        frame_shape=frame_shape(first.resolution, cfg),
        boundaries=list(first.boundaries),
        param_names=ParamTargets.fit(per_traj, cfg.params, cfg.transforms).names,
        files={s: [(f.n_trajectories, f.n_steps) for f in fs] for s, fs in info.splits.items()},
        origin=f"data in {root}",
    )


def layout_from_sim(bench: Benchmark, name: str, cfg: WindowConfig) -> Layout:
    """Shapes and counts of a dataset not simulated yet: its sim preset, split per file as
    the runner splits it (held-out values to test_ood)."""
    from physrep.sim.runner import plan

    sim = bench.sim_config(name)
    well = layout_like(sim.system, sim.resolution, sim.steps, sim.dataset_name, sim.dt_out)
    files: dict[str, list[tuple[int, int]]] = {}
    per_traj = []
    for task in plan(sim):
        for path, n in task.outputs(Path()).items():
            files.setdefault(path.parent.name, []).append((n, sim.steps))
            per_traj += [task.params] * n if path.parent.name == "train" else []
    codes = [BC_CODES[kind.split("_")[0].upper()] for kind in well.boundaries.values()]
    return Layout(
        n_channels=len(well.channel_names()),
        resolution=well.resolution,
        frame_shape=frame_shape(well.resolution, cfg),
        boundaries=[(c, c) for c in codes],
        param_names=ParamTargets.fit(per_traj, cfg.params, cfg.transforms).names,
        files={s: files[s] for s in EVAL_SPLITS if s in files},
        origin=f"sim preset {sim.system}_{bench.specs[name].sim} (not simulated yet)",
    )


def count_windows(files: list[tuple[int, int]], cfg: WindowConfig) -> int:
    """Windows WellWindows yields: starts every `stride` from `first_frame` leaving room for
    2 × frames (even when only the context is read), over the seeded `fraction`."""
    steps = [n_steps for n_traj, n_steps in files for _ in range(n_traj)]
    keep = np.arange(len(steps))
    if cfg.fraction < 1.0:
        order = np.random.default_rng(cfg.seed).permutation(len(steps))
        keep = order[: max(1, round(cfg.fraction * len(steps)))]
    extent = 2 * cfg.frames
    return sum(len(range(cfg.first_frame, steps[i] - extent + 1, cfg.stride)) for i in keep)


def optimiser_steps(train_windows: int, cfg: PretrainConfig) -> tuple[int, int]:
    """(optimiser steps, epochs run), as Lightning's `estimated_stepping_batches` (the
    scheduler's length in physrep.train) counts them: per-rank batches of a padded
    distributed sampler, accumulated to `global_batch`, stopped by max_steps or max_epochs."""
    t = cfg.train
    world = world_size(t)
    per_step = t.batch_size * world
    if t.global_batch % per_step:
        raise PhysrepError(
            f"train.global_batch={t.global_batch} is not a multiple of batch_size × processes = {per_step}"
        )
    batches = math.ceil(math.ceil(train_windows / world) / t.batch_size)
    per_epoch = math.ceil(batches / (t.global_batch // per_step))
    if t.max_epochs == -1:
        return t.max_steps, math.ceil(t.max_steps / per_epoch)
    steps = per_epoch * t.max_epochs
    if t.max_steps != -1:
        steps = min(steps, t.max_steps)
    return steps, math.ceil(steps / per_epoch)


def shape_for(cfg: PretrainConfig, layout: Layout) -> DataShape:
    """The DataShape training would build for `cfg`'s windows of this dataset."""
    sized = dataclasses.replace(layout, frame_shape=frame_shape(layout.resolution, cfg.data))
    return data_shape(cfg, sized)


def encoder_size(
    cfg: PretrainConfig, shape: DataShape, embed_tokens: int, trained: bool
) -> Encoder:
    """The real module built on the meta device; its encode run on a meta window."""
    with torch.device("meta"):
        module = METHODS[cfg.method].from_config(cfg, shape)
    x = torch.empty(1, shape.channels, shape.frames, *shape.frame_shape, device="meta")
    out = module.encode(x)
    out = out[:, None] if out.ndim == 2 else out  # one vector per window: one token
    _, tokens, width = pool_tokens(out, embed_tokens).shape  # the cache's rule and its error
    encoder_numel = sum(v.numel() for v in module.encoder.state_dict().values())
    state = sum(v.numel() for v in module.state_dict().values())
    moments = 2 * sum(
        p.numel() for m in module.trainable().values() for p in m.parameters() if p.requires_grad
    )
    params = sum(p.numel() for p in module.encoder.parameters())
    return Encoder(tokens, width, params, 4 * encoder_numel, 4 * (state + moments) * trained)


def clips_per_s(step: Callable[[], object], timed: int = 2) -> float:
    """Windows per second of `step()` (MEASURE_BATCH windows each), after one warmup call;
    on a GPU under bf16 autocast, as Lightning's `precision: auto` trains there."""
    gpu = DEVICE == "cuda"
    sync = torch.cuda.synchronize if gpu else lambda: None
    with torch.autocast("cuda", torch.bfloat16, enabled=gpu):
        step()
        sync()
        start = time.perf_counter()
        for _ in range(timed):
            step()
        sync()
    return MEASURE_BATCH * timed / (time.perf_counter() - start)


def measure(cfg: PretrainConfig | None, shape: DataShape, trained: bool) -> dict[str, float]:
    """Throughput on this machine (its GPU if it has one): a training step (loss, backward,
    AdamW) and an embedding pass at the real shape; `cfg` None measures the features."""
    from physrep.methods.common import build_optimizer

    clip = torch.randn(MEASURE_BATCH, shape.channels, shape.frames, *shape.frame_shape)
    params = torch.randn(MEASURE_BATCH, shape.n_params)
    batch = {"context": clip, "target": torch.randn_like(clip), "params": params}
    batch = {k: v.to(DEVICE) for k, v in batch.items()}
    if cfg is None:
        return {"embed": clips_per_s(lambda: physics_features(batch["context"]))}
    torch.manual_seed(0)
    module = METHODS[cfg.method].from_config(cfg, shape).to(DEVICE)
    rates: dict[str, float] = {}
    if trained:
        parts = torch.nn.ModuleDict(module.trainable())
        optimizer = build_optimizer(parts, module.optim_cfg, 10)["optimizer"]
        generator = torch.Generator().manual_seed(0)

        def train_step() -> None:
            module.loss(batch, generator)["loss"].backward()
            optimizer.step()
            optimizer.zero_grad()

        rates["train"] = clips_per_s(train_step)
    module.eval()
    with torch.inference_mode():
        rates["embed"] = clips_per_s(lambda: module.encode(batch["context"]))
    return rates


@dataclass
class Throughput:
    """Clips/s from a YAML file, `{name: {train: clips/s, embed: clips/s}}`: a name is a source
    (jepa, jepa_paper, supervised, random_init, features...) or the method a variant trains
    as; a variant or random_init without its own entry takes its method's."""

    path: Path
    table: dict[str, dict[str, float]]

    @classmethod
    def read(cls, path: Path) -> Throughput:
        table = read_yaml(path)
        for name, rates in table.items():
            if not isinstance(rates, dict) or not rates:
                raise ConfigError(f"key '{name}' must map train and/or embed to clips/s", path)
            for kind, value in rates.items():
                number = isinstance(value, (int, float)) and not isinstance(value, bool)
                if kind not in ("train", "embed") or not number or value <= 0:
                    rule = "train or embed, a number of clips/s > 0"
                    raise ConfigError(f"key '{name}.{kind}' must be {rule}, got {value!r}", path)
        return cls(path, table)

    def rate(self, names: tuple[str, ...], kind: str) -> float:
        for name in names:
            if kind in self.table.get(name, {}):
                return float(self.table[name][kind])
        raise ConfigError(f"no key '{names[0]}.{kind}' (clips/s) for this benchmark", self.path)


def plan_dataset(
    bench: Benchmark, name: str, data_dir: Path, rates: Throughput | None
) -> tuple[Layout, dict[str, int], list[Row]]:
    """Embedding windows per split and one Row per source of dataset `name`."""
    probe = bench.probe_windows(name)
    complete = (data_dir / "stats.yaml").is_file()
    layout = layout_from_data(data_dir, probe) if complete else layout_from_sim(bench, name, probe)
    embed = {s: count_windows(f, probe) for s, f in layout.files.items()}
    total = sum(embed.values())
    rows = [source_row(bench, name, layout, total, s, rates) for s in bench.cfg.sources]
    return layout, embed, rows


def source_row(
    bench: Benchmark, name: str, layout: Layout, total: int, source: str, rates: Throughput | None
) -> Row:
    """Sizes and times of one source: its pretraining run (when it has one) and its cache."""
    cfg = bench.cfg
    trained = source in cfg.pretrained
    pcfg = bench.pretrain_config(name, "jepa" if source == FEATURES else source, 0)
    shape = shape_for(pcfg, layout)
    if source == FEATURES:
        enc = Encoder(1, features_per_channel() * layout.n_channels, 0, 0, 0)
    else:
        enc = encoder_size(pcfg, shape, cfg.embed_tokens, trained)
    if rates:
        names = (source, source if source == FEATURES else pcfg.method)
        got = {k: rates.rate(names, k) for k in ("train", "embed") if trained or k == "embed"}
    else:
        got = measure(None if source == FEATURES else pcfg, shape, trained)
    windows, steps, train_s = None, 0, 0.0
    if trained:
        train = count_windows(layout.files["train"], pcfg.data)
        windows = (train, count_windows(layout.files.get("valid", []), pcfg.data.clean()))
        steps, epochs = optimiser_steps(windows[0], pcfg)
        clips = min(steps * pcfg.train.global_batch, epochs * windows[0])
        validations = epochs // pcfg.train.val_every  # timed at the embedding rate
        train_s = clips / got["train"] + validations * windows[1] / got["embed"]
    runs = 1 if source == FEATURES else len(cfg.pretrain_seeds)
    cache = total * enc.tokens * enc.width * DTYPE_BYTES[cfg.embed_dtype]
    extra = (12 * len(layout.param_names) + 16) * total
    return Row(source, runs, windows, steps, enc, cache, extra, train_s, total / got["embed"])


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_time(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def cells(r: Row) -> tuple[str, ...]:
    e, trained = r.encoder, r.pretrain_windows is not None
    return (
        r.name,
        str(r.runs),
        "{}/{}".format(*r.pretrain_windows) if trained else "-",
        str(r.steps) if trained else "-",
        f"{e.tokens} x {e.width}",
        f"{e.params / 1e6:.2f} M" if e.params else "-",
        human_bytes(e.encoder_bytes) if e.params else "-",
        f"{CHECKPOINTS} x {human_bytes(e.checkpoint_bytes)}" if trained else "-",
        human_bytes(r.cache_bytes + r.extra_bytes),
        human_time(r.pretrain_s) if trained else "-",
        human_time(r.embed_s),
    )


COLUMNS = ("source", "runs", "pretrain train/valid", "steps", "tokens x width", "params")
COLUMNS += ("encoder.pt", "checkpoint", "cache", "pretrain", "embed")


def render_dataset(
    name: str, layout: Layout, embed: dict[str, int], rows: list[Row], dtype: str
) -> str:
    """One table (sizes and times per run) and the cache arithmetic of every source."""
    h, w = layout.frame_shape
    windows = ", ".join(f"{s} {n}" for s, n in embed.items())
    lines = [f"{name}: {layout.origin}", f"  {layout.n_channels} channels at {h}x{w}; "]
    lines[-1] += f"embedding windows {windows}"
    table = [COLUMNS, *(cells(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines += ["", *("  " + "  ".join(map(str.ljust, row, widths)).rstrip() for row in table)]
    size, split = DTYPE_BYTES[dtype], " + ".join(f"{s} {n}" for s, n in embed.items())
    lines += ["", f"  embedding cache token bytes = windows x tokens x width x {size} ({dtype}):"]
    for r in rows:
        lines.append(
            f"  {r.name:<{widths[0]}}  ({split}) = {sum(embed.values())} x {r.encoder.tokens} x "
            f"{r.encoder.width} x {size} = {r.cache_bytes} B "
            f"(+ {r.extra_bytes} B of per-window arrays)"
        )
    return "\n".join(lines)


def total_line(rows: list[Row], source: str) -> str:
    def total(value: Callable[[Row], float]) -> float:  # over runs (pretraining seeds)
        return sum(r.runs * value(r) for r in rows)

    runs = sum(r.runs for r in rows if r.pretrain_windows)
    checkpoints = total(lambda r: CHECKPOINTS * r.encoder.checkpoint_bytes)
    return (
        f"total: {runs} pretraining runs, {total(lambda r: r.steps):.0f} optimiser steps; "
        f"checkpoints {human_bytes(checkpoints)}, "
        f"encoders {human_bytes(total(lambda r: r.encoder.encoder_bytes))}, "
        f"embedding caches {human_bytes(total(lambda r: r.cache_bytes + r.extra_bytes))}; "
        f"pretraining {human_time(total(lambda r: r.pretrain_s))}, "
        f"embedding {human_time(total(lambda r: r.embed_s))} ({source})"
    )


def dry_run(bench: Benchmark, throughput: Path | None = None) -> str:
    """The whole plan as text: one table per selected dataset and a total line. Sizes and
    times in each table are per run; the total multiplies by the runs (pretraining seeds)."""
    rates = Throughput.read(throughput) if throughput else None
    datasets = bench.selected(bench.dataset_dirs())
    source = f"throughput from {throughput}" if rates else f"throughput measured here, {DEVICE}"
    parts, every = [], []
    for name, data_dir in datasets.items():
        layout, embed, rows = plan_dataset(bench, name, data_dir, rates)
        parts.append(render_dataset(name, layout, embed, rows, bench.cfg.embed_dtype))
        every += rows
    return "\n\n".join([*parts, total_line(every, source)])
