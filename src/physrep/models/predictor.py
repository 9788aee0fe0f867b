"""The JEPA predictor: a small shape-preserving conv net on the encoder's (B, D, h, w) map.

Conv2d D -> hidden (kernel 2, padding 1: h -> h+1), one 2D ConvNeXt block, Conv2d hidden -> D
(kernel 2: h+1 -> h). At the paper's 128 -> 256 it has 801,664 parameters and a receptive field
of about 9x9 tokens. Padding follows the encoder: circular on periodic axes, zero elsewhere.
"""

from __future__ import annotations

import torch
from torch import nn

from physrep.models.convnext3d import ConvNeXtBlock, _pad_hw


class ConvPredictor(nn.Module):
    """(B, D, h, w) -> (B, D, h, w); computes channels-last like the encoder."""

    def __init__(
        self,
        dim: int = 128,
        hidden: int = 256,
        kernel_size: int = 7,
        periodic: tuple[bool, bool] = (False, False),
    ):
        super().__init__()
        self.periodic = tuple(periodic)
        self.expand = nn.Conv2d(dim, hidden, 2)
        self.block = ConvNeXtBlock(hidden, 2, kernel_size, self.periodic)
        self.reduce = nn.Conv2d(hidden, dim, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = _pad_hw(z.permute(0, 2, 3, 1), 1, 1, self.periodic)
        x = self.expand(x.movedim(-1, 1)).movedim(1, -1)
        x = self.block(x)
        return self.reduce(x.movedim(-1, 1))
