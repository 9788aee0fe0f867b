"""The one-file HTML report of a benchmark folder, and results.md beside it.

Why: the scientist reading a benchmark wants one page that answers "does this representation
hold the physics?": probe errors next to the control, how they scale with training data, what the
predictions look like against the truth, whether pretraining converged and how the embeddings
arrange themselves. `write_report` renders the template templates/report.html.j2 into a single
self-contained HTML file that can be mailed or archived: the table sections of
physrep.eval.tables (the same tables results.md holds) and the plots of
physrep.eval.report_plots, inlined as PNGs. Inputs other than the rows are optional: whatever
is missing is named in the report instead of stopping it.

The headline probe leads the page; a finished folder records it in its config.yaml, so a
report regenerated from the folder leads with the same probe as the one the run wrote.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from os import PathLike
from pathlib import Path

import jinja2
from markupsafe import Markup

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
from physrep.eval.results import read_results, validate_rows
from physrep.eval.tables import (
    DEFAULT_HEADLINE_PROBE,
    Row,
    Section,
    diagnostics_section,
    headline_section,
    result_sections,
    timing_section,
    write_results_md,
)

_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str) -> Markup:
    """Escaped text with `code` spans (the only markup the sections' paragraphs use)."""
    pieces = _CODE.split(text)
    return Markup("").join(
        Markup("<code>{}</code>").format(p) if i % 2 else p for i, p in enumerate(pieces)
    )


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("physrep.eval", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["inline"] = _inline
    return env.get_template("report.html.j2")


def _png(plot: Plot) -> str:
    """The figure of `plot` as base64 PNG ("" when there is none)."""
    if plot.figure is None:
        return ""
    buffer = io.BytesIO()
    plot.figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(title: str, datasets: Sequence[str], plot: Callable[[str], Plot]) -> dict:
    panels = []
    for dataset in datasets:
        drawn = plot(dataset)
        panels.append(
            {
                "dataset": dataset,
                "notes": drawn.notes,
                "image": _png(drawn),
                "caption": drawn.caption,
            }
        )
    return {"kind": "plots", "title": title, "panels": panels}


def _tables(section: Section) -> dict:
    return {"kind": "parts", "parts": section}


def _report_rows(out_dir: Path, rows: Sequence[Row] | None) -> tuple[list[dict], str]:
    """Validated rows and a note when results.json is absent; a damaged one still raises."""
    if rows is not None:
        return validate_rows(list(rows), source="rows"), ""
    path = out_dir / "results.json"
    if not path.is_file():
        return [], f"{path} not available: no probe results"
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
    appendix: Sequence[Section] = (),
) -> Path:
    """Write `out_dir/report.html`: tables, plots (inline PNGs), `notes` (shown as written)
    and the `appendix` sections (diagnostics, timings)."""
    out_dir = Path(out_dir)
    rows, missing = _report_rows(out_dir, rows)
    datasets = _datasets(out_dir, rows)
    probe = headline_probe
    blocks = [
        _tables(headline_section(rows, probe)),
        _plots(
            f"Data efficiency ({probe} probe)", datasets, lambda d: efficiency_plot(rows, d, probe)
        ),
        _plots("Predicted vs true", datasets, lambda d: prediction_plot(out_dir, rows, d, probe)),
    ]
    if any("coverage_50" in row for row in rows):  # rows from before intervals have none
        blocks.append(
            _plots(
                f"Calibration of the intervals ({probe} probe, test trajectories)",
                datasets,
                lambda d: reliability_plot(rows, d, probe),
            )
        )
    blocks += [
        _plots("Pretraining loss", datasets, lambda d: loss_plot(out_dir, d)),
        _plots("Embedding projections", datasets, lambda d: projection_plot(out_dir, d)),
        *(_tables(section) for section in result_sections(rows, probe) if section),
    ]
    page = _template().render(
        title=f"physrep benchmark: {out_dir.name}",
        missing=missing,
        blocks=blocks,
        notes=notes.strip("\n"),
        appendix=[section for section in appendix if section],
    )
    path = out_dir / "report.html"
    write_text_atomic(path, page)
    return path


def write_tables_and_report(
    out: Path, rows: list[dict], timings: list[dict], notes: str = "", *, headline_probe: str
) -> None:
    """results.md and report.html from result rows, stage timings, the folder's embedding
    diagnostics and free-form notes, led by the config's `headline_probe`."""
    appendix = [diagnostics_section(out), timing_section(timings)]
    write_results_md(
        rows, out / "results.md", notes=notes, headline_probe=headline_probe, appendix=appendix
    )
    write_report(out, rows, notes=notes, headline_probe=headline_probe, appendix=appendix)


def rewrite_report(out: str | Path, notes: str = "") -> Path:
    """Regenerate results.md and report.html of a finished benchmark folder (e.g. with notes),
    from its results.json, timings.json and the headline probe its config.yaml records,
    without rerunning any stage."""
    out = Path(out)
    rows = read_results(out / "results.json")
    headline = recorded_headline_probe(out)
    write_tables_and_report(out, rows, read_timings(out), notes, headline_probe=headline)
    return out / "report.html"


def read_timings(out: Path) -> list[dict]:
    """The stage log of the last run in `out` ([] when absent or unreadable: it is optional)."""
    try:
        timings = json.loads((out / "timings.json").read_text())
    except (OSError, ValueError):
        return []
    return timings if isinstance(timings, list) else []
