"""Autoregressive next-frame prediction with an MPP-style AViT (McCabe et al. 2023).

The model sees the context clip and predicts the frame right after it; the loss is MPP's
normalised MSE (per sample and channel, the squared error over the target frame's spatial
variance), so quiet and energetic channels and trajectories weigh alike. `copy_loss` is the same
score for persistence (repeating the last context frame): a model that does not beat it has
learned nothing about the dynamics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from physrep.errors import ConfigError
from physrep.losses import normalised_mse
from physrep.methods.common import OptimConfig, PretrainModule, log_terms
from physrep.models.avit import AVIT_PRESETS, AViT


@dataclass
class AutoregressiveConfig:
    encoder: str = "tiny"  # preset of physrep.models.avit.AVIT_PRESETS
    encoder_args: dict = field(default_factory=dict)
    # added to the target frame's variance in the normalised MSE, in the windows' (z-scored)
    # units: a nearly uniform channel (variance << 1e-2) then weighs like an ordinary one
    # instead of dividing its error by ~0
    eps: float = 1e-2


class Autoregressive(PretrainModule):
    builder, method_name = "avit", "autoregressive"

    def __init__(
        self,
        in_channels: int,
        frames: int,
        image_size: tuple[int, int],
        periodic: tuple[bool, bool] = (False, False),
        autoregressive: dict | None = None,
        optim: dict | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = AutoregressiveConfig(**(autoregressive or {}))
        self.optim_cfg = OptimConfig(**(optim or {}))
        if self.cfg.encoder not in AVIT_PRESETS:
            raise ConfigError(
                f"unknown preset '{self.cfg.encoder}' (one of {', '.join(AVIT_PRESETS)})",
                "autoregressive.encoder",
            )
        self.encoder_kwargs = {
            **AVIT_PRESETS[self.cfg.encoder],
            **self.cfg.encoder_args,
            "in_channels": in_channels,
            "frames": frames,
            "image_size": tuple(image_size),
            "periodic": tuple(periodic),
        }
        self.encoder = AViT(**self.encoder_kwargs)  # with its head, so fine-tuning gets it all
        self.seed = seed

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, h*w, D): the last context step's tokens."""
        return self.encoder.encode(x)

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        context, target = batch["context"], batch["target"][:, :, 0]
        loss = normalised_mse(self.encoder(context), target, self.cfg.eps)
        with torch.no_grad():
            copy_loss = normalised_mse(context[:, :, -1], target, self.cfg.eps)
        return {"loss": loss, "copy_loss": copy_loss}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.loss(batch)
        log_terms(self, "train", terms, len(batch["context"]))
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        log_terms(self, "val", self.loss(batch), len(batch["context"]))
        self._val_pooled.append(self.encode(batch["context"]).mean(dim=1).detach())

    def trainable(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder}
