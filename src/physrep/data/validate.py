"""Check that a folder is a well-formed Well dataset: every file (`filecheck`), the splits
against each other (same dataset, no trajectory in two splits), `stats.yaml`, and a first
window through `the_well` itself. `physrep.data.describe` prints what it holds.

Every problem becomes one `DataError` naming the file and what is wrong with it, raised before
`the_well` would fail deep inside with an assertion (or, worse, silently read garbage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from physrep.data.filecheck import FileInfo, inspect_file
from physrep.data.wellformat import OOD_SPLIT, SPLITS, STATS_KEYS
from physrep.errors import DataError


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
