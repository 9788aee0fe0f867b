"""`physrep estimate`: the governing parameters of new simulations, with calibrated intervals.

A benchmark keeps, for every source, its full-data probe (physrep.eval.saved). Given Well-format
files, which may lack the parameter scalars as a new observation would, this embeds their
windows exactly as the benchmark embedded its test split (same encoder, checked by digest; same
windows, normalisation statistics and token storage), averages each trajectory's window
predictions, and reports each parameter's estimate and interval in physical units. Files that
differ from what the encoder was trained on (fields, their order, grid, too few steps) are
refused in one line naming the file.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import numpy as np

from physrep.config import from_dict
from physrep.data.filecheck import inspect_file
from physrep.data.windows import WellWindows, WindowConfig
from physrep.errors import PhysrepError
from physrep.eval.embed import FEATURES, embed_windows, file_digest
from physrep.eval.metrics import per_trajectory
from physrep.eval.ranks import device
from physrep.eval.saved import SavedProbe, load_probe
from physrep.eval.tokens import TokenRows, TokenWriter


def find_saved_probe(
    run: Path, dataset: str | None, method: str, probe: str, pretrain_seed: int | None
) -> Path:
    """The newest saved probe of `method` and `probe` in benchmark folder `run`."""
    saved = sorted(Path(run).glob("*/probes/saved/*.pt"))
    if not saved:
        raise PhysrepError("holds no saved probes (run a benchmark into it first)", run)
    datasets = sorted({p.parents[2].name for p in saved})
    if dataset is None and len(datasets) > 1:
        raise PhysrepError(f"holds several datasets ({', '.join(datasets)}): pass --dataset", run)
    dataset = dataset or datasets[0]
    seed = "*" if pretrain_seed is None else str(pretrain_seed)
    found = sorted(
        Path(run).glob(f"{dataset}/probes/saved/{method}-s{seed}-{probe}-*.pt"),
        key=lambda p: (p.stat().st_mtime_ns, p.name),
    )
    if not found:
        have = sorted({p.name.rsplit("-", 1)[0] for p in saved if p.parents[2].name == dataset})
        raise PhysrepError(
            f"no saved {probe} probe of method '{method}' for dataset '{dataset}' "
            f"(saved: {', '.join(have)})",
            run,
        )
    return found[-1]


def input_files(paths: list[Path]) -> list[Path]:
    """Every HDF5 file named, or found under a named folder, in a stable order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".h5", ".hdf5"))
        elif path.is_file():
            files.append(path)
        else:
            raise PhysrepError("no such file or folder", path)
    if not files:
        raise PhysrepError("no .h5 or .hdf5 files found", paths[0])
    return files


def check_like_training(path: Path, saved: SavedProbe, cfg: WindowConfig) -> None:
    """Refuse a file whose fields, field order, grid or length the encoder cannot take."""
    info = inspect_file(path, scan_values=False)
    trained = saved.source.get("fields")
    if trained and list(info.channel_names) != list(trained):
        raise PhysrepError(
            f"has fields {list(info.channel_names)}, but the encoder was trained on {trained} "
            "(order matters)",
            path,
        )
    grid = saved.source.get("resolution")
    if grid and list(info.resolution) != list(grid):
        shown = " x ".join(map(str, info.resolution))
        raise PhysrepError(
            f"has a {shown} grid, but the encoder was trained on {' x '.join(map(str, grid))}",
            path,
        )
    needed = cfg.first_frame + 2 * cfg.frames  # room for a context and a target clip
    if info.n_steps < needed:
        raise PhysrepError(f"has {info.n_steps} steps; its windows need at least {needed}", path)


def embed_files(saved: SavedProbe, files: list[Path], workdir: Path, batch_size: int):
    """Tokens and windows of `files`, embedded as the benchmark embedded its data."""
    from physrep.eval.features import physics_features
    from physrep.models.export import load_encoder

    source = saved.source
    folder = workdir / "data" / "test"
    folder.mkdir(parents=True)
    for i, path in enumerate(files):  # a dataset folder of links, in the order given
        (folder / f"{i:05d}_{path.name}").symlink_to(path.resolve())
    if source.get("stats"):
        (workdir / "stats.yaml").write_text(source["stats"])
    cfg = from_dict(WindowConfig, source["windows"])
    windows = WellWindows(workdir, "test", cfg, targets=saved.targets, require_params=False)
    if source["source"] == FEATURES:
        fn = physics_features
    else:
        encoder = Path(source["source"])
        if not encoder.is_file() or file_digest(encoder) != source["source_id"]:
            raise PhysrepError("is missing or not the encoder this probe was fitted on", encoder)
        fn = load_encoder(encoder).encode
    tokens = source.get("tokens", "all")
    pool = int(tokens.split("-")[1]) if tokens.startswith("pooled-") else 0
    writer = TokenWriter(workdir / "tokens.npy", len(windows), source.get("dtype", "float32"))
    embed_windows(fn, windows, writer, batch_size, pool=pool)
    writer.close()
    return TokenRows(workdir / "tokens.npy", writer.dtype), windows


def estimate(
    saved: SavedProbe, files: list[Path], level: float = 0.9, batch_size: int = 32
) -> list[dict]:
    """One row per trajectory: file, trajectory, and per parameter the estimate, the interval
    at `level` and, where the file states it, the true value (physical units)."""
    cfg = from_dict(WindowConfig, saved.source["windows"])
    for path in files:
        check_like_training(path, saved, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        tokens, windows = embed_files(saved, files, Path(tmp), batch_size)
        pred = per_trajectory(saved.predict(tokens), windows.window_trajectory)
    lo, hi = saved.errors.interval(pred, level)
    decode = saved.targets.decode
    estimate_, low, high = decode(pred), decode(lo), decode(hi)
    rows = []
    for t, (f, s) in enumerate(windows.trajectories):
        row = {"file": str(files[f]), "trajectory": s}
        for i, name in enumerate(saved.targets.names):
            row[name] = float(estimate_[t, i])
            row[f"{name}_low"], row[f"{name}_high"] = float(low[t, i]), float(high[t, i])
            true = windows.trajectory_params_raw[t, i]
            row[f"{name}_true"] = None if np.isnan(true) else float(true)
        rows.append(row)
    return rows


def format_rows(rows: list[dict], names: list[str], level: float) -> str:
    """A plain table: one line per trajectory, `estimate [low, high]` per parameter."""
    head = ["file", "traj", *(f"{n} ({level:.0%} interval)" for n in names)]
    lines = ["  ".join(head)]
    for row in rows:
        cells = [Path(row["file"]).name, str(row["trajectory"])]
        for n in names:
            cell = f"{row[n]:.4g} [{row[n + '_low']:.4g}, {row[n + '_high']:.4g}]"
            if row[n + "_true"] is not None:
                cell += f" (true {row[n + '_true']:.4g})"
            cells.append(cell)
        lines.append("  ".join(cells))
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path) -> None:
    from physrep.atomic import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def run_estimate(
    run: Path,
    paths: list[Path],
    dataset: str | None,
    method: str,
    probe: str,
    pretrain_seed: int | None,
    level: float,
    out: Path | None,
) -> str:
    """What `physrep estimate` prints (and writes to `out` as CSV)."""
    if not 0 < level < 1:
        raise PhysrepError(f"--level must lie in (0, 1), got {level}")
    saved = load_probe(find_saved_probe(run, dataset, method, probe, pretrain_seed), device())
    rows = estimate(saved, input_files(paths), level)
    if out is not None:
        write_csv(rows, out)
    return format_rows(rows, saved.targets.names, level)
