"""The report's figures, from result rows and the files a benchmark leaves in its folder.

Why: each figure answers one question a table cannot: how errors scale with training data,
what the predictions look like against the truth, whether pretraining converged and how the
embeddings arrange themselves. Every input other than the rows is optional: a missing or
damaged file becomes a note naming it, never an error. matplotlib's object API is used (no
pyplot state, nothing left open).
"""

from __future__ import annotations

import csv
import math
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from physrep.eval.predictions import prediction_file
from physrep.eval.results import CONTROL, METHOD_ORDER, PROBE_ORDER, ordered, summarise

LOG_PARAMETERS = ("Reynolds", "Rayleigh")  # span decades: plotted on log axes
# What reading a damaged optional input (npz, csv) can raise; such a file is skipped, not fatal.
READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, csv.Error)

Row = Mapping[str, Any]


class Plot(NamedTuple):
    figure: Figure | None  # None: nothing to draw
    notes: list[str]  # what was left out, and why
    caption: str = ""  # what was drawn, where the figure alone does not say


def _grid(n_rows: int, n_cols: int, width: float = 3.4, height: float = 3.0) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width * n_cols, height * n_rows), layout="constrained")
    return fig, fig.subplots(n_rows, n_cols, squeeze=False)


# ---------------------------------------------------------------------------------------------
# Data efficiency
# ---------------------------------------------------------------------------------------------


def efficiency_plot(rows: Sequence[Row], dataset: str, probe: str) -> Plot:
    """Test MSE against the fraction of training data, one curve per method of `probe`."""
    test = [row for row in rows if row["dataset"] == dataset and row["split"] == "test"]
    probed = [row for row in test if row["probe"] == probe and row["method"] != CONTROL]
    curves = summarise(probed, by=("method", "fraction"))
    if not curves:
        return Plot(None, [f"not available: no {probe}-probe test results"])
    fig, axes = _grid(1, 1, width=5.5, height=3.8)
    ax = axes[0, 0]
    for method in ordered((method for method, _ in curves), METHOD_ORDER):
        points = sorted((f, stats) for (m, f), stats in curves.items() if m == method)
        ax.errorbar(
            [f for f, _ in points],
            [stats[0] for _, stats in points],
            yerr=[stats[1] for _, stats in points],
            marker="o",
            capsize=3,
            label=method,
        )
    control = summarise([row for row in test if row["method"] == CONTROL], by=("fraction",))
    if control:
        ax.axhline(control[max(control)][0], ls="--", color="grey", label=f"{CONTROL} (control)")
    fractions = sorted({f for _, f in curves})
    ax.set_xscale("log")
    ax.set_xticks(fractions, [f"{f:g}" for f in fractions])
    ax.set_xticks([], minor=True)
    ax.set(xlabel="fraction of training data", ylabel="test MSE", title=f"{dataset} ({probe})")
    ax.legend(fontsize=8)
    return Plot(fig, [])


def reliability_plot(rows: Sequence[Row], dataset: str, probe: str) -> Plot:
    """Coverage of the calibrated intervals against their nominal level (test trajectories,
    all training data, mean over seeds), one curve per method of `probe`; the diagonal is
    perfect calibration."""
    test = [
        row
        for row in rows
        if row["dataset"] == dataset
        and row["split"] == "test"
        and math.isclose(row["fraction"], 1.0)
        and (row["probe"] == probe or row["method"] == CONTROL)
    ]
    levels = sorted(
        int(key.split("_")[1])
        for key in {k for row in test for k in row}
        if key.startswith("coverage_")
    )
    if not levels:
        return Plot(None, ["not available: no interval coverage in these results"])
    fig, axes = _grid(1, 1, width=4.6, height=4.2)
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="nominal")
    for method in ordered({row["method"] for row in test}, METHOD_ORDER):
        chosen = [row for row in test if row["method"] == method]
        means = [
            summarise(chosen, by=(), metric=f"coverage_{k}").get((), (np.nan,))[0] for k in levels
        ]
        ax.plot([k / 100 for k in levels], means, marker="o", label=method)
    ax.set(
        xlabel="nominal coverage",
        ylabel="test coverage (trajectories)",
        title=f"{dataset} ({probe})",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    return Plot(fig, [])


# ---------------------------------------------------------------------------------------------
# Predicted vs true
# ---------------------------------------------------------------------------------------------


def prediction_rows(rows: Iterable[Row], dataset: str, headline_probe: str) -> list[Row]:
    """Per method (not the control), the row whose saved predictions are plotted: split test,
    fraction 1, the headline probe (a method without it, such as a fine-tuned model with its
    attentive head, keeps its own probe), and the first row of those, which, as results.json
    keeps the benchmark's order, has the first pretraining seed and first probe seed."""
    full = [
        row
        for row in rows
        if row["dataset"] == dataset
        and row["method"] != CONTROL
        and row["split"] == "test"
        and math.isclose(row["fraction"], 1.0)
    ]
    chosen = []
    for method in ordered((row["method"] for row in full), METHOD_ORDER):
        own = [row for row in full if row["method"] == method]
        probes = ordered((row["probe"] for row in own), PROBE_ORDER)
        probe = headline_probe if headline_probe in probes else probes[0]
        chosen.append(next(row for row in own if row["probe"] == probe))
    return chosen


def _row_file(out_dir: Path, row: Row) -> Path:
    return prediction_file(
        out_dir,
        row["dataset"],
        row["method"],
        row["probe"],
        row["split"],
        row["seed"],
        row.get("pretrain_seed", 0),
    )


def _describe(row: Row) -> str:
    return (
        f"{row['method']} ({row['probe']} probe, probe seed {row['seed']}, "
        f"pretraining seed {row.get('pretrain_seed', 0)})"
    )


def _load_columns(path: Path, key: str, required: Sequence[str]) -> dict[str, np.ndarray]:
    """Arrays of an npz holding a (N, P) array `key`, its column `names` (P,) and `required`."""
    with np.load(path, allow_pickle=False) as data:
        missing = [name for name in (key, "names", *required) if name not in data.files]
        if missing:
            raise ValueError(f"missing array(s) {', '.join(missing)}")
        arrays = {name: data[name] for name in data.files}
    shape, names = arrays[key].shape, arrays["names"].shape
    if len(shape) != 2 or names != shape[1:]:
        raise ValueError(f"{key} has shape {shape} but names has shape {names}")
    return arrays


def _load_predictions(path: Path) -> dict[str, np.ndarray]:
    arrays = _load_columns(path, "pred", ("true",))
    n_windows = len(arrays["pred"])
    if arrays["true"].shape != arrays["pred"].shape:
        raise ValueError("true and pred differ in shape")
    if arrays.get("trajectory", np.zeros(n_windows)).shape != (n_windows,):
        raise ValueError("trajectory does not have one entry per window")
    return arrays


def _is_log(name: str, *values: np.ndarray) -> bool:
    return name in LOG_PARAMETERS and all(np.all(v > 0) for v in values)


def _trajectory_means(values: np.ndarray, trajectory: np.ndarray, log: bool) -> np.ndarray:
    """Mean per trajectory; geometric for log-scale parameters, as the probes learn log10."""
    _, inverse = np.unique(trajectory, return_inverse=True)
    counts = np.bincount(inverse)
    if log:
        return 10.0 ** (np.bincount(inverse, weights=np.log10(values)) / counts)
    return np.bincount(inverse, weights=values) / counts


def _scatter_predictions(ax: Any, arrays: Mapping[str, np.ndarray], column: int) -> None:
    name = str(arrays["names"][column])
    pred, true = arrays["pred"][:, column], arrays["true"][:, column]
    keep = np.isfinite(pred) & np.isfinite(true)
    pred, true = pred[keep], true[keep]
    if not keep.any():
        ax.text(0.5, 0.5, "no finite values", ha="center", transform=ax.transAxes)
        return
    log = _is_log(name, pred, true)
    ax.scatter(true, pred, s=6, alpha=0.25, color="C0", linewidths=0, label="window")
    if "trajectory" in arrays:
        trajectory = arrays["trajectory"][keep]
        ax.scatter(
            _trajectory_means(true, trajectory, log),
            _trajectory_means(pred, trajectory, log),
            s=22,
            color="C3",
            edgecolors="black",
            linewidths=0.5,
            label="trajectory mean",
        )
    lo, hi = min(true.min(), pred.min()), max(true.max(), pred.max())
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--")
    if log:
        ax.set(xscale="log", yscale="log")
    ax.set(xlabel=f"true {name}", ylabel=f"predicted {name}")


def _loaded_predictions(
    out_dir: Path, chosen: Sequence[Row]
) -> tuple[dict[str, dict[str, np.ndarray]], list[str], list[str]]:
    """Arrays by method of the rows whose file reads, their descriptions, and notes on the rest."""
    loaded, described, notes = {}, [], []
    for row in chosen:
        path = _row_file(out_dir, row)
        try:
            loaded[row["method"]] = _load_predictions(path)
        except FileNotFoundError:
            notes.append(f"{row['method']}: {path.name} not available (no such file)")
        except READ_ERRORS as exc:
            notes.append(f"{row['method']}: {path.name} not available ({exc})")
        else:
            described.append(_describe(row))
    return loaded, described, notes


def prediction_plot(out_dir: Path, rows: Sequence[Row], dataset: str, headline_probe: str) -> Plot:
    """Predicted against true test values, one row of panels per method of `dataset`."""
    chosen = prediction_rows(rows, dataset, headline_probe)
    if not chosen:
        return Plot(None, ["not available: no test results at fraction 1"])
    loaded, described, notes = _loaded_predictions(out_dir, chosen)
    if not loaded:
        return Plot(None, [*notes, "not available: no prediction file could be read"])
    n_cols = max(arrays["pred"].shape[1] for arrays in loaded.values())
    fig, axes = _grid(len(loaded), n_cols)
    for axes_row, (method, arrays) in zip(axes, loaded.items()):
        for column, ax in enumerate(axes_row):
            if column < arrays["pred"].shape[1]:
                _scatter_predictions(ax, arrays, column)
                ax.set_title(f"{method}: {arrays['names'][column]}", fontsize=9)
            else:
                ax.set_axis_off()
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=7)
    return Plot(fig, notes, "Test split, all training data: " + "; ".join(described) + ".")


# ---------------------------------------------------------------------------------------------
# Pretraining loss
# ---------------------------------------------------------------------------------------------


def _number(text: str | None) -> float | None:
    """A finite float from a CSV cell; None for an empty, missing or non-finite one."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# Lightning names a metric logged per step and per epoch `<name>_step` / `<name>_epoch`.
LOSS_COLUMNS = {
    "train/loss": ("train/loss", "train/loss_step", "train/loss_epoch"),
    "val/loss": ("val/loss", "val/loss_epoch", "val/loss_step"),
}


def _read_loss_curves(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """(step, value) series of train and val loss from a CSVLogger file, skipping empty cells."""
    with path.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    columns = records[0].keys() if records else ()
    curves = {}
    for label, candidates in LOSS_COLUMNS.items():
        column = next((c for c in candidates if c in columns), None)
        if column is None:
            continue
        points = [(_number(r.get("step")), _number(r.get(column))) for r in records]
        points = [(step, value) for step, value in points if step is not None and value is not None]
        if points:
            curves[label] = ([step for step, _ in points], [value for _, value in points])
    return curves


def _loss_runs(out_dir: Path, dataset: str) -> dict[str, list[Path]]:
    """metrics.csv files by method; run folders are named `<method>-s<seed>`."""
    runs: dict[str, list[Path]] = {}
    for path in sorted((out_dir / dataset / "pretrain").glob("*/logs/csv/metrics.csv")):
        runs.setdefault(re.sub(r"-s\d+$", "", path.parents[2].name), []).append(path)
    return {method: runs[method] for method in ordered(runs, METHOD_ORDER)}


def loss_plot(out_dir: Path, dataset: str) -> Plot:
    """Train and validation loss against step, one panel per method, one colour per run."""
    curves: dict[str, dict[str, dict]] = {}
    notes = []
    for method, paths in _loss_runs(out_dir, dataset).items():
        for path in paths:
            run = path.parents[2].name
            try:
                found = _read_loss_curves(path)
            except READ_ERRORS as exc:
                notes.append(f"{run}: metrics.csv not available ({exc})")
                continue
            if found:
                curves.setdefault(method, {})[run] = found
            else:
                notes.append(f"{run}: no train/loss or val/loss values in metrics.csv")
    if not curves:
        return Plot(None, [*notes, "not available: no pretraining metrics.csv with losses"])
    fig, axes = _grid(1, len(curves), width=4.2, height=3.2)
    for ax, (method, runs) in zip(axes[0], curves.items()):
        values = []
        for colour, (run, series) in enumerate(runs.items()):
            for label, (steps, losses) in series.items():
                style = "-" if label.startswith("train") else "--"
                ax.plot(steps, losses, style, color=f"C{colour}", label=f"{run} {label}")
                values += losses
        if min(values) > 0:
            ax.set_yscale("log")
        ax.set(xlabel="step", ylabel="loss", title=method)
        ax.legend(fontsize=7)
    return Plot(fig, notes)


# ---------------------------------------------------------------------------------------------
# Embedding projections
# ---------------------------------------------------------------------------------------------


def _load_projection(path: Path) -> dict[str, np.ndarray]:
    arrays = _load_columns(path, "params", ("xy",))
    if arrays["xy"].shape != (len(arrays["params"]), 2):
        raise ValueError("xy is not (N, 2) with one point per row of params")
    return arrays


def projection_plot(out_dir: Path, dataset: str) -> Plot:
    """2-D projections of the test embeddings, coloured by each parameter in turn."""
    loaded, notes = {}, []
    paths = {path.stem: path for path in (out_dir / dataset / "projection").glob("*.npz")}
    for method in ordered(paths, METHOD_ORDER):
        try:
            loaded[method] = _load_projection(paths[method])
        except READ_ERRORS as exc:
            notes.append(f"{paths[method].name} not available ({exc})")
    if not loaded:
        return Plot(None, [*notes, "not available: no embedding projections"])
    n_cols = max(arrays["params"].shape[1] for arrays in loaded.values())
    fig, axes = _grid(len(loaded), n_cols, width=3.8)
    for axes_row, (method, arrays) in zip(axes, loaded.items()):
        for column, ax in enumerate(axes_row):
            if column >= arrays["params"].shape[1]:
                ax.set_axis_off()
                continue
            name, colour = str(arrays["names"][column]), arrays["params"][:, column]
            norm = LogNorm() if _is_log(name, colour) else None
            points = ax.scatter(*arrays["xy"].T, c=colour, s=6, cmap="viridis", norm=norm)
            fig.colorbar(points, ax=ax, label=name)
            ax.set(xticks=[], yticks=[], title=f"{method}: coloured by {name}")
    return Plot(fig, notes)
