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
    path = Path(path)
    if not path.is_file():
        raise PhysrepError("no such encoder file", path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle errors, truncation, a file of another kind
        raise PhysrepError(
            f"not a physrep encoder file (damaged or of another kind: {_reason(exc)})", path
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != "physrep-encoder/1":
        raise PhysrepError("not a physrep encoder file (no 'physrep-encoder/1' format tag)", path)
    for key in ("builder", "kwargs", "state_dict"):
        if key not in payload:
            raise PhysrepError(f"damaged physrep encoder file (no '{key}' entry)", path)
    encoder = _build(payload, path)
    _load_weights(encoder, payload["state_dict"], path)
    encoder.physrep = {k: v for k, v in payload.items() if k not in ("state_dict",)}
    return encoder.eval()


def _build(payload: dict, path: Path) -> torch.nn.Module:
    """The untrained encoder the payload's builder name and arguments describe."""
    from physrep.models.avit import AViT
    from physrep.models.convnext3d import ConvNeXt3D
    from physrep.models.disco import DiscoEncoder
    from physrep.models.released import ReleasedEncoder
    from physrep.models.vit import VideoViT

    builders = {
        "convnext3d": ConvNeXt3D,
        "vit": VideoViT,
        "avit": AViT,
        "disco": DiscoEncoder,
        "released": ReleasedEncoder,
    }
    builder = payload["builder"]
    if not isinstance(builder, str) or builder not in builders:
        raise PhysrepError(f"unknown encoder builder '{builder}'", path)
    try:
        kwargs = dict(payload["kwargs"])
        for key in ("periodic", "image_size", "widths", "depths", "dims"):
            if isinstance(kwargs.get(key), list):
                kwargs[key] = tuple(kwargs[key])
        return builders[builder](**kwargs)
    except (TypeError, ValueError) as exc:
        raise PhysrepError(
            f"damaged physrep encoder file (arguments do not fit '{builder}': {_reason(exc)})",
            path,
        ) from None


def _load_weights(encoder: torch.nn.Module, state: Any, path: Path) -> None:
    """Load `state` into `encoder`, or say in one line how it does not fit (load_state_dict's
    own message lists every key, over many lines)."""
    expected = encoder.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PhysrepError("damaged physrep encoder file (weights are not a tensor dict)", path)
    problems = {
        "missing": sorted(expected.keys() - state.keys()),
        "unexpected": sorted(state.keys() - expected.keys()),
        "wrong shape": sorted(
            k for k in expected.keys() & state.keys() if state[k].shape != expected[k].shape
        ),
    }
    found = [f"{len(keys)} {kind}, e.g. '{keys[0]}'" for kind, keys in problems.items() if keys]
    if found:
        raise PhysrepError(
            f"damaged physrep encoder file (weights do not fit {type(encoder).__name__}: "
            f"{'; '.join(found)})",
            path,
        )
    encoder.load_state_dict(state)


def _reason(exc: Exception, limit: int = 100) -> str:
    """The exception's type and first sentence, cut to `limit` characters: torch's messages
    run to paragraphs, and its advice to load untrusted pickles is not ours to give."""
    text = str(exc).split("WeightsUnpickler error:", 1)[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0].split(". ", 1)[0] if lines else ""
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
