"""The benchmark end to end on the `tiny` preset: real simulation, Lightning pretraining,
cached embeddings, probes, results.json, results.md and the report; resumable; the held-out
split never leaks into training; bad requests fail in one line."""

import json

import numpy as np
import pytest

from physrep.data.validate import inspect_dataset
from physrep.eval.benchmark import Benchmark
from physrep.eval.embed import FEATURES, load_or_embed
from physrep.eval.preset import load_benchmark
from physrep.eval.protocols import subset_trajectories
from physrep.eval.results import read_results

PROBED = {
    *("random_init", "features", "supervised"),
    *("jepa", "jepa_paper", "videomae", "autoregressive", "disco"),
}
METHODS = {"mean", "autoregressive_finetuned", *PROBED}


def test_results_cover_every_method_probe_split_fraction_and_seed(tiny_run):
    rows = read_results(tiny_run / "results.json")  # validates the schema
    cfg = load_benchmark("tiny")
    assert {r["method"] for r in rows} == METHODS
    for method in PROBED:
        for probe in cfg.probes:
            fractions = cfg.fractions if probe in cfg.efficiency_probes else [1.0]
            for split in ("test", "test_ood"):
                got = {
                    (r["fraction"], r["seed"])
                    for r in rows
                    if r["method"] == method and r["probe"] == probe and r["split"] == split
                }
                assert got == {(f, s) for f in fractions for s in cfg.probe_seeds}
    for r in rows:
        assert np.isfinite([r["mse"], r["mse_Reynolds"], r["mse_Schmidt"], r["traj_mse"]]).all()
        assert r["mse"] == pytest.approx((r["mse_Reynolds"] + r["mse_Schmidt"]) / 2)
    # the fine-tuned model: attentive head only, on every fraction and seed
    tuned = {
        (r["probe"], r["split"], r["fraction"], r["seed"])
        for r in rows
        if r["method"] == "autoregressive_finetuned"
    }
    assert tuned == {
        ("attentive", split, f, s)
        for split in ("test", "test_ood")
        for f in cfg.fractions
        for s in cfg.probe_seeds
    }
    # the train-mean predictor on z-scored targets, with test holding the train combinations
    full = [r for r in rows if r["method"] == "mean" and r["fraction"] == 1.0]
    assert [r["mse"] for r in full if r["split"] == "test"] == pytest.approx([1.0, 1.0])


def test_report_and_tables_are_written(tiny_run):
    md = (tiny_run / "results.md").read_text()
    assert "| jepa |" in md and "Held-out" in md and "Wall time per stage" in md
    assert "## Embedding diagnostics" in md and "| shear_flow | disco | 0 |" in md
    html = (tiny_run / "report.html").read_text()
    assert html.count("<img") >= 4
    stages = json.loads((tiny_run / "timings.json").read_text())
    assert {"simulate", "pretrain jepa s0", "embed features s0", "finetune autoregressive s0"} <= {
        s["stage"] for s in stages
    }
    run = json.loads((tiny_run / "run.json").read_text())
    assert "versions" in run and run["config"]["pretrain"] == "tiny"


def test_report_command_rewrites_tables_with_notes(tiny_run, cli, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("## What was tried\n\n| lever | mse |\n|---|---|\n| ema | 0.5 |\n")
    code, out, err = cli("report", tiny_run, "--notes", notes)
    assert code == 0 and "report.html" in out, err
    md = (tiny_run / "results.md").read_text()
    assert "## What was tried" in md and "Wall time per stage" in md
    assert "What was tried" in (tiny_run / "report.html").read_text()
    code, _, err = cli("report", tmp_path)
    assert code == 2 and "results.json" in err


def test_a_second_run_reuses_every_stage(tiny_run, cli):
    encoder = tiny_run / "shear_flow" / "pretrain" / "jepa-s0" / "encoder.pt"
    caches = sorted((tiny_run / "shear_flow" / "embeddings").glob("*.npz"))
    stamps = [p.stat().st_mtime_ns for p in (encoder, *caches)]
    before = read_results(tiny_run / "results.json")
    code, out, _ = cli("benchmark", "--preset", "tiny", "--out", tiny_run, "--no-progress")
    assert code == 0 and "| jepa |" in out
    # without bars, each stage still logs its one line, and the run its summary
    assert "[shear_flow] simulate: reused" in out and "reused every stage" in out, out
    assert [p.stat().st_mtime_ns for p in (encoder, *caches)] == stamps
    assert read_results(tiny_run / "results.json") == before


def test_held_out_values_never_reach_training(tiny_run):
    data = tiny_run / "shear_flow" / "dataset"
    held = load_benchmark("tiny").datasets["shear_flow"].sim_overrides["holdout"]["Reynolds"]
    info = inspect_dataset(data, scan_values=False)
    for split, files in info.splits.items():
        values = {f.params["Reynolds"] for f in files}
        if split == "test_ood":
            assert values == set(held)
        else:
            assert not values & set(held), split
    emb = load_or_embed(FEATURES, data, tiny_run / "check")
    for split in ("train", "valid", "test"):
        assert not np.isin(emb.splits[split].params_raw[:, 0], held).any()
    assert np.isin(emb.splits["test_ood"].params_raw[:, 0], held).all()
    # the pretraining runs (JEPA, supervised) only ever read train and valid
    for run in (tiny_run / "shear_flow" / "pretrain").iterdir():
        record = json.loads((run / "run.json").read_text())
        assert record["targets"]["names"] == ["Reynolds", "Schmidt"]


def test_rows_carry_calibrated_intervals_and_the_tables_show_them(tiny_run):
    rows = read_results(tiny_run / "results.json")
    probed = [r for r in rows if not r["method"].endswith("_finetuned")]
    assert probed and all("coverage_90" in r and "crps" in r for r in probed)
    for r in probed:  # nested intervals: a wider one covers whatever a narrower one does
        coverage = [r[f"coverage_{k}"] for k in range(10, 100, 10)]
        assert min(coverage) >= 0 and coverage == sorted(coverage) and max(coverage) <= 1
        assert 0 < r["width_50_Reynolds"] <= r["width_90_Reynolds"]  # equal with few valid
    assert "Calibrated intervals, per trajectory" in (tiny_run / "results.md").read_text()
    page = (tiny_run / "report.html").read_text()
    section = page.split("Calibration of the intervals", 1)[1].split("<h2", 1)[0]
    assert "<img" in section  # the reliability diagram


def test_a_dataset_can_train_one_method_longer_than_the_others(tmp_path):
    """Per-dataset method overrides apply after the preset-wide ones, to that dataset only."""
    cfg = load_benchmark(
        "tiny",
        overrides=[
            "method_overrides={supervised: {train: {max_steps: 7}}}",
            "datasets.shear_flow.method_overrides={supervised: {train: {max_steps: 9}}}",
        ],
    )
    bench = Benchmark(cfg, tmp_path)
    bench.dataset_dirs()
    assert bench.pretrain_config("shear_flow", "supervised", 0).train.max_steps == 9
    assert bench.pretrain_config("shear_flow", "jepa", 0).train.max_steps != 9


def test_the_paper_preset_gives_each_system_its_released_recipe(tmp_path):
    """Per-dataset pretrain overrides apply to every method of that dataset only."""
    bench = Benchmark(load_benchmark("paper"), tmp_path)
    bench.dataset_dirs()
    for method in ("jepa", "videomae", "supervised"):
        assert bench.pretrain_config("shear_flow", method, 0).train.max_epochs == 6
        assert bench.pretrain_config("rayleigh_benard", method, 0).train.max_epochs == 30
        assert bench.pretrain_config("active_matter", method, 0).optim.lr == 1e-3
        assert bench.pretrain_config("shear_flow", method, 0).optim.lr == 1e-4


def test_fraction_subsets_are_seeded_and_nested(tiny_run):
    emb = load_or_embed(FEATURES, tiny_run / "shear_flow" / "dataset", tiny_run / "check")
    train = emb.splits["train"]
    half = subset_trajectories(train, 0.5, seed=3)
    assert set(np.unique(half.trajectory)) < set(np.unique(train.trajectory))
    assert np.array_equal(half.trajectory, subset_trajectories(train, 0.5, 3).trajectory)
    assert subset_trajectories(train, 1.0, 3) is train


def test_embed_and_probe_commands(tiny_run, cli, tmp_path):
    encoder = tiny_run / "shear_flow" / "pretrain" / "jepa-s0" / "encoder.pt"
    data = tiny_run / "shear_flow" / "dataset"
    code, out, err = cli("embed", encoder, "--data", data, "--cache", tmp_path)
    assert code == 0 and "rows        train" in out, err
    code, out, err = cli(
        "probe", encoder, "--data", data, "--cache", tmp_path, "--probes", "ridge",
        "--seeds", "0", "--out", tmp_path / "rows.json",
    )  # fmt: skip
    assert code == 0 and "ridge probe" in out, err
    assert {r["probe"] for r in read_results(tmp_path / "rows.json")} == {"ridge"}


def test_bad_requests_fail_in_one_line(cli, tmp_path):
    code, _, err = cli("benchmark", "--preset", "nope", "--out", tmp_path)
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("benchmark", "--preset", "tiny", "--methods", "simclr", "--out", tmp_path)
    assert code == 2 and "method 'simclr' is not in this preset" in err
    code, _, err = cli("embed", tmp_path / "missing.pt", "--data", tmp_path)
    assert code == 2 and "missing.pt" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("benchmark", "--preset", "tiny", "--well-dir", tmp_path, "--out", tmp_path)
    assert code == 2 and "no dataset folder" in err
