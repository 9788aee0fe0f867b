"""An MPP-style axial video transformer (AViT, McCabe et al. 2023) that predicts the next frame.

Each frame is cut into patch x patch tokens; every block attends over time for each spatial
token, then along H for each column and along W for each row (axial, so the cost grows with
h + w rather than h * w), then applies an MLP. The context is standardised per sample and
channel before the network sees it (MPP's reversible normalisation), and the next frame is
predicted as a residual on the last context frame in the input's units.

Boundary conditions enter through the spatial attention: a per-head relative position bias on
each axis, circular ((i - j) mod n) on periodic axes, so the model commutes with circular shifts
by whole patches and has no positional shortcut there, and plain (i - j) on wall axes, which
also get a learned absolute embedding so that the walls can be located. (MPP's released code
marked walls as periodic.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

# Presets: constructor arguments other than in_channels, frames, image_size and periodic.
AVIT_PRESETS: dict[str, dict] = {
    "ti": dict(dim=192, depth=12, heads=3, patch=16),  # AViT-Ti
    "cpu": dict(dim=96, depth=4, heads=3, patch=8),
    "tiny": dict(dim=32, depth=2, heads=2, patch=4),  # tests
}

NORM_EPS = 1e-6  # added to each sample's per-channel variance before dividing by its root


class RelativeBias(nn.Module):
    """Per-head additive attention bias (heads, n, n) that depends only on the offset i - j:
    taken mod n on a periodic axis (n offsets), as is on a wall axis (2n - 1 offsets)."""

    def __init__(self, n: int, heads: int, periodic: bool):
        super().__init__()
        offset = torch.arange(n)[:, None] - torch.arange(n)[None, :]
        index = offset % n if periodic else offset + n - 1
        self.register_buffer("index", index, persistent=False)
        self.table = nn.Parameter(torch.zeros(heads, n if periodic else 2 * n - 1))
        nn.init.trunc_normal_(self.table, std=0.02)

    def forward(self) -> torch.Tensor:
        return self.table[:, self.index]


class Attention(nn.Module):
    """Multi-head self-attention over (N, L, D) sequences, with an optional relative bias."""

    def __init__(self, dim: int, heads: int, bias: RelativeBias | None = None):
        super().__init__()
        self.heads, self.bias = heads, bias
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "n l (s h d) -> s n h l d", s=3, h=self.heads)
        mask = None if self.bias is None else self.bias().to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(rearrange(out, "n h l d -> n l (h d)"))


class AxialBlock(nn.Module):
    """Pre-norm residual block on (B, T, h, w, D) tokens: attention over time, along H, along
    W, then a GELU MLP."""

    def __init__(
        self,
        dim: int,
        heads: int,
        grid: tuple[int, int],
        periodic: tuple[bool, bool],
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        self.norm_t, self.attn_t = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm_h = nn.LayerNorm(dim)
        self.attn_h = Attention(dim, heads, RelativeBias(grid[0], heads, periodic[0]))
        self.norm_w = nn.LayerNorm(dim)
        self.attn_w = Attention(dim, heads, RelativeBias(grid[1], heads, periodic[1]))
        hidden = int(dim * mlp_ratio)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """`last_only` keeps just the last time step after the temporal attention: all the
        final block's later layers act per step, so the others would be computed for nothing."""
        b, t, h, w, _ = x.shape
        y = rearrange(self.norm_t(x), "b t h w d -> (b h w) t d")
        y = rearrange(self.attn_t(y), "(b h w) t d -> b t h w d", b=b, h=h, w=w)
        x = x + y
        if last_only:
            x, t = x[:, -1:], 1
        y = rearrange(self.norm_h(x), "b t h w d -> (b t w) h d")
        x = x + rearrange(self.attn_h(y), "(b t w) h d -> b t h w d", b=b, t=t, w=w)
        y = rearrange(self.norm_w(x), "b t h w d -> (b t h) w d")
        x = x + rearrange(self.attn_w(y), "(b t h) w d -> b t h w d", b=b, t=t, h=h)
        return x + self.mlp(self.norm_mlp(x))


class AViT(nn.Module):
    """(B, C, T, H, W) context -> next frame (B, C, H, W); `encode` gives the last step's
    (B, h*w, dim) tokens, the representation that gets probed."""

    def __init__(
        self,
        in_channels: int,
        frames: int,
        image_size: tuple[int, int] | list,
        dim: int = 192,
        depth: int = 12,
        heads: int = 3,
        patch: int = 16,
        mlp_ratio: float = 4.0,
        periodic: tuple[bool, bool] = (False, False),
    ):
        super().__init__()
        image_size, periodic = tuple(image_size), tuple(bool(p) for p in periodic)
        if len(image_size) != 2 or len(periodic) != 2:
            raise ValueError(f"image_size {image_size} and periodic {periodic} need two entries")
        if image_size[0] % patch or image_size[1] % patch:
            raise ValueError(f"frames of {image_size} must be divisible by patch {patch}")
        self.in_channels, self.frames, self.patch = in_channels, frames, patch
        self.image_size, self.periodic = image_size, periodic
        self.grid = (image_size[0] // patch, image_size[1] // patch)
        self.num_patches, self.embed_dim = self.grid[0] * self.grid[1], dim
        patch_dim = patch * patch * in_channels
        self.patch_embed = nn.Linear(patch_dim, dim)
        self.time_embed = nn.Parameter(torch.zeros(frames, 1, 1, dim))
        nn.init.trunc_normal_(self.time_embed, std=0.02)
        # absolute position only along wall axes; a periodic axis has no origin to learn
        self.pos_h = self._axis_embedding(self.grid[0], dim, (-1, 1, dim), periodic[0])
        self.pos_w = self._axis_embedding(self.grid[1], dim, (-1, dim), periodic[1])
        self.blocks = nn.ModuleList(
            AxialBlock(dim, heads, self.grid, periodic, mlp_ratio) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, patch_dim)
        nn.init.zeros_(self.head.weight)  # untrained, the model copies the last frame
        nn.init.zeros_(self.head.bias)

    @staticmethod
    def _axis_embedding(n: int, dim: int, shape: tuple, periodic: bool) -> nn.Parameter | None:
        if periodic:
            return None
        pos = nn.Parameter(torch.zeros(n, dim).view(shape))
        nn.init.trunc_normal_(pos, std=0.02)
        return pos

    def _check(self, x: torch.Tensor) -> None:
        expected = (self.in_channels, self.frames)
        if x.ndim != 5 or tuple(x.shape[1:3]) != expected:
            raise ValueError(
                f"expected input (B, C, T, H, W) with (C, T) = {expected}, got {tuple(x.shape)}"
            )
        size = tuple(x.shape[3:])
        if size[0] % self.patch or size[1] % self.patch:
            raise ValueError(f"frame size {size} is not divisible by patch {self.patch}")
        if size != self.image_size:
            raise ValueError(f"expected frames of {self.image_size}, got {size}")

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised last-step tokens (B, h, w, dim) and each sample's per-channel std."""
        self._check(x)
        mean = x.mean(dim=(2, 3, 4), keepdim=True)
        std = (x.var(dim=(2, 3, 4), keepdim=True, unbiased=False) + NORM_EPS).sqrt()
        patches = rearrange(
            (x - mean) / std, "b c t (h p) (w q) -> b t h w (p q c)", p=self.patch, q=self.patch
        )
        tokens = self.patch_embed(patches) + self.time_embed
        if self.pos_h is not None:
            tokens = tokens + self.pos_h
        if self.pos_w is not None:
            tokens = tokens + self.pos_w
        for i, block in enumerate(self.blocks):
            tokens = block(tokens, last_only=i == len(self.blocks) - 1)
        return self.norm(tokens[:, -1]), std

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, h*w, dim): the last time step's tokens, row-major over (h, w)."""
        return rearrange(self._features(x)[0], "b h w d -> b (h w) d")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> the next frame (B, C, H, W), in the input's units."""
        tokens, std = self._features(x)
        delta = rearrange(
            self.head(tokens), "b h w (p q c) -> b c (h p) (w q)", p=self.patch, q=self.patch
        )
        # last frame + normalised residual mapped back: exactly a copy while the head is zero
        return x[:, :, -1] + delta * std[:, :, 0]
