"""Encoders, predictors and decoders: plain `nn.Module`s configured by constructor arguments.

Every encoder has `encode(x) -> (B, N, D)` tokens, the one call downstream code relies on.
"""

from physrep.models.avit import AVIT_PRESETS, AViT
from physrep.models.convnext3d import ENCODER_PRESETS, ConvNeXt3D, ConvNeXtBlock
from physrep.models.disco import DISCO_PRESETS, DiscoEncoder
from physrep.models.predictor import ConvPredictor
from physrep.models.vit import (
    VIT_PRESETS,
    VideoMAEDecoder,
    VideoViT,
    patchify,
    random_tube_keep,
    unpatchify,
)

__all__ = [
    "AVIT_PRESETS",
    "DISCO_PRESETS",
    "ENCODER_PRESETS",
    "VIT_PRESETS",
    "AViT",
    "ConvNeXt3D",
    "ConvNeXtBlock",
    "ConvPredictor",
    "DiscoEncoder",
    "VideoMAEDecoder",
    "VideoViT",
    "patchify",
    "random_tube_keep",
    "unpatchify",
]
