"""Autoregressive next-frame prediction with an MPP-style AViT (McCabe et al. 2023).

The model sees the context clip and predicts the frame right after it; the loss is MPP's
normalised MSE (per sample and channel, the squared error over the target frame's spatial
variance), so quiet and energetic channels and trajectories weigh alike. `copy_loss` is the same
score for persistence (repeating the last context frame): a model that does not beat it has
learned nothing about the dynamics. The probed tokens are the last context step's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from physrep.config import check
from physrep.losses import normalised_mse
from physrep.methods.common import OptimConfig, PretrainModule, encoder_preset
from physrep.models.avit import AVIT_PRESETS, AViT


@dataclass
class AutoregressiveConfig:
    encoder: str = "tiny"  # preset of physrep.models.avit.AVIT_PRESETS
    encoder_args: dict = field(default_factory=dict)
    # added to the target frame's variance in the normalised MSE, in the windows' (z-scored)
    # units: a nearly uniform channel (variance << 1e-2) then weighs like an ordinary one
    # instead of dividing its error by ~0
    eps: float = 1e-2

    def validate(self) -> None:
        encoder_preset(AVIT_PRESETS, self.encoder)
        check(self.eps >= 0, "eps", ">= 0", self.eps)


class Autoregressive(PretrainModule):
    name, builder, config_class = "autoregressive", "avit", AutoregressiveConfig
    shape_fields = ("channels", "frames", "frame_shape", "periodic")

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
        self.encoder_kwargs = {
            **encoder_preset(AVIT_PRESETS, self.cfg.encoder),
            **self.cfg.encoder_args,
            "in_channels": in_channels,
            "frames": frames,
            "image_size": tuple(image_size),
            "periodic": tuple(periodic),
        }
        self.encoder = AViT(**self.encoder_kwargs)  # with its head, so fine-tuning gets it all
        self.seed = seed

    def loss(
        self, batch: dict, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        context, target = batch["context"], batch["target"][:, :, 0]
        loss = normalised_mse(self.encoder(context), target, self.cfg.eps)
        with torch.no_grad():
            copy_loss = normalised_mse(context[:, :, -1], target, self.cfg.eps)
        return {"loss": loss, "copy_loss": copy_loss}

    def trainable(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder}
