"""The paper's ConvNeXt-style 3D encoder, written for speed on CPU.

A (B, C, T, H, W) clip goes through a (1, 4, 4) stem, then stages of ConvNeXt blocks separated
by stride-2 downsamplings that halve time and space together. Once time reaches 1 it is dropped
and the remaining stages are 2D. The paper preset maps (B, C, 16, 224, 224) to a (B, 128, 14, 14)
map: 2,468,720 parameters with 11 input channels.

Speed (see `benchmarks/train_throughput.py`): activations live channels-last, (B, T, H, W, C),
from the stem to the last block, so LayerNorm and the block's Linear layers need no permute
copies, and every conv sees a channels-last view. The one slow op on CPU is the backward pass of
the depthwise 7x7x7 Conv3d (both its input and weight gradients are ~10x slower than its
forward), so on the CPU a custom autograd function replaces it: the input gradient is a
forward conv with the flipped kernel, and the weight gradient comes from a grouped Conv2d that
treats time as channels (a banded "Toeplitz" weight), which oneDNN runs well. The layers and
parameters stay the paper's; only the summation order, hence fp32 round-off, changes.
`fast="auto"` (the default) takes that path only for tensors on the CPU
(`uses_cpu_tuned_backward`); `fast=True` or `False` forces it either way (tests, benchmarks).

Padding: time and non-periodic spatial axes are zero padded; the spatial axes flagged in
`periodic` (H, then W) are padded circularly, so tokens cannot learn their position from the
border (docs/decisions.md) and the encoder commutes with circular shifts by its total stride.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

Fast = bool | str  # True, False or "auto"

# Presets: constructor arguments other than in_channels. "paper" is the released model;
# "small" and "tiny" keep its structure (stem, ConvNeXt blocks, 7^3 kernels, stride-2 stages
# that collapse time to 1) at CPU cost.
ENCODER_PRESETS: dict[str, dict] = {
    # 5 stages, spatial stride 16, 16 frames -> 1; 224 px -> 14x14 tokens; 2.47 M params (C=11).
    "paper": dict(widths=(16, 32, 64, 128, 128), depths=(3, 3, 3, 9, 3), frames=16),
    # Same stages and widths, 1-3 blocks each: 16 frames at 64 px -> 4x4 tokens of 128.
    "small": dict(widths=(16, 32, 64, 128, 128), depths=(1, 1, 2, 3, 1), frames=16),
    # The small preset's first 4 stages, spatial stride 8: 8 frames at 32 px -> 4x4 tokens of 128.
    "small8": dict(widths=(16, 32, 64, 128), depths=(1, 1, 2, 2), frames=8),
    # 4 narrow stages, spatial stride 8: 8 frames at 32 px -> 4x4 tokens of 32 (tests, demos).
    "tiny": dict(widths=(8, 16, 32, 32), depths=(1, 1, 1, 1), frames=8),
}


def _pad_hw(
    x: torch.Tensor, lo: int, hi: int, periodic: tuple[bool, bool], pad_zero: bool = True
) -> torch.Tensor:
    """Pad the H and W axes of a channels-last tensor (..., H, W, C) by (lo, hi).

    Periodic axes wrap around; the others get zeros only if `pad_zero` (a conv can zero pad
    those itself, more cheaply).
    """
    for dim, wrap in ((-3, periodic[0]), (-2, periodic[1])):
        if wrap:  # modular indices also cover pads wider than the axis (tiny late-stage maps)
            idx = torch.arange(-lo, x.shape[dim] + hi, device=x.device) % x.shape[dim]
            x = x.index_select(dim, idx)
        elif pad_zero:
            x = F.pad(x, [0, 0] * (-dim - 1) + [lo, hi])
    return x


def _toeplitz_weight_grad(
    x: torch.Tensor, grad: torch.Tensor, k: int, padding: tuple[int, int, int]
) -> torch.Tensor:
    """Weight gradient of a depthwise Conv3d, via a grouped Conv2d with time as channels.

    A depthwise conv over (T, H, W) equals, per channel c, a Conv2d from T input to T_out output
    channels whose (t_out, t_in) kernel is w[c, t_in - t_out + p_t] (zero off the band). oneDNN
    computes that Conv2d's weight gradient fast; summing it along the band gives the Conv3d's.
    """
    c, t = x.shape[1:3]
    t_out = grad.shape[2]
    x2 = rearrange(x, "b c t h w -> b h w (c t)").contiguous().permute(0, 3, 1, 2)
    g2 = rearrange(grad, "b c t h w -> b h w (c t)").contiguous().permute(0, 3, 1, 2)
    shape = x.new_empty(c * t_out, t, k, k)
    _, gw, _ = torch.ops.aten.convolution_backward(
        g2, x2, shape, None, (1, 1), padding[1:], (1, 1), False, (0, 0), c, (False, True, False)
    )
    t_in = torch.arange(t, device=x.device)
    t_o = torch.arange(t_out, device=x.device)
    taps = torch.arange(k, device=x.device)
    band = (t_in[None, :, None] - t_o[:, None, None] + padding[0]) == taps  # (t_out, t_in, k)
    gw = rearrange(gw, "(c a) b h w -> c a b h w", c=c)
    return torch.einsum("cabhw,abk->ckhw", gw, band.to(gw.dtype)).unsqueeze(1)


class _FastDepthwiseConv3d(torch.autograd.Function):
    """Depthwise Conv3d with a backward pass built from fast forward-style convolutions."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv3d(x, weight, bias, padding=padding, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        k, pad = weight.shape[-1], ctx.padding
        grad = grad.contiguous(memory_format=torch.channels_last_3d)
        with torch.autocast(x.device.type, enabled=False):  # grads keep their own dtype
            dtype = grad.dtype
            gx = F.conv3d(
                grad,
                weight.to(dtype).flip(2, 3, 4),
                padding=tuple(k - 1 - p for p in pad),
                groups=x.shape[1],
            )
            gw = _toeplitz_weight_grad(x.to(dtype), grad, k, pad)
        gb = grad.sum((0, 2, 3, 4))
        return gx.to(x.dtype), gw.to(weight.dtype), gb.to(weight.dtype), None


def uses_cpu_tuned_backward(device: torch.device) -> bool:
    """Whether `fast="auto"` takes the custom depthwise Conv3d backward for inputs on `device`.

    Only on the CPU: the custom backward exists because oneDNN's own depthwise Conv3d backward
    is ~10x slower than its forward there (`benchmarks/train_throughput.py`: the custom one
    makes a CPU training step about twice as fast). It was written and timed for oneDNN only;
    on CUDA (and any other device) the plain `F.conv3d` path runs cuDNN's own backward, which
    is the path `benchmarks/gpu_pretrain.py` times. Force either with `fast=True`/`False`."""
    return torch.device(device).type == "cpu"


class DepthwiseConv(nn.Module):
    """Depthwise k^n conv ('same' size) on a channels-last (B, [T], H, W, C) tensor."""

    def __init__(
        self,
        dim: int,
        kernel_size: int,
        ndim: int,
        periodic: tuple[bool, bool],
        fast: Fast = "auto",
    ):
        super().__init__()
        if fast not in (True, False, "auto"):
            raise ValueError(f"fast={fast!r}: expected True, False or 'auto'")
        conv = nn.Conv3d if ndim == 3 else nn.Conv2d
        self.conv = conv(dim, dim, kernel_size, groups=dim)
        self.periodic, self.fast, self.p = periodic, fast, kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p
        x = _pad_hw(x, p, p, self.periodic, pad_zero=False)
        pad_hw = tuple(0 if wrap else p for wrap in self.periodic)
        if self.conv.weight.ndim == 4:
            y = F.conv2d(
                x.movedim(-1, 1), self.conv.weight, self.conv.bias, 1, pad_hw, 1, x.shape[-1]
            )
            return y.movedim(1, -1)
        if self.fast is True or (self.fast == "auto" and uses_cpu_tuned_backward(x.device)):
            y = _FastDepthwiseConv3d.apply(
                x.movedim(-1, 1), self.conv.weight, self.conv.bias, (p, *pad_hw)
            )
        else:
            y = F.conv3d(
                x.movedim(-1, 1), self.conv.weight, self.conv.bias, 1, (p, *pad_hw), 1, x.shape[-1]
            )
        return y.movedim(1, -1)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv, LayerNorm, Linear 4x, GELU, Linear, layer scale, residual (no drop-path)."""

    def __init__(
        self,
        dim: int,
        ndim: int,
        kernel_size: int = 7,
        periodic: tuple[bool, bool] = (False, False),
        fast: Fast = "auto",
    ):
        super().__init__()
        self.dwconv = DepthwiseConv(dim, kernel_size, ndim, periodic, fast)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(F.gelu(self.fc1(self.norm(self.dwconv(x)))))
        return x + self.gamma * y


class Downsample(nn.Module):
    """LayerNorm, then a kernel-2 stride-2 conv: 3D while time > 1, else 2D (time squeezed)."""

    def __init__(self, dim_in: int, dim_out: int, ndim: int, norm: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(dim_in) if norm else nn.Identity()
        self.conv = (nn.Conv3d if ndim == 3 else nn.Conv2d)(dim_in, dim_out, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.norm(x).movedim(-1, 1)).movedim(1, -1)
        return y[:, 0] if y.ndim == 5 and y.shape[1] == 1 else y  # time collapsed: go 2D


class ConvNeXt3D(nn.Module):
    """ConvNeXt-style encoder: (B, C, T, H, W) clip -> (B, D, H/s, W/s) map, s = 2^(stages-1).

    Every stage after the first starts with a stride-2 downsampling of time and space. Time
    must collapse to 1 by the last stage, so `frames` is a power of two with
    frames <= 2^(stages-1); when time reaches 1 earlier (fewer frames than the paper's 16),
    the later downsamplings and blocks are simply 2D (Conv2d k2 s2, 7x7 depthwise), so such
    models have fewer parameters than the 16-frame one with the same widths.

    `fast` selects the custom depthwise-conv backward (same numbers to fp32 round-off):
    "auto" (default) on CPU tensors only, see `uses_cpu_tuned_backward`; `True` forces it;
    `False` is the plain `F.conv3d` path, kept as the reference it is tested against.

    `stream_norm=False` drops the LayerNorms on the residual stream (after the stem and before
    each downsampling; the blocks keep theirs). Each of them divides every location by its own
    scale, so the paper's encoder cannot tell a weak field from a strong one with the same
    pattern, although amplitude is what an activity or a forcing parameter sets.
    """

    def __init__(
        self,
        in_channels: int,
        widths: tuple[int, ...] = (16, 32, 64, 128, 128),
        depths: tuple[int, ...] = (3, 3, 3, 9, 3),
        frames: int = 16,
        kernel_size: int = 7,
        periodic: tuple[bool, bool] = (False, False),
        fast: Fast = "auto",
        stream_norm: bool = True,
    ):
        super().__init__()
        if len(widths) != len(depths) or not widths:
            raise ValueError(f"widths {widths} and depths {depths} must be non-empty, same length")
        n_down = len(widths) - 1
        if frames < 1 or frames & (frames - 1) or frames > 2**n_down:
            raise ValueError(
                f"frames={frames} must be a power of two <= 2^(stages-1) = {2**n_down}, so that "
                "the stride-2 downsamplings collapse time to 1"
            )
        self.in_channels, self.frames, self.stride = in_channels, frames, 2**n_down
        self.embed_dim, self.periodic = widths[-1], tuple(periodic)
        self.stem = nn.Conv3d(in_channels, widths[0], (1, 4, 4))
        self.stem_norm = nn.LayerNorm(widths[0]) if stream_norm else nn.Identity()

        self.downs, self.stages = nn.ModuleList(), nn.ModuleList()
        t = frames
        for i, (width, depth) in enumerate(zip(widths, depths)):
            if i > 0:
                self.downs.append(Downsample(widths[i - 1], width, 3 if t > 1 else 2, stream_norm))
                t = max(t // 2, 1)
            ndim = 3 if t > 1 else 2
            blocks = [
                ConvNeXtBlock(width, ndim, kernel_size, self.periodic, fast) for _ in range(depth)
            ]
            self.stages.append(nn.Sequential(*blocks))

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 5 or x.shape[1] != self.in_channels or x.shape[2] != self.frames:
            raise ValueError(
                f"expected input (B, {self.in_channels}, {self.frames}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride:
            raise ValueError(
                f"spatial size {h}x{w} must be divisible by the total spatial stride {self.stride}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, D, H/stride, W/stride), a channels-last view."""
        self._check(x)
        x = rearrange(x, "b c t h w -> b t h w c").contiguous()
        x = _pad_hw(x, 1, 2, self.periodic)  # 'same' for the even (1, 4, 4) kernel
        x = self.stem_norm(self.stem(x.movedim(-1, 1)).movedim(1, -1))
        if x.shape[1] == 1:
            x = x[:, 0]
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.downs[i - 1](x)
            x = stage(x)
        return x.permute(0, 3, 1, 2)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, h*w, D) tokens, row-major over the (h, w) map."""
        return rearrange(self(x), "b d h w -> b (h w) d")
