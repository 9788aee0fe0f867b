"""`physrep benchmark --dry-run`: counts that match the data and Lightning's own step count,
bytes that match the arithmetic, nothing written, bad throughput files refused in one line."""

import re
import shutil

import pytest
import pytorch_lightning as pl

from physrep.config import load_config, preset_path
from physrep.data.windows import WellWindows
from physrep.eval.benchmark import Benchmark
from physrep.eval.plan import optimiser_steps
from physrep.eval.preset import load_benchmark
from physrep.train import PretrainConfig, pretrain

RATES = """\
jepa: {train: 120.0, embed: 900.0}
videomae: {train: 200.0, embed: 400.0}
autoregressive: {train: 150.0, embed: 600.0}
disco: {train: 100.0, embed: 800.0}
supervised: {train: 240.0, embed: 900.0}
features: {embed: 5000.0}
"""


@pytest.fixture(scope="module")
def rates(tmp_path_factory):
    path = tmp_path_factory.mktemp("rates") / "throughput.yaml"
    path.write_text(RATES)
    return path


def arithmetic(out: str, dataset: str, source: str) -> dict:
    """The cache arithmetic line of `source` in `dataset`'s table."""
    section = out.split(f"{dataset}: ", 1)[1]  # its line is the first after the header
    pattern = rf"^  {source} +\((.*)\) = (\d+) x (\d+) x (\d+) x (\d) = (\d+) B"
    splits, windows, tokens, width, size, total = re.search(pattern, section, re.M).groups()
    per_split = dict(part.split() for part in splits.split(" + "))
    return {
        "splits": {s: int(n) for s, n in per_split.items()},
        "windows": int(windows),
        "tokens": int(tokens),
        "width": int(width),
        "size": int(size),
        "bytes": int(total),
    }


def table_row(out: str, source: str) -> list[str]:
    """The cells of `source`'s row in the first table (two or more spaces apart)."""
    line = next(x for x in out.splitlines() if x.startswith(f"  {source} ") and "=" not in x)
    return re.split(r" {2,}", line.strip())


def test_paper_dry_run_prints_every_table_and_writes_nothing(cli, rates, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --out would be runs/benchmark/paper here
    code, out, err = cli("benchmark", "--preset", "paper", "--dry-run", "--throughput", rates)
    assert code == 0, err
    assert list(tmp_path.iterdir()) == []
    for dataset in ("active_matter", "shear_flow", "rayleigh_benard"):
        assert f"{dataset}: sim preset {dataset}_well (not simulated yet)" in out
    for source in load_benchmark("paper").sources:
        assert table_row(out, source)[0] == source
    assert out.strip().splitlines()[-1].startswith("total: 54 pretraining runs")
    # shear_flow_well: 4 Re x 7 Sc files of 40 trajectories, 200 frames; windows of 16 + 16
    # frames every 4 steps; VideoMAE's ViT-S/16, tubelet 2, on 16 x 224 x 224: 1568 x 384.
    windows = 4 * 7 * 40 * ((200 - 2 * 16) // 4 + 1)
    got = arithmetic(out, "shear_flow", "videomae")
    assert (got["windows"], got["tokens"], got["width"], got["size"]) == (windows, 1568, 384, 4)
    assert got["bytes"] == windows * 1568 * 384 * 4
    assert got["splits"] == {
        "train": 4 * 7 * 32 * 43,
        "valid": 4 * 7 * 4 * 43,
        "test": 4 * 7 * 4 * 43,
    }


def test_counts_from_data_match_the_windows_read(cli, rates, synthetic_dataset, tmp_path):
    data = synthetic_dataset("shear_flow")
    overrides = ["pretrain_overrides.data.fraction=0.5", "pretrain_overrides.data.first_frame=1"]
    bench = Benchmark(load_benchmark("tiny", overrides=overrides), tmp_path, data)
    bench.dataset_dirs()
    probe = bench.probe_windows("shear_flow")
    train_cfg = bench.pretrain_config("shear_flow", "jepa", 0).data
    expected = {s: len(WellWindows(data, s, probe)) for s in ("train", "valid", "test")}
    pretrain = (len(WellWindows(data, "train", train_cfg)), expected["valid"])
    assert pretrain[0] < expected["train"]  # the fraction and first frame take effect

    args = ("benchmark", "--preset", "tiny", "--dry-run", "--throughput", rates, *overrides)
    # a --well-dir, and the same data where the benchmark would have simulated it
    shutil.copytree(data, tmp_path / "out" / "shear_flow" / "dataset")
    for where in (["--well-dir", data], ["--out", tmp_path / "out"]):
        code, out, err = cli(*args, *where, "--methods", "jepa,features")
        assert code == 0, err
        assert "shear_flow: data in " in out
        assert arithmetic(out, "shear_flow", "jepa")["splits"] == expected
        assert table_row(out, "jepa")[2] == f"{pretrain[0]}/{pretrain[1]}"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["shear_flow"]


def test_embed_dtype_and_embed_tokens(cli, rates, synthetic_dataset):
    args = ("benchmark", "--preset", "tiny", "--dry-run", "--throughput", rates)
    args += ("--well-dir", synthetic_dataset("shear_flow"), "--methods", "videomae")

    def cache(*overrides: str) -> dict:
        code, out, err = cli(*args, *overrides)
        assert code == 0, err
        return arithmetic(out, "shear_flow", "videomae")

    full, half, pooled = cache(), cache("embed_dtype=float16"), cache("embed_tokens=8")
    assert full["size"] == 4 and full["tokens"] > 8
    assert (half["size"], half["bytes"] * 2) == (2, full["bytes"])
    assert pooled["tokens"] == 8
    assert pooled["bytes"] == pooled["windows"] * 8 * full["width"] * 4


@pytest.mark.parametrize(
    "text, key",
    [
        ("jepa: {train: fast, embed: 900.0}", "jepa.train"),
        ("jepa: {train: 1.0, embed: 2.0}", "videomae.train"),  # videomae has no entry
        ("jepa: {train: 1.0, speed: 2.0}", "jepa.speed"),
    ],
)
def test_a_bad_throughput_file_is_one_line(cli, tmp_path, text, key):
    path = tmp_path / "rates.yaml"
    path.write_text(text)
    code, out, err = cli(
        "benchmark", "--preset", "tiny", "--dry-run", "--throughput", path, "--out", tmp_path / "o"
    )
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert str(path) in err and f"'{key}" in err
    assert not (tmp_path / "o").exists()


class LastStep(pl.Callback):
    def on_train_end(self, trainer, module) -> None:
        self.steps = trainer.global_step


@pytest.mark.parametrize("limits", [["train.max_epochs=2"], ["train.max_steps=5"]])
def test_steps_are_the_optimiser_steps_lightning_takes(synthetic_dataset, tmp_path, limits):
    data = synthetic_dataset("shear_flow")
    # 27 windows in batches of 4 accumulated by 2: a partial batch and a partial accumulation
    overrides = ["method=jepa", "data.fraction=0.1", "train.batch_size=4", "train.global_batch=8"]
    cfg = load_config(PretrainConfig, preset_path("pretrain", "tiny"), overrides + limits)
    windows = len(WellWindows(data, "train", cfg.data))
    assert windows % 4 and (windows // 4 + 1) % 2
    seen = LastStep()
    pretrain(cfg, data, tmp_path, callbacks=[seen], progress=False, quiet=True)
    assert optimiser_steps(windows, cfg)[0] == seen.steps
