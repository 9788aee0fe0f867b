"""A quick look at a dataset: a few frames of every channel of one trajectory, as a PNG."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from physrep.atomic import atomic_path
from physrep.data.filecheck import FileInfo
from physrep.data.wellformat import FIELD_GROUPS


def plot_frames(info: FileInfo, out: str | Path, n_frames: int = 4, trajectory: int = 0) -> Path:
    """Rows are channels, columns evenly spaced frames; each row shares one colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.linspace(0, info.n_steps - 1, min(n_frames, info.n_steps)).round().astype(int)
    channels = []
    with h5py.File(info.path, "r") as h5:
        for group in FIELD_GROUPS:
            for f in (f for f in info.fields if FIELD_GROUPS[f.order] == group):
                x = np.asarray(h5[group][f.name][trajectory, steps])
                channels += [x.reshape(*x.shape[:3], -1)[..., c] for c in range(x[0, 0, 0].size)]
    names = info.channel_names
    fig, axes = plt.subplots(
        len(channels), len(steps), figsize=(2.2 * len(steps), 1.9 * len(channels)), squeeze=False
    )
    for row, (name, frames) in enumerate(zip(names, channels)):
        lo, hi = np.percentile(frames, [1, 99])
        for col, step in enumerate(steps):
            ax = axes[row, col]
            ax.imshow(frames[col].T, origin="lower", cmap="RdBu_r", vmin=lo, vmax=hi, aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"t = {info.time[step]:.3g}", fontsize=9)
            if col == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle(f"{info.dataset_name}: {info.path.name}, trajectory {trajectory}", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return out
