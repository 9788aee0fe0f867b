"""Pretraining: the one place with a training loop, and it is Lightning's.

`pretrain(cfg, data_dir, out)` builds the windows, the method's LightningModule and a
Lightning Trainer (CPU or GPUs; DDP through Lightning's strategy, so `torchrun --nproc-per-node
N` and SLURM work unchanged), trains with checkpoints (`last.ckpt` with optimiser, scheduler and
RNG state; the best by validation loss), CSV and TensorBoard logs, and exports the encoder as
`encoder.pt`, loadable with `physrep.load_encoder` without Lightning or physrep's methods.
The Trainer's callbacks live in `physrep.callbacks`, the launcher layout in `physrep.launch`;
their names are imported from there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch

from physrep.callbacks import DivergenceGuard, RNGState, StepBar, Throughput
from physrep.config import check
from physrep.data.windows import WellWindows, WindowConfig, make_loader
from physrep.errors import ConfigError, PhysrepError
from physrep.launch import launcher_layout, world_size
from physrep.methods import METHODS, DataShape, PretrainModule
from physrep.methods.common import OptimConfig
from physrep.models.export import export_encoder


@dataclass
class TrainConfig:
    batch_size: int = 8  # windows per device per step
    global_batch: int = 8  # windows per optimiser step: gradients accumulate to reach it
    max_epochs: int = 10
    max_steps: int = -1  # optimiser steps; -1: max_epochs decides
    accelerator: str = "auto"  # auto | cpu | gpu
    devices: int = 1  # per node; under torchrun or SLURM, the launcher's count
    num_nodes: int = 1
    strategy: str = "auto"  # auto: DDP when more than one process
    precision: str = "auto"  # auto: bf16-mixed on GPU, 32-true on CPU
    num_workers: int = 0  # DataLoader workers per process
    loggers: list[str] = field(default_factory=lambda: ["csv", "tensorboard"])  # + "wandb"
    log_every: int = 10
    val_every: int = 1  # epochs
    deterministic: bool = True

    def validate(self) -> None:
        for key in ("batch_size", "global_batch", "devices", "num_nodes", "log_every"):
            check(getattr(self, key) >= 1, key, ">= 1", getattr(self, key))
        check(self.val_every >= 1, "val_every", ">= 1", self.val_every)
        check(self.num_workers >= 0, "num_workers", ">= 0", self.num_workers)
        check(
            self.max_steps == -1 or self.max_steps >= 1, "max_steps", "-1 or >= 1", self.max_steps
        )
        # an epoch count of 0 would export an untrained encoder as if it were trained
        if self.max_steps == -1:
            check(self.max_epochs >= 1, "max_epochs", ">= 1", self.max_epochs)
        else:
            check(
                self.max_epochs >= 1 or self.max_epochs == -1,
                "max_epochs",
                "-1 or >= 1",
                self.max_epochs,
            )
        check(
            self.accelerator in ("auto", "cpu", "gpu"),
            "accelerator",
            "auto, cpu or gpu",
            self.accelerator,
        )


@dataclass
class _PretrainBase:
    method: str = "jepa"  # a key of physrep.methods.METHODS
    seed: int = 0
    data: WindowConfig = field(default_factory=WindowConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method '{self.method}' (registered: {', '.join(METHODS)})")


# The sections of the registered methods (`jepa:`, `videomae:`, ...) are added from the
# registry, so a new method needs no edit here.
PretrainConfig = dataclasses.make_dataclass(
    "PretrainConfig",
    [
        (name, m.config_class, field(default_factory=m.config_class))
        for name, m in METHODS.items()
        if m.config_class is not None
    ],
    bases=(_PretrainBase,),
    namespace={
        "__module__": __name__,
        "__doc__": "Everything a pretraining run depends on: method, seed, data, train, "
        "optim, and one section per registered method.",
    },
)


def build_windows(cfg: PretrainConfig, data_dir: str | Path) -> tuple[WellWindows, WellWindows]:
    """Train windows (with the configured noise, fraction and augmentation) and clean, full
    valid windows sharing the train split's parameter statistics."""
    train = WellWindows(data_dir, "train", cfg.data)
    valid_cfg = cfg.data.clean()
    valid = WellWindows(data_dir, "valid", valid_cfg, targets=train.targets)
    return train, valid


def data_shape(cfg: PretrainConfig, windows: WellWindows) -> DataShape:
    """What the method must know of the windows; an axis is periodic when its boundaries are
    and it is not cropped (walls are not, and a cropped axis no longer is)."""
    crop = cfg.data.crop or [None, None]
    periodic = tuple(bc == (2, 2) and c is None for bc, c in zip(windows.boundaries, crop))
    return DataShape(
        channels=windows.n_channels,
        frames=cfg.data.frames,
        frame_shape=tuple(windows.frame_shape),
        periodic=periodic,
        n_params=len(windows.param_names),
    )


def build_module(cfg: PretrainConfig, windows: WellWindows) -> PretrainModule:
    """The registered method's LightningModule, sized to the windows."""
    return METHODS[cfg.method].from_config(cfg, data_shape(cfg, windows))


def build_trainer(
    cfg: PretrainConfig,
    out: Path,
    callbacks: list | None = None,
    progress: bool = True,
    quiet: bool = False,
):
    """The Trainer of a pretraining run; `quiet` (inside the benchmark) swaps Lightning's
    progress bars (training and every validation) for one bar over the optimiser steps."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    t = cfg.train
    gpu = t.accelerator == "gpu" or (t.accelerator == "auto" and torch.cuda.is_available())
    precision = t.precision if t.precision != "auto" else ("bf16-mixed" if gpu else "32-true")
    per_step = t.batch_size * world_size(t)
    if t.global_batch % per_step:
        raise PhysrepError(
            f"train.global_batch={t.global_batch} is not a multiple of batch_size × processes = {per_step}"
        )
    loggers = _loggers(t.loggers, out)
    checkpoints = ModelCheckpoint(
        dirpath=out / "checkpoints",
        filename="best",
        monitor="val/loss",
        mode="min",
        save_last=True,
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    devices, nodes = launcher_layout(t)
    bars = [StepBar()] if progress and quiet else []
    return pl.Trainer(
        accelerator="gpu" if gpu else "cpu",
        devices=devices,
        num_nodes=nodes,
        strategy=t.strategy,
        precision=precision,
        max_epochs=t.max_epochs,
        max_steps=t.max_steps,
        accumulate_grad_batches=t.global_batch // per_step,
        gradient_clip_val=cfg.optim.clip_grad or None,
        logger=loggers,
        log_every_n_steps=t.log_every,
        check_val_every_n_epoch=t.val_every,
        deterministic=t.deterministic,
        callbacks=[
            checkpoints,
            DivergenceGuard(),
            Throughput(),
            RNGState(),
            *bars,
            *(callbacks or []),
        ],
        default_root_dir=out,
        enable_model_summary=False,
        enable_progress_bar=progress and not quiet,
        num_sanity_val_steps=0,
    )


def pretrain(
    cfg: PretrainConfig,
    data_dir: str | Path,
    out: str | Path,
    resume: bool = False,
    callbacks: list | None = None,
    progress: bool = True,
    quiet: bool = False,
) -> Path:
    """Train `cfg.method` on `data_dir`; write checkpoints, logs, run records and encoder.pt.

    `quiet`: one progress bar over optimiser steps and none of Lightning's start-up lines
    (for the benchmark, which trains many models); else Lightning's own bar and messages."""
    from physrep.runinfo import write_run_record

    out = Path(out)
    last = out / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise PhysrepError("--resume: no checkpoints/last.ckpt to resume from", out)
    if not resume and last.exists():
        raise PhysrepError("already holds a training run; pass --resume or use another --out", out)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    train, valid = build_windows(cfg, data_dir)
    module = build_module(cfg, train)
    with lightning_messages(quiet):
        trainer = build_trainer(cfg, out, callbacks, progress, quiet)
    if trainer.is_global_zero:
        extra = {"targets": train.targets.to_dict(), "world_size": trainer.world_size}
        write_run_record(out, cfg, seed=cfg.seed, data_dir=data_dir, extra=extra)
    t = cfg.train
    loaders = {
        "train_dataloaders": make_loader(
            train, t.batch_size, shuffle=True, num_workers=t.num_workers, seed=cfg.seed
        ),
        "val_dataloaders": make_loader(
            valid, t.batch_size, shuffle=False, num_workers=t.num_workers
        ),
    }
    with lightning_messages(quiet):
        trainer.fit(module, **loaders, ckpt_path=str(last) if resume else None)
    if trainer.is_global_zero:
        export_encoder(
            module,
            out / "encoder.pt",
            data=dataclasses.asdict(cfg.data),
            targets=train.targets.to_dict(),
            fields=list(train.field_names),
        )
    return out


def export_initial(cfg: PretrainConfig, data_dir: str | Path, out: str | Path) -> Path:
    """Export `cfg.method`'s encoder at its seeded initialisation, untrained: the
    random-encoder control, with the same record and file format as a trained run."""
    from physrep.runinfo import write_run_record

    out = Path(out)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    train, _ = build_windows(cfg, data_dir)
    module = build_module(cfg, train)
    targets = train.targets.to_dict()
    write_run_record(out, cfg, seed=cfg.seed, data_dir=data_dir, extra={"targets": targets})
    data = dataclasses.asdict(cfg.data)
    fields = list(train.field_names)
    return export_encoder(module, out / "encoder.pt", data=data, targets=targets, fields=fields)


@contextlib.contextmanager
def lightning_messages(quiet: bool):
    """Hide what does not concern the user: warnings about Lightning's own internals (its
    pytree `LeafSpec` deprecation, few DataLoader workers on purpose, a short epoch) always;
    when `quiet`, also its start-up info (devices found, logging tips, dataloader loading)."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    level = logger.level
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*is smaller than the logging interval.*")
        if quiet:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            logger.setLevel(level)


def _loggers(names: list[str], out: Path) -> list:
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    made = []
    for name in names:
        if name == "csv":
            made.append(CSVLogger(out, name="logs", version="csv"))
        elif name == "tensorboard":
            made.append(TensorBoardLogger(out, name="logs", version="tensorboard"))
        elif name == "wandb":
            made.append(WandbLogger(save_dir=out, project="physrep"))
        else:
            raise PhysrepError(f"unknown logger '{name}' (csv, tensorboard, wandb)")
    return made
