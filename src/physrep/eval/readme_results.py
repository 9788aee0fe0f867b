"""The README's results section, generated from a committed benchmark folder.

Why: numbers quoted by hand drift from the files they came from. The README holds a block
between two markers naming a results folder (`results.json`, `provenance.json`); this module
renders that block from the folder, and `python -m physrep.eval.readme_results README.md`
rewrites every such block in place (a test fails when the README and the files disagree).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from physrep.atomic import write_text_atomic
from physrep.errors import PhysrepError
from physrep.eval.report import recorded_headline_probe
from physrep.eval.results import read_results, summarise
from physrep.eval.tables import results_table, select_rows

BLOCK = re.compile(r"(<!-- results: (?P<dir>\S+) -->\n)(?P<body>.*?)(<!-- end results -->)", re.S)


def _stats(rows: list[dict], probe: str) -> dict[tuple[str, str], tuple[float, float, int]]:
    return summarise(select_rows(rows, probe, "test", 1.0), by=("dataset", "method"))


def _checks(stats: dict[tuple[str, str], tuple[float, float, int]], dataset: str) -> list[str]:
    """The benchmark's own sanity bars on one dataset, stated with the numbers behind them."""
    lines = []
    sup, rnd = stats.get((dataset, "supervised")), stats.get((dataset, "random_init"))
    if sup and rnd:
        ok = sup[0] <= 0.35 and sup[0] <= rnd[0] / 2
        lines.append(
            f"label-trained reference well clear of the floor (supervised ≤ 0.35 and ≤ half of "
            f"random_init): {'yes' if ok else '**no**'} ({sup[0]:.3f} vs {rnd[0]:.3f})"
        )
    for method in ("jepa", "jepa_paper"):
        got = stats.get((dataset, method))
        if got and rnd:
            ok = got[0] + got[1] < rnd[0] - rnd[1]
            lines.append(
                f"{method} ahead of its random initialisation beyond both spreads: "
                f"{'yes' if ok else '**no**'} ({got[0]:.3f} ± {got[1]:.3f} vs "
                f"{rnd[0]:.3f} ± {rnd[1]:.3f})"
            )
    jepa, mae = stats.get((dataset, "jepa")), stats.get((dataset, "videomae"))
    if jepa and mae:
        gap = 100 * (mae[0] - jepa[0]) / mae[0]
        clear = abs(jepa[0] - mae[0]) > jepa[1] + mae[1]
        lines.append(
            f"jepa vs videomae (the paper's question): {gap:+.0f} % MSE in jepa's favour, "
            f"{'beyond' if clear else 'within'} the summed spreads"
        )
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render(results_dir: str | Path) -> str:
    """The block's body: headline table, the sanity checks per dataset, and provenance."""
    folder = Path(results_dir)
    rows = read_results(folder / "results.json")
    probe = recorded_headline_probe(folder)
    stats = _stats(rows, probe)
    seeds = sorted({(r["seed"], r.get("pretrain_seed", 0)) for r in rows if r["probe"] == probe})
    n_probe, n_pretrain = len({s for s, _ in seeds}), len({p for _, p in seeds})
    parts = [
        f"Test MSE of the {probe} probe trained on all training data (1.0 = predicting the "
        f"mean), mean ± std over {_count(n_probe, 'probe seed')} × "
        f"{_count(n_pretrain, 'pretraining seed')}:",
        results_table(rows, probe=probe),
    ]
    for dataset in sorted({r["dataset"] for r in rows}):
        parts.append(f"{dataset}:\n" + "\n".join(f"- {line}" for line in _checks(stats, dataset)))
    provenance = folder / "provenance.json"
    if provenance.is_file():
        made = json.loads(provenance.read_text())
        parts.append(
            "Made by:\n"
            + "\n".join(
                f"- {name}: `{m['command']}` at physrep commit `{m['physrep_git']}`"
                for name, m in sorted(made.items())
            )
        )
    return "\n\n".join(parts) + "\n"


def update(readme: str | Path, root: str | Path | None = None) -> bool:
    """Rewrite every results block of `readme` (folders relative to `root`, default the
    README's folder); True when anything changed."""
    readme = Path(readme)
    root = Path(root) if root else readme.parent
    text = readme.read_text()
    if not BLOCK.search(text):
        raise PhysrepError("no '<!-- results: FOLDER -->' … '<!-- end results -->' block", readme)

    def fill(match: re.Match) -> str:
        return match.group(1) + render(root / match.group("dir")) + match.group(4)

    new = BLOCK.sub(fill, text)
    if new != text:
        write_text_atomic(readme, new)
    return new != text


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "README.md"
    print(f"{target}: {'updated' if update(target) else 'already up to date'}")
