"""Check one HDF5 file against The Well's schema, and read what it holds into a `FileInfo`.

Every problem becomes one `DataError` naming the file and what is wrong with it, raised before
`the_well` would fail deep inside with an assertion (or, worse, silently read garbage).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from physrep.data.wellformat import BC_CODES, FIELD_GROUPS, Field, as_str_list, channel_names
from physrep.errors import DataError

_ROOT_ATTRS = {
    "dataset_name": str,
    "grid_type": str,
    "n_spatial_dims": int,
    "n_trajectories": int,
    "simulation_parameters": list,
}
_GROUPS = ("dimensions", "boundary_conditions", "scalars", *FIELD_GROUPS)
SYMMETRY = ("symmetric", "antisymmetric")


@dataclass
class FileInfo:
    path: Path
    dataset_name: str
    n_trajectories: int
    n_steps: int
    spatial_dims: list[str]
    resolution: tuple[int, ...]
    fields: list[Field]
    params: dict[str, float]
    boundaries: list[tuple[int, int]]  # per spatial dim: (low side, high side) codes
    coords: dict[str, np.ndarray]
    time: np.ndarray
    dtype: str
    digests: list[bytes] = field(default_factory=list)  # per trajectory; empty if not scanned
    unstated_symmetry: list[str] = field(default_factory=list)  # t2 fields lacking the flags

    @property
    def channel_names(self) -> list[str]:
        return channel_names(self.fields, self.spatial_dims)


def inspect_file(path: str | Path, scan_values: bool = True) -> FileInfo:
    """Validate one file against The Well's schema; with `scan_values`, also reject NaN/inf
    and take a digest of each trajectory's values (the duplicate check)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file", path)
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).split("(")[0].strip().rstrip(",") or "unreadable"
        raise DataError(
            f"not a readable HDF5 file, truncated or corrupt ({reason})", path
        ) from None
    try:
        with h5:
            return _inspect_open_file(path, h5, scan_values)
    except (OSError, KeyError, ValueError, TypeError) as exc:  # a damaged dataset inside the file
        raise DataError(
            f"could not be read, truncated or corrupt ({type(exc).__name__}: {exc})", path
        ) from None


def _inspect_open_file(path: Path, h5: h5py.File, scan_values: bool) -> FileInfo:
    for name, kind in _ROOT_ATTRS.items():
        if name not in h5.attrs:
            raise DataError(f"missing root attribute '{name}'", path)
        _check_attr_type(path, name, h5.attrs[name], kind)
    for group in _GROUPS:
        if group not in h5 or not isinstance(h5[group], h5py.Group):
            raise DataError(f"missing group '/{group}'", path)
    ndim = int(h5.attrs["n_spatial_dims"])
    n_traj = int(h5.attrs["n_trajectories"])

    dims = h5["dimensions"]
    if "spatial_dims" not in dims.attrs:
        raise DataError("missing attribute 'spatial_dims' on /dimensions", path)
    spatial = as_str_list(dims.attrs["spatial_dims"])
    if len(spatial) != ndim:
        raise DataError(
            f"/dimensions lists {len(spatial)} spatial dims but n_spatial_dims is {ndim}", path
        )
    for name in ["time", *spatial]:
        if name not in dims:
            raise DataError(f"missing dimension '/dimensions/{name}'", path)
    time = np.asarray(dims["time"][()])
    coords = {d: np.asarray(dims[d][()]) for d in spatial}
    n_steps = int(time.shape[-1])
    resolution = tuple(int(c.shape[-1]) for c in coords.values())

    params = {}
    for p in as_str_list(h5.attrs["simulation_parameters"]):
        if p not in h5.attrs:
            raise DataError(f"simulation parameter '{p}' is not a root attribute", path)
        if p not in h5["scalars"]:
            raise DataError(f"simulation parameter '{p}' has no dataset in /scalars", path)
        params[p] = float(np.asarray(h5["scalars"][p][()]).ravel()[0])
    if "field_names" not in h5["scalars"].attrs:
        raise DataError("missing attribute 'field_names' on /scalars", path)

    boundaries = _read_boundaries(path, h5["boundary_conditions"], spatial, resolution)

    fields: list[Field] = []
    unstated: list[str] = []  # t2 fields without The Well's symmetry flags
    dtype = "float32"
    digests = [hashlib.sha256() for _ in range(n_traj)] if scan_values else []
    for order, group_name in enumerate(FIELD_GROUPS):
        group = h5[group_name]
        if "field_names" not in group.attrs:
            raise DataError(f"missing attribute 'field_names' on /{group_name}", path)
        for name in as_str_list(group.attrs["field_names"]):
            where = f"/{group_name}/{name}"
            if name not in group:
                raise DataError(f"field '{where}' is listed in field_names but missing", path)
            ds = group[name]
            for flag in ("dim_varying", "sample_varying", "time_varying"):
                if flag not in ds.attrs:
                    raise DataError(f"field '{where}' lacks attribute '{flag}'", path)
            expected = _expected_shape(ds.attrs, n_traj, n_steps, resolution, ndim, order)
            if ds.shape != expected:
                raise DataError(f"field '{where}' has shape {ds.shape}, expected {expected}", path)
            if ds.dtype.kind != "f":
                raise DataError(f"field '{where}' has dtype {ds.dtype}, expected float", path)
            dtype = str(ds.dtype)
            if scan_values:
                _scan_values(path, where, ds, digests)
            if order == 2 and not {"symmetric", "antisymmetric"} <= set(ds.attrs):
                unstated.append(name)
            symmetric, antisymmetric = (bool(ds.attrs.get(k, False)) for k in SYMMETRY)
            fields.append(Field(name, order, symmetric, antisymmetric))
    if not fields:
        raise DataError("holds no fields (t0/t1/t2 field groups are all empty)", path)
    return FileInfo(
        path=path,
        dataset_name=str(h5.attrs["dataset_name"]),
        n_trajectories=n_traj,
        n_steps=n_steps,
        spatial_dims=spatial,
        resolution=resolution,
        fields=fields,
        params=params,
        boundaries=boundaries,
        coords=coords,
        time=time,
        dtype=dtype,
        digests=[d.digest() for d in digests],
        unstated_symmetry=unstated,
    )


def _check_attr_type(path: Path, name: str, value: Any, kind: type) -> None:
    if kind is str:
        ok = isinstance(value, (str, bytes))
    elif kind is int:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    else:
        ok = isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1
    if not ok:
        raise DataError(f"root attribute '{name}' should be {kind.__name__}, got {value!r}", path)


def _read_boundaries(
    path: Path, group: h5py.Group, spatial: list[str], resolution: tuple[int, ...]
) -> list[tuple[int, int]]:
    """Per spatial dim (low, high) codes, decoded the way the_well's loader does (from the
    mask's first and last entries; sides no group covers are OPEN)."""
    codes = [[BC_CODES["OPEN"], BC_CODES["OPEN"]] for _ in spatial]
    for name, bc in group.items():
        where = f"/boundary_conditions/{name}"
        for attr in ("bc_type", "associated_dims"):
            if attr not in bc.attrs:
                raise DataError(f"boundary group '{where}' lacks attribute '{attr}'", path)
        bc_type = str(bc.attrs["bc_type"]).upper()
        if bc_type not in BC_CODES:
            raise DataError(f"boundary group '{where}' has unknown bc_type '{bc_type}'", path)
        if "mask" not in bc:
            raise DataError(f"boundary group '{where}' has no 'mask'", path)
        mask = np.asarray(bc["mask"][()])
        for dim in as_str_list(bc.attrs["associated_dims"]):
            if dim not in spatial:
                raise DataError(f"boundary group '{where}' names unknown dimension '{dim}'", path)
            i = spatial.index(dim)
            if mask.shape != (resolution[i],):
                raise DataError(
                    f"boundary mask '{where}/mask' has shape {mask.shape}, expected ({resolution[i]},)",
                    path,
                )
            if mask[0]:
                codes[i][0] = BC_CODES[bc_type]
            if mask[-1]:
                codes[i][1] = BC_CODES[bc_type]
    return [tuple(c) for c in codes]


def _expected_shape(attrs, n_traj, n_steps, resolution, ndim, order) -> tuple[int, ...]:
    shape: list[int] = []
    if attrs["sample_varying"]:
        shape.append(n_traj)
    if attrs["time_varying"]:
        shape.append(n_steps)
    shape += [n for n, used in zip(resolution, np.asarray(attrs["dim_varying"]).tolist()) if used]
    return (*shape, *([ndim] * order))


def _scan_values(path: Path, where: str, ds: h5py.Dataset, digests: list) -> None:
    """Read the field one trajectory at a time (bounded memory), report the first NaN/inf, and
    add each trajectory's bytes to its digest: one read of every value serves both checks."""
    chunks = range(ds.shape[0]) if ds.attrs["sample_varying"] and ds.ndim > 0 else [None]
    for i in chunks:
        block = np.ascontiguousarray(ds[i] if i is not None else ds[()])
        if i is None:  # shared by every trajectory: hash it once
            shared = hashlib.sha256(block).digest()
            for digest in digests:
                digest.update(shared)
        else:
            digests[i].update(block)
        bad = ~np.isfinite(block)
        if bad.any():
            first = np.argwhere(bad)[0]
            at = f"trajectory {i}, " if i is not None else ""
            step = f"step {first[0]}" if ds.attrs["time_varying"] else f"index {tuple(first)}"
            raise DataError(
                f"field '{where}' has {int(bad.sum())} NaN/inf values (first at {at}{step})", path
            )
