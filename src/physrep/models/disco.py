"""DISCO-style operator inference: a transformer reads a short trajectory and writes the weights
of a small conv network that is then integrated in time (Morel, Han & Oyallon, ICML 2025).

The split is what makes it a representation learner for physics: the hypernetwork has to put
into one small latent z whatever distinguishes this trajectory's evolution law from the
others', because the operator network that advances the state sees nothing else. z is what
`encode` returns and what gets probed.

Shapes: the context is (B, C, T, H, W); the operator maps a state (B, C, H, W) to its time
derivative with per-sample weights theta (B, P), P = `n_operator_params`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from physrep.models.vit import VideoViT

# Presets: constructor arguments other than in_channels, frames, image_size and periodic.
# "paper" is the paper's ViT-S/16 hypernetwork; "cpu" shrinks width, depth and patch for
# 32-64 px clips; "tiny" is for tests (16 px frames, patch 4).
DISCO_PRESETS: dict[str, dict] = {
    "paper": dict(dim=384, depth=12, heads=6, patch=16, tubelet=2, latent=384, hidden=32, kernel=3),
    "cpu": dict(dim=96, depth=4, heads=3, patch=8, tubelet=2, latent=128, hidden=16, kernel=3),
    "tiny": dict(dim=48, depth=2, heads=2, patch=4, tubelet=2, latent=16, hidden=8, kernel=3),
}


def pad_mixed(x: torch.Tensor, pad: int, periodic: tuple[bool, bool]) -> torch.Tensor:
    """Pad the last two axes (H, W) of (N, C, H, W) by `pad`: circular on periodic axes,
    zeros on wall axes, so a conv sees the domain's true neighbours."""
    if pad == 0:
        return x
    ph, pw = (pad if p else 0 for p in periodic)
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph), mode="circular")
    zh, zw = pad - ph, pad - pw
    if zh or zw:
        x = F.pad(x, (zw, zw, zh, zh))
    return x


class OperatorNet(nn.Module):
    """du/dt = conv1x1(GELU(conv_k(GELU(conv_k(u))))), with weights given per sample.

    It owns no parameters: `forward(u, theta)` unpacks the flat (B, P) vector into conv
    kernels and folds the batch into conv groups, so B different operators run as one conv.
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        kernel: int = 3,
        periodic: tuple[bool, bool] = (False, False),
    ):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"operator kernel must be odd and positive, got {kernel}")
        if len(periodic) != 2:
            raise ValueError(f"periodic must be two flags (H, W), got {periodic}")
        self.channels, self.hidden, self.kernel = channels, hidden, kernel
        self.periodic = tuple(bool(p) for p in periodic)
        # (out, in, k) of each conv, in the order their weights then biases sit in theta
        self.layers = [(hidden, channels, kernel), (hidden, hidden, kernel), (channels, hidden, 1)]
        self.sizes = [s for o, i, k in self.layers for s in (o * i * k * k, o)]
        self.n_params = sum(self.sizes)

    def init_theta(self, last_scale: float = 0.1) -> torch.Tensor:
        """A flat base operator: fan-in scaled kernels, zero biases, and a last layer scaled by
        `last_scale` so that du/dt starts small and a rollout starts close to copying."""
        parts = []
        for n, (o, i, k) in enumerate(self.layers):
            std = 1.0 / math.sqrt(i * k * k) * (last_scale if n == len(self.layers) - 1 else 1)
            parts += [torch.randn(o * i * k * k) * std, torch.zeros(o)]
        return torch.cat(parts)

    def unpack(self, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(B, P) -> per layer (weight (B*out, in, k, k), bias (B*out,)) for a grouped conv."""
        chunks = theta.split(self.sizes, dim=1)
        out = []
        for n, (o, i, k) in enumerate(self.layers):
            w, b = chunks[2 * n], chunks[2 * n + 1]
            w = rearrange(w, "b (o i kh kw) -> (b o) i kh kw", o=o, i=i, kh=k, kw=k)
            out.append((w, b.reshape(-1)))
        return out

    def forward(self, u: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        if u.ndim != 4 or u.shape[1] != self.channels:
            raise ValueError(
                f"operator expects a state (B, {self.channels}, H, W), got {tuple(u.shape)}"
            )
        if theta.shape != (u.shape[0], self.n_params):
            raise ValueError(
                f"operator expects theta (B, P) = ({u.shape[0]}, {self.n_params}), "
                f"got {tuple(theta.shape)}"
            )
        b = u.shape[0]
        x = rearrange(u, "b c h w -> 1 (b c) h w")
        params = self.unpack(theta)
        for n, (w, bias) in enumerate(params):
            k = w.shape[-1]
            x = F.conv2d(pad_mixed(x, k // 2, self.periodic), w, bias, groups=b)
            if n < len(params) - 1:
                x = F.gelu(x)
        return rearrange(x, "1 (b c) h w -> b c h w", b=b)


class DiscoEncoder(nn.Module):
    """Hypernetwork + operator: context (B, C, T, H, W) -> latent z -> operator weights theta.

    Each sample's context is standardised per channel over (T, H, W) and the rollout mapped
    back (reversible normalisation), so one operator family serves fields of any scale. A video
    ViT reads the standardised context, one learned query pools its tokens by cross-attention,
    and a projection + LayerNorm gives z (B, latent). The removed statistics (each channel's
    mean and log std) join the pooled tokens as one more token: a nonlinear law's dynamics in
    standardised units depend on the amplitude (advection speed scales with it), and the
    amplitude can itself be what a parameter sets, so z must be able to see it. theta = theta0 + W z: theta0 is a learned
    base operator shared by all trajectories and W starts near zero, so training starts from
    one shared operator and learns per-trajectory modulations of it, rather than having to
    produce a working network from an untrained transformer's output.
    """

    def __init__(
        self,
        in_channels: int,
        frames: int,
        image_size: tuple[int, int] | list,
        dim: int = 96,
        depth: int = 4,
        heads: int = 3,
        patch: int = 8,
        tubelet: int = 2,
        latent: int = 128,
        hidden: int = 16,
        kernel: int = 3,
        periodic: tuple[bool, bool] | list = (False, False),
    ):
        super().__init__()
        image_size = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.image_size, self.periodic = tuple(image_size), tuple(bool(p) for p in periodic)
        if len(self.image_size) != 2:
            raise ValueError(f"image_size must be (H, W), got {image_size}")
        self.in_channels, self.frames, self.latent = in_channels, frames, latent
        self.backbone = VideoViT(
            in_channels, dim, depth, heads, patch, tubelet, self.image_size, frames
        )
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.query, std=0.02)
        self.pool = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.stats_embed = nn.Linear(2 * in_channels, dim)
        self.proj = nn.Sequential(nn.Linear(dim, latent), nn.LayerNorm(latent))
        self.op = OperatorNet(in_channels, hidden, kernel, self.periodic)
        self.n_operator_params = self.op.n_params
        self.theta0 = nn.Parameter(self.op.init_theta())
        self.modulation = nn.Linear(latent, self.n_operator_params, bias=False)
        # z is LayerNorm'd (entries ~1): this gives modulations of ~1e-2 at the start
        nn.init.normal_(self.modulation.weight, std=1e-2 / math.sqrt(latent))
        self.embed_dim = latent

    def _check(self, x: torch.Tensor) -> None:
        expected = (self.in_channels, self.frames, *self.image_size)
        if x.ndim != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"expected a context (B, C, T, H, W) = (B, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}"
            )

    @staticmethod
    def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample, per-channel mean and std over (T, H, W), shaped (B, C, 1, 1, 1)."""
        var, mean = torch.var_mean(x, dim=(2, 3, 4), keepdim=True, correction=0)
        return mean, (var + 1e-5).sqrt()

    def _latent(self, xn: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([mean.flatten(1), std.log().flatten(1)], dim=1)
        tokens = torch.cat([self.backbone.encode(xn), self.stats_embed(stats)[:, None]], dim=1)
        pooled, _ = self.pool(self.query.expand(len(xn), -1, -1), tokens, tokens)
        return self.proj(pooled)  # (B, 1, latent)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 1, latent): the latent that parameterises the operator."""
        self._check(x)
        mean, std = self._stats(x)
        return self._latent((x - mean) / std, mean, std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)

    def _theta_from_latent(self, z: torch.Tensor) -> torch.Tensor:
        return self.theta0 + self.modulation(z[:, 0])

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, P): this context's operator weights."""
        return self._theta_from_latent(self.encode(x))

    def operator(self, u: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """du/dt (B, C, H, W) of a standardised state u (B, C, H, W) under weights (B, P)."""
        return self.op(u, theta)

    def rollout(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """The `steps` frames after the context, (B, C, steps, H, W), in the input's units.

        One Heun (RK2) step per frame, with the frame interval as unit time: the operator is
        tiny next to the hypernetwork, so a second evaluation costs little and buys
        second-order accuracy and a larger stable step than explicit Euler, which keeps the
        learned du/dt closer to a rate than to a one-step update.
        """
        self._check(x)
        if steps < 1:
            raise ValueError(f"rollout steps must be at least 1, got {steps}")
        mean, std = self._stats(x)
        xn = (x - mean) / std
        theta = self._theta_from_latent(self._latent(xn, mean, std))
        u, frames = xn[:, :, -1], []
        for _ in range(steps):
            k1 = self.op(u, theta)
            k2 = self.op(u + k1, theta)
            u = u + 0.5 * (k1 + k2)
            frames.append(u)
        return torch.stack(frames, dim=2) * std + mean
