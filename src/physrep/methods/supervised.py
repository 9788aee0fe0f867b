"""Supervised control: the JEPA encoder architecture trained end to end on the parameters.

An upper reference for every table: what this encoder can extract when the labels themselves
shape it. The head (mean-pooled tokens -> LayerNorm -> Linear) is deliberately weak so that
the encoder, not the head, has to carry the information the downstream probes then read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from physrep.methods.common import DataShape, OptimConfig, PretrainModule, convnext_kwargs
from physrep.models import ConvNeXt3D

if TYPE_CHECKING:
    from physrep.train import PretrainConfig


@dataclass
class SupervisedConfig:
    encoder: str = "tiny"  # preset of physrep.models.ENCODER_PRESETS (the benchmark uses JEPA's)
    encoder_args: dict = field(default_factory=dict)
    padding: Literal["auto", "zeros", "circular"] = "auto"


class Supervised(PretrainModule):
    # no config section of its own: it reads JEPA's encoder, so it is the same architecture
    name, builder, config_class = "supervised", "convnext3d", None

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
        shape = DataShape(in_channels, frames, (0, 0), tuple(periodic), n_params)
        self.encoder_kwargs = convnext_kwargs(self.cfg, shape)
        self.encoder = ConvNeXt3D(**self.encoder_kwargs)
        dim = self.encoder.embed_dim
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_params))
        self.seed = seed

    @classmethod
    def from_config(cls, cfg: PretrainConfig, shape: DataShape) -> Supervised:
        encoder = {k: getattr(cfg.jepa, k) for k in ("encoder", "encoder_args", "padding")}
        args = (shape.channels, shape.frames, shape.n_params, shape.periodic)
        return cls(*args, supervised=encoder, optim=asdict(cfg.optim), seed=cfg.seed)

    def loss(
        self, batch: dict, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        tokens = self.encoder.encode(batch["context"])
        pred = self.head(tokens.mean(dim=1))
        return {"loss": F.mse_loss(pred, batch["params"]), "context_tokens": tokens}

    def trainable(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "head": self.head}
