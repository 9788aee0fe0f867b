"""JEPA: predict the embedding of the next T frames from the embedding of the current T.

One encoder embeds context and target (the paper's recipe, gradients through both), a conv
predictor maps the context map to the target map, and VICReg (or SIGReg) on the token rows
keeps the embedding from collapsing. Beyond the paper: an EMA target encoder with
stop-gradient (V-JEPA style), SIGReg, statistics per token position or per window (which a
positional code cannot satisfy), VICReg statistics all-gathered across DDP ranks (N GPUs
compute the loss of the global batch, not N local ones), and `target="masked"`: V-JEPA's
in-clip objective, predicting the embedding of token tubes hidden from the context clip
instead of the next window, so the encoder is never asked to make two windows that a decay or
growth separates agree.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_gather

from physrep.config import check
from physrep.losses import jepa_regularised_loss
from physrep.methods.common import (
    DataShape,
    OptimConfig,
    PretrainModule,
    convnext_kwargs,
    encoder_preset,
)
from physrep.models import ENCODER_PRESETS, ConvNeXt3D, ConvPredictor

# The paper's recipe, whatever physrep's defaults become: next-window prediction through one
# shared encoder (gradients through both branches), VICReg 2/40/2 on every token as a row, rows
# shuffled into 5 chunks, and the released encoder's LayerNorms on the residual stream.
# Benchmarks report it as the `jepa_paper` row beside `jepa`.
PAPER_RECIPE: dict = {
    "target": "next",
    "ema": 0.0,
    "loss": "vicreg",
    "stats": "token",
    "sim": 2.0,
    "std": 40.0,
    "cov": 2.0,
    "chunks": 5,
    "encoder_args": {"stream_norm": True},
}


@dataclass
class JEPAConfig:
    encoder: str = "tiny"  # preset of physrep.models.ENCODER_PRESETS
    encoder_args: dict = field(default_factory=dict)  # overrides of the preset
    predictor_hidden: int = 0  # 0: twice the embedding width, as the paper's 128 -> 256
    padding: Literal["auto", "zeros", "circular"] = "auto"  # auto: circular on periodic axes
    loss: Literal["vicreg", "sigreg"] = "vicreg"
    stats: Literal["token", "position", "window"] = "token"
    sim: float = 2.0  # the paper's VICReg coefficients
    std: float = 40.0
    cov: float = 2.0
    chunks: int = 1
    sigreg_weight: float = 0.05
    sigreg_slices: int = 256
    ema: float = 0.0  # > 0: target encoder = EMA of the encoder with this decay, no gradient
    target: Literal["next", "masked"] = "next"  # next window, or hidden tubes of the same clip
    mask_ratio: float = 0.5  # target=masked: fraction of token positions hidden (all frames)
    gather: bool = True  # all-gather statistics across DDP ranks

    def validate(self) -> None:
        encoder_preset(ENCODER_PRESETS, self.encoder)
        check(0 <= self.ema < 1, "ema", "in [0, 1) (0: no EMA target)", self.ema)
        for key in ("sim", "std", "cov", "sigreg_weight"):
            check(getattr(self, key) >= 0, key, ">= 0", getattr(self, key))
        check(self.chunks >= 1, "chunks", ">= 1", self.chunks)
        check(self.sigreg_slices >= 1, "sigreg_slices", ">= 1", self.sigreg_slices)
        check(0 < self.mask_ratio < 1, "mask_ratio", "in (0, 1)", self.mask_ratio)
        check(
            self.target == "next" or self.stats != "position",
            "stats",
            "'token' or 'window' with target=masked (hidden positions differ per window)",
            self.stats,
        )


class JEPA(PretrainModule):
    name, builder, config_class = "jepa", "convnext3d", JEPAConfig
    shape_fields = ("channels", "frames", "periodic")

    def __init__(
        self,
        in_channels: int,
        frames: int,
        periodic: tuple[bool, bool] = (False, False),
        jepa: dict | None = None,
        optim: dict | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = JEPAConfig(**(jepa or {}))
        self.optim_cfg = OptimConfig(**(optim or {}))
        shape = DataShape(in_channels, frames, (0, 0), tuple(periodic), 0)
        self.encoder_kwargs = convnext_kwargs(self.cfg, shape)
        self.encoder = ConvNeXt3D(**self.encoder_kwargs)
        dim = self.encoder.embed_dim
        self.predictor = ConvPredictor(
            dim, self.cfg.predictor_hidden or 2 * dim, periodic=self.encoder_kwargs["periodic"]
        )
        self.target_encoder = None
        self.ema_updates = 0  # EMA steps taken by this process (tests compare optimiser steps)
        if self.cfg.ema > 0:
            self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.seed = seed

    def loss(
        self, batch: dict, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        # Random masks, slices and shuffles must agree across ranks and be reproducible on resume.
        if generator is None:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.global_step)
        if self.cfg.target == "masked":
            context, pred_tokens, target_tokens = self._masked(batch["context"], generator)
        else:
            context, pred_tokens, target_tokens = self._next_window(batch)
        if self.cfg.gather and dist.is_available() and dist.is_initialized():
            pred_tokens = torch.cat(all_gather(pred_tokens.contiguous()))
            target_tokens = torch.cat(all_gather(target_tokens.contiguous()))
        terms = jepa_regularised_loss(
            pred_tokens,
            target_tokens,
            kind=self.cfg.loss,
            stats=self.cfg.stats,
            sim=self.cfg.sim if self.cfg.loss == "vicreg" else None,
            std=self.cfg.std,
            cov=self.cfg.cov,
            chunks=self.cfg.chunks,
            sigreg_weight=self.cfg.sigreg_weight,
            num_slices=self.cfg.sigreg_slices,
            generator=generator,
        )
        terms["context_tokens"] = _tokens(context)
        return terms

    def _target(self, clip: torch.Tensor) -> torch.Tensor:
        """The target branch: the EMA encoder without gradient, else the shared encoder."""
        if self.target_encoder is None:
            return self.encoder(clip)
        with torch.no_grad():
            return self.target_encoder(clip)

    def _next_window(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The paper's objective: the context window's map predicts the next window's."""
        if self.target_encoder is None:
            # one pass over context and target together: the encoder has no batch statistics,
            # so this is the same computation, and on a CPU about twice as fast (bigger kernels)
            both = self.encoder(torch.cat([batch["context"], batch["target"]]))
            context, target = both.chunk(2)
        else:
            context, target = self.encoder(batch["context"]), self._target(batch["target"])
        return context, _tokens(self.predictor(context)), _tokens(target)

    def _masked(
        self, clip: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """V-JEPA's objective on a conv encoder: hide random token tubes of the clip (zero,
        the z-scored mean, at every frame), encode what is left, and predict the full clip's
        embedding at the hidden positions only. Returns (context map, predicted tokens,
        target tokens) with the tokens gathered at the hidden positions, (B, k, D)."""
        b, _, _, height, width = clip.shape
        stride = self.encoder.stride
        h, w = height // stride, width // stride
        hidden = hidden_positions(b, h * w, self.cfg.mask_ratio, generator).to(clip.device)
        visible = torch.ones(b, h * w, device=clip.device, dtype=clip.dtype)
        visible.scatter_(1, hidden, 0.0)
        pixels = visible.view(b, 1, 1, h, 1, w, 1).expand(-1, -1, -1, -1, stride, -1, stride)
        masked = clip * pixels.reshape(b, 1, 1, height, width)
        if self.target_encoder is None:  # one pass over both, as in _next_window
            context, target = self.encoder(torch.cat([masked, clip])).chunk(2)
        else:
            context, target = self.encoder(masked), self._target(clip)

        def gather(feature_map: torch.Tensor) -> torch.Tensor:
            tokens = _tokens(feature_map)
            return tokens.gather(1, hidden.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))

        return context, gather(self.predictor(context)), gather(target)

    def optimizer_step(self, *args, **kwargs) -> None:
        """Step, then move the EMA target: once per optimiser step whatever
        `accumulate_grad_batches` is (a per-batch hook would decay by ema^k with k
        accumulated batches, so 0.99 over 32 would act like 0.72)."""
        super().optimizer_step(*args, **kwargs)
        if self.target_encoder is not None:
            self.ema_updates += 1
            with torch.no_grad():
                for t, s in zip(self.target_encoder.parameters(), self.encoder.parameters()):
                    t.lerp_(s, 1.0 - self.cfg.ema)

    def trainable(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder, "predictor": self.predictor}


def hidden_positions(
    batch: int, positions: int, ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """(batch, k) distinct token positions per window, k = ratio of them (at least one hidden
    and one visible), drawn from `generator` so that every rank and a resumed run agree."""
    k = max(1, min(positions - 1, round(ratio * positions)))
    return torch.rand(batch, positions, generator=generator).argsort(dim=1)[:, :k]


def _tokens(feature_map: torch.Tensor) -> torch.Tensor:
    """(B, D, h, w) -> (B, h*w, D)."""
    return feature_map.flatten(2).transpose(1, 2)
