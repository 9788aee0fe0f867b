"""Tables and a one-file HTML report from a benchmark's output folder.

Why: the scientist reading a benchmark wants one page that answers "does this representation
hold the physics?": probe errors next to the control, how they scale with training data, what the
predictions look like against the truth, whether pretraining converged and how the embeddings
arrange themselves. `write_results_md` gives the tables as markdown (for a README or a diff);
`write_report` gives everything as a single self-contained HTML file that can be mailed or
archived, with plots inlined as PNGs. Inputs other than the rows are optional: whatever is missing
is named in the report instead of stopping it.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from physrep.atomic import write_text_atomic
from physrep.eval.results import read_results, summarise, validate_rows

METHOD_ORDER = [
    "mean",
    "random_init",
    "features",
    "jepa",
    "videomae",
    "autoregressive",
    "autoregressive_finetuned",
    "disco",
    "supervised",
]
PROBE_ORDER = ["attentive", "linear", "mlp", "ridge"]
CONTROL = "mean"  # the control row: no encoder, no probe (probe "none"); shown in every table
PREDICTION_METHODS = tuple(m for m in METHOD_ORDER if m != "mean")
LOG_PARAMETERS = ("Reynolds", "Rayleigh")  # span decades: plotted on log axes
MISSING = "—"
# What reading a damaged optional input (npz, csv) can raise; such a file is skipped, not fatal.
READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, csv.Error)

Row = Mapping[str, Any]
Stats = tuple[float, float, int]
Plot = tuple[
    Figure | None, list[str]
]  # a figure (None: nothing to draw) and why things are left out


# ---------------------------------------------------------------------------------------------
# Markdown tables
# ---------------------------------------------------------------------------------------------


def _ordered(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """Names in `preferred` order first, the rest alphabetically after them."""
    rank = {name: i for i, name in enumerate(preferred)}
    return sorted(set(names), key=lambda name: (rank.get(name, len(rank)), name))


def _select(
    rows: Iterable[Row],
    probe: str,
    split: str,
    fraction: float | None = None,
    dataset: str | None = None,
) -> list[Row]:
    """Rows of one probe (plus the control, whatever its probe), split and optional fraction."""
    return [
        row
        for row in rows
        if row["split"] == split
        and (row["method"] == CONTROL or row["probe"] == probe)
        and (fraction is None or math.isclose(row["fraction"], fraction))
        and (dataset is None or row["dataset"] == dataset)
    ]


def _cell(stats: Stats | None) -> str:
    if stats is None:
        return MISSING
    mean, std, count = stats
    return f"{mean:.3f}" if count == 1 else f"{mean:.3f} ± {std:.3f}"


def _markdown_table(header: Sequence[str], body: Iterable[Sequence[str]]) -> str:
    rule = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, rule, *body])


def _method_table(
    chosen: Sequence[Row], columns: Sequence[str], stats: Mapping[tuple[str, str], Stats], what: str
) -> str:
    """A row for every method in `chosen`, `columns` as columns; `stats` keyed (method, column)."""
    if not chosen:
        return f"*Not available: no results for {what}.*"
    methods = _ordered((row["method"] for row in chosen), METHOD_ORDER)
    body = [[method, *(_cell(stats.get((method, c))) for c in columns)] for method in methods]
    return _markdown_table(["method", *columns], body)


def results_table(
    rows: Sequence[Row],
    probe: str = "attentive",
    split: str = "test",
    fraction: float = 1.0,
    metric: str = "mse",
) -> str:
    """Methods × datasets, each cell `mean ± std` of `metric` over seeds (validated rows)."""
    chosen = _select(rows, probe, split, fraction)
    stats = summarise(chosen, by=("method", "dataset"), metric=metric)
    datasets = sorted({row["dataset"] for row in chosen})
    what = f"probe {probe}, split {split}, fraction {fraction:g}"
    return _method_table(chosen, datasets, stats, what)


def parameter_table(
    rows: Sequence[Row],
    dataset: str,
    probe: str = "attentive",
    split: str = "test",
    fraction: float = 1.0,
) -> str:
    """Methods × per-parameter errors (`mse_<p>`, then `traj_mse` where present) for a dataset."""
    chosen = _select(rows, probe, split, fraction, dataset)
    keys = dict.fromkeys(key for row in chosen for key in row)
    metrics = [key for key in keys if key.startswith("mse_")] + [k for k in keys if k == "traj_mse"]
    stats = {
        (method, metric): value
        for metric in metrics
        for (method,), value in summarise(chosen, by=("method",), metric=metric).items()
    }
    what = f"{dataset}, probe {probe}, split {split}, fraction {fraction:g}"
    return _method_table(chosen, metrics, stats, what)


def efficiency_table(
    rows: Sequence[Row], dataset: str, probe: str = "attentive", split: str = "test"
) -> str:
    """Methods × training fractions (mse) for a dataset: how much labelled data a probe needs."""
    chosen = _select(rows, probe, split, dataset=dataset)
    summary = summarise(chosen, by=("method", "fraction"))
    columns = [f"{fraction:g}" for fraction in sorted({row["fraction"] for row in chosen})]
    stats = {(method, f"{fraction:g}"): value for (method, fraction), value in summary.items()}
    what = f"{dataset}, probe {probe}, split {split}"
    return _method_table(chosen, columns, stats, what)


# ---------------------------------------------------------------------------------------------
# Markdown sections, shared by the markdown file and the HTML report
# ---------------------------------------------------------------------------------------------


def _probes(rows: Iterable[Row]) -> list[str]:
    return _ordered((row["probe"] for row in rows if row["method"] != CONTROL), PROBE_ORDER)


def _headline_md(rows: Sequence[Row]) -> str:
    return "\n\n".join(
        [
            "## Headline: attentive probe, test split, all training data",
            f"Test MSE, mean ± std over seeds (no ± for a single seed, {MISSING}: no result). "
            f"`{CONTROL}` is the control (no probe), shown in every table.",
            results_table(rows),
        ]
    )


def _probe_md(rows: Sequence[Row]) -> str:
    parts = ["## Results by probe (test split, all training data)"]
    for probe in _probes(row for row in rows if row["split"] == "test"):
        parts += [f"### Probe: {probe}", results_table(rows, probe=probe)]
    if len(parts) == 1:
        parts.append("*Not available: no probe results on the test split.*")
    return "\n\n".join(parts)


def _ood_md(rows: Sequence[Row]) -> str:
    held_out = [row for row in rows if row["split"] == "test_ood"]
    if not held_out:
        return ""
    parts = [
        "## Held-out parameters (split test_ood)",
        "Test trajectories whose parameter values were held out of probe training.",
    ]
    for probe in _probes(held_out):
        parts += [f"### Probe: {probe}", results_table(rows, probe=probe, split="test_ood")]
    return "\n\n".join(parts)


def _trajectory_md(rows: Sequence[Row]) -> str:
    if not any("traj_mse" in row for row in rows):
        return ""
    return "\n\n".join(
        [
            "## Per-trajectory MSE (attentive probe, test split, all training data)",
            "Predictions averaged over each trajectory's windows before the error is taken.",
            results_table(rows, metric="traj_mse"),
        ]
    )


def _dataset_md(rows: Sequence[Row]) -> str:
    parts = []
    for dataset in sorted({row["dataset"] for row in rows}):
        parts += [
            f"## Dataset: {dataset}",
            "### MSE per parameter (attentive probe, test split, all training data)",
            parameter_table(rows, dataset),
            "### Data efficiency: MSE by fraction of training data (attentive probe, test split)",
            efficiency_table(rows, dataset),
        ]
    return "\n\n".join(parts)


def write_results_md(
    rows: Sequence[Row], path: str | PathLike, title: str = "physrep benchmark", notes: str = ""
) -> Path:
    """Write every table as one markdown file, then `notes` verbatim; returns the path."""
    rows = validate_rows(list(rows), source="rows")
    sections = [
        f"# {title}",
        _headline_md(rows),
        _probe_md(rows),
        _ood_md(rows),
        _trajectory_md(rows),
        _dataset_md(rows),
    ]
    text = "\n\n".join(section for section in sections if section) + "\n"
    if notes:
        text += "\n" + notes + ("" if notes.endswith("\n") else "\n")
    path = Path(path)
    write_text_atomic(path, text)
    return path


# ---------------------------------------------------------------------------------------------
# A little markdown to HTML: headings, paragraphs, bullet lists and pipe tables
# ---------------------------------------------------------------------------------------------

_HEADING = re.compile(r"(#{1,6})\s+(.*)")
_TABLE_RULE = re.compile(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?")
_BULLETS = ("- ", "* ")
_CODE = re.compile(r"(`[^`]+`)")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EMPHASIS = re.compile(
    r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])|(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)"
)


def _inline(text: str) -> str:
    """Escape text; render `code`, **strong** and *emphasis* / _emphasis_."""
    parts = []
    for i, piece in enumerate(_CODE.split(text)):
        if i % 2:
            parts.append(f"<code>{html.escape(piece[1:-1])}</code>")
        else:
            piece = _STRONG.sub(r"<strong>\1</strong>", html.escape(piece))
            parts.append(_EMPHASIS.sub(lambda m: f"<em>{m[1] or m[2]}</em>", piece))
    return "".join(parts)


def _table_cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.removeprefix("|").removesuffix("|").split("|")]


def _alignment(rule: str) -> str:
    if rule.startswith(":") and rule.endswith(":"):
        return "center"
    return "right" if rule.endswith(":") else "left"


def _table_html(lines: Sequence[str]) -> str:
    header, rule, *body = (_table_cells(line) for line in lines)
    aligns = [_alignment(cell) for cell in rule]

    def row(cells: list[str], tag: str) -> str:
        cells = (cells + [""] * len(aligns))[: len(aligns)]
        return (
            "<tr>"
            + "".join(
                f'<{tag} style="text-align:{a}">{_inline(c)}</{tag}>' for c, a in zip(cells, aligns)
            )
            + "</tr>"
        )

    rows = "\n".join(row(cells, "td") for cells in body)
    return f"<table>\n<thead>{row(header, 'th')}</thead>\n<tbody>\n{rows}\n</tbody>\n</table>"


def _is_paragraph_line(line: str) -> bool:
    return bool(line) and not _HEADING.fullmatch(line) and not line.startswith(("|", *_BULLETS))


def _block_end(lines: Sequence[str], start: int, keep: Callable[[str], bool]) -> int:
    end = start + 1
    while end < len(lines) and keep(lines[end]):
        end += 1
    return end


def _markdown_html(text: str) -> str:
    lines = [line.strip() for line in text.splitlines()]
    blocks, i = [], 0
    while i < len(lines):
        line, end = lines[i], i + 1
        if not line:
            pass
        elif heading := _HEADING.fullmatch(line):
            level = len(heading[1])
            blocks.append(f"<h{level}>{_inline(heading[2])}</h{level}>")
        elif line.startswith("|") and end < len(lines) and _TABLE_RULE.fullmatch(lines[end]):
            end = _block_end(lines, i, lambda s: s.startswith("|"))
            blocks.append(_table_html(lines[i:end]))
        elif line.startswith(_BULLETS):
            end = _block_end(lines, i, lambda s: s.startswith(_BULLETS))
            blocks.append(
                "<ul>" + "".join(f"<li>{_inline(s[2:])}</li>" for s in lines[i:end]) + "</ul>"
            )
        else:
            end = _block_end(lines, i, _is_paragraph_line)
            blocks.append(f"<p>{_inline(' '.join(lines[i:end]))}</p>")
        i = end
    return "\n".join(blocks)


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib's object API: no pyplot state, nothing left open)
# ---------------------------------------------------------------------------------------------


def _img(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _grid(n_rows: int, n_cols: int, width: float = 3.4, height: float = 3.0) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width * n_cols, height * n_rows), layout="constrained")
    return fig, fig.subplots(n_rows, n_cols, squeeze=False)


def _efficiency_plot(rows: Sequence[Row], dataset: str) -> Plot:
    test = [row for row in rows if row["dataset"] == dataset and row["split"] == "test"]
    probed = [row for row in test if row["probe"] == "attentive" and row["method"] != CONTROL]
    curves = summarise(probed, by=("method", "fraction"))
    if not curves:
        return None, ["not available: no attentive-probe test results"]
    fig, axes = _grid(1, 1, width=5.5, height=3.8)
    ax = axes[0, 0]
    for method in _ordered((method for method, _ in curves), METHOD_ORDER):
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
    ax.set(xlabel="fraction of training data", ylabel="test MSE", title=dataset)
    ax.legend(fontsize=8)
    return fig, []


def _prediction_path(out_dir: Path, dataset: str, method: str) -> Path:
    return out_dir / dataset / "predictions" / f"{method}__attentive__test__f{1.0:g}__s0.npz"


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


def _load_projection(path: Path) -> dict[str, np.ndarray]:
    arrays = _load_columns(path, "params", ("xy",))
    if arrays["xy"].shape != (len(arrays["params"]), 2):
        raise ValueError("xy is not (N, 2) with one point per row of params")
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


def _prediction_plot(out_dir: Path, dataset: str) -> Plot:
    loaded, notes = {}, []
    for method in PREDICTION_METHODS:
        path = _prediction_path(out_dir, dataset, method)
        if path.is_file():
            try:
                loaded[method] = _load_predictions(path)
            except READ_ERRORS as exc:
                notes.append(f"{path.name} not available ({exc})")
    if not loaded:
        return None, [*notes, "not available: no attentive-probe test predictions (f1, seed 0)"]
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
    return fig, notes


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
    return {method: runs[method] for method in _ordered(runs, METHOD_ORDER)}


def _loss_plot(out_dir: Path, dataset: str) -> Plot:
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
        return None, [*notes, "not available: no pretraining metrics.csv with losses"]
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
    return fig, notes


def _projection_plot(out_dir: Path, dataset: str) -> Plot:
    loaded, notes = {}, []
    paths = {path.stem: path for path in (out_dir / dataset / "projection").glob("*.npz")}
    for method in _ordered(paths, METHOD_ORDER):
        try:
            loaded[method] = _load_projection(paths[method])
        except READ_ERRORS as exc:
            notes.append(f"{paths[method].name} not available ({exc})")
    if not loaded:
        return None, [*notes, "not available: no embedding projections"]
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
    return fig, notes


# ---------------------------------------------------------------------------------------------
# The HTML report
# ---------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: .25em .7em; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: .5em 0 1.5em; }
code { background: #f3f3f3; padding: 0 .2em; }
.na { color: #777; font-style: italic; }
"""


def _na(text: str) -> str:
    return f'<p class="na">{html.escape(text)}</p>'


def _plot_section(title: str, datasets: Sequence[str], plot: Callable[[str], Plot]) -> str:
    parts = [f"<h2>{html.escape(title)}</h2>"]
    if not datasets:
        parts.append(_na("not available: no datasets"))
    for dataset in datasets:
        fig, notes = plot(dataset)
        parts += [f"<h3>{html.escape(dataset)}</h3>", *map(_na, notes)]
        if fig is not None:
            parts.append(_img(fig, f"{title}: {dataset}"))
    return "\n".join(parts)


def _report_rows(out_dir: Path, rows: Sequence[Row] | None) -> tuple[list[dict], str]:
    """Validated rows and a note when results.json is absent; a damaged one still raises."""
    if rows is not None:
        return validate_rows(list(rows), source="rows"), ""
    path = out_dir / "results.json"
    if not path.is_file():
        return [], _na(f"{path} not available: no probe results")
    return read_results(path), ""


def _datasets(out_dir: Path, rows: Iterable[Row]) -> list[str]:
    """Datasets with results, plus folders holding any plot input (e.g. pretraining only)."""
    found = {row["dataset"] for row in rows}
    if out_dir.is_dir():
        inputs = ("predictions", "pretrain", "projection")
        found |= {p.name for p in out_dir.iterdir() if any((p / i).is_dir() for i in inputs)}
    return sorted(found)


def write_report(
    out_dir: str | PathLike, rows: Sequence[Row] | None = None, notes: str = ""
) -> Path:
    """Write `out_dir/report.html`: tables, plots (inline PNGs) and `notes` (markdown)."""
    out_dir = Path(out_dir)
    rows, missing = _report_rows(out_dir, rows)
    datasets = _datasets(out_dir, rows)
    title = f"physrep benchmark: {out_dir.name}"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        missing,
        _markdown_html(_headline_md(rows)),
        _plot_section("Data efficiency", datasets, lambda d: _efficiency_plot(rows, d)),
        _plot_section("Predicted vs true", datasets, lambda d: _prediction_plot(out_dir, d)),
        _plot_section("Pretraining loss", datasets, lambda d: _loss_plot(out_dir, d)),
        _plot_section("Embedding projections", datasets, lambda d: _projection_plot(out_dir, d)),
        _markdown_html(_probe_md(rows)),
        _markdown_html(_ood_md(rows)),
        _markdown_html(_trajectory_md(rows)),
        _markdown_html(_dataset_md(rows)),
        _markdown_html(notes),
    ]
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + "\n</body>\n</html>\n"
    )
    path = out_dir / "report.html"
    write_text_atomic(path, page)
    return path
