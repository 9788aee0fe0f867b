"""Window loading throughput: physrep's windows (through the_well) vs a plain h5py read.

Both read the same bytes: 16 context + 16 target frames of every field of one trajectory.
The h5py baseline keeps the file open (the fastest a map-style reader can be); physrep's path
opens the file per window, as the_well does, then normalises, permutes to (C,T,H,W) and checks
for NaN. Reported as windows/s and as the ratio raw/physrep (target: <= 2).

    python benchmarks/window_throughput.py [--seconds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from physrep.data.synthetic import SyntheticConfig, write_synthetic
from physrep.data.windows import WellWindows, WindowConfig, make_loader

CASES = [
    ("shear_flow", 4, 64),
    ("active_matter", 11, 64),
    ("shear_flow", 4, 128),
    ("active_matter", 11, 128),
]
FRAMES = 16


def time_loop(fn, n_items: int, seconds: float) -> float:
    """Items per second over at least `seconds` (after one warm-up item)."""
    fn(0)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(done % n_items)
        done += 1
    return done / (time.perf_counter() - start)


def raw_h5py_reader(windows: WellWindows):
    """Plain h5py: slice each field's [trajectory, start:start+2T] from an open file."""
    handles = [h5py.File(p, "r") for p in windows.file_paths]

    def read(i: int) -> np.ndarray:
        f, s = windows.trajectories[windows.window_trajectory[i]]
        t0 = windows.window_start[i]
        h5 = handles[f]
        parts = []
        for group in ("t0_fields", "t1_fields", "t2_fields"):
            for name in h5[group].attrs["field_names"]:
                x = h5[group][name][s, t0 : t0 + 2 * FRAMES]
                parts.append(x.reshape(*x.shape[:3], -1))
        return np.concatenate(parts, axis=-1)

    return read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for like, channels, res in CASES:
            root = Path(tmp) / f"{like}_{res}"
            write_synthetic(
                root,
                SyntheticConfig(
                    like=like,
                    resolution=[res, res],
                    steps=2 * FRAMES + 8,
                    trajectories_per_file=3,
                    modes=1,
                ),
            )
            windows = WellWindows(root, "train", WindowConfig(frames=FRAMES, stride=1))
            assert windows.n_channels == channels
            raw = time_loop(raw_h5py_reader(windows), len(windows), args.seconds)
            ours = time_loop(windows.__getitem__, len(windows), args.seconds)
            loader = make_loader(windows, batch_size=8, shuffle=True, num_workers=2)
            it = iter(loader)
            next(it)
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                try:
                    n += len(next(it)["context"])
                except StopIteration:
                    it = iter(loader)
            loaded = n / (time.perf_counter() - start)
            row = {
                "dataset": like,
                "channels": channels,
                "resolution": res,
                "frames": FRAMES,
                "raw_h5py_windows_per_s": round(raw, 1),
                "physrep_windows_per_s": round(ours, 1),
                "ratio_raw_over_physrep": round(raw / ours, 2),
                "physrep_loader_2_workers_windows_per_s": round(loaded, 1),
            }
            rows.append(row)
            print(
                f"{channels:>2} ch {res:>3}²  raw h5py {raw:8.1f}/s  physrep {ours:8.1f}/s  "
                f"ratio {raw / ours:4.2f}  loader(2 workers) {loaded:8.1f}/s",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
