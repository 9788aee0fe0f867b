"""Where a benchmark keeps a full-data probe's predictions, and how it writes them.

Why: the benchmark writes these files and the report reads them back, so one function names
them for both and the two cannot drift apart; the name holds the probe seed and the
pretraining seed, so runs that differ only in a seed never overwrite each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from physrep.atomic import save_npz_atomic


def prediction_file(
    out: str | PathLike,
    dataset: str,
    method: str,
    probe: str,
    split: str,
    seed: int,
    pretrain_seed: int,
) -> Path:
    """`OUT/<dataset>/predictions/<method>__<probe>__<split>__f1__seed<s>__pretrain<p>.npz`,
    the predictions of a probe trained on all training data (fraction 1)."""
    name = f"{method}__{probe}__{split}__f1__seed{seed}__pretrain{pretrain_seed}.npz"
    return Path(out) / dataset / "predictions" / name


def write_predictions(
    path: Path, pred: np.ndarray, true: np.ndarray, trajectory: np.ndarray, names: Sequence[str]
) -> None:
    """Predicted and true values (N, P) in physical units, each window's trajectory (N,) and
    the parameter names (P,): what the report's scatter plots read."""
    save_npz_atomic(path, pred=pred, true=true, trajectory=trajectory, names=np.array(names))
