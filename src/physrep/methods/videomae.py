"""VideoMAE: reconstruct the pixels of masked space-time tubes from the visible ones.

Tube masking (the same spatial patches hidden in every time slot, 90 % by default), an
asymmetric encoder/decoder (the encoder only ever sees the visible tubes), and MSE on
per-patch normalised pixels of the masked tubes. Only the context clip is used; the frozen
encoder is probed with every tube visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from physrep.config import check
from physrep.losses import masked_patch_mse
from physrep.methods.common import OptimConfig, PretrainModule, encoder_preset
from physrep.models import VIT_PRESETS, VideoMAEDecoder, VideoViT, patchify, random_tube_keep


@dataclass
class VideoMAEConfig:
    encoder: str = "tiny"  # preset of physrep.models.VIT_PRESETS
    encoder_args: dict = field(default_factory=dict)
    mask_ratio: float = 0.9
    decoder_dim: int = 0  # 0: half the encoder width
    decoder_depth: int = 2
    decoder_heads: int = 2
    normalize_pixels: bool = True

    def validate(self) -> None:
        encoder_preset(VIT_PRESETS, self.encoder)
        check(0 < self.mask_ratio < 1, "mask_ratio", "in (0, 1)", self.mask_ratio)
        check(self.decoder_depth >= 1, "decoder_depth", ">= 1", self.decoder_depth)
        check(self.decoder_heads >= 1, "decoder_heads", ">= 1", self.decoder_heads)


class VideoMAE(PretrainModule):
    name, builder, config_class = "videomae", "vit", VideoMAEConfig
    shape_fields = ("channels", "frames", "frame_shape")

    def __init__(
        self,
        in_channels: int,
        frames: int,
        image_size: tuple[int, int],
        videomae: dict | None = None,
        optim: dict | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = VideoMAEConfig(**(videomae or {}))
        self.optim_cfg = OptimConfig(**(optim or {}))
        self.encoder_kwargs = {
            **encoder_preset(VIT_PRESETS, self.cfg.encoder),
            **self.cfg.encoder_args,
            "in_channels": in_channels,
            "frames": frames,
            "image_size": tuple(image_size),
        }
        self.encoder = VideoViT(**self.encoder_kwargs)
        width = self.cfg.decoder_dim or self.encoder.embed_dim // 2
        self.decoder = VideoMAEDecoder(
            self.encoder.num_patches,
            self.encoder.patch_dim,
            enc_dim=self.encoder.embed_dim,
            dim=width,
            depth=self.cfg.decoder_depth,
            heads=self.cfg.decoder_heads,
        )
        self.seed = seed

    def loss(
        self, batch: dict, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        x = batch["context"]
        keep = random_tube_keep(len(x), self.encoder.grid, self.cfg.mask_ratio, generator)
        keep = keep.to(x.device)
        pred = self.decoder(self.encoder.encode(x, keep), keep)
        target = patchify(x, self.encoder.tubelet, self.encoder.patch)
        mask = torch.ones(target.shape[:2], dtype=torch.bool, device=x.device)
        mask.scatter_(1, keep, False)
        return masked_patch_mse(
            pred, target, mask, normalize=self.cfg.normalize_pixels, channels=x.shape[1]
        )

    def trainable(self) -> dict[str, torch.nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}
