"""(context, target, parameters) windows over Well-format files, read through the_well.

A window is `context (C,T,H,W)`: T consecutive frames of one trajectory, `target (C,T,H,W)`:
the T frames that follow, and `params (P,)`: that trajectory's governing parameters as
normalised targets. Reading goes through `the_well.data.WellDataset` (with `path=`, so custom
dataset names work, and normalisation passed explicitly: the_well 1.2.0 silently skips it
otherwise). Window starts, trajectory subsets and parameter targets are physrep's own, since
the_well's stride-1 windows and its `restrict_num_trajectories` (which always returns the first
trajectory) do not fit.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from the_well.data import WellDataset
from the_well.data.normalization import RMSNormalization, ZScoreNormalization
from torch.utils.data import DataLoader, Dataset, Sampler

from physrep.config import check
from physrep.data.augment import GENERATORS, SymmetryGroup
from physrep.data.targets import ParamTargets
from physrep.data.validate import DatasetInfo, inspect_dataset, load_stats
from physrep.data.wellformat import FIELD_GROUPS, as_str_list
from physrep.errors import ConfigError, DataError


@dataclass
class WindowConfig:
    frames: int = 16  # T: frames in the context (and in the target)
    stride: int = 4  # steps between consecutive window starts
    first_frame: int = 0  # earliest window start: 1 skips frame 0 (docs/simulators.md, "Frame 0")
    target: bool = True  # also read the T frames after the context
    normalization: Literal["zscore", "rms", "none"] = "zscore"
    crop: list[list[int] | None] | None = None  # per spatial axis [start, stop), or null
    resize: list[int] | None = None  # output H, W (bilinear, no antialiasing)
    noise_std: float = 0.0  # Gaussian noise added to context and target (after normalisation)
    # Symmetries applied at random to each window, the same to context and target (training
    # windows only): shift (periodic axes), flip_x, flip_y, rot90. See physrep.data.augment.
    augment: list[str] = field(default_factory=list)
    fraction: float = 1.0  # of the split's trajectories, drawn at random with `seed`
    seed: int = 0
    params: list[str] | None = None  # default: every parameter varying across train
    transforms: dict[str, Literal["linear", "log10"]] = field(default_factory=dict)

    def clean(self, **changes) -> WindowConfig:
        """The same windows for evaluation: no noise, no augmentation, every trajectory."""
        return dataclasses.replace(self, noise_std=0.0, fraction=1.0, augment=[], **changes)

    def validate(self) -> None:
        check(self.frames >= 1, "frames", ">= 1", self.frames)
        check(self.stride >= 1, "stride", ">= 1", self.stride)
        check(self.first_frame >= 0, "first_frame", ">= 0", self.first_frame)
        check(0.0 < self.fraction <= 1.0, "fraction", "in (0, 1]", self.fraction)
        check(self.noise_std >= 0, "noise_std", ">= 0", self.noise_std)
        if self.resize is not None:
            ok = len(self.resize) == 2 and min(self.resize) >= 1
            check(ok, "resize", "two positive sizes", self.resize)
        unknown = [n for n in self.augment if n not in GENERATORS]
        check(not unknown, "augment", f"made of {', '.join(GENERATORS)}", self.augment)
        for i, c in enumerate(self.crop or []):
            ok = c is None or (len(c) == 2 and 0 <= c[0] < c[1])
            check(ok, f"crop[{i}]", "[start, stop) with 0 <= start < stop", c)


class WellWindows(Dataset):
    """Windows of one split of a Well-format dataset.

    `targets` carries the train split's parameter statistics; leave it None on the train split
    and pass `train.targets` to the valid and test splits, so all three share one scale.
    With `require_params=False` files may lack the parameters (a new run whose parameters are
    to be estimated); their targets are NaN.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        cfg: WindowConfig | None = None,
        targets: ParamTargets | None = None,
        require_params: bool = True,
    ):
        self.root = Path(root)
        self.split = split
        self.cfg = cfg = cfg or WindowConfig()
        self.info: DatasetInfo = inspect_dataset(self.root, [split], scan_values=False)
        files = self.info.splits[split]
        self.file_paths = [f.path for f in files]
        first = files[0]
        self.field_names = first.channel_names
        self.spatial_dims = first.spatial_dims
        self.boundaries = first.boundaries
        self._crop = self._crop_slices(first.resolution)
        self.symmetries = None
        if cfg.augment:
            group = SymmetryGroup(
                cfg.augment, first.fields, first.spatial_dims, first.boundaries,
                first.resolution,
            )  # fmt: skip
            self.symmetries = None if group.trivial else group

        if targets is None:
            train = (
                files
                if split == "train"
                else inspect_dataset(self.root, ["train"], False).splits["train"]
            )
            per_traj = [f.params for f in train for _ in range(f.n_trajectories)]
            targets = ParamTargets.fit(per_traj, cfg.params, cfg.transforms)
        self.targets = targets
        self.param_names = targets.names
        missing = [n for n in targets.names if n not in first.params]
        if missing and require_params:
            raise DataError(f"parameter '{missing[0]}' is not in this split's files", first.path)

        extent = 2 * cfg.frames
        too_short = [f for f in files if f.n_steps - cfg.first_frame < extent]
        if too_short:
            skip = f" from frame {cfg.first_frame}" if cfg.first_frame else ""
            raise DataError(
                f"trajectories of {too_short[0].n_steps} steps are too short for windows of "
                f"{cfg.frames} context + {cfg.frames} target frames{skip}",
                too_short[0].path,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.well = _FastWellDataset(
                path=str(self.root),
                well_split_name=split,
                n_steps_input=cfg.frames,
                n_steps_output=cfg.frames if cfg.target else 0,
                return_grid=False,
            )
        meta = self.well.metadata
        if [Path(p).resolve() for p in self.well.files_paths] != [
            p.resolve() for p in self.file_paths
        ]:
            raise DataError("the_well found a different set of files than physrep", self.root)

        # Normalisation: the_well's own classes and stats.yaml, applied per channel as one fused
        # affine map during the (T,H,W,C) -> (C,T,H,W) copy rather than field by field inside
        # the reader (which costs two extra passes over every window).
        self.norm = None
        n_ch = len(self.field_names)
        self._shift, self._scale = torch.zeros(n_ch), torch.ones(n_ch)
        if cfg.normalization != "none":
            stats = load_stats(self.root, [f.name for f in first.fields])
            kind = ZScoreNormalization if cfg.normalization == "zscore" else RMSNormalization
            self.norm = kind(stats, self.well.core_field_names, self.well.core_constant_field_names)
            zero = torch.zeros(n_ch, dtype=torch.float64)
            self._shift = self.norm.normalize_flattened(zero, "variable").float()
            self._scale = (
                self.norm.normalize_flattened(zero + 1, "variable") - self._shift
            ).float()

        # Trajectories: global ids over this split's files; `fraction` keeps a seeded subset.
        traj = [(f, s) for f, n in enumerate(meta.n_trajectories_per_file) for s in range(n)]
        keep = np.arange(len(traj))
        if cfg.fraction < 1.0:
            order = np.random.default_rng(cfg.seed).permutation(
                len(traj)
            )  # nested across fractions
            keep = np.sort(order[: max(1, round(cfg.fraction * len(traj)))])
        self.trajectories = [traj[i] for i in keep]

        # Windows: starts every `stride` steps from `first_frame` that leave room for context
        # and target.
        well_windows = self.well.n_windows_per_trajectory
        offsets = np.cumsum(
            [0] + [n * w for n, w in zip(meta.n_trajectories_per_file, well_windows)]
        )
        index, owner = [], []
        for t_id, (f, s) in enumerate(self.trajectories):
            steps = meta.n_steps_per_trajectory[f]
            for start in range(cfg.first_frame, steps - extent + 1, cfg.stride):
                index.append(offsets[f] + s * well_windows[f] + start)
                owner.append((t_id, start))
        self._well_index = np.asarray(index, dtype=np.int64)
        self.window_trajectory = np.asarray([o[0] for o in owner], dtype=np.int64)
        self.window_start = np.asarray([o[1] for o in owner], dtype=np.int64)
        raw = np.array(  # NaN where a file does not state a parameter (a new observation)
            [
                [files[f].params.get(n, np.nan) for n in self.param_names]
                for f, _ in self.trajectories
            ]
        )
        self.trajectory_params_raw = raw
        self._trajectory_params = torch.as_tensor(targets.encode(raw), dtype=torch.float32)

    def __len__(self) -> int:
        return len(self._well_index)

    @property
    def n_channels(self) -> int:
        return len(self.field_names)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(H, W) of the windows after crop and resize."""
        if self.cfg.resize is not None:
            return tuple(self.cfg.resize)
        res = self.info.first.resolution
        return tuple(len(range(res[i])[s]) for i, s in enumerate(self._crop))

    def describe_window(self, i: int) -> str:
        f, s = self.trajectories[self.window_trajectory[i]]
        return f"{self.file_paths[f]} trajectory {s}, steps {self.window_start[i]}+"

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sample = self.well[int(self._well_index[i])]
        raw = [sample["input_fields"], *([sample["output_fields"]] if self.cfg.target else [])]
        if self.symmetries is not None:  # one transform for context and target alike
            drawn = self.symmetries.draw(self.info.first.resolution)
            raw = [self.symmetries.apply(x, *drawn) for x in raw]
        out = {"context": self._frames(raw[0], i)}
        if self.cfg.target:
            out["target"] = self._frames(raw[1], i)
        out["params"] = self._trajectory_params[self.window_trajectory[i]]
        out["trajectory"] = torch.tensor(self.window_trajectory[i])
        out["start"] = torch.tensor(self.window_start[i])
        return out

    def _frames(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """(T,H,W,C) raw from the_well -> normalised, cropped, resized, noised (C,T,H,W)."""
        x = x[(slice(None), *self._crop)].permute(3, 0, 1, 2)
        c = (-1, 1, 1, 1)
        out = torch.addcmul(self._shift.view(c), x.float(), self._scale.view(c))  # one pass
        if self.cfg.resize is not None:
            out = (
                F.interpolate(
                    out.transpose(0, 1),
                    size=tuple(self.cfg.resize),
                    mode="bilinear",
                    align_corners=False,
                    antialias=False,
                )
                .transpose(0, 1)
                .contiguous()
            )
        # A sum is ~40x cheaper than isfinite().all() and NaN/inf propagate through it.
        if not torch.isfinite(out.sum()) and not torch.isfinite(out).all():
            raise DataError(f"NaN/inf values in window {i} ({self.describe_window(i)})", self.root)
        if self.cfg.noise_std > 0:
            out.add_(torch.randn_like(out), alpha=self.cfg.noise_std)
        return out

    def _crop_slices(self, resolution: tuple[int, ...]) -> tuple[slice, ...]:
        crop = self.cfg.crop or [None] * len(resolution)
        if len(crop) != len(resolution):
            raise ConfigError(
                f"key 'crop' needs {len(resolution)} entries (one per spatial axis), got {len(crop)}"
            )
        slices = []
        for n, c, d in zip(resolution, crop, self.spatial_dims):
            if c is not None and c[1] > n:
                raise ConfigError(f"key 'crop': [{c[0]}, {c[1]}) exceeds axis '{d}' of size {n}")
            slices.append(slice(None) if c is None else slice(c[0], c[1]))
        return tuple(slices)


class _FastWellDataset(WellDataset):
    """the_well's reader minus per-window work physrep does not need.

    Stock 1.2.0 re-reads ~5 HDF5 attributes per field and the scalars on every item (~0.1 ms
    each), tiles every field even when no axis needs tiling (a full copy), and normalises field
    by field (two more copies). Here the field layout is read once per file, tiling happens
    only when a field really omits an axis, scalars are skipped (physrep takes the constant
    parameters from its validated file summary), and physrep normalises in one fused pass.
    `tests/test_roundtrip.py` checks the values equal stock `WellDataset`'s.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._field_layouts: dict[str, list[tuple]] = {}

    def _reconstruct_fields(self, file, cache, sample_idx, time_idx, n_steps, dt):
        layout = self._field_layouts.get(file.filename)
        if layout is None:
            layout = self._field_layouts[file.filename] = [
                (
                    order,
                    group,
                    name,
                    bool(ds.attrs["sample_varying"]),
                    bool(ds.attrs["time_varying"]),
                    [bool(u) for u in ds.attrs["dim_varying"]],
                )
                for order, group in enumerate(FIELD_GROUPS)
                for name in as_str_list(file[group].attrs["field_names"])
                for ds in [file[group][name]]
            ]
        variable: dict[int, dict] = {0: {}, 1: {}, 2: {}}
        constant: dict[int, dict] = {0: {}, 1: {}, 2: {}}
        for order, group, name, sample_varying, time_varying, use_dims in layout:
            index = (sample_idx,) if sample_varying else ()
            if time_varying:
                index += (slice(time_idx, time_idx + n_steps * dt, dt),)
            data = torch.as_tensor(file[group][name][index])
            if not all(use_dims):
                data = self._pad_axes(data, use_dims, time_varying=time_varying, tensor_order=order)
            (variable if time_varying else constant)[order][name] = data
        return variable, constant

    def _reconstruct_scalars(self, file, cache, sample_idx, time_idx, n_steps, dt):
        return {}, {}


class EpochShuffle(Sampler[int]):
    """A shuffle that is a function of (seed, epoch) alone, so a run resumed at an epoch
    boundary sees exactly the order an uninterrupted run would (a RandomSampler's generator
    state would restart instead). Lightning calls `set_epoch` each epoch."""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def make_loader(
    windows: Dataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool | None = None,
) -> DataLoader:
    """A DataLoader that keeps a training step fed: persistent workers, pinned memory on GPU,
    and a shuffle seeded by (seed, epoch)."""
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    return DataLoader(
        windows,
        batch_size=batch_size,
        sampler=EpochShuffle(len(windows), seed) if shuffle else None,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin,
        drop_last=drop_last,
        prefetch_factor=4 if num_workers > 0 else None,
    )
