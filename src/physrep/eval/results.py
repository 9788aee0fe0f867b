"""Probe results: one row per (dataset, method, probe, split, fraction, seed), checked on the way
in and out of `results.json`.

Why: every table and plot in the report is computed from these rows, and a single NaN, a
misspelt key or a row written twice would silently shift a mean or a standard deviation. So the
rows are validated whenever they are written or read, and a problem is reported as one line that
names the file, the row and what is wrong with it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from physrep.atomic import write_text_atomic
from physrep.errors import PhysrepError

ROW_KEYS = ("dataset", "method", "probe", "split", "fraction", "seed", "mse")
STR_KEYS = ("dataset", "method", "probe", "split")
INT_KEYS = ("seed", "pretrain_seed", "n_train", "n_test")
# Errors (non-negative) and scores (any finite value), by key prefix.
ERROR_PREFIXES = ("mse_", "traj_mse_", "mae_", "width_")
ERROR_KEYS = ("mse", "traj_mse", "crps")
SCORE_PREFIXES = ("r2_", "coverage_", "nll")
# Rows that agree on all of these are the same measurement written twice.
IDENTITY_KEYS = ("dataset", "method", "probe", "split", "fraction", "seed", "pretrain_seed")

Key = tuple[Any, ...]

# How rows are shown: methods and probes in this order first, any others alphabetically after.
METHOD_ORDER = [
    "mean",
    "random_init",
    "features",
    "jepa",
    "videomae",
    "autoregressive",
    "autoregressive_finetuned",
    "disco",
    "supervised",
]
PROBE_ORDER = ["attentive", "linear", "mlp", "ridge"]
CONTROL = "mean"  # the control row: no encoder, no probe (probe "none"); shown in every table


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_error_key(key: str) -> bool:
    return key in ERROR_KEYS or key.startswith(ERROR_PREFIXES)


def _row_problem(row: object) -> str | None:
    """What is wrong with one row, or None if nothing is."""
    if not isinstance(row, Mapping):
        return f"expected an object, got {type(row).__name__}"
    for key in ROW_KEYS:
        if key not in row:
            return f"missing key '{key}'"
    for key in STR_KEYS:
        if not isinstance(row[key], str) or not row[key]:
            return f"{key} must be a non-empty string, got {row[key]!r}"
    for key in INT_KEYS:
        if key in row and not _is_int(row[key]):
            return f"{key} must be an integer, got {row[key]!r}"
    fraction = row["fraction"]
    if not _is_number(fraction) or not 0 < fraction <= 1:
        return f"fraction must be a number in (0, 1], got {fraction!r}"
    if not any(key.startswith("mse_") for key in row):
        return "no per-parameter 'mse_<parameter>' key"
    return _metric_problem(row)


def _metric_problem(row: Mapping[str, Any]) -> str | None:
    """Metrics must be finite numbers; errors must also be non-negative."""
    for key, value in row.items():
        is_metric = _is_error_key(key) or key.startswith(SCORE_PREFIXES)
        if is_metric and not _is_number(value):
            return f"{key} must be a number, got {value!r}"
        if _is_number(value) and not math.isfinite(value):
            return f"{key} is {value}"
        if _is_error_key(key) and value < 0:
            return f"{key} is negative ({value})"
    return None


def _identity(row: Mapping[str, Any]) -> Key:
    return tuple(row.get(key) for key in IDENTITY_KEYS)


def validate_rows(rows: object, source: str | PathLike = "results.json") -> list[dict]:
    """Check `rows` and return them as fresh dicts (fraction and errors as floats).

    Raises PhysrepError("<source>: row <i>: <problem>") at the first problem found.
    """
    if not isinstance(rows, list):
        raise PhysrepError(f"expected a list of rows, got {type(rows).__name__}", source)
    seen: dict[Key, int] = {}
    clean = []
    for index, row in enumerate(rows):
        problem = _row_problem(row)
        if problem is not None:
            raise PhysrepError(f"row {index}: {problem}", source)
        identity = _identity(row)
        if identity in seen:
            described = ", ".join(f"{k}={v!r}" for k, v in zip(IDENTITY_KEYS, identity))
            raise PhysrepError(
                f"row {index}: duplicate of row {seen[identity]} ({described})", source
            )
        seen[identity] = index
        fresh = dict(row)
        fresh["fraction"] = float(fresh["fraction"])
        fresh.update({k: float(v) for k, v in fresh.items() if _is_error_key(k)})
        clean.append(fresh)
    return clean


def write_results(path: str | PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Validate `rows` and write them to `path` as JSON, atomically."""
    path = Path(path)
    clean = validate_rows(list(rows), source=path)
    write_text_atomic(path, json.dumps(clean, indent=1, allow_nan=False) + "\n")
    return path


def read_results(path: str | PathLike) -> list[dict]:
    """Read and validate the rows of a results file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PhysrepError("results file not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PhysrepError(f"cannot read results file ({exc})", path) from None
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PhysrepError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", path
        ) from None
    return validate_rows(rows, source=path)


def summarise(
    rows: Sequence[Mapping[str, Any]],
    by: Sequence[str] = ("dataset", "method", "probe", "split", "fraction"),
    metric: str = "mse",
) -> dict[Key, tuple[float, float, int]]:
    """Mean, population std (ddof=0) and count of `metric` over rows sharing the `by` key.

    Rows without `metric` (an optional one such as traj_mse) are left out. Keys keep the order
    in which they first appear.
    """
    groups: dict[Key, list[float]] = {}
    for row in rows:
        if metric in row:
            groups.setdefault(tuple(row.get(key) for key in by), []).append(float(row[metric]))
    return {
        key: (float(np.mean(values)), float(np.std(values)), len(values))
        for key, values in groups.items()
    }


def ordered(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """Distinct `names`, those in `preferred` first in its order, the rest alphabetically:
    every table and plot lists methods (and probes) the same way."""
    rank = {name: i for i, name in enumerate(preferred)}
    return sorted(set(names), key=lambda name: (rank.get(name, len(rank)), name))
