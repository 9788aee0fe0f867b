"""Exported encoders: a self-describing file (builder name, constructor arguments, weights,
and the data/target context it was trained with) that loads as a plain `nn.Module` with
`encode(x) -> (B, N, D)` — no Lightning, no training code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from physrep.errors import PhysrepError


def export_encoder(module, path: str | Path, **extra: Any) -> Path:
    """Save what `load_encoder` needs: builder name, constructor arguments, weights, context."""
    from physrep.atomic import atomic_path

    payload = {"format": "physrep-encoder/1", **module.export(), **extra}
    payload["state_dict"] = {k: v.detach().cpu() for k, v in payload["state_dict"].items()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_encoder(path: str | Path, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """An exported encoder, in eval mode, as a plain nn.Module with `encode(x) -> (B, N, D)`."""
    from physrep.models.avit import AViT
    from physrep.models.convnext3d import ConvNeXt3D
    from physrep.models.disco import DiscoEncoder
    from physrep.models.vit import VideoViT

    path = Path(path)
    if not path.is_file():
        raise PhysrepError("no such encoder file", path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle errors, truncation, a file of another kind
        raise PhysrepError(
            f"not a physrep encoder file ({type(exc).__name__}: {exc})", path
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != "physrep-encoder/1":
        raise PhysrepError("not a physrep encoder file (no 'physrep-encoder/1' format tag)", path)
    builders = {"convnext3d": ConvNeXt3D, "vit": VideoViT, "avit": AViT, "disco": DiscoEncoder}
    kwargs = dict(payload["kwargs"])
    for key in ("periodic", "image_size", "widths", "depths"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    if payload.get("builder") not in builders:
        raise PhysrepError(f"unknown encoder builder '{payload.get('builder')}'", path)
    encoder = builders[payload["builder"]](**kwargs)
    encoder.load_state_dict(payload["state_dict"])
    encoder.physrep = {k: v for k, v in payload.items() if k not in ("state_dict",)}
    return encoder.eval()
