"""Supervised control: the JEPA encoder architecture trained end to end on the parameters.

An upper reference for every table: what this encoder can extract when the labels themselves
shape it. The head (mean-pooled tokens -> LayerNorm -> Linear) is deliberately weak so that
the encoder, not the head, has to carry the information the downstream probes then read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from physrep.methods.common import OptimConfig, PretrainModule, convnext_kwargs, log_terms
from physrep.models import ConvNeXt3D


@dataclass
class SupervisedConfig:
    encoder: str = "tiny"  # preset of physrep.models.ENCODER_PRESETS (the benchmark uses JEPA's)
    encoder_args: dict = field(default_factory=dict)
    padding: Literal["auto", "zeros", "circular"] = "auto"


class Supervised(PretrainModule):
    builder, method_name = "convnext3d", "supervised"

    def __init__(
        self,
        in_channels: int,
        frames: int,
        n_params: int,
        periodic: tuple[bool, bool] = (False, False),
        supervised: dict | None = None,
        optim: dict | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = SupervisedConfig(**(supervised or {}))
        self.optim_cfg = OptimConfig(**(optim or {}))
        self.encoder_kwargs = convnext_kwargs(self.cfg, in_channels, frames, periodic)
        self.encoder = ConvNeXt3D(**self.encoder_kwargs)
        dim = self.encoder.embed_dim
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_params))
        self.seed = seed

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode(x)

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        tokens = self.encoder.encode(batch["context"])
        pred = self.head(tokens.mean(dim=1))
        return {"loss": F.mse_loss(pred, batch["params"]), "context_tokens": tokens}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.loss(batch)
        log_terms(self, "train", terms, len(batch["context"]))
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        terms = self.loss(batch)
        log_terms(self, "val", terms, len(batch["context"]))
        self._val_pooled.append(terms["context_tokens"].mean(dim=1).detach())

    def trainable(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "head": self.head}
