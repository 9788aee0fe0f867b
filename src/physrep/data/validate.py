"""Check that a folder is a well-formed Well dataset, and describe what it holds.

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
import yaml

from physrep.data.wellformat import (
    BC_CODES,
    FIELD_GROUPS,
    OOD_SPLIT,
    SPLITS,
    STATS_KEYS,
    Field,
    as_str_list,
    channel_names,
)
from physrep.errors import DataError

_ROOT_ATTRS = {
    "dataset_name": str,
    "grid_type": str,
    "n_spatial_dims": int,
    "n_trajectories": int,
    "simulation_parameters": list,
}
_GROUPS = ("dimensions", "boundary_conditions", "scalars", *FIELD_GROUPS)
_BC_NAMES = {v: k for k, v in BC_CODES.items()}
_SYMMETRY = ("symmetric", "antisymmetric")


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


@dataclass
class DatasetInfo:
    root: Path
    name: str
    splits: dict[str, list[FileInfo]] = field(default_factory=dict)
    stats: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def first(self) -> FileInfo:
        return next(f for files in self.splits.values() for f in files)


def split_files(root: str | Path, split: str) -> list[Path]:
    """The sorted HDF5 files of one split, or a clear error why there are none."""
    if split not in (*SPLITS, OOD_SPLIT):
        raise DataError(
            f"unknown split '{split}' (expected one of {', '.join((*SPLITS, OOD_SPLIT))})", root
        )
    root = Path(root)
    if not root.is_dir():
        raise DataError("no such dataset folder", root)
    if not (root / "data").is_dir():
        raise DataError("not a Well dataset: no 'data/' folder with train/valid/test inside", root)
    folder = root / "data" / split
    if not folder.is_dir():
        raise DataError(f"split folder '{split}' is missing", folder)
    files = sorted([*folder.glob("*.hdf5"), *folder.glob("*.h5")])
    if not files:
        raise DataError("no .hdf5 files in this split folder", folder)
    return files


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


def present_splits(root: str | Path) -> list[str]:
    """train, valid, test, plus the held-out-parameter split when the folder has one."""
    return [*SPLITS, *([OOD_SPLIT] if (Path(root) / "data" / OOD_SPLIT).is_dir() else [])]


def inspect_dataset(
    root: str | Path,
    splits: tuple[str, ...] | list[str] | None = None,
    scan_values: bool = True,
    require_stats: bool = False,
) -> DatasetInfo:
    """Validate every file of the given splits, check they agree, and read `stats.yaml`
    (an error if `require_stats` and it is missing). Default: every split present.

    With `scan_values`, a trajectory found in two splits is an error (it would inflate every
    test score) and one repeated within a split is a warning in `info.warnings`."""
    root = Path(root)
    splits = present_splits(root) if splits is None else splits
    info: DatasetInfo | None = None
    reference: FileInfo | None = None
    for split in splits:
        files = split_files(root, split)
        infos = [inspect_file(p, scan_values) for p in files]
        for fi in infos:
            if reference is None:
                reference = fi
                info = DatasetInfo(root=root, name=fi.dataset_name)
            _check_same_dataset(reference, fi)
        assert info is not None
        info.splits[split] = infos
    if info is None:
        raise DataError("no splits selected", root)
    if reference.unstated_symmetry:
        info.warnings.append(
            f"t2 field '{reference.unstated_symmetry[0]}' does not say whether it is symmetric "
            "(The Well's format stores 'symmetric' and 'antisymmetric' on every t2 field)"
        )
    if scan_values:
        info.warnings += _check_duplicates(info)
    if require_stats or (root / "stats.yaml").exists():
        info.stats = load_stats(root, [f.name for f in reference.fields])
    return info


def load_stats(root: str | Path, field_names: list[str]) -> dict[str, Any]:
    """Read and check `stats.yaml`: every key the_well's normalisations need, for every field."""
    path = Path(root) / "stats.yaml"
    if not path.is_file():
        raise DataError(
            "stats.yaml is missing (needed for normalisation; `physrep stats` writes it)", path
        )
    try:
        stats = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataError(f"malformed YAML ({str(exc).splitlines()[0]})", path) from None
    if not isinstance(stats, dict):
        raise DataError("malformed: expected a mapping with keys " + ", ".join(STATS_KEYS), path)
    for key in STATS_KEYS:
        if not isinstance(stats.get(key), dict):
            raise DataError(f"malformed: missing section '{key}'", path)
    for key in STATS_KEYS:
        for name in field_names:
            if name not in stats[key]:
                raise DataError(f"malformed: section '{key}' has no entry for field '{name}'", path)
            try:
                value = np.asarray(stats[key][name], dtype=float)
            except (TypeError, ValueError):
                raise DataError(f"malformed: '{key}.{name}' is not numeric", path) from None
            if not np.isfinite(value).all():
                raise DataError(f"'{key}.{name}' is not finite", path)
    return stats


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
            symmetric, antisymmetric = (bool(ds.attrs.get(k, False)) for k in _SYMMETRY)
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


def _duplicate_groups(info: DatasetInfo) -> list[list[tuple[str, Path, int]]]:
    """Groups of byte-identical trajectories, each place as (split, file, trajectory index), in
    split and file order; needs the digests of a `scan_values` inspection."""
    places: dict[bytes, list[tuple[str, Path, int]]] = {}
    for split, files in info.splits.items():
        for f in files:
            for i, digest in enumerate(f.digests):
                places.setdefault(digest, []).append((split, f.path, i))
    return [group for group in places.values() if len(group) > 1]


def _check_duplicates(info: DatasetInfo) -> list[str]:
    """Raise on a trajectory shared by two splits (a leak: the model saw what it is scored
    on); return one warning per split that repeats a trajectory (it weighs double there)."""
    groups = _duplicate_groups(info)
    leaks = [g for g in groups if len({split for split, _, _ in g}) > 1]
    if leaks:
        (split_a, path_a, i) = leaks[0][0]
        (split_b, path_b, j) = next(place for place in leaks[0] if place[0] != split_a)
        more = f"; {len(leaks)} trajectories in all are shared" if len(leaks) > 1 else ""
        raise DataError(
            f"trajectory {j} is byte-identical to trajectory {i} of "
            f"{path_a.relative_to(info.root)} (a {split_a}/{split_b} leak: {split_b} scores "
            f"would be inflated{more})",
            path_b,
        )
    warnings = []
    for split in info.splits:
        repeats = [g for g in groups if g[0][0] == split]
        if repeats:
            (_, path_a, i), (_, path_b, j) = repeats[0][:2]
            copies = sum(len(g) - 1 for g in repeats)
            warnings.append(
                f"{split} repeats trajectories ({copies} copies; e.g. trajectory {j} of "
                f"{path_b.name} is byte-identical to trajectory {i} of {path_a.name})"
            )
    return warnings


def _check_same_dataset(ref: FileInfo, other: FileInfo) -> None:
    checks = (
        ("dataset_name", ref.dataset_name, other.dataset_name),
        ("spatial dims", ref.spatial_dims, other.spatial_dims),
        ("resolution", ref.resolution, other.resolution),
        ("fields", [f.name for f in ref.fields], [f.name for f in other.fields]),
    )
    for what, a, b in checks:
        if a != b:
            fmt = (lambda r: "x".join(map(str, r))) if what == "resolution" else str
            raise DataError(f"{what} {fmt(b)} differs from {fmt(a)} in {ref.path.name}", other.path)


def describe(info: DatasetInfo) -> str:
    """The human summary `physrep inspect` prints."""
    first = info.first
    lines = [f"dataset     {info.name}   ({info.root})"]
    for split, files in info.splits.items():
        n_traj = sum(f.n_trajectories for f in files)
        steps = sorted({f.n_steps for f in files})
        lines.append(
            f"  {split:<6}    {len(files)} files, {n_traj} trajectories, "
            f"{'/'.join(map(str, steps))} steps each"
        )
    lines.append(
        f"resolution  {' x '.join(map(str, first.resolution))}  ({', '.join(first.spatial_dims)})  dtype {first.dtype}"
    )
    for d, c in first.coords.items():
        spacing = np.diff(c.astype(float))
        kind = (
            "uniform"
            if spacing.size and np.allclose(spacing, spacing[0], rtol=1e-3)
            else "non-uniform"
        )
        lines.append(f"  {d:<9} [{c.min():.4g}, {c.max():.4g}]  {kind}")
    dt = np.diff(first.time.astype(float))
    lines.append(
        f"time        [{first.time.min():.4g}, {first.time.max():.4g}]"
        + (f"  dt {dt.mean():.4g}" if dt.size else "")
    )
    fields = ", ".join(f"{f.name} ({_kind(f)})" for f in first.fields)
    chans = first.channel_names
    lines.append(f"fields      {fields}")
    lines.append(f"channels    {len(chans)}: {', '.join(chans)}")
    values: dict[str, set[float]] = {}
    for files in info.splits.values():
        for f in files:
            for k, v in f.params.items():
                values.setdefault(k, set()).add(v)
    for k, vs in values.items():
        lines.append(f"parameter   {k}: {', '.join(f'{v:g}' for v in sorted(vs))}")
    for d, (lo, hi) in zip(first.spatial_dims, first.boundaries):
        side = _BC_NAMES[lo] if lo == hi else f"{_BC_NAMES[lo]} / {_BC_NAMES[hi]}"
        lines.append(f"boundary    {d}: {side}")
    lines.append("stats.yaml  " + ("present, complete" if info.stats is not None else "absent"))
    lines += [f"warning     {w}" for w in info.warnings]
    return "\n".join(lines)


def _kind(f: Field) -> str:
    """t0, t1, t2; a rank-2 field also says whether it is (anti)symmetric."""
    flags = [name for name in _SYMMETRY if getattr(f, name)]
    return ", ".join([f"t{f.order}", *flags])


def check_loads_in_the_well(info: DatasetInfo) -> None:
    """Load the first window of each split through `the_well.data.WellDataset` (z-scored when
    stats.yaml exists) and check it agrees with physrep's reading of the boundaries."""
    import warnings

    import torch
    from the_well.data import WellDataset
    from the_well.data.normalization import ZScoreNormalization

    for split, files in info.splits.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = WellDataset(
                    path=str(info.root),
                    well_split_name=split,
                    use_normalization=info.stats is not None,
                    normalization_type=ZScoreNormalization if info.stats is not None else None,
                    return_grid=False,
                )
                sample = ds[0]
        except Exception as exc:  # the_well reports problems as bare asserts and KeyErrors
            raise DataError(
                f"the_well cannot load split '{split}' ({type(exc).__name__}: {exc})", info.root
            ) from None
        expected = torch.tensor(files[0].boundaries, dtype=sample["boundary_conditions"].dtype)
        if not torch.equal(sample["boundary_conditions"], expected):
            raise DataError(
                f"the_well reads boundaries {sample['boundary_conditions'].tolist()}, expected {expected.tolist()}",
                files[0].path,
            )
        if not torch.isfinite(sample["input_fields"]).all():
            raise DataError(
                "the_well's normalised first window holds NaN/inf (check stats.yaml)", info.root
            )
