"""The paper's released JEPA encoder, imported at run time from a copy the user supplies.

physrep ships none of the authors' code (their repository has no licence). `code` is the path
of a checkout of it (the folder holding `physics_jepa/`); the encoder, predictor and VICReg
loss are imported from there, so a row trained with them checks physrep's own implementation
against the original on the same windows, loop and probes. The path is stored in exported
encoders: loading one needs the same checkout.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import torch
from einops import rearrange
from torch import nn

from physrep.errors import PhysrepError

CODE_ENV = "PHYSREP_RELEASED_CODE"  # where the checkout is, when the config does not say


def code_root(code: str = "") -> str:
    """The checkout's absolute path: `code`, else $PHYSREP_RELEASED_CODE."""
    code = code or os.environ.get(CODE_ENV, "")
    if not code:
        raise PhysrepError(
            f"the released code's path is not set (key 'jepa_released.code' or ${CODE_ENV})"
        )
    return str(Path(code).expanduser().resolve())


def released_modules(code: str = "") -> tuple[types.ModuleType, types.ModuleType]:
    """`physics_jepa.utils.model_utils` and `physics_jepa.model` from the checkout at `code`
    (or $PHYSREP_RELEASED_CODE), with a one-line error naming the path when they will not
    import."""
    root = Path(code_root(code))
    if not (root / "physics_jepa" / "model.py").is_file():
        raise PhysrepError("not a checkout of the paper's code (no physics_jepa/model.py)", root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    _stand_in_for_timm()
    try:
        return (
            importlib.import_module("physics_jepa.utils.model_utils"),
            importlib.import_module("physics_jepa.model"),
        )
    except Exception as exc:  # a missing dependency, another version of the code
        raise PhysrepError(f"the released code does not import: {exc!r}", root) from None


def _stand_in_for_timm() -> None:
    """The released blocks import timm for DropPath, which they build only at drop_path > 0
    (never, in its encoder and predictor); timm would pull in torchvision, so where it is
    not installed a module that refuses to build a DropPath takes its place."""
    try:
        importlib.import_module("timm.models.layers")
        return
    except ImportError:
        pass

    class DropPath(nn.Module):
        def __init__(self, *args, **kwargs):
            raise PhysrepError("the released code asked for DropPath; install timm for it")

    layers = types.ModuleType("timm.models.layers")
    layers.DropPath = DropPath
    for name, module in (
        ("timm", types.ModuleType("timm")),
        ("timm.models", types.ModuleType("timm.models")),
        ("timm.models.layers", layers),
    ):
        sys.modules.setdefault(name, module)


class ReleasedEncoder(nn.Module):
    """The released `ConvEncoder`: (B, C, T, H, W) -> (B, D, H/s, W/s), and `encode` to
    (B, N, D) tokens like physrep's encoders. It takes 4 or 16 frames (its two code paths)."""

    def __init__(
        self,
        code: str,
        in_channels: int,
        frames: int,
        dims: tuple[int, ...] = (16, 32, 64, 128),
        depths: tuple[int, ...] = (1, 1, 2, 2),
    ):
        super().__init__()
        if frames not in (4, 16):
            raise PhysrepError(f"the released encoder takes 4 or 16 frames, not {frames}")
        model_utils, _ = released_modules(code)
        self.net = model_utils.ConvEncoder(
            in_chans=in_channels, num_res_blocks=list(depths), dims=list(dims), num_frames=frames
        )
        self.in_channels, self.frames, self.embed_dim = in_channels, frames, dims[-1]
        self.stride = 2 ** (len(dims) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return y[:, :, 0] if y.ndim == 5 else y  # time collapsed to 1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(self(x), "b d h w -> b (h w) d")
