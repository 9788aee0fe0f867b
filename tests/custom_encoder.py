"""A hand-written encoder of the kind a user brings: not a physrep model (tests import it)."""

import torch
import torch.nn.functional as F
from torch import nn


class PatchMeans(nn.Module):
    """(B, C, T, H, W) -> (B, 16, dim): each 4x4 patch's channel means over time, projected."""

    def __init__(self, channels: int = 4, dim: int = 8):
        super().__init__()
        self.proj = nn.Linear(channels, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool3d(x, (1, 4, 4)).flatten(2).transpose(1, 2)
        return self.proj(pooled)


def make_encoder() -> PatchMeans:
    torch.manual_seed(0)
    return PatchMeans()
