"""Write datasets in The Well's HDF5 layout, and their `stats.yaml`.

Everything physrep generates goes through `write_well_file`, so that a simulated dataset and a
real Well download look the same to every later stage (and to `the_well.data.WellDataset`).
The schema is The Well's `docs/data_format.md`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import yaml

from physrep.atomic import atomic_path, write_text_atomic
from physrep.errors import DataError

SPLITS = ("train", "valid", "test")
# Optional extra split: whole parameter values held out of train/valid (`holdout` in physrep simulate).
OOD_SPLIT = "test_ood"
FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")
BC_CODES = {"WALL": 0, "OPEN": 1, "PERIODIC": 2}
STATS_KEYS = ("mean", "std", "rms", "mean_delta", "std_delta", "rms_delta")


@dataclass(frozen=True)
class Field:
    """A physical field; `order` 0 is a scalar, 1 a vector, 2 a rank-2 tensor.

    A rank-2 field also says whether it is symmetric or antisymmetric (The Well stores both
    flags on every t2 field); they describe the values and take no part in comparisons, so a
    file that omits them still matches the same field elsewhere.
    """

    name: str
    order: int = 0
    symmetric: bool = field(default=False, compare=False)
    antisymmetric: bool = field(default=False, compare=False)


@dataclass
class WellLayout:
    """What every file of one dataset shares: grid, times, boundaries and fields.

    `boundaries` maps each spatial dimension to its condition, written as the group name's
    suffix: "periodic", "wall_dirichlet", "open" (the part before the first "_" is the type).
    """

    dataset_name: str
    coords: dict[str, np.ndarray]
    time: np.ndarray
    boundaries: dict[str, str]
    fields: tuple[Field, ...]
    grid_type: str = "cartesian"

    @property
    def spatial_dims(self) -> list[str]:
        return list(self.coords)

    @property
    def resolution(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.coords.values())

    def field_shape(self, field: Field, n_trajectories: int) -> tuple[int, ...]:
        n = len(self.coords)
        return (n_trajectories, len(self.time), *self.resolution, *([n] * field.order))

    def channel_names(self) -> list[str]:
        return channel_names(self.fields, self.spatial_dims)


def channel_names(fields: Iterable[Field], spatial_dims: Sequence[str]) -> list[str]:
    """The Well's flattened channel names: t0 fields, then `v_x, v_y`, then `D_xx, D_xy, ...`."""
    names = []
    for order in range(3):
        for f in fields:
            if f.order != order:
                continue
            if order == 0:
                names.append(f.name)
            elif order == 1:
                names += [f"{f.name}_{d}" for d in spatial_dims]
            else:
                names += [f"{f.name}_{a}{b}" for a in spatial_dims for b in spatial_dims]
    return names


def write_well_file(
    path: str | Path,
    layout: WellLayout,
    params: Mapping[str, float],
    data: Mapping[str, np.ndarray],
) -> Path:
    """Write one Well-format file holding `n` trajectories of one parameter combination.

    `data[name]` has shape (n, T, *resolution, *tensor_axes). The file appears only once it
    is complete (written to a temporary sibling, then renamed).
    """
    path = Path(path)
    missing = [f.name for f in layout.fields if f.name not in data]
    if missing:
        raise DataError(f"no data given for field '{missing[0]}'", path)
    n_traj = int(next(iter(data.values())).shape[0])
    for f in layout.fields:
        arr = data[f.name]
        if arr.shape != layout.field_shape(f, n_traj):
            raise DataError(
                f"field '{f.name}' has shape {arr.shape}, expected {layout.field_shape(f, n_traj)}",
                path,
            )
        if not np.isfinite(arr).all():
            raise DataError(f"field '{f.name}' holds NaN or inf values; refusing to write", path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        _write_root(h5, layout, params, n_traj)
        _write_dimensions(h5, layout)
        _write_boundaries(h5, layout)
        _write_scalars(h5, params)
        _write_fields(h5, layout, data)
    return path


def split_counts(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> dict[str, int]:
    """Trajectories per split for one file (The Well: 0.8/0.1/0.1); valid and test get at
    least one trajectory each once a file holds three or more."""
    valid = round(n * fractions[1])
    test = round(n * fractions[2])
    if n >= 3:
        valid, test = max(valid, 1), max(test, 1)
    return {"train": n - valid - test, "valid": valid, "test": test}


def write_split_files(
    root: str | Path,
    stem: str,
    layout: WellLayout,
    params: Mapping[str, float],
    data: Mapping[str, np.ndarray],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
) -> list[Path]:
    """Split one parameter combination's trajectories (in order) into the three split folders,
    writing `data/<split>/<stem>.hdf5` for each non-empty split."""
    n = int(next(iter(data.values())).shape[0])
    written, start = [], 0
    for split, count in split_counts(n, fractions).items():
        if count == 0:
            continue
        part = {k: v[start : start + count] for k, v in data.items()}
        written.append(
            write_well_file(Path(root) / "data" / split / f"{stem}.hdf5", layout, params, part)
        )
        start += count
    return written


def compute_stats(root: str | Path) -> dict[str, dict[str, float | list]]:
    """The Well's `stats.yaml` content, from the train split: per core field, reduced over all
    non-tensor axes; `*_delta` from differences between consecutive frames."""
    files = sorted((Path(root) / "data" / "train").glob("*.hdf5")) + sorted(
        (Path(root) / "data" / "train").glob("*.h5")
    )
    if not files:
        raise DataError("no train files to compute statistics from", Path(root) / "data" / "train")
    moments: dict[str, tuple[_Moments, _Moments]] = {}
    for path in files:
        with h5py.File(path, "r") as h5:
            for order, group in enumerate(FIELD_GROUPS):
                for name in as_str_list(h5[group].attrs["field_names"]):
                    ds = h5[group][name]
                    value, delta = moments.setdefault(name, (_Moments(order), _Moments(order)))
                    time_varying = bool(ds.attrs["time_varying"])
                    chunks = range(ds.shape[0]) if ds.attrs["sample_varying"] else [None]
                    for i in chunks:
                        x = np.asarray(ds[i] if i is not None else ds[()], dtype=np.float64)
                        value.add(x)
                        if time_varying and x.shape[0] > 1:
                            delta.add(np.diff(x, axis=0))
    stats: dict[str, dict] = {key: {} for key in STATS_KEYS}
    for name, (value, delta) in moments.items():
        for suffix, m in (("", value), ("_delta", delta)):
            mean, std, rms = m.result()
            stats[f"mean{suffix}"][name] = mean
            stats[f"std{suffix}"][name] = std
            stats[f"rms{suffix}"][name] = rms
    return stats


def finalize_dataset(root: str | Path) -> Path:
    """Write `stats.yaml` (from train) and the informational `<dataset_name>.yaml` summary."""
    root = Path(root)
    stats = compute_stats(root)
    write_text_atomic(root / "stats.yaml", yaml.safe_dump(stats, sort_keys=False))
    files = sorted((root / "data").glob("*/*.hdf5"))
    with h5py.File(files[0], "r") as h5:
        name = str(h5.attrs["dataset_name"])
        meta = {
            "dataset_name": name,
            "n_spatial_dims": int(h5.attrs["n_spatial_dims"]),
            "spatial_resolution": [
                len(h5["dimensions"][d])
                for d in as_str_list(h5["dimensions"].attrs["spatial_dims"])
            ],
            "simulation_parameters": as_str_list(h5.attrs["simulation_parameters"]),
            "field_names": {
                i: as_str_list(h5[g].attrs["field_names"]) for i, g in enumerate(FIELD_GROUPS)
            },
            "n_files": {
                s: len(list((root / "data" / s).glob("*.hdf5")))
                for s in (*SPLITS, OOD_SPLIT)
                if (root / "data" / s).is_dir()
            },
            "n_steps_per_simulation": int(h5["dimensions"]["time"].shape[-1]),
        }
    write_text_atomic(root / f"{name}.yaml", yaml.safe_dump(meta, sort_keys=False))
    return root / "stats.yaml"


class _Moments:
    """Streaming mean / variance over all leading axes, keeping the trailing tensor axes
    (Chan et al.'s pairwise update, in float64, so large datasets do not lose precision)."""

    def __init__(self, order: int):
        self.order = order
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:
        axes = tuple(range(x.ndim - self.order))
        n_b = int(np.prod([x.shape[a] for a in axes]))
        mean_b = x.mean(axis=axes)
        m2_b = ((x - mean_b) ** 2).sum(axis=axes)
        if self.mean is None:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        d = mean_b - self.mean
        self.mean = self.mean + d * (n_b / n)
        self.m2 = self.m2 + m2_b + d**2 * (self.n * n_b / n)
        self.n = n

    def result(self) -> tuple:
        if self.mean is None:  # a constant field has no deltas
            zero = np.zeros((2,) * self.order)
            return _plain(zero), _plain(zero), _plain(zero)
        var = self.m2 / self.n
        return _plain(self.mean), _plain(np.sqrt(var)), _plain(np.sqrt(var + self.mean**2))


def _plain(a: np.ndarray) -> float | list:
    return float(a) if np.ndim(a) == 0 else np.asarray(a, dtype=float).tolist()


def as_str_list(value) -> list[str]:
    """h5py gives lists of strings back as numpy arrays of str or bytes; make them plain."""
    if isinstance(value, (str, bytes)):
        value = [value]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in value]


def _write_root(
    h5: h5py.File, layout: WellLayout, params: Mapping[str, float], n_traj: int
) -> None:
    h5.attrs["dataset_name"] = layout.dataset_name
    h5.attrs["grid_type"] = layout.grid_type
    h5.attrs["n_spatial_dims"] = len(layout.coords)
    h5.attrs["n_trajectories"] = n_traj
    h5.attrs["simulation_parameters"] = list(params)
    for name, value in params.items():
        h5.attrs[name] = float(value)


def _write_dimensions(h5: h5py.File, layout: WellLayout) -> None:
    dims = h5.create_group("dimensions")
    dims.attrs["spatial_dims"] = layout.spatial_dims
    time = dims.create_dataset("time", data=np.asarray(layout.time, dtype=np.float32))
    time.attrs["sample_varying"] = False
    time.attrs["time_varying"] = True
    for name, coord in layout.coords.items():
        ds = dims.create_dataset(name, data=np.asarray(coord, dtype=np.float32))
        ds.attrs["sample_varying"] = False
        ds.attrs["time_varying"] = False


def _write_boundaries(h5: h5py.File, layout: WellLayout) -> None:
    group = h5.create_group("boundary_conditions")
    for dim, kind in layout.boundaries.items():
        bc_type = kind.split("_")[0].upper()
        if bc_type not in BC_CODES:
            raise DataError(f"boundary '{kind}' for '{dim}' is not periodic, wall or open")
        bc = group.create_group(f"{dim}_{kind}")
        bc.attrs["bc_type"] = bc_type
        bc.attrs["associated_dims"] = [dim]
        bc.attrs["associated_fields"] = []
        bc.attrs["sample_varying"] = False
        bc.attrs["time_varying"] = False
        mask = np.zeros(len(layout.coords[dim]), dtype=bool)
        mask[[0, -1]] = True
        bc.create_dataset("mask", data=mask)


def _write_scalars(h5: h5py.File, params: Mapping[str, float]) -> None:
    group = h5.create_group("scalars")
    group.attrs["field_names"] = list(params)
    for name, value in params.items():
        ds = group.create_dataset(name, data=np.float32(value))
        ds.attrs["sample_varying"] = False
        ds.attrs["time_varying"] = False


def _write_fields(h5: h5py.File, layout: WellLayout, data: Mapping[str, np.ndarray]) -> None:
    for order, name in enumerate(FIELD_GROUPS):
        group = h5.create_group(name)
        fields = [f for f in layout.fields if f.order == order]
        group.attrs["field_names"] = [f.name for f in fields]
        for f in fields:
            ds = group.create_dataset(f.name, data=np.asarray(data[f.name], dtype=np.float32))
            ds.attrs["dim_varying"] = [True] * len(layout.coords)
            ds.attrs["sample_varying"] = True
            ds.attrs["time_varying"] = True
            if order == 2:
                ds.attrs["symmetric"] = f.symmetric
                ds.attrs["antisymmetric"] = f.antisymmetric
