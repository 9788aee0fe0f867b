"""`physrep.evaluate`: any encoder scored on physrep's protocol, beside physrep's own methods.

A researcher's model goes through the same embedding cache (keyed by its weights and the
data), probes, protocols and calibrated intervals as a benchmark's encoders. Given a benchmark
folder as `out`, its rows join that folder's `results.json` under the name given, replacing
earlier rows of that name for the dataset, and the tables and report are rebuilt, so the model
appears beside physrep's methods in one report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from physrep.data.windows import WindowConfig
from physrep.eval.embed import load_or_embed
from physrep.eval.probes import ProbeConfig
from physrep.eval.protocols import run_probes


def evaluate(
    encoder: Any,
    data: str | Path,
    name: str = "custom",
    out: str | Path | None = None,
    windows: WindowConfig | dict | None = None,
    probes: Sequence[str] = ("attentive", "ridge"),
    fractions: Sequence[float] = (1.0,),
    seeds: Sequence[int] = (0, 1, 2),
    probe: ProbeConfig | None = None,
    batch_size: int = 32,
) -> list[dict]:
    """Probe `encoder` (an `nn.Module` or callable, (B, C, T, H, W) -> (B, N, D) or (B, D)) on
    the Well-format dataset `data`; returns its result rows, named `name`.

    `windows`: the window config (a `WindowConfig` or its keys; default: the defaults).
    `out`: a benchmark folder to add the rows and embeddings to (default: runs/)."""
    from physrep.data.validate import inspect_dataset

    data = Path(data)
    dataset = inspect_dataset(data, ["train"], scan_values=False).name
    if not isinstance(windows, WindowConfig):
        windows = WindowConfig(**(windows or {}))
    cache = Path(out or "runs") / dataset / "embeddings"
    emb = load_or_embed(encoder, data, cache, cfg=windows, batch_size=batch_size)
    rows = run_probes(
        dataset, name, emb, list(probes), list(fractions), list(seeds), probe or ProbeConfig()
    )
    if out is not None:
        add_rows(Path(out), rows)
    return rows


def add_rows(out: Path, rows: list[dict]) -> None:
    """Put `rows` into `out`'s results.json (replacing rows of the same dataset and method)
    and rebuild its results.md and report.html."""
    from physrep.eval.report import rewrite_report
    from physrep.eval.results import read_results, write_results

    made = {(r["dataset"], r["method"]) for r in rows}
    path = out / "results.json"
    earlier = read_results(path) if path.is_file() else []
    kept = [r for r in earlier if (r["dataset"], r["method"]) not in made]
    write_results(path, kept + rows)
    rewrite_report(out)
