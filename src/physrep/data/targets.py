"""Parameter targets: which governing parameters a probe estimates, and in what units.

Reynolds and Rayleigh span decades, so they are learned as log10; everything is then z-scored
with statistics of the *train* split (each trajectory counted once), and `decode` maps
predictions back to physical units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from physrep.errors import DataError

DEFAULT_TRANSFORMS = {"Reynolds": "log10", "Rayleigh": "log10"}
_FORWARD = {"linear": lambda v: v, "log10": np.log10}
# A diverging probe can predict log10 values past float64's range; 10**v would be inf and the
# row unreportable, so exponents are held to +-300: such an error reads as 1e300, not inf.
LOG10_LIMIT = 300.0
_INVERSE = {
    "linear": lambda v: v,
    "log10": lambda v: 10.0 ** np.clip(v, -LOG10_LIMIT, LOG10_LIMIT),
}


@dataclass
class ParamTargets:
    names: list[str]
    transforms: list[str]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(
        cls,
        per_trajectory: Sequence[Mapping[str, float]],
        names: Sequence[str] | None = None,
        transforms: Mapping[str, str] | None = None,
    ) -> ParamTargets:
        """Fit on the train split's parameters (one mapping per trajectory).

        By default the targets are every parameter that varies across the train split, so
        constants such as active_matter's L and β drop out by themselves.
        """
        if not per_trajectory:
            raise DataError("no training trajectories to fit parameter statistics on")
        available = list(per_trajectory[0])
        if names is None:
            names = [n for n in available if len({p[n] for p in per_trajectory}) > 1]
            if not names:
                raise DataError(
                    f"no parameter varies across the train split (parameters: {', '.join(available) or 'none'})"
                )
        for n in names:
            if n not in available:
                raise DataError(f"unknown parameter '{n}' (the files have: {', '.join(available)})")
        table = {**DEFAULT_TRANSFORMS, **(transforms or {})}
        kinds = [table.get(n, "linear") for n in names]
        for n, k in zip(names, kinds):
            if k not in _FORWARD:
                raise DataError(
                    f"unknown transform '{k}' for parameter '{n}' (use linear or log10)"
                )
        raw = np.array([[p[n] for n in names] for p in per_trajectory], dtype=np.float64)
        if any(k == "log10" and (raw[:, i] <= 0).any() for i, k in enumerate(kinds)):
            raise DataError("log10 target with a non-positive parameter value")
        t = cls._transform(raw, kinds)
        std = t.std(axis=0)
        return cls(list(names), kinds, t.mean(axis=0), np.where(std > 0, std, 1.0))

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Physical values (..., P) -> normalised targets (..., P)."""
        return (
            self._transform(np.asarray(raw, dtype=np.float64), self.transforms) - self.mean
        ) / self.std

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Normalised targets (..., P) -> physical values."""
        t = np.asarray(z, dtype=np.float64) * self.std + self.mean
        return np.stack([_INVERSE[k](t[..., i]) for i, k in enumerate(self.transforms)], axis=-1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "transforms": self.transforms,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ParamTargets:
        return cls(
            list(d["names"]), list(d["transforms"]), np.asarray(d["mean"]), np.asarray(d["std"])
        )

    @staticmethod
    def _transform(raw: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
        return np.stack([_FORWARD[k](raw[..., i]) for i, k in enumerate(kinds)], axis=-1)
