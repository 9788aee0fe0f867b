"""Which benchmark stages a rerun reuses: an unchanged rerun computes nothing; a changed key
that shapes a stage (simulation parameter, epochs, encoder, window) is refused by name, and
`--rerun` recomputes that stage and what follows it. Also: a user's dataset keeps its own
name, and under torchrun the ranks train together and rank 0 alone probes and reports."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from physrep.config import preset_path, read_yaml
from physrep.eval.results import read_results

pytestmark = pytest.mark.filterwarnings("ignore")


def preset(tmp_path: Path, name: str, **changes) -> Path:
    """The tiny preset cut to JEPA (without the jepa_paper row) and the mean control with one
    ridge probe, plus `changes` merged into it, written as a YAML file a user would edit."""
    cfg = read_yaml(preset_path("benchmark", "tiny"))
    cfg.update(
        methods=["jepa"],
        paper_recipe=False,
        controls=["mean"],
        probes=["ridge"],
        efficiency_probes=["ridge"],
        headline_probe="ridge",
        probe_seeds=[0],
        fractions=[1.0],
        finetune_methods=[],
    )
    for key, value in changes.items():
        section, _, leaf = key.partition("__")
        if leaf:
            cfg.setdefault(section, {}).update(yaml.safe_load(yaml.safe_dump({leaf: value})))
        else:
            cfg[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def timings(out: Path) -> dict[str, bool]:
    """stage -> reused, from the run's timings.json."""
    return {t["stage"]: t["reused"] for t in json.loads((out / "timings.json").read_text())}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    from physrep.cli import main

    tmp = tmp_path_factory.mktemp("stages")
    out = tmp / "out"
    assert main(["benchmark", "--preset", str(preset(tmp, "base")), "--out", str(out)]) == 0
    return tmp, out


def run(cli, config: Path, out: Path, *flags: str):
    return cli("benchmark", "--preset", config, "--out", out, *flags)


def stamp(path: Path) -> int:
    return path.stat().st_mtime_ns


def test_an_unchanged_rerun_runs_no_stage(first_run, cli):
    tmp, out = first_run
    encoder = out / "shear_flow" / "pretrain" / "jepa-s0" / "encoder.pt"
    before, rows = stamp(encoder), read_results(out / "results.json")
    code, text, err = run(cli, tmp / "base.yaml", out)
    assert code == 0, err
    reused = timings(out)
    assert len(reused) == 4 and all(reused.values()), reused  # simulate, pretrain, embed, probe
    assert "reused every stage (4 of 4)" in text + err
    assert stamp(encoder) == before and read_results(out / "results.json") == rows


@pytest.mark.parametrize(
    "change, key",
    [
        ({"pretrain_overrides__train": {"max_epochs": 3}}, "train.max_epochs"),
        ({"method_overrides__jepa": {"jepa": {"encoder": "small"}}}, "jepa.encoder"),
        ({"pretrain_overrides__data": {"frames": 2, "stride": 4}}, "data.frames"),
    ],
)
def test_a_changed_training_key_is_refused_by_name(first_run, cli, change, key):
    tmp, out = first_run
    encoder = out / "shear_flow" / "pretrain" / "jepa-s0" / "encoder.pt"
    before = stamp(encoder)
    code, _, err = run(cli, preset(tmp, key, **change), out)
    assert code == 2 and f"'{key}' was" in err and "--rerun" in err, err
    assert len(err.strip().splitlines()) == 1 and "jepa-s0" in err
    assert stamp(encoder) == before  # nothing was touched


def test_rerun_recomputes_the_changed_stage_and_what_follows(first_run, cli):
    tmp, out = first_run
    config = preset(tmp, "epochs", pretrain_overrides__train={"max_epochs": 3})
    code, _, err = run(cli, config, out, "--rerun")
    assert code == 0, err
    assert timings(out) == {
        "simulate": True,
        "pretrain jepa s0": False,
        "embed jepa s0": False,
        "probe jepa s0": False,
    }
    record = read_yaml(out / "shear_flow" / "pretrain" / "jepa-s0" / "config.yaml")
    assert record["train"]["max_epochs"] == 3  # the record says what made the encoder
    code, _, err = run(cli, config, out)
    assert code == 0 and all(timings(out).values()), err


def test_a_changed_simulation_parameter_recomputes_everything(tmp_path, cli):
    out = tmp_path / "out"
    assert run(cli, preset(tmp_path, "base"), out)[0] == 0
    grid = {"params": {"Reynolds": [1.0e4, 2.0e4, 5.0e4], "Schmidt": [0.1, 0.3]}}
    datasets = read_yaml(preset_path("benchmark", "tiny"))["datasets"]
    datasets["shear_flow"]["sim_overrides"].update(grid)
    config = preset(tmp_path, "schmidt", datasets=datasets)
    code, _, err = run(cli, config, out)
    assert code == 2 and "'params.Schmidt' was [0.1, 0.2]" in err and "dataset" in err, err
    code, _, err = run(cli, config, out, "--rerun")
    assert code == 0, err
    assert not any(timings(out).values())
    rows = read_results(out / "results.json")
    assert {r["dataset"] for r in rows} == {"shear_flow"}


def test_a_user_dataset_keeps_its_own_name(synthetic_dataset, tmp_path, cli):
    data = synthetic_dataset("shear_flow", dataset_name="damped_waves")
    out = tmp_path / "out"
    code, _, err = cli(
        "benchmark", "--preset", preset(tmp_path, "base"), "--well-dir", data, "--out", out
    )
    assert code == 0, err
    assert {r["dataset"] for r in read_results(out / "results.json")} == {"damped_waves"}
    assert (out / "damped_waves" / "pretrain" / "jepa-s0" / "encoder.pt").is_file()
    assert not (out / "shear_flow").exists()
    assert "damped_waves" in (out / "results.md").read_text()


def _torchrun(*args, timeout=600) -> subprocess.CompletedProcess:
    """`physrep ARGS` as two gloo processes on the CPU under torchrun."""
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nproc-per-node", "2", "--standalone", "-m", "physrep", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_a_launched_benchmark_refuses_to_simulate_before_anything_is_written(tmp_path):
    """torchrun stops the other rank as soon as one exits, so the second line may never print."""
    out = tmp_path / "out"
    proc = _torchrun("benchmark", "--preset", "tiny", "--out", out)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("physrep: error")]
    assert 1 <= len(errors) <= 2, proc.stderr
    assert all("is not simulated yet" in e for e in errors), proc.stderr
    assert not out.exists()


def test_a_launched_benchmark_trains_together_and_reports_once(synthetic_dataset, tmp_path):
    """Two gloo ranks: each encoder trains under DDP, every split is embedded in two shards,
    and rank 0 alone probes and writes; a relaunch reuses every stage."""
    data = synthetic_dataset("shear_flow")
    out = tmp_path / "out"
    args = ["benchmark", "--preset", "tiny", "--well-dir", data, "--out", out, "--no-progress"]
    args += ["--methods", "jepa,random_init,features,mean", "paper_recipe=false"]
    args += ["probes=[ridge]", "fractions=[1.0]", "probe_seeds=[0]"]
    args += ["pretrain_overrides.train.batch_size=2"]  # x 2 processes = global_batch 4
    proc = _torchrun(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_results(out / "results.json")
    assert {r["method"] for r in rows} == {"jepa", "random_init", "features", "mean"}
    assert proc.stdout.count("pretrain jepa s0: trained") == 1  # one line per stage
    assert proc.stdout.count("probe jepa s0:") == 1
    record = json.loads((out / "shear_flow" / "pretrain" / "jepa-s0" / "run.json").read_text())
    assert record["world_size"] == 2, record
    again = _torchrun(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reused every stage" in again.stdout


def test_a_redirected_stdout_is_line_buffered(tmp_path):
    """Under nohup or a batch system stdout is a file or pipe, which Python block-buffers: the
    command line switches it to line buffering, so each stage's line reaches the log when the
    stage ends rather than when the process exits."""
    code = (
        "import sys; from physrep.cli import main; main(['stats', sys.argv[1]]); "
        "sys.stderr.write(f'line_buffering={sys.stdout.line_buffering}')"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "missing")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert "line_buffering=True" in proc.stderr, proc.stderr


def test_per_dataset_runs_into_one_folder_build_one_table(cli, tmp_path):
    """`--datasets` runs one dataset of a preset; a second run into the same folder adds its
    rows to results.json instead of replacing the first one's."""
    tiny = read_yaml(preset_path("benchmark", "tiny"))["datasets"]["shear_flow"]
    other = {**tiny, "sim_overrides": {**tiny["sim_overrides"], "seed": 1}}
    config = preset(
        tmp_path,
        "two",
        methods=[],
        controls=["mean", "features"],
        datasets={"low": tiny, "high": other},
    )
    out = tmp_path / "out"
    code, _, err = run(cli, config, out, "--datasets", "missing")
    assert code == 2 and "dataset 'missing' is not in this benchmark (it has: high, low)" in err
    code, _, err = run(cli, config, out, "--datasets", "low", "probe_seed=[0]")
    assert code == 2 and "probe_seed" in err and len(err.strip().splitlines()) == 1
    half = "fractions=[0.5, 1.0]"  # a key=value override of the preset
    assert run(cli, config, out, "--datasets", "low", half)[0] == 0
    first = read_results(out / "results.json")
    first_timings = json.loads((out / "timings.json").read_text())
    assert {r["dataset"] for r in first} == {"low"} and not (out / "high").exists()
    assert {r["fraction"] for r in first} == {0.5, 1.0}
    code, text, err = run(cli, config, out, "--datasets", "high", half)
    assert code == 0, err
    rows = read_results(out / "results.json")
    assert {r["dataset"] for r in rows} == {"low", "high"}
    assert [r for r in rows if r["dataset"] == "low"] == first  # kept as they were
    timings = json.loads((out / "timings.json").read_text())  # and so are their stage times
    assert [t for t in timings if t["dataset"] == "low"] == first_timings
    assert {t["dataset"] for t in timings} == {"low", "high"}
    assert "| features |" in text and "high" in (out / "results.md").read_text()
    assert "low" in (out / "results.md").read_text()


def test_side_by_side_pretraining_trains_what_one_at_a_time_does(first_run, cli):
    """pretrain_workers=2: both seeds train in their own one-thread processes, every stage is
    timed, and seed 0 ends where the sequential run's seed 0 did (same data, config, seed)."""
    import torch

    tmp, out = first_run
    data = out / "shear_flow" / "dataset"  # other tests rerun stages in `out`: train afresh
    code, _, err = run(cli, preset(tmp, "seq"), tmp / "seq", "--well-dir", data)
    assert code == 0, err
    config = preset(tmp, "pair", pretrain_workers=2, pretrain_seeds=[0, 1])
    pair = tmp / "pair"
    code, _, err = run(cli, config, pair, "--well-dir", data)
    assert code == 0, err
    stages = json.loads((pair / "timings.json").read_text())
    trained = {t["stage"]: t["seconds"] for t in stages if t["stage"].startswith("pretrain")}
    assert set(trained) == {"pretrain jepa s0", "pretrain jepa s1"}
    assert all(seconds > 0 for seconds in trained.values())
    weights = [
        torch.load(root / "shear_flow" / "pretrain" / f"jepa-s{s}" / "encoder.pt")["state_dict"]
        for root, s in ((tmp / "seq", 0), (pair, 0), (pair, 1))
    ]
    one, side, other = weights
    for key in one:
        torch.testing.assert_close(side[key], one[key], rtol=1e-3, atol=1e-4)
    assert any(not torch.allclose(one[k], other[k]) for k in one)  # the seed matters
    code, _, err = run(cli, config, pair, "--well-dir", data)
    assert code == 0 and all(timings(pair).values()), err  # a rerun reuses both


def test_a_record_older_than_a_new_config_key_is_still_reused(first_run, cli):
    """A key added to a config class after a stage ran (absent from its config.yaml) takes its
    default when the record is read, so upgrading physrep does not invalidate finished work."""
    import shutil

    tmp, first = first_run
    out = tmp / "older"  # a folder of its own: other tests change the shared one's stages
    shutil.copytree(first / "shear_flow" / "dataset", out / "shear_flow" / "dataset")
    config = preset(tmp, "older")
    code, _, err = run(cli, config, out)
    assert code == 0, err
    for record, key in (
        (out / "shear_flow" / "dataset" / "config.yaml", "shared_ics"),
        (out / "shear_flow" / "pretrain" / "jepa-s0" / "config.yaml", "seed"),
    ):
        data = read_yaml(record)
        assert key in data
        record.write_text(yaml.safe_dump({k: v for k, v in data.items() if k != key}))
    code, _, err = run(cli, config, out)
    assert code == 0, err
    assert all(timings(out).values())
