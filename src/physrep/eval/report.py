"""Tables and a one-file HTML report from a benchmark's output folder.

Why: the scientist reading a benchmark wants one page that answers "does this representation
hold the physics?": probe errors next to the control, how they scale with training data, what the
predictions look like against the truth, whether pretraining converged and how the embeddings
arrange themselves. `write_results_md` gives the tables as markdown (for a README or a diff);
`write_report` gives everything as a single self-contained HTML file that can be mailed or
archived, with plots inlined as PNGs (physrep.eval.report_plots). Inputs other than the rows are
optional: whatever is missing is named in the report instead of stopping it.

The headline, per-trajectory, per-dataset and data-efficiency sections show the benchmark's
headline probe; a finished folder records it in its config.yaml, so a report regenerated from
the folder leads with the same probe as the one the run wrote.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from physrep.atomic import write_text_atomic
from physrep.config import read_yaml
from physrep.errors import ConfigError
from physrep.eval.report_plots import (
    Plot,
    efficiency_plot,
    loss_plot,
    prediction_plot,
    projection_plot,
    reliability_plot,
)
from physrep.eval.results import (
    CONTROL,
    METHOD_ORDER,
    PROBE_ORDER,
    ordered,
    read_results,
    summarise,
    validate_rows,
)

DEFAULT_HEADLINE_PROBE = "attentive"  # BenchmarkConfig's default; folders predating the key
MISSING = "—"

Row = Mapping[str, Any]
Stats = tuple[float, float, int]


# ---------------------------------------------------------------------------------------------
# Markdown tables
# ---------------------------------------------------------------------------------------------


def select_rows(
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
    methods = ordered((row["method"] for row in chosen), METHOD_ORDER)
    body = [[method, *(_cell(stats.get((method, c))) for c in columns)] for method in methods]
    return _markdown_table(["method", *columns], body)


def results_table(
    rows: Sequence[Row],
    probe: str = DEFAULT_HEADLINE_PROBE,
    split: str = "test",
    fraction: float = 1.0,
    metric: str = "mse",
) -> str:
    """Methods × datasets, each cell `mean ± std` of `metric` over seeds (validated rows)."""
    chosen = select_rows(rows, probe, split, fraction)
    stats = summarise(chosen, by=("method", "dataset"), metric=metric)
    datasets = sorted({row["dataset"] for row in chosen})
    what = f"probe {probe}, split {split}, fraction {fraction:g}"
    return _method_table(chosen, datasets, stats, what)


def parameter_table(
    rows: Sequence[Row],
    dataset: str,
    probe: str = DEFAULT_HEADLINE_PROBE,
    split: str = "test",
    fraction: float = 1.0,
) -> str:
    """Methods × per-parameter errors (`mse_<p>`, then `traj_mse` where present) for a dataset."""

    def pick(keys: list[str]) -> list[str]:
        return [k for k in keys if k.startswith("mse_")] + [k for k in keys if k == "traj_mse"]

    return _dataset_table(rows, dataset, probe, split, fraction, pick)


def calibration_table(
    rows: Sequence[Row],
    dataset: str,
    probe: str = DEFAULT_HEADLINE_PROBE,
    split: str = "test",
    fraction: float = 1.0,
) -> str:
    """Methods × the calibrated intervals' coverage (50 %, 90 %), 90 % widths in physical
    units, NLL and CRPS, per trajectory, for a dataset."""

    def pick(keys: list[str]) -> list[str]:
        first = [k for k in ("coverage_50", "coverage_90") if k in keys]
        return (
            first
            + [k for k in keys if k.startswith("width_90_")]
            + [k for k in ("nll", "crps") if k in keys]
        )

    return _dataset_table(rows, dataset, probe, split, fraction, pick)


def _dataset_table(
    rows: Sequence[Row],
    dataset: str,
    probe: str,
    split: str,
    fraction: float,
    pick: Callable[[list[str]], list[str]],
) -> str:
    """Methods × the metrics `pick` chooses from the keys of one dataset's selected rows."""
    chosen = select_rows(rows, probe, split, fraction, dataset)
    keys = list(dict.fromkeys(key for row in chosen for key in row))
    what = f"{dataset}, probe {probe}, split {split}, fraction {fraction:g}"
    return _metrics_table(chosen, pick(keys), what)


def _metrics_table(chosen: Sequence[Row], metrics: Sequence[str], what: str) -> str:
    """Methods × `metrics`, each cell mean ± std over the rows of that method."""
    stats = {
        (method, metric): value
        for metric in metrics
        for (method,), value in summarise(chosen, by=("method",), metric=metric).items()
    }
    return _method_table(chosen, metrics, stats, what)


def efficiency_table(
    rows: Sequence[Row], dataset: str, probe: str = DEFAULT_HEADLINE_PROBE, split: str = "test"
) -> str:
    """Methods × training fractions (mse) for a dataset: how much labelled data a probe needs."""
    chosen = select_rows(rows, probe, split, dataset=dataset)
    summary = summarise(chosen, by=("method", "fraction"))
    columns = [f"{fraction:g}" for fraction in sorted({row["fraction"] for row in chosen})]
    stats = {(method, f"{fraction:g}"): value for (method, fraction), value in summary.items()}
    what = f"{dataset}, probe {probe}, split {split}"
    return _method_table(chosen, columns, stats, what)


# ---------------------------------------------------------------------------------------------
# Markdown sections, shared by the markdown file and the HTML report
# ---------------------------------------------------------------------------------------------


def _probes(rows: Iterable[Row]) -> list[str]:
    return ordered((row["probe"] for row in rows if row["method"] != CONTROL), PROBE_ORDER)


def _headline_md(rows: Sequence[Row], probe: str) -> str:
    return "\n\n".join(
        [
            f"## Headline: {probe} probe, test split, all training data",
            f"Test MSE, mean ± std over seeds (no ± for a single seed, {MISSING}: no result). "
            f"`{CONTROL}` is the control (no probe), shown in every table.",
            results_table(rows, probe=probe),
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


def _trajectory_md(rows: Sequence[Row], probe: str) -> str:
    if not any("traj_mse" in row for row in rows):
        return ""
    return "\n\n".join(
        [
            f"## Per-trajectory MSE ({probe} probe, test split, all training data)",
            "Predictions averaged over each trajectory's windows before the error is taken.",
            results_table(rows, probe=probe, metric="traj_mse"),
        ]
    )


def _dataset_md(rows: Sequence[Row], probe: str) -> str:
    parts = []
    for dataset in sorted({row["dataset"] for row in rows}):
        parts += [
            f"## Dataset: {dataset}",
            f"### MSE per parameter ({probe} probe, test split, all training data)",
            parameter_table(rows, dataset, probe=probe),
            f"### Data efficiency: MSE by fraction of training data ({probe} probe, test split)",
            efficiency_table(rows, dataset, probe=probe),
        ]
        if any("coverage_90" in row for row in rows if row["dataset"] == dataset):
            parts += [
                f"### Calibrated intervals, per trajectory ({probe} probe, test split)",
                "Split-conformal intervals from the probe's errors on the valid trajectories; "
                "nominal coverage 0.50 and 0.90. Widths in physical units; NLL and CRPS of a "
                "Gaussian with the valid RMS error as scale, normalised units (lower is better).",
                calibration_table(rows, dataset, probe=probe),
            ]
    return "\n\n".join(parts)


def write_results_md(
    rows: Sequence[Row],
    path: str | PathLike,
    title: str = "physrep benchmark",
    notes: str = "",
    headline_probe: str = DEFAULT_HEADLINE_PROBE,
) -> Path:
    """Write every table as one markdown file, then `notes` verbatim; returns the path."""
    rows = validate_rows(list(rows), source="rows")
    sections = [
        f"# {title}",
        _headline_md(rows, headline_probe),
        _probe_md(rows),
        _ood_md(rows),
        _trajectory_md(rows, headline_probe),
        _dataset_md(rows, headline_probe),
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
.caption { font-size: .9em; color: #444; }
"""


def _na(text: str) -> str:
    return f'<p class="na">{html.escape(text)}</p>'


def _img(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _plot_section(title: str, datasets: Sequence[str], plot: Callable[[str], Plot]) -> str:
    parts = [f"<h2>{html.escape(title)}</h2>"]
    if not datasets:
        parts.append(_na("not available: no datasets"))
    for dataset in datasets:
        figure, notes, caption = plot(dataset)
        parts += [f"<h3>{html.escape(dataset)}</h3>", *map(_na, notes)]
        if figure is not None:
            parts.append(_img(figure, f"{title}: {dataset}"))
        if caption:
            parts.append(f'<p class="caption">{html.escape(caption)}</p>')
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


def recorded_headline_probe(out_dir: str | PathLike) -> str:
    """The headline probe of the benchmark run in `out_dir`, from the config.yaml it records
    there, so a report regenerated later leads with the same probe; `attentive` for a folder
    that records none."""
    path = Path(out_dir) / "config.yaml"
    if not path.is_file():
        return DEFAULT_HEADLINE_PROBE
    probe = read_yaml(path).get("headline_probe", DEFAULT_HEADLINE_PROBE)
    if not isinstance(probe, str) or not probe:
        raise ConfigError(f"key 'headline_probe' must be a probe name, got {probe!r}", path)
    return probe


def write_report(
    out_dir: str | PathLike,
    rows: Sequence[Row] | None = None,
    notes: str = "",
    headline_probe: str = DEFAULT_HEADLINE_PROBE,
) -> Path:
    """Write `out_dir/report.html`: tables, plots (inline PNGs) and `notes` (markdown)."""
    out_dir = Path(out_dir)
    rows, missing = _report_rows(out_dir, rows)
    datasets = _datasets(out_dir, rows)
    title = f"physrep benchmark: {out_dir.name}"
    efficiency = f"Data efficiency ({headline_probe} probe)"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        missing,
        _markdown_html(_headline_md(rows, headline_probe)),
        _plot_section(efficiency, datasets, lambda d: efficiency_plot(rows, d, headline_probe)),
        _plot_section(
            "Predicted vs true",
            datasets,
            lambda d: prediction_plot(out_dir, rows, d, headline_probe),
        ),
        _plot_section(
            f"Calibration of the intervals ({headline_probe} probe, test trajectories)",
            datasets,
            lambda d: reliability_plot(rows, d, headline_probe),
        )
        if any("coverage_50" in row for row in rows)  # rows from before intervals have none
        else "",
        _plot_section("Pretraining loss", datasets, lambda d: loss_plot(out_dir, d)),
        _plot_section("Embedding projections", datasets, lambda d: projection_plot(out_dir, d)),
        _markdown_html(_probe_md(rows)),
        _markdown_html(_ood_md(rows)),
        _markdown_html(_trajectory_md(rows, headline_probe)),
        _markdown_html(_dataset_md(rows, headline_probe)),
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
