"""A video ViT with tubelet patches, and the VideoMAE decoder, for the pixel-reconstruction baseline.

A (B, C, T, H, W) clip is cut into tubelet x patch x patch tubes (ViT-S/16 with tubelet 2 at
16 x 224^2: 8 x 14 x 14 = 1568 tokens), each linearly embedded, plus a fixed 3D sin-cos position.
`encode(x, keep)` runs the transformer on the kept tokens only, which is what makes VideoMAE's
encoder cheap at a 90 % mask ratio; the decoder puts mask tokens back and predicts every tube's
pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

# Presets: constructor arguments other than in_channels. "small" is ViT-S/16 as in the paper's
# code (~22 M params); the CPU presets shrink width, depth and patch for 32-64 px clips.
VIT_PRESETS: dict[str, dict] = {
    "small": dict(dim=384, depth=12, heads=6, patch=16, tubelet=2, image_size=224, frames=16),
    # 16 frames at 64 px, patch 8: 8 x 8 x 8 = 512 tokens of 192.
    "cpu": dict(dim=192, depth=6, heads=3, patch=8, tubelet=2, image_size=64, frames=16),
    # 8 frames at 32 px, patch 8: 4 x 4 x 4 = 64 tokens of 48 (tests).
    "tiny": dict(dim=48, depth=2, heads=2, patch=8, tubelet=2, image_size=32, frames=8),
}


def patchify(x: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, N, tubelet*patch*patch*C), tubes in (t, h, w) row-major order."""
    return rearrange(x, "b c (t u) (h p) (w q) -> b (t h w) (u p q c)", u=tubelet, p=patch, q=patch)


def unpatchify(
    tokens: torch.Tensor, grid: tuple[int, int, int], tubelet: int, patch: int
) -> torch.Tensor:
    """Inverse of `patchify`: (B, N, tubelet*patch*patch*C) -> (B, C, T, H, W)."""
    t, h, w = grid
    return rearrange(
        tokens,
        "b (t h w) (u p q c) -> b c (t u) (h p) (w q)",
        t=t, h=h, w=w, u=tubelet, p=patch, q=patch,
    )  # fmt: skip


def _sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(N,) positions -> (N, dim) [sin | cos] features at geometric frequencies."""
    freqs = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = positions.double()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_3d(grid: tuple[int, int, int], dim: int) -> torch.Tensor:
    """Fixed (N, dim) position code: a third of the width each for t, h and w."""
    if dim % 6:
        raise ValueError(f"width {dim} must be divisible by 6 for the 3D sin-cos embedding")
    t, h, w = torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij")
    return torch.cat([_sincos_1d(a.flatten(), dim // 3) for a in (t, h, w)], dim=1)


def random_tube_keep(
    batch: int, grid: tuple[int, int, int], mask_ratio: float, generator=None
) -> torch.Tensor:
    """VideoMAE tube masking: indices (B, N_keep) of visible tokens, the same spatial tubes
    kept in every time slot (so a masked pixel cannot be copied from its neighbour in time)."""
    t, h, w = grid
    n_keep = max(1, round(h * w * (1 - mask_ratio)))
    spatial = torch.rand(batch, h * w, generator=generator).argsort(dim=1)[:, :n_keep]
    spatial = spatial.sort(dim=1).values
    return (torch.arange(t)[None, :, None] * (h * w) + spatial[:, None, :]).flatten(1)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (s h d) -> s b h n d", s=3, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class Block(nn.Module):
    """Pre-norm transformer block: attention then a 4x GELU MLP, each residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        hidden = int(dim * mlp_ratio)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, N, D), index (B, K) -> (B, K, D)."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))


class VideoViT(nn.Module):
    """Video ViT: (B, C, T, H, W) -> (B, N, dim) tokens, N = (T/tubelet)(H/patch)(W/patch)."""

    def __init__(
        self,
        in_channels: int,
        dim: int = 384,
        depth: int = 12,
        heads: int = 6,
        patch: int = 16,
        tubelet: int = 2,
        image_size: int | tuple[int, int] = 224,
        frames: int = 16,
    ):
        super().__init__()
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        if frames % tubelet or h % patch or w % patch:
            raise ValueError(
                f"clip {frames}x{h}x{w} must be divisible by tubelet {tubelet} and patch {patch}"
            )
        self.in_channels, self.patch, self.tubelet = in_channels, patch, tubelet
        self.grid = (frames // tubelet, h // patch, w // patch)
        self.num_patches, self.embed_dim = math.prod(self.grid), dim
        self.patch_dim = tubelet * patch * patch * in_channels
        self.patch_embed = nn.Linear(self.patch_dim, dim)  # = Conv3d with kernel = stride = tube
        self.register_buffer("pos", sincos_3d(self.grid, dim), persistent=False)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)

    def encode(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens (B, N, dim), or (B, N_keep, dim) for the visible tubes `keep` (B, N_keep):
        the dropped tubes are never embedded, so they cannot influence the output."""
        expected = (self.in_channels, self.grid[0] * self.tubelet)
        if x.ndim != 5 or tuple(x.shape[1:3]) != expected:
            raise ValueError(f"expected input (B, C, T) = (B, *{expected}), got {tuple(x.shape)}")
        patches = patchify(x, self.tubelet, self.patch)
        if patches.shape[1] != self.num_patches:
            raise ValueError(f"expected {self.num_patches} patches, got {patches.shape[1]}")
        pos = self.pos.expand(x.shape[0], -1, -1)
        if keep is not None:
            patches, pos = _gather(patches, keep), _gather(pos, keep)
        return self.norm(self.blocks(self.patch_embed(patches) + pos))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(x, keep)


class VideoMAEDecoder(nn.Module):
    """Visible tokens + their indices -> per-tube pixel predictions (B, num_patches, patch_dim).

    Encoder tokens are projected to the decoder width and scattered into a sequence of learned
    mask tokens; a fixed 1D sin-cos position (as in VideoMAE) tells each slot where it is.
    """

    def __init__(
        self,
        num_patches: int,
        patch_dim: int,
        enc_dim: int = 384,
        dim: int = 192,
        depth: int = 4,
        heads: int = 3,
    ):
        super().__init__()
        self.proj = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.register_buffer("pos", _sincos_1d(torch.arange(num_patches), dim), persistent=False)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, patch_dim)

    def forward(self, visible: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n = visible.shape[0], self.pos.shape[0]
        x = self.mask_token.expand(b, n, -1)
        idx = keep[..., None].expand(-1, -1, x.shape[-1])
        x = x.scatter(1, idx, self.proj(visible)) + self.pos
        return self.head(self.norm(self.blocks(x)))
