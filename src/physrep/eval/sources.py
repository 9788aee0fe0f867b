"""What can be embedded: an exported encoder file, the physics features, or any encoder of the
user's own (an `nn.Module` or a callable mapping (B, C, T, H, W) to tokens (B, N, D) or
vectors (B, D)).

Each source has an id that keys the embedding cache by content: a file's digest, the features'
version, a module's class and weights (so a change to any weight is a new cache), or a plain
function's qualified name and code.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from physrep.errors import PhysrepError
from physrep.eval.ranks import device as accelerator

FEATURES = "features"  # the source name of the physics-features control
FEATURES_VERSION = "1"  # bump when physics_features changes, so old caches are not reused


@dataclass
class Source:
    id: str  # what keys the cache
    label: str  # what the cache's provenance records (a resolved file path for a file)
    fn: Callable[[torch.Tensor], torch.Tensor]
    encoder: nn.Module | None = None  # an exported encoder: it knows its windows and fields
    device: torch.device | None = None  # where inputs go (None: the CPU, left as they are)


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def module_digest(module: nn.Module) -> str:
    """Hash of a module's class and every parameter and buffer, by name."""
    digest = hashlib.sha256(type(module).__qualname__.encode())
    for name, value in module.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def resolve(source: Any) -> Source:
    """The `Source` of an encoder file path, "features", a module or a callable."""
    if isinstance(source, nn.Module):
        device = accelerator()
        module = source.eval().to(device)
        fn = getattr(module, "encode", module)
        return Source(
            f"module/{module_digest(module)}", type(module).__qualname__, fn, None, device
        )
    if callable(source):
        code = getattr(source, "__code__", None)
        body = code.co_code + repr(code.co_consts).encode() if code else b""
        name = getattr(source, "__qualname__", type(source).__qualname__)
        digest = hashlib.sha256(name.encode() + body).hexdigest()
        return Source(f"callable/{digest}", name, source)
    if str(source) == FEATURES:
        from physrep.eval.features import physics_features

        return Source(f"{FEATURES}/{FEATURES_VERSION}", FEATURES, physics_features)
    from physrep.models.export import load_encoder

    encoder = load_encoder(source)
    device = accelerator()
    encoder.to(device)
    label = str(Path(source).resolve())
    return Source(file_digest(source), label, encoder.encode, encoder, device)


def import_factory(spec: str) -> Any:
    """`module:function` -> what the function returns (an encoder), for the command line."""
    module_name, _, function = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as e:
        raise PhysrepError(f"cannot import '{spec}' ({e})") from None
    encoder = factory()
    if not callable(encoder):
        raise PhysrepError(f"'{spec}' returned {type(encoder).__name__}, not an encoder")
    return encoder
