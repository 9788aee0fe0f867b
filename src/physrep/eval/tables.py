"""The result tables, as markdown (results.md, the command line) and as the sections the HTML
report renders (physrep.eval.report).

A section is a list of `Part`s (headings, paragraphs, tables, "not available" notes), built
from the datasets, methods and probes present in the rows; `markdown` writes it, the report's
template renders the same parts as HTML, so both show the same tables.

The headline, per-trajectory, per-dataset and data-efficiency sections show the benchmark's
headline probe.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from physrep.atomic import write_text_atomic
from physrep.eval.results import (
    CONTROL,
    METHOD_ORDER,
    PROBE_ORDER,
    ordered,
    summarise,
    validate_rows,
)

DEFAULT_HEADLINE_PROBE = "attentive"  # BenchmarkConfig's default; folders predating the key
MISSING = "—"

Row = Mapping[str, Any]
Stats = tuple[float, float, int]


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    body: Sequence[Sequence[str]]
    align: Sequence[str] = ()  # "left" | "right" per column; default: first left, rest right
    compact_rule: bool = False  # `|---|---:|` rather than `| --- | ---: |`

    @property
    def aligns(self) -> list[str]:
        return list(self.align) or ["left"] + ["right"] * (len(self.header) - 1)

    def markdown(self) -> str:
        rule = ["---:" if a == "right" else "---" for a in self.aligns]
        lines = ["| " + " | ".join(cells) + " |" for cells in (self.header, rule, *self.body)]
        if self.compact_rule:
            lines[1] = "|" + "|".join(rule) + "|"
        return "\n".join(lines)


@dataclass(frozen=True)
class Part:
    """One block of a section: kind `heading` (with `level`), `text`, `table` or `missing`."""

    kind: str
    text: str = ""
    level: int = 0
    table: Table | None = None

    def markdown(self) -> str:
        if self.kind == "heading":
            return "#" * self.level + " " + self.text
        if self.kind == "table":
            return self.table.markdown()
        return f"*{self.text}*" if self.kind == "missing" else self.text


Section = list[Part]


def heading(text: str, level: int = 2) -> Part:
    return Part("heading", text, level)


def text(paragraph: str) -> Part:
    return Part("text", paragraph)


def markdown(section: Sequence[Part]) -> str:
    return "\n\n".join(part.markdown() for part in section)


# ---------------------------------------------------------------------------------------------
# Tables
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


def _method_table(
    chosen: Sequence[Row], columns: Sequence[str], stats: Mapping[tuple[str, str], Stats], what: str
) -> Part:
    """A row for every method in `chosen`, `columns` as columns; `stats` keyed (method, column)."""
    if not chosen:
        return Part("missing", f"Not available: no results for {what}.")
    methods = ordered((row["method"] for row in chosen), METHOD_ORDER)
    body = [[method, *(_cell(stats.get((method, c))) for c in columns)] for method in methods]
    return Part("table", table=Table(["method", *columns], body))


def _results(rows, probe=DEFAULT_HEADLINE_PROBE, split="test", fraction=1.0, metric="mse") -> Part:
    chosen = select_rows(rows, probe, split, fraction)
    stats = summarise(chosen, by=("method", "dataset"), metric=metric)
    datasets = sorted({row["dataset"] for row in chosen})
    what = f"probe {probe}, split {split}, fraction {fraction:g}"
    return _method_table(chosen, datasets, stats, what)


def results_table(
    rows: Sequence[Row],
    probe: str = DEFAULT_HEADLINE_PROBE,
    split: str = "test",
    fraction: float = 1.0,
    metric: str = "mse",
) -> str:
    """Methods × datasets, each cell `mean ± std` of `metric` over seeds (validated rows)."""
    return _results(rows, probe, split, fraction, metric).markdown()


def _parameters(keys: list[str]) -> list[str]:
    return [k for k in keys if k.startswith("mse_")] + [k for k in keys if k == "traj_mse"]


def _calibration(keys: list[str]) -> list[str]:
    """The calibrated intervals' coverage (50 %, 90 %), 90 % widths in physical units, NLL
    and CRPS."""
    first = [k for k in ("coverage_50", "coverage_90") if k in keys]
    widths = [k for k in keys if k.startswith("width_90_")]
    return first + widths + [k for k in ("nll", "crps") if k in keys]


def _dataset_table(
    rows: Sequence[Row],
    dataset: str,
    probe: str,
    pick: Callable[[list[str]], list[str]],
    split: str = "test",
    fraction: float = 1.0,
) -> Part:
    """Methods × the metrics `pick` chooses from the keys of one dataset's selected rows,
    each cell mean ± std over the rows of that method."""
    chosen = select_rows(rows, probe, split, fraction, dataset)
    metrics = pick(list(dict.fromkeys(key for row in chosen for key in row)))
    stats = {
        (method, metric): value
        for metric in metrics
        for (method,), value in summarise(chosen, by=("method",), metric=metric).items()
    }
    what = f"{dataset}, probe {probe}, split {split}, fraction {fraction:g}"
    return _method_table(chosen, metrics, stats, what)


def parameter_table(
    rows: Sequence[Row],
    dataset: str,
    probe: str = DEFAULT_HEADLINE_PROBE,
    split: str = "test",
    fraction: float = 1.0,
) -> str:
    """Methods × per-parameter errors (`mse_<p>`, then `traj_mse` where present) for a dataset."""
    return _dataset_table(rows, dataset, probe, _parameters, split, fraction).markdown()


def _efficiency(rows: Sequence[Row], dataset: str, probe: str, split: str = "test") -> Part:
    chosen = select_rows(rows, probe, split, dataset=dataset)
    summary = summarise(chosen, by=("method", "fraction"))
    columns = [f"{fraction:g}" for fraction in sorted({row["fraction"] for row in chosen})]
    stats = {(method, f"{fraction:g}"): value for (method, fraction), value in summary.items()}
    return _method_table(chosen, columns, stats, f"{dataset}, probe {probe}, split {split}")


def efficiency_table(
    rows: Sequence[Row], dataset: str, probe: str = DEFAULT_HEADLINE_PROBE, split: str = "test"
) -> str:
    """Methods × training fractions (mse) for a dataset: how much labelled data a probe needs."""
    return _efficiency(rows, dataset, probe, split).markdown()


# ---------------------------------------------------------------------------------------------
# Sections, shared by results.md and the HTML report
# ---------------------------------------------------------------------------------------------


def _probes(rows: Iterable[Row]) -> list[str]:
    return ordered((row["probe"] for row in rows if row["method"] != CONTROL), PROBE_ORDER)


def headline_section(rows: Sequence[Row], probe: str) -> Section:
    return [
        heading(f"Headline: {probe} probe, test split, all training data"),
        text(
            f"Test MSE, mean ± std over seeds (no ± for a single seed, {MISSING}: no result). "
            f"`{CONTROL}` is the control (no probe), shown in every table."
        ),
        _results(rows, probe=probe),
    ]


def probe_section(rows: Sequence[Row]) -> Section:
    parts = [heading("Results by probe (test split, all training data)")]
    for probe in _probes(row for row in rows if row["split"] == "test"):
        parts += [heading(f"Probe: {probe}", 3), _results(rows, probe=probe)]
    if len(parts) == 1:
        parts.append(Part("missing", "Not available: no probe results on the test split."))
    return parts


def ood_section(rows: Sequence[Row]) -> Section:
    held_out = [row for row in rows if row["split"] == "test_ood"]
    if not held_out:
        return []
    parts = [
        heading("Held-out parameters (split test_ood)"),
        text("Test trajectories whose parameter values were held out of probe training."),
    ]
    for probe in _probes(held_out):
        parts += [heading(f"Probe: {probe}", 3), _results(rows, probe=probe, split="test_ood")]
    return parts


def trajectory_section(rows: Sequence[Row], probe: str) -> Section:
    if not any("traj_mse" in row for row in rows):
        return []
    return [
        heading(f"Per-trajectory MSE ({probe} probe, test split, all training data)"),
        text("Predictions averaged over each trajectory's windows before the error is taken."),
        _results(rows, probe=probe, metric="traj_mse"),
    ]


def dataset_section(rows: Sequence[Row], probe: str) -> Section:
    parts = []
    for dataset in sorted({row["dataset"] for row in rows}):
        parts += [
            heading(f"Dataset: {dataset}"),
            heading(f"MSE per parameter ({probe} probe, test split, all training data)", 3),
            _dataset_table(rows, dataset, probe, _parameters),
            heading(
                f"Data efficiency: MSE by fraction of training data ({probe} probe, test split)", 3
            ),
            _efficiency(rows, dataset, probe),
        ]
        if any("coverage_90" in row for row in rows if row["dataset"] == dataset):
            parts += [
                heading(f"Calibrated intervals, per trajectory ({probe} probe, test split)", 3),
                text(
                    "Split-conformal intervals from the probe's errors on the valid trajectories; "
                    "nominal coverage 0.50 and 0.90. Widths in physical units; NLL and CRPS of a "
                    "Gaussian with the valid RMS error as scale, normalised units (lower is better)."
                ),
                _dataset_table(rows, dataset, probe, _calibration),
            ]
    return parts


def diagnostics_section(out: Path) -> Section:
    """Every embedding's window-level diagnostics found under `out` (none: no section)."""
    records = []
    for path in sorted(Path(out).glob("*/diagnostics/*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a damaged optional file is left out, not fatal
    if not records:
        return []
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    records.sort(key=lambda r: (r["dataset"], rank.get(r["method"], 99), r["method"]))
    header = ["dataset", "method", "pretrain seed", "effective rank", "parameter share"]
    header += ["trajectory share", "top PC share"]
    body = [
        [r["dataset"], r["method"], str(r["pretrain_seed"]), f"{r['effective_rank']:.1f}"]
        + [f"{r[k]:.2f}" for k in ("param_share", "trajectory_share", "top_pc_share")]
        for r in records
    ]
    return [
        heading("Embedding diagnostics (train windows, mean-pooled)"),
        text(
            "Effective rank of the centred window embeddings (the same number training logs as "
            "val/effective_rank), and the share of their standardised variance explained by "
            "the parameter values and by trajectory identity (the excess over the parameter share "
            "is initial-condition identity, which a probe must learn to ignore)."
        ),
        Part("table", table=Table(header, body, ["left", "left"] + ["right"] * 5, True)),
    ]


def timing_section(timings: Sequence[Mapping[str, Any]]) -> Section:
    """Wall time per stage, as computed (a stage this run reused keeps the seconds it took
    when it was computed, and says so)."""
    if not timings:
        return []
    body = [
        [t["dataset"], t["stage"], f"{t['seconds']:.1f}{' (reused)' if t.get('reused') else ''}"]
        for t in timings
    ]
    body.append(["all", "total", f"{sum(t['seconds'] for t in timings):.1f}"])
    table = Table(["dataset", "stage", "seconds"], body, ["left"] * 3, True)
    return [heading("Wall time per stage"), Part("table", table=table)]


def result_sections(rows: Sequence[Row], headline_probe: str) -> list[Section]:
    """The table sections after the headline (and the report's plots), in order."""
    return [
        probe_section(rows),
        ood_section(rows),
        trajectory_section(rows, headline_probe),
        dataset_section(rows, headline_probe),
    ]


def write_results_md(
    rows: Sequence[Row],
    path: str | PathLike,
    title: str = "physrep benchmark",
    notes: str = "",
    headline_probe: str = DEFAULT_HEADLINE_PROBE,
    appendix: Sequence[Section] = (),
) -> Path:
    """Write every table as one markdown file, then `notes` verbatim, then the `appendix`
    sections (diagnostics, timings); returns the path."""
    rows = validate_rows(list(rows), source="rows")
    sections = [[heading(title, 1)], headline_section(rows, headline_probe)]
    sections += result_sections(rows, headline_probe)
    text = "\n\n".join(markdown(section) for section in sections if section) + "\n"
    extra = [notes, *(markdown(section) + "\n" for section in appendix if section)]
    if tail := "\n\n".join(part for part in extra if part):
        text += "\n" + tail + ("" if tail.endswith("\n") else "\n")
    path = Path(path)
    write_text_atomic(path, text)
    return path
