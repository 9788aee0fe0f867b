"""Fitted probes kept with everything needed to apply them to new simulations.

A benchmark (or `physrep probe --out`) saves the full-data probe of every source: its weights
or ridge solution, the train statistics its inputs are standardised with, the calibrated error
errors of its trajectory estimates on valid (the intervals' calibration), the parameters' names and target transforms, and where its
inputs come from (the encoder file and its digest, the window config, the token storage). With
that, `physrep estimate` turns a new run's windows into parameter estimates with intervals, in
physical units, exactly as the benchmark scored its test split. Written atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physrep.atomic import atomic_path
from physrep.data.targets import ParamTargets
from physrep.errors import PhysrepError
from physrep.eval.probes import FittedProbe, TokenSource, predictor
from physrep.eval.uncertainty import TrajectoryErrors

FORMAT = "physrep-probe/1"


@dataclass
class SavedProbe:
    kind: str
    predict: Callable[[TokenSource], np.ndarray]  # tokens -> normalised targets (N, P)
    errors: TrajectoryErrors  # on valid: the intervals' calibration
    targets: ParamTargets
    source: dict[str, Any]  # encoder, digest, windows, fields, tokens, dtype, method, dataset


def saved_probe_file(
    dataset_dir: Path, method: str, pretrain_seed: int, probe: str, key: str
) -> Path:
    """Where a benchmark keeps a source's full-data probe (first probe seed), keyed by the
    hash of its embeddings and probe config, as its result rows are."""
    return Path(dataset_dir) / "probes" / "saved" / f"{method}-s{pretrain_seed}-{probe}-{key}.pt"


def save_probe(
    path: str | Path,
    fitted: FittedProbe,
    errors: TrajectoryErrors,
    targets: ParamTargets,
    source: dict[str, Any],
) -> Path:
    payload = {
        "format": FORMAT,
        "state": _tensors(fitted.state),
        "errors": torch.from_numpy(np.asarray(errors.residuals, np.float64)),
        "targets": targets.to_dict(),
        "source": source,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_probe(path: str | Path, device: torch.device | str = "cpu") -> SavedProbe:
    """A saved probe, or one line naming the file when it is not one."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise PhysrepError(f"not a readable saved probe ({type(e).__name__})", path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PhysrepError(f"not a saved probe of format {FORMAT}", path)
    state = {
        k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in payload["state"].items()
    }
    return SavedProbe(
        kind=state["kind"],
        predict=predictor(state, device),
        errors=TrajectoryErrors(payload["errors"].numpy()),
        targets=ParamTargets.from_dict(payload["targets"]),
        source=payload["source"],
    )


def _tensors(state: dict) -> dict:
    """numpy arrays as tensors (what `torch.load(weights_only=True)` accepts)."""
    return {
        k: torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v
        for k, v in state.items()
    }
