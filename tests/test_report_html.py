"""The HTML report of a real (tiny) benchmark, parsed: every section the rows call for, in
order, every plot an inline PNG, and every table a row per method that results.json holds."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

from physrep.eval.report import recorded_headline_probe
from physrep.eval.results import CONTROL, PROBE_ORDER, ordered, read_results

PLOTS = (
    "Data efficiency (",
    "Predicted vs true",
    "Calibration of",
    "Pretraining loss",
    "Embedding projections",
)


class Page(HTMLParser):
    """The page as blocks, one per `<h2>` or `<h3>`: its heading, the `<h2>` above it, and
    the tables (rows of cell texts) and images (alt, src) under it."""

    def __init__(self, page: str):
        super().__init__()
        self.blocks: list[dict] = []
        self.h2 = ""
        self.text: list[str] | None = None  # the heading or cell being read
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag in ("h2", "h3", "td", "th"):
            self.text = []
        elif tag == "table":
            self.blocks[-1]["tables"].append([])
        elif tag == "tr":
            self.blocks[-1]["tables"][-1].append([])
        elif tag == "img":
            self.blocks[-1]["images"].append((dict(attrs)["alt"], dict(attrs)["src"]))

    def handle_data(self, data):
        if self.text is not None:
            self.text.append(data)

    def handle_endtag(self, tag):
        if tag in ("h2", "h3"):
            title = "".join(self.text)
            self.h2 = title if tag == "h2" else self.h2
            self.blocks.append(
                {"tag": tag, "title": title, "h2": self.h2, "tables": [], "images": []}
            )
        elif tag in ("td", "th"):
            self.blocks[-1]["tables"][-1][-1].append("".join(self.text))
        if tag in ("h2", "h3", "td", "th"):
            self.text = None

    def h2s(self) -> list[str]:
        return [b["title"] for b in self.blocks if b["tag"] == "h2"]

    def under(self, h2: str) -> list[dict]:
        """The `<h3>` blocks of one `<h2>` section."""
        return [b for b in self.blocks if b["tag"] == "h3" and b["h2"] == h2]

    def block(self, h2: str, h3: str | None = None) -> dict:
        (found,) = [b for b in self.blocks if b["h2"] == h2 and b["title"] == (h3 or h2)]
        return found


def _methods(rows, probe, split="test", dataset=None) -> set[str]:
    """The methods a table of `probe` must list: those with rows, and the control."""
    return {
        r["method"]
        for r in rows
        if r["split"] == split
        and (r["probe"] == probe or r["method"] == CONTROL)
        and dataset in (None, r["dataset"])
    }


def _only_table(block: dict) -> list[list[str]]:
    (table,) = block["tables"]
    return table


def _first_column(table: list[list[str]]) -> list[str]:
    return [row[0] for row in table[1:]]


def check_report(page: str, rows: list[dict], timings: list[dict], probe: str) -> None:
    html = Page(page)
    datasets = sorted({r["dataset"] for r in rows})
    probes = ordered((r["probe"] for r in rows if r["method"] != CONTROL), PROBE_ORDER)
    held_out = [r for r in rows if r["split"] == "test_ood"]
    intervals = any("coverage_90" in r for r in rows)
    headline = f"Headline: {probe} probe, test split, all training data"
    trajectory = f"Per-trajectory MSE ({probe} probe, test split, all training data)"
    expected = [
        headline,
        f"Data efficiency ({probe} probe)",
        "Predicted vs true",
        *([f"Calibration of the intervals ({probe} probe, test trajectories)"] * intervals),
        "Pretraining loss",
        "Embedding projections",
        "Results by probe (test split, all training data)",
        *(["Held-out parameters (split test_ood)"] * bool(held_out)),
        *([trajectory] * any("traj_mse" in r for r in rows)),
        *(f"Dataset: {d}" for d in datasets),
        "Embedding diagnostics (train windows, mean-pooled)",
        "Wall time per stage",
    ]
    assert html.h2s() == expected

    # every plot: one inline PNG per dataset
    for title in (t for t in expected if t.startswith(PLOTS)):
        assert [b["title"] for b in html.under(title)] == datasets, title
        for block in html.under(title):
            ((alt, src),) = block["images"]
            assert alt == f"{title}: {block['title']}"
            prefix = "data:image/png;base64,"
            assert src.startswith(prefix)
            assert base64.b64decode(src[len(prefix) :]).startswith(b"\x89PNG")

    # the method × dataset tables: a row per method present, a column per dataset
    tables = [(html.block(headline), probe, "test")]
    by_probe = "Results by probe (test split, all training data)"
    assert [b["title"] for b in html.under(by_probe)] == [f"Probe: {p}" for p in probes]
    tables += [(html.block(by_probe, f"Probe: {p}"), p, "test") for p in probes]
    if held_out:
        ood = "Held-out parameters (split test_ood)"
        ood_probes = ordered((r["probe"] for r in held_out if r["method"] != CONTROL), PROBE_ORDER)
        assert [b["title"] for b in html.under(ood)] == [f"Probe: {p}" for p in ood_probes]
        tables += [(html.block(ood, f"Probe: {p}"), p, "test_ood") for p in ood_probes]
    if trajectory in expected:
        tables.append((html.block(trajectory), probe, "test"))
    for block, table_probe, split in tables:
        table = _only_table(block)
        assert table[0] == ["method", *datasets], block["title"]
        assert sorted(_first_column(table)) == sorted(_methods(rows, table_probe, split))

    # per dataset: parameters, data efficiency and calibration, a row per method present
    for dataset in datasets:
        parts = html.under(f"Dataset: {dataset}")
        assert [b["title"].split(" (")[0] for b in parts] == [
            "MSE per parameter",
            "Data efficiency: MSE by fraction of training data",
            *(["Calibrated intervals, per trajectory"] * intervals),
        ]
        methods = sorted(_methods(rows, probe, dataset=dataset))
        for block in parts:
            assert sorted(_first_column(_only_table(block))) == methods, block["title"]
        names = {k[4:] for r in rows if r["dataset"] == dataset for k in r if k.startswith("mse_")}
        assert {f"mse_{n}" for n in names} <= set(_only_table(parts[0])[0])

    # diagnostics: a row per embedded source; timings: a row per stage, then the total
    diagnostics = _only_table(html.block("Embedding diagnostics (train windows, mean-pooled)"))
    sources = {(r["dataset"], r["method"]) for r in rows if r["method"] != CONTROL}
    sources = {s for s in sources if not s[1].endswith("_finetuned")}
    assert {(row[0], row[1]) for row in diagnostics[1:]} == sources
    stages = _only_table(html.block("Wall time per stage"))
    assert [row[1] for row in stages[1:]] == [t["stage"] for t in timings] + ["total"]


def test_the_report_has_every_section_plot_and_method(tiny_run):
    rows = read_results(tiny_run / "results.json")
    timings = json.loads((tiny_run / "timings.json").read_text())
    page = (tiny_run / "report.html").read_text()
    check_report(page, rows, timings, recorded_headline_probe(tiny_run))
