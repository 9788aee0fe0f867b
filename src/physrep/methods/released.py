"""The paper's released JEPA (encoder, predictor, chunked VICReg) in physrep's training loop.

Everything the authors wrote comes from the checkout named by `code` (see
physrep.models.released); physrep supplies the windows, optimiser, schedule, seeds and
probes, so a difference between this row and `jepa_paper` is a difference of implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from physrep.config import check
from physrep.methods.common import OptimConfig, PretrainModule
from physrep.models.released import ReleasedEncoder, code_root, released_modules


@dataclass
class ReleasedJEPAConfig:
    code: str = ""  # checkout of the paper's repository ("" : $PHYSREP_RELEASED_CODE)
    dims: list[int] = field(default_factory=lambda: [16, 32, 64, 128])  # physrep's small8
    depths: list[int] = field(default_factory=lambda: [1, 1, 2, 2])
    sim: float = 2.0  # the coefficients every released config sets
    std: float = 40.0
    cov: float = 2.0
    chunks: int = 5  # its loss shuffles token rows into 5 chunks

    def validate(self) -> None:
        check(
            len(self.dims) == len(self.depths) >= 2, "depths", "one per entry of dims", self.depths
        )
        check(self.chunks >= 1, "chunks", ">= 1", self.chunks)


class ReleasedJEPA(PretrainModule):
    name, builder, config_class = "jepa_released", "released", ReleasedJEPAConfig

    def __init__(
        self,
        in_channels: int,
        frames: int,
        jepa_released: dict | None = None,
        optim: dict | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = ReleasedJEPAConfig(**(jepa_released or {}))
        self.optim_cfg = OptimConfig(**(optim or {}))
        self.encoder_kwargs = {
            "code": code_root(self.cfg.code),
            "in_channels": in_channels,
            "frames": frames,
            "dims": tuple(self.cfg.dims),
            "depths": tuple(self.cfg.depths),
        }
        self.encoder = ReleasedEncoder(**self.encoder_kwargs)
        model_utils, model = released_modules(self.encoder_kwargs["code"])
        self.predictor = model_utils.ConvPredictor(dims=[self.cfg.dims[-1]])
        self._vicreg = model.vicreg_loss_3d
        self.seed = seed

    def loss(
        self, batch: dict, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        # its recipe: one encoder on both clips, gradients through both, no EMA
        context, target = self.encoder(torch.cat([batch["context"], batch["target"]])).chunk(2)
        pred = self.predictor(context)
        out = self._vicreg(
            pred.unsqueeze(2),
            target.unsqueeze(2),
            self.cfg.sim,
            self.cfg.std,
            self.cfg.cov,
            n_chunks=self.cfg.chunks,
        )
        return {
            "loss": out["loss"],
            "invariance": out["repr_loss"],
            "variance": out["std_loss"],
            "covariance": out["cov_loss"],
            "context_tokens": context.flatten(2).transpose(1, 2),
        }

    def trainable(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder, "predictor": self.predictor}
