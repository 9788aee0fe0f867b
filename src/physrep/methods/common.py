"""What every pretraining method shares: the optimiser, its schedule, and collapse monitors.

AdamW with weight decay on weights only (not on norms, biases, layer scales or learned
embeddings), and a cosine schedule per optimiser step whose warmup really starts low: the
released code computed a warmup it never applied.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch
from torch import nn

from physrep.config import InvalidValue, check

if TYPE_CHECKING:
    from physrep.train import PretrainConfig


@dataclass
class OptimConfig:
    lr: float = 1e-3  # peak learning rate, reached at the end of warmup
    min_lr: float = 1e-6  # cosine floor
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 10  # optimiser steps of linear warmup from warmup_start * lr
    warmup_start: float = 0.01
    clip_grad: float = 1.0  # max gradient norm; 0 disables clipping

    def validate(self) -> None:
        check(self.lr > 0, "lr", "> 0", self.lr)
        check(0 <= self.min_lr <= self.lr, "min_lr", f"in [0, lr = {self.lr}]", self.min_lr)
        check(self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay)
        check(all(0 <= b < 1 for b in self.betas), "betas", "two values in [0, 1)", self.betas)
        check(self.warmup_steps >= 0, "warmup_steps", ">= 0", self.warmup_steps)
        check(0 < self.warmup_start <= 1, "warmup_start", "in (0, 1]", self.warmup_start)
        check(self.clip_grad >= 0, "clip_grad", ">= 0 (0 disables clipping)", self.clip_grad)


@dataclass(frozen=True)
class DataShape:
    """What a method must know of its windows to size its networks."""

    channels: int
    frames: int
    frame_shape: tuple[int, int]
    periodic: tuple[bool, bool]  # per spatial axis: periodic boundaries and not cropped
    n_params: int  # parameters the supervised control regresses


def encoder_preset(presets: dict[str, dict], name: str) -> dict:
    """The one lookup of an encoder preset by name, with the one error a typo gets (the
    config section's `validate` calls it, so the full key is named before training starts)."""
    if name not in presets:
        raise InvalidValue("encoder", f"one of {', '.join(presets)}", name)
    return dict(presets[name])


def convnext_kwargs(cfg, shape: DataShape) -> dict:
    """ConvNeXt-3D constructor arguments from a method config's `encoder` preset,
    `encoder_args` overrides and `padding` rule (auto: circular on the periodic axes)."""
    from physrep.models import ENCODER_PRESETS

    periodic = shape.periodic
    if cfg.padding != "auto":
        periodic = (cfg.padding == "circular",) * 2
    return {
        **encoder_preset(ENCODER_PRESETS, cfg.encoder),
        **cfg.encoder_args,
        "in_channels": shape.channels,
        "frames": shape.frames,
        "periodic": tuple(periodic),
    }


def is_matrix(name: str, p: nn.Parameter) -> bool:
    """Decay rule of the probes and fine-tuning: every parameter of two or more dims."""
    return p.ndim >= 2


def is_weight(name: str, p: nn.Parameter) -> bool:
    """Decay rule of pretraining: matrices and kernels, never a bias (whatever its shape)."""
    return not (p.ndim <= 1 or name.endswith(".bias"))


def parameter_groups(
    model: nn.Module,
    weight_decay: float,
    lr: float | None = None,
    decays: Callable[[str, nn.Parameter], bool] = is_weight,
) -> list[dict]:
    """The optimiser's groups of `model`'s trainable parameters: those `decays` picks with
    `weight_decay`, the rest (norms, biases, layer scales) without; at rate `lr` when given
    (else the optimiser's)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if decays(name, p) else no_decay).append(p)
    rate = {} if lr is None else {"lr": lr}
    return [
        {"params": decay, "weight_decay": weight_decay, **rate},
        {"params": no_decay, "weight_decay": 0.0, **rate},
    ]


def lr_factor(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Multiplier of cfg.lr at optimiser step `step`: linear warmup, then cosine to min_lr."""
    if step < cfg.warmup_steps:
        return cfg.warmup_start + (1.0 - cfg.warmup_start) * step / cfg.warmup_steps
    span = max(total_steps - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    floor = cfg.min_lr / cfg.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, total_steps: int, precision: str = "32-true"
) -> dict:
    """AdamW + per-step schedule, in the form Lightning's `configure_optimizers` returns.

    Fused AdamW (one kernel per step; 0.98 vs 1.14 s per JEPA step on this CPU) in full
    precision; under mixed precision Lightning must unscale before clipping, which a fused
    optimizer does not allow, so the multi-tensor (`foreach`) one is used there.
    """
    kind = {"fused": True} if str(precision).startswith(("32", "64")) else {"foreach": True}
    optimizer = torch.optim.AdamW(
        parameter_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas), **kind
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, cfg)
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@torch.no_grad()
def collapse_metrics(pooled: torch.Tensor) -> dict[str, float]:
    """Window-level health of an embedding: `pooled` is (windows, D) mean-pooled tokens.

    `pooled_std` is the std across windows averaged over dimensions (a prototype kept token
    std ~1 while this fell to 6e-4: every window encoded the same); `effective_rank` is
    `physrep.losses.effective_rank` (1 = collapsed onto a line, D = isotropic).
    """
    from physrep.losses import effective_rank

    pooled = pooled.double()
    std = pooled.std(dim=0).mean().item() if len(pooled) > 1 else float("nan")
    return {"pooled_std": std, "effective_rank": effective_rank(pooled).item()}


def log_terms(module: pl.LightningModule, stage: str, terms: dict, batch_size: int) -> None:
    for name, value in terms.items():
        if value.ndim == 0:
            module.log(
                f"{stage}/{name}",
                value.detach(),
                prog_bar=name == "loss",
                on_step=stage == "train",
                on_epoch=True,
                batch_size=batch_size,
                sync_dist=stage == "val",
            )


def log_collapse(module: pl.LightningModule, pooled: list[torch.Tensor]) -> None:
    """Window-level collapse metrics over the whole validation split (all ranks)."""
    if not pooled:
        return
    local = torch.cat(pooled)
    everything = module.all_gather(local)
    if everything.ndim == 3:  # (world, n, D) under DDP
        everything = everything.flatten(0, 1)
    for name, value in collapse_metrics(everything.float()).items():
        module.log(f"val/{name}", value)  # identical on every rank: computed from all of them


class PretrainModule(pl.LightningModule):
    """What every pretraining method shares: the training and validation steps on top of the
    method's `loss`, one AdamW over its trainable parts, window-level collapse monitors after
    each validation, and the export of `self.encoder`.

    A method sets `name` (its registry key and config section), `builder` (the encoder class
    `load_encoder` rebuilds), `config_class`, `shape_fields`, `self.encoder`,
    `self.encoder_kwargs`, `self.cfg`, `self.optim_cfg` and `self.seed`, and implements `loss`
    and `trainable`.
    `loss` returns named scalar terms, "loss" the one optimised; it may add "context_tokens"
    (B, N, D) when it computed them anyway, which spares validation an extra encoder pass.
    """

    name: str
    builder: str
    config_class: type | None  # the method's config section; None: it reads another's

    shape_fields: tuple[str, ...] = ("channels", "frames")  # DataShape fields __init__ takes first

    def __init__(self):
        super().__init__()
        self._val_pooled: list[torch.Tensor] = []

    @classmethod
    def from_config(cls, cfg: PretrainConfig, shape: DataShape) -> PretrainModule:
        """The method built from a PretrainConfig (its own section, optim, seed) and the data's
        shape: `cls(*shape fields, <name>=section, optim=..., seed=...)`."""
        section = {cls.name: asdict(getattr(cfg, cls.name))} if cls.config_class else {}
        args = [getattr(shape, name) for name in cls.shape_fields]
        return cls(*args, **section, optim=asdict(cfg.optim), seed=cfg.seed)

    def loss(
        self, batch: dict, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Loss terms of a batch; random choices (masks, slices) draw from `generator`."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, N, D) tokens: the representation probed downstream."""
        return self.encoder.encode(x)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.loss(batch)
        log_terms(self, "train", terms, len(batch["context"]))
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        # the same random choices every validation pass, so val/loss compares across epochs
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + batch_idx)
        terms = self.loss(batch, generator)
        log_terms(self, "val", terms, len(batch["context"]))
        tokens = terms.get("context_tokens")
        if tokens is None:
            tokens = self.encode(batch["context"])
        self._val_pooled.append(tokens.mean(dim=1).detach())

    def trainable(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def configure_optimizers(self):
        return build_optimizer(
            nn.ModuleDict(self.trainable()),
            self.optim_cfg,
            int(self.trainer.estimated_stepping_batches),
            self.trainer.precision,
        )

    def on_validation_epoch_end(self) -> None:
        log_collapse(self, self._val_pooled)
        self._val_pooled = []

    def export(self) -> dict:
        """What `physrep.load_encoder` needs: the encoder's class, arguments and weights."""
        return {
            "builder": self.builder,
            "kwargs": self.encoder_kwargs,
            "state_dict": self.encoder.state_dict(),
            "method": self.name,
            "method_config": asdict(self.cfg),
        }
