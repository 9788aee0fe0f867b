"""Results validation, tables and the HTML report, on a small fake benchmark output folder.

The fake rows follow a formula, so every number checked below is worked out by hand from it:
mse = base[method] + 0.02 * seed, plus 0.05 for the ridge probe, 0.1 at fraction 0.25,
0.2 on test_ood and 0.1 on rayleigh_benard.
"""

from __future__ import annotations

import base64
import csv
import itertools
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from physrep.errors import PhysrepError
from physrep.eval.predictions import prediction_file
from physrep.eval.report import recorded_headline_probe, write_report
from physrep.eval.results import read_results, summarise, validate_rows, write_results
from physrep.eval.tables import (
    efficiency_table,
    parameter_table,
    results_table,
    write_results_md,
)

PARAMS = {"shear_flow": ("Reynolds", "Schmidt"), "rayleigh_benard": ("Rayleigh", "Prandtl")}
BASE = {"mean": 1.0, "random_init": 0.6, "jepa": 0.3}
SEEDS = (0, 1, 2)
PLOTTED = ("random_init", "jepa")  # methods given predictions, pretraining logs and projections
PLOTS_PER_DATASET = 4  # data efficiency, predicted vs true, pretraining loss, projection


def _mse(dataset: str, method: str, probe: str, split: str, fraction: float, seed: int) -> float:
    return (
        BASE[method]
        + 0.02 * seed
        + 0.05 * (probe == "ridge")
        + 0.1 * (fraction == 0.25)
        + 0.2 * (split == "test_ood")
        + 0.1 * (dataset == "rayleigh_benard")
    )


def _row(dataset: str, method: str, probe: str, split: str, fraction: float, seed: int) -> dict:
    mse = _mse(dataset, method, probe, split, fraction, seed)
    row = {
        "dataset": dataset,
        "method": method,
        "probe": probe,
        "split": split,
        "fraction": fraction,
        "seed": seed,
        "mse": mse,
        **{f"mse_{name}": mse * (0.5 + i) for i, name in enumerate(PARAMS[dataset])},
        **{f"r2_{name}": 1 - mse for name in PARAMS[dataset]},
        "n_train": int(100 * fraction),
        "n_test": 40,
    }
    if method != "mean":
        row["traj_mse"] = 0.8 * mse
    return row


def make_rows() -> list[dict]:
    rows = []
    for dataset, method in itertools.product(PARAMS, BASE):
        probes = ("none",) if method == "mean" else ("attentive", "ridge")
        for combo in itertools.product(probes, ("test", "test_ood"), (0.25, 1.0), SEEDS):
            rows.append(_row(dataset, method, *combo))
    # One videomae run on one dataset: a single-seed cell, and a missing one.
    rows.append({**_row("shear_flow", "jepa", "attentive", "test", 1.0, 0), "method": "videomae"})
    rows[-1]["mse"] = 0.4
    return rows


def _write_predictions(path: Path, names: tuple[str, ...], rng: np.random.Generator) -> None:
    trajectory = np.repeat(np.arange(4), 3)
    true = np.stack([10 ** rng.uniform(3, 5, 4)[trajectory] for _ in names], axis=1)
    pred = true * np.exp(rng.normal(0, 0.1, true.shape))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, pred=pred, true=true, trajectory=trajectory, names=np.array(names))


def _write_metrics_csv(path: Path) -> None:
    """Lightning CSVLogger layout: one row per logging call, empty cells elsewhere."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["epoch", "step", "train/loss_epoch", "train/loss_step", "val/loss"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for epoch in range(3):
            step = 10 * epoch + 9
            writer.writerow([epoch, step, "", 1.0 / (epoch + 1), ""])
            writer.writerow([epoch, step, "", "", 1.2 / (epoch + 1)])
            writer.writerow([epoch, step, 1.1 / (epoch + 1), "", "nan"])


def _write_projection(path: Path, names: tuple[str, ...], rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    params = 10 ** rng.uniform(3, 5, (20, len(names)))
    np.savez(path, xy=rng.normal(size=(20, 2)), params=params, names=np.array(names))


@pytest.fixture
def rows() -> list[dict]:
    return make_rows()


@pytest.fixture
def out_dir(tmp_path: Path, rows: list[dict]) -> Path:
    rng = np.random.default_rng(0)
    out = tmp_path / "OUT"
    write_results(out / "results.json", rows)
    for dataset, names in PARAMS.items():
        for method in PLOTTED:
            _write_predictions(_attentive_file(out, dataset, method), names, rng)
            _write_projection(out / dataset / "projection" / f"{method}.npz", names, rng)
        _write_metrics_csv(out / dataset / "pretrain" / "jepa-s0" / "logs" / "csv" / "metrics.csv")
    _write_predictions(_attentive_file(out, "shear_flow", "videomae"), PARAMS["shear_flow"], rng)
    return out


def _attentive_file(out: Path, dataset: str, method: str, seed: int = 0) -> Path:
    """Where the benchmark saves the full-data attentive probe's test predictions."""
    return prediction_file(out, dataset, method, "attentive", "test", seed, pretrain_seed=0)


def _cells(table: str) -> dict[tuple[str, str], str]:
    """A markdown table as {(row label, column header): cell text}."""
    header, _, *body = (
        [c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
    )
    return {(cells[0], column): cell for cells in body for column, cell in zip(header, cells)}


def _methods(table: str) -> list[str]:
    return [line.strip("|").split("|")[0].strip() for line in table.splitlines()[2:]]


# ---------------------------------------------------------------------------------------------
# results.py
# ---------------------------------------------------------------------------------------------


def _drop_mse(rows: list) -> str:
    del rows[3]["mse"]
    return "results.json: row 3: missing key 'mse'"


def _nan_mse(rows: list) -> str:
    rows[5]["mse"] = float("nan")
    return "results.json: row 5: mse is nan"


def _zero_fraction(rows: list) -> str:
    rows[2]["fraction"] = 0
    return "results.json: row 2: fraction must be a number in (0, 1]"


def _duplicate(rows: list) -> str:
    rows.append(dict(rows[0]))
    return f"results.json: row {len(rows) - 1}: duplicate of row 0"


@pytest.mark.parametrize("spoil", [_drop_mse, _nan_mse, _zero_fraction, _duplicate])
def test_validate_rows_names_the_row_and_problem(rows, spoil):
    expected = spoil(rows)
    with pytest.raises(PhysrepError) as caught:
        validate_rows(rows)
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_validate_rows_rejects_a_non_list(rows):
    with pytest.raises(PhysrepError, match=r"^run\.json: expected a list of rows, got dict$"):
        validate_rows({"rows": rows}, source="run.json")


def test_validate_rows_accepts_rows_that_differ_only_in_pretrain_seed(rows):
    twins = [{**rows[0], "pretrain_seed": 0}, {**rows[0], "pretrain_seed": 1}]
    assert validate_rows(twins) == twins
    assert validate_rows(rows) == rows


def test_results_round_trip(tmp_path, rows):
    path = write_results(tmp_path / "results.json", rows)
    assert path.read_text().startswith('[\n {\n  "dataset"')  # indent 1
    assert read_results(path) == rows
    with pytest.raises(PhysrepError, match="row 0: mse is inf"):
        write_results(tmp_path / "bad.json", [{**rows[0], "mse": float("inf")}])
    assert not (tmp_path / "bad.json").exists()


def test_read_results_reports_truncated_json_in_one_line(tmp_path, rows):
    path = write_results(tmp_path / "results.json", rows)
    path.write_text(path.read_text()[:500])
    with pytest.raises(PhysrepError) as caught:
        read_results(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid JSON at line ")
    assert "\n" not in message
    with pytest.raises(PhysrepError, match="results file not found"):
        read_results(tmp_path / "absent.json")


def test_summarise_gives_mean_population_std_and_count(rows):
    summary = summarise(rows)
    # jepa, attentive, test, fraction 1 on shear_flow: 0.30, 0.32, 0.34 over seeds 0, 1, 2.
    mean, std, count = summary[("shear_flow", "jepa", "attentive", "test", 1.0)]
    assert (mean, std, count) == pytest.approx((0.32, 0.0163299, 3), abs=1e-6)
    assert summary[("shear_flow", "videomae", "attentive", "test", 1.0)] == (0.4, 0.0, 1)
    by_method = summarise(rows, by=("method",), metric="traj_mse")
    assert ("mean",) not in by_method  # the control has no traj_mse
    assert (
        by_method[("jepa",)][2] == 2 * 2 * 2 * 2 * 3
    )  # datasets × probes × splits × fractions × seeds


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def test_results_table_cells(rows):
    table = results_table(rows)
    cells = _cells(table)
    assert table.splitlines()[0] == "| method | rayleigh_benard | shear_flow |"
    assert _methods(table) == ["mean", "random_init", "jepa", "videomae"]
    assert cells[("jepa", "shear_flow")] == "0.320 ± 0.016"
    assert cells[("jepa", "rayleigh_benard")] == "0.420 ± 0.016"
    assert cells[("mean", "shear_flow")] == "1.020 ± 0.016"  # the control, whose probe is "none"
    assert cells[("videomae", "shear_flow")] == "0.400"  # one seed: no ±
    assert cells[("videomae", "rayleigh_benard")] == "—"


def test_results_table_filters_probe_split_fraction_and_metric(rows):
    ridge = _cells(results_table(rows, probe="ridge"))
    assert ridge[("jepa", "shear_flow")] == "0.370 ± 0.016"
    assert ridge[("mean", "shear_flow")] == "1.020 ± 0.016"
    assert ("videomae", "shear_flow") not in ridge
    ood = _cells(results_table(rows, split="test_ood", fraction=0.25))
    assert ood[("jepa", "shear_flow")] == "0.620 ± 0.016"
    traj = _cells(results_table(rows, metric="traj_mse"))
    assert traj[("jepa", "shear_flow")] == "0.256 ± 0.013"
    assert traj[("mean", "shear_flow")] == "—"
    assert results_table(rows, probe="mlp", split="val").startswith("*Not available")


def test_parameter_and_efficiency_tables(rows):
    parameters = parameter_table(rows, "shear_flow")
    assert parameters.splitlines()[0] == "| method | mse_Reynolds | mse_Schmidt | traj_mse |"
    cells = _cells(parameters)
    assert cells[("jepa", "mse_Reynolds")] == "0.160 ± 0.008"
    assert cells[("jepa", "mse_Schmidt")] == "0.480 ± 0.024"
    assert cells[("mean", "traj_mse")] == "—"
    efficiency = efficiency_table(rows, "rayleigh_benard")
    assert efficiency.splitlines()[0] == "| method | 0.25 | 1 |"
    cells = _cells(efficiency)
    assert cells[("jepa", "0.25")] == "0.520 ± 0.016"
    assert cells[("jepa", "1")] == "0.420 ± 0.016"


def test_write_results_md_sections(tmp_path, rows):
    notes = "## Caveats\n\nSmall run | not final.\n"
    text = write_results_md(rows, tmp_path / "results.md", notes=notes).read_text()
    assert text.startswith("# physrep benchmark\n")
    assert text.endswith("\n" + notes)
    held_out = text.split("## Held-out parameters (split test_ood)", 1)[1]
    assert (
        _cells(held_out.split("### Probe: attentive")[1].split("###")[0].strip())[
            ("jepa", "shear_flow")
        ]
        == "0.520 ± 0.016"
    )
    for heading in ("### Probe: ridge", "## Per-trajectory MSE", "## Dataset: shear_flow"):
        assert heading in text
    in_distribution = [row for row in rows if row["split"] == "test"]
    text = write_results_md(in_distribution, tmp_path / "in.md").read_text()
    assert "Held-out" not in text


# ---------------------------------------------------------------------------------------------
# The HTML report
# ---------------------------------------------------------------------------------------------


def _images(page: str) -> list[bytes]:
    return [
        base64.b64decode(m)
        for m in re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', page)
    ]


def test_write_report_is_one_self_contained_page(out_dir):
    notes = "## Caveats\n\nThree *seeds* only.\n\n| run | wall |\n|---|---:|\n| jepa | 2 h |\n"
    path = write_report(out_dir, notes=notes)
    assert path == out_dir / "report.html"
    page = path.read_text()
    assert page.startswith("<!doctype html>")
    images = _images(page)
    assert page.count("<img") == len(images) >= PLOTS_PER_DATASET * len(PARAMS)
    assert all(image.startswith(b"\x89PNG") for image in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    assert "0.320 ± 0.016" in page  # the headline table
    # notes are shown as written (escaped, preformatted), after the tables
    assert '<pre class="notes">## Caveats\n\nThree *seeds* only.\n\n| run | wall |' in page
    assert page.index("<pre") > page.index("<h2>Results by probe")
    assert "<h2>Caveats</h2>" not in page
    assert "not available" not in page


def test_write_report_skips_missing_and_damaged_inputs(out_dir):
    for dataset in PARAMS:
        shutil.rmtree(out_dir / dataset / "pretrain")
        shutil.rmtree(out_dir / dataset / "projection")
        for path in (out_dir / dataset / "predictions").iterdir():
            path.write_bytes(b"not an npz")
    page = write_report(out_dir).read_text()
    assert len(_images(page)) == len(PARAMS)  # only the data-efficiency curves remain
    assert page.count("not available: no embedding projections") == len(PARAMS)
    assert page.count("not available: no pretraining metrics.csv") == len(PARAMS)
    assert f"{_attentive_file(out_dir, 'shear_flow', 'jepa').name} not available" in page


def test_write_report_without_any_results(tmp_path):
    page = write_report(tmp_path / "empty").read_text()
    assert "results.json not available" in page
    assert "<img" not in page
    write_results(tmp_path / "none" / "results.json", [])
    assert "not available: no datasets" in write_report(tmp_path / "none").read_text()


# ---------------------------------------------------------------------------------------------
# The headline probe and which predictions are plotted
# ---------------------------------------------------------------------------------------------


def _table_after(text: str, *headings: str) -> str:
    """The first markdown table after each of `headings` in turn."""
    for heading in headings:
        text = text.split(heading + "\n", 1)[1]
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def _section(page: str, title: str, dataset: str | None = None) -> str:
    """The HTML of one `<h2>` section, or of one dataset's `<h3>` part of it."""
    section = page.split(f"<h2>{title}</h2>", 1)[1].split("<h2>", 1)[0]
    return (
        section if dataset is None else section.split(f"<h3>{dataset}</h3>", 1)[1].split("<h3>")[0]
    )


def _plotted(section: str) -> list[str]:
    """Methods the predictions caption lists: 'Test split, ...: jepa (...); features (...).'"""
    (caption,) = re.findall(r'<p class="caption">(.*?)</p>', section)
    return [part.split(" (")[0] for part in caption.split(": ", 1)[1].split("; ")]


def test_headline_probe_leads_the_markdown_sections(tmp_path, rows):
    text = write_results_md(rows, tmp_path / "results.md", headline_probe="ridge").read_text()
    headline = _cells(_table_after(text, "## Headline: ridge probe, test split, all training data"))
    assert headline[("jepa", "shear_flow")] == "0.370 ± 0.016"  # ridge: attentive's 0.320 + 0.05
    assert headline[("mean", "shear_flow")] == "1.020 ± 0.016"
    assert ("videomae", "shear_flow") not in headline  # its only row is attentive
    trajectory = _table_after(
        text, "## Per-trajectory MSE (ridge probe, test split, all training data)"
    )
    assert _cells(trajectory)[("jepa", "shear_flow")] == "0.296 ± 0.013"
    dataset = "## Dataset: shear_flow"
    parameters = _table_after(
        text, dataset, "### MSE per parameter (ridge probe, test split, all training data)"
    )
    assert _cells(parameters)[("jepa", "mse_Reynolds")] == "0.185 ± 0.008"
    efficiency = _table_after(
        text,
        dataset,
        "### Data efficiency: MSE by fraction of training data (ridge probe, test split)",
    )
    assert _cells(efficiency)[("jepa", "0.25")] == "0.470 ± 0.016"
    assert "attentive probe" not in text


def test_headline_probe_leads_the_html_report(out_dir, rows):
    no_ridge_on_rayleigh = [
        row for row in rows if (row["dataset"], row["probe"]) != ("rayleigh_benard", "ridge")
    ]
    page = write_report(out_dir, no_ridge_on_rayleigh, headline_probe="ridge").read_text()
    assert "0.370 ± 0.016" in _section(page, "Headline: ridge probe, test split, all training data")
    efficiency = _section(page, "Data efficiency (ridge probe)")
    assert 'alt="Data efficiency (ridge probe): shear_flow"' in efficiency
    assert "not available: no ridge-probe test results" in _section(
        page, "Data efficiency (ridge probe)", "rayleigh_benard"
    )


def test_rewrite_report_leads_with_the_probe_the_run_recorded(out_dir):
    from physrep.eval.preset import BenchmarkConfig
    from physrep.eval.report import rewrite_report
    from physrep.runinfo import write_run_record

    assert recorded_headline_probe(out_dir) == "attentive"  # a folder from before the record
    write_run_record(out_dir, BenchmarkConfig(headline_probe="ridge"))
    page = rewrite_report(out_dir).read_text()
    text = (out_dir / "results.md").read_text()
    headline = _cells(_table_after(text, "## Headline: ridge probe, test split, all training data"))
    assert headline[("jepa", "shear_flow")] == "0.370 ± 0.016"
    assert "<h2>Data efficiency (ridge probe)</h2>" in page


def _embeddings(pretrain_seed: int):
    """Embeddings of 6 trajectories × 3 windows per split, noisy copies of the targets; the
    noise differs per pretraining seed, so its probes' predictions do too."""
    from physrep.data.targets import ParamTargets
    from physrep.eval.embed import Embeddings, SplitEmbeddings

    rng = np.random.default_rng(pretrain_seed)
    values = [{"Reynolds": r, "Schmidt": s} for r in (1e4, 5e4) for s in (0.1, 0.2, 0.5)]
    targets = ParamTargets.fit(values)
    raw = np.repeat([[v["Reynolds"], v["Schmidt"]] for v in values], 3, axis=0)
    trajectory = np.repeat(np.arange(len(values)), 3)

    def split():
        params = targets.encode(raw)
        tokens = params[:, None, :] + rng.normal(0, 0.3, (len(raw), 2, 2))
        return SplitEmbeddings(
            tokens.astype(np.float32), params, raw, trajectory, np.zeros(len(raw), int)
        )

    splits = {name: split() for name in ("train", "valid", "test")}
    return Embeddings(splits, targets, key=f"fake{pretrain_seed}", path=Path("unused"))


def test_benchmark_keeps_each_pretraining_seeds_predictions_and_the_report_plots_them(tmp_path):
    from physrep.eval.preset import BenchmarkConfig
    from physrep.eval.report import write_tables_and_report
    from physrep.eval.source_runs import probe_source
    from physrep.eval.stages import Stage

    cfg = BenchmarkConfig(
        methods=["jepa"],
        controls=[],
        pretrain_seeds=[0, 1],
        probes=["ridge"],
        probe_seeds=[3, 4],  # no seed 0
        fractions=[1.0],
        efficiency_probes=[],
        headline_probe="ridge",
    )
    rows, timings = [], []
    for seed in cfg.pretrain_seeds:
        with Stage(timings, "shear_flow", f"probe jepa s{seed}", echo=False) as stage:
            emb = _embeddings(seed)
            rows += probe_source(tmp_path, cfg, "shear_flow", "jepa", seed, emb, stage, False)
    files = [prediction_file(tmp_path, "shear_flow", "jepa", "ridge", "test", 3, s) for s in (0, 1)]
    predictions = []
    for path in files:
        with np.load(path) as data:
            predictions.append(data["pred"])
    assert not np.allclose(*predictions)  # pretraining seed 1 did not overwrite seed 0
    write_results(tmp_path / "results.json", rows)
    write_tables_and_report(tmp_path, rows, [], headline_probe="ridge")
    predicted = _section((tmp_path / "report.html").read_text(), "Predicted vs true")
    assert "jepa (ridge probe, probe seed 3, pretraining seed 0)" in predicted
    assert len(_images(predicted)) == 1 and "not available" not in predicted
    files[0].unlink()  # the plot reads the first pretraining seed's file, and says so
    predicted = _section(
        write_report(tmp_path, rows, headline_probe="ridge").read_text(), "Predicted vs true"
    )
    assert f"jepa: {files[0].name} not available (no such file)" in predicted
    assert not _images(predicted)


def test_every_variant_and_finetuned_method_gets_a_scatter(out_dir, rows):
    extra = [
        {**_row("shear_flow", "jepa", probe, "test", 1.0, seed), "method": method}
        for method, probes in (
            ("jepa_long", ("attentive", "ridge")),
            ("autoregressive_finetuned", ("attentive",)),
        )
        for probe in probes
        for seed in SEEDS
    ]
    write_results(out_dir / "results.json", rows + extra)
    for dataset in PARAMS:  # plots not under test: left out, to keep the test fast
        shutil.rmtree(out_dir / dataset / "pretrain")
        shutil.rmtree(out_dir / dataset / "projection")
    rng = np.random.default_rng(1)
    for method in ("jepa_long", "autoregressive_finetuned"):
        _write_predictions(
            _attentive_file(out_dir, "shear_flow", method), PARAMS["shear_flow"], rng
        )
    predicted = _section(write_report(out_dir).read_text(), "Predicted vs true", "shear_flow")
    assert _plotted(predicted) == [
        "random_init", "jepa", "videomae", "autoregressive_finetuned", "jepa_long"
    ]  # fmt: skip
    assert "not available" not in predicted
    # With ridge leading, a method without ridge rows (the fine-tuned model, with its attentive
    # head; videomae here) keeps its own probe.
    page = write_report(out_dir, headline_probe="ridge").read_text()
    predicted = _section(page, "Predicted vs true", "shear_flow")
    assert _plotted(predicted) == ["videomae", "autoregressive_finetuned"]
    assert (
        "autoregressive_finetuned (attentive probe, probe seed 0, pretraining seed 0)" in predicted
    )
    ridge = prediction_file(out_dir, "shear_flow", "jepa_long", "ridge", "test", 0, 0)
    assert f"jepa_long: {ridge.name} not available (no such file)" in predicted
