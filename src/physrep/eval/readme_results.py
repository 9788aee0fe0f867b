"""Results blocks in markdown files (docs/results.md, a README), generated from committed
benchmark folders.

Why: numbers quoted by hand drift from the files they came from. A markdown file holds blocks
between two markers that name a results folder (`results.json`, `provenance.json`):

    <!-- results: docs/results/small -->
    ...generated...
    <!-- end results -->

This module renders each block from its folder. `physrep report --docs docs/results.md` (or
`python -m physrep.eval.readme_results docs/results.md`) rewrites every block in place, and a
test fails when a committed file and its folders disagree. Folders are named relative to the
project root (the nearest folder above the markdown file with a pyproject.toml or .git), so
README.md and docs/results.md name them alike. A block whose folder does not exist yet says so
instead of failing, so a block can be placed before its results are committed.
"""

from __future__ import annotations

import argparse
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


def missing_text(name: str) -> str:
    """The body of a block whose folder is not in the repository (yet)."""
    return f"*No results yet: `{name}` is not in the repository.*\n"


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


def project_root(markdown: str | Path) -> Path:
    """The folder that block paths are relative to: the nearest folder above `markdown`
    holding a pyproject.toml or .git, else the markdown file's own folder."""
    start = Path(markdown).resolve().parent
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() or (folder / ".git").exists():
            return folder
    return start


def render_block(name: str, root: str | Path) -> str:
    """The body of the block naming `name`, a folder relative to `root`."""
    folder = Path(root) / name
    return render(folder) if folder.is_dir() else missing_text(name)


def _blocks(markdown: str | Path, root: str | Path | None) -> tuple[str, Path]:
    """The text of `markdown` and the folder its blocks' paths are relative to."""
    if not Path(markdown).is_file():
        raise PhysrepError("no such markdown file", markdown)
    return Path(markdown).read_text(), Path(root) if root else project_root(markdown)


def stale_blocks(markdown: str | Path, root: str | Path | None = None) -> list[str]:
    """The folders whose blocks in `markdown` differ from what their folders render."""
    text, root = _blocks(markdown, root)
    return [
        m.group("dir")
        for m in BLOCK.finditer(text)
        if m.group("body") != render_block(m.group("dir"), root)
    ]


def update(markdown: str | Path, root: str | Path | None = None) -> bool:
    """Rewrite every results block of `markdown` (folders relative to `root`, default the
    project root above it); True when anything changed."""
    text, root = _blocks(markdown, root)
    if not BLOCK.search(text):
        raise PhysrepError("no '<!-- results: FOLDER -->' … '<!-- end results -->' block", markdown)

    def fill(match: re.Match) -> str:
        return match.group(1) + render_block(match.group("dir"), root) + match.group(4)

    new = BLOCK.sub(fill, text)
    if new != text:
        write_text_atomic(Path(markdown), new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m physrep.eval.readme_results",
        description="rewrite the results blocks of markdown files from the folders they name",
    )
    parser.add_argument("files", nargs="*", type=Path, default=[Path("docs/results.md")])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when a block is stale"
    )
    args = parser.parse_args(argv)
    stale = False
    try:
        for path in args.files:
            if args.check:
                names = stale_blocks(path)
                stale = stale or bool(names)
                print(f"{path}: {'stale: ' + ', '.join(names) if names else 'up to date'}")
            else:
                print(f"{path}: {'updated' if update(path) else 'already up to date'}")
    except PhysrepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
