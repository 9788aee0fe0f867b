"""results.md and report.html of a benchmark folder: the result tables and plots of
physrep.eval.report, with the folder's embedding diagnostics and stage timings appended."""

from __future__ import annotations

import json
from pathlib import Path


def write_tables_and_report(
    out: Path, rows: list[dict], timings: list[dict], notes: str = "", *, headline_probe: str
) -> None:
    """results.md and report.html from result rows, stage timings and free-form notes, led
    by the config's `headline_probe`."""
    from physrep.eval.report import write_report, write_results_md

    parts = (notes, diagnostics_table(out), timing_table(timings))
    text = "\n\n".join(n for n in parts if n)
    write_results_md(rows, out / "results.md", notes=text, headline_probe=headline_probe)
    write_report(out, rows, notes=text, headline_probe=headline_probe)


def rewrite_report(out: str | Path, notes: str = "") -> Path:
    """Regenerate results.md and report.html of a finished benchmark folder (e.g. with notes),
    from its results.json, timings.json and the headline probe its config.yaml records,
    without rerunning any stage."""
    from physrep.eval.report import recorded_headline_probe
    from physrep.eval.results import read_results

    out = Path(out)
    rows = read_results(out / "results.json")
    timings = read_timings(out)
    headline = recorded_headline_probe(out)
    write_tables_and_report(out, rows, timings, notes, headline_probe=headline)
    return out / "report.html"


def diagnostics_table(out: Path) -> str:
    """Markdown table of every embedding's window-level diagnostics found under `out`."""
    from physrep.eval.report import METHOD_ORDER

    records = []
    for path in sorted(Path(out).glob("*/diagnostics/*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a damaged optional file is left out, not fatal
    if not records:
        return ""
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    records.sort(key=lambda r: (r["dataset"], rank.get(r["method"], 99), r["method"]))
    lines = [
        "## Embedding diagnostics (train windows, mean-pooled)",
        "",
        "Effective rank of the centred window embeddings (the same number training logs as "
        "val/effective_rank), and the share of their standardised variance explained by "
        "the parameter values and by trajectory identity (the excess over the parameter share "
        "is initial-condition identity, which a probe must learn to ignore).",
        "",
        "| dataset | method | pretrain seed | effective rank | parameter share | "
        "trajectory share | top PC share |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['dataset']} | {r['method']} | {r['pretrain_seed']} | {r['effective_rank']:.1f} "
        f"| {r['param_share']:.2f} | {r['trajectory_share']:.2f} | {r['top_pc_share']:.2f} |"
        for r in records
    ]
    return "\n".join([*lines, ""])


def timing_table(timings: list[dict]) -> str:
    """Markdown table of wall time per stage, as computed (a stage this run reused keeps the
    seconds it took when it was computed, and says so)."""
    if not timings:
        return ""
    lines = ["## Wall time per stage", "", "| dataset | stage | seconds |", "|---|---|---|"]
    lines += [
        f"| {t['dataset']} | {t['stage']} | {t['seconds']:.1f}{' (reused)' if t.get('reused') else ''} |"
        for t in timings
    ]
    total = sum(t["seconds"] for t in timings)
    return "\n".join([*lines, f"| all | total | {total:.1f} |", ""])


def read_timings(out: Path) -> list[dict]:
    """The stage log of the last run in `out` ([] when absent or unreadable: it is optional)."""
    try:
        timings = json.loads((out / "timings.json").read_text())
    except (OSError, ValueError):
        return []
    return timings if isinstance(timings, list) else []
