"""The human summary `physrep inspect` prints for a checked dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from physrep.data.filecheck import SYMMETRY
from physrep.data.wellformat import BC_CODES, Field

if TYPE_CHECKING:
    from physrep.data.validate import DatasetInfo

_BC_NAMES = {v: k for k, v in BC_CODES.items()}


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
    flags = [name for name in SYMMETRY if getattr(f, name)]
    return ", ".join([f"t{f.order}", *flags])
