"""DISCO: infer an evolution operator from the context, and train it by rolling it out.

The hypernetwork reads the context clip and writes the weights of a small conv operator; the
operator, integrated from the last context frame, must reproduce the first `rollout_steps`
target frames. The only path from the context to the prediction is the latent z that
parameterises the operator, so z has to carry the trajectory's dynamics: it is the
representation that gets probed (models/disco.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from physrep.config import check
from physrep.errors import ConfigError
from physrep.losses import normalised_mse
from physrep.methods.common import OptimConfig, PretrainModule, encoder_preset
from physrep.models.disco import DISCO_PRESETS, DiscoEncoder


@dataclass
class DiscoConfig:
    encoder: str = "tiny"  # preset of physrep.models.disco.DISCO_PRESETS
    encoder_args: dict = field(default_factory=dict)  # overrides of the preset
    rollout_steps: int = 4  # target frames rolled out and matched (at most the window's)
    eps: float = 1e-2  # added to the target variance, in the windows' (z-scored) units

    def validate(self) -> None:
        encoder_preset(DISCO_PRESETS, self.encoder)
        check(self.rollout_steps >= 1, "rollout_steps", ">= 1", self.rollout_steps)
        check(self.eps >= 0, "eps", ">= 0", self.eps)


class Disco(PretrainModule):
    name, builder, config_class = "disco", "disco", DiscoConfig
    shape_fields = ("channels", "frames", "frame_shape", "periodic")

    def __init__(
        self,
        in_channels: int,
        frames: int,
        image_size: tuple[int, int],
        periodic: tuple[bool, bool] = (False, False),
        disco: dict | None = None,
        optim: dict | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = DiscoConfig(**(disco or {}))
        if not 1 <= self.cfg.rollout_steps <= frames:
            raise ConfigError(
                f"must be in [1, {frames}] (the window's target frames), "
                f"got {self.cfg.rollout_steps}",
                "disco.rollout_steps",
            )
        self.optim_cfg = OptimConfig(**(optim or {}))
        self.encoder_kwargs = {
            **encoder_preset(DISCO_PRESETS, self.cfg.encoder),
            **self.cfg.encoder_args,
            "in_channels": in_channels,
            "frames": frames,
            "image_size": tuple(image_size),
            "periodic": tuple(bool(p) for p in periodic),
        }
        self.encoder = DiscoEncoder(**self.encoder_kwargs)
        self.seed = seed

    def loss(
        self, batch: dict, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        context, target = batch["context"], batch["target"]
        steps = min(self.cfg.rollout_steps, target.shape[2])
        target = target[:, :, :steps]
        pred = self.encoder.rollout(context, steps)
        copy = context[:, :, -1:].expand_as(target)
        return {
            "loss": normalised_mse(pred, target, self.cfg.eps),
            "copy_loss": normalised_mse(copy, target, self.cfg.eps).detach(),
        }

    def trainable(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder}
