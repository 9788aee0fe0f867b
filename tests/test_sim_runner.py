"""`physrep simulate`: grids to files, splits, held-out values, resume, failures."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from physrep.config import load_config, preset_path
from physrep.data.validate import check_loads_in_the_well, inspect_dataset
from physrep.errors import ConfigError
from physrep.sim.base import SimConfig
from physrep.sim.runner import plan

FAST = [
    "resolution=[16,32]",
    "steps=12",
    "ics_per_file=3",
    "params={Reynolds: [1000.0, 3000.0], Schmidt: [1.0]}",
]


def test_plan_is_deterministic_and_marks_held_out_values():
    cfg = SimConfig(
        params={"Reynolds": [1e3, 1e4], "Schmidt": [0.5, 1.0, 2.0]},
        ics_per_file=4,
        holdout={"Schmidt": [2.0]},
    )
    tasks = plan(cfg)
    assert len(tasks) == 6 and tasks[0].stem == "shear_flow_Reynolds_1e3_Schmidt_5e-1"
    assert [t.held_out for t in tasks] == [False, False, True] * 2
    assert plan(cfg)[3].seeds == tasks[3].seeds and len(set(tasks[3].seeds)) == 4
    assert tasks[0].seeds != tasks[1].seeds
    more = plan(SimConfig(**{**cfg.__dict__, "ics_per_file": 6}))
    assert more[3].seeds[:4] == tasks[3].seeds  # adding trajectories keeps the existing ones
    shared = plan(SimConfig(**{**cfg.__dict__, "shared_ics": True}))
    assert all(t.seeds == shared[0].seeds for t in shared) and len(set(shared[0].seeds)) == 4


def test_split_shares_set_each_files_trajectories_per_split(tmp_path):
    cfg = SimConfig(
        params={"Reynolds": [1e3, 1e4], "Schmidt": [1.0]},
        ics_per_file=7,
        holdout={"Reynolds": [1e4]},
    )
    kept, held = plan(cfg)
    assert sorted(kept.outputs(tmp_path).values()) == [1, 1, 5]  # The Well's 0.8/0.1/0.1
    cfg.split = [0.4, 0.3, 0.3]
    kept, held = plan(cfg)
    by_split = {p.parent.name: n for p, n in kept.outputs(tmp_path).items()}
    assert by_split == {"train": 3, "valid": 2, "test": 2}
    assert list(held.outputs(tmp_path).values()) == [7]  # held-out files stay whole
    with pytest.raises(ConfigError, match="key 'split'"):
        SimConfig(split=[0.5, 0.5]).validate()
    with pytest.raises(ConfigError, match="key 'split'"):
        SimConfig(split=[0.8, 0.2, 0.2]).validate()


def test_shared_initial_conditions_give_files_that_differ_only_by_parameters(tmp_path):
    """With shared_ics, trajectory k of every file starts from the same fields (so it lands in
    the same split of every file); without, each file draws its own."""
    from physrep.sim.runner import simulate_dataset

    firsts = {}
    for shared in (True, False):
        cfg = SimConfig(
            system="shear_flow", resolution=[16, 32], steps=2, dt_out=0.05, ics_per_file=3,
            params={"Reynolds": [1000.0, 3000.0], "Schmidt": [1.0]}, shared_ics=shared,
            options={"ic_family": "random"},
        )  # fmt: skip
        root = tmp_path / str(shared)
        simulate_dataset(cfg, root, workers=1, progress=False)
        for split in ("train", "test"):
            files = sorted((root / "data" / split).glob("*.hdf5"))
            with h5py.File(files[0]) as a, h5py.File(files[1]) as b:
                firsts[shared, split] = np.array_equal(
                    a["t0_fields/tracer"][:, 0], b["t0_fields/tracer"][:, 0]
                )
    assert firsts[True, "train"] and firsts[True, "test"]
    assert not firsts[False, "train"] and not firsts[False, "test"]


def test_simulate_writes_a_valid_dataset_and_resumes(cli, tmp_path):
    out = tmp_path / "sf"
    code, _, err = cli(
        "simulate", "shear_flow", "--preset", "tiny", "--out", out, "--workers", "1", *FAST
    )
    assert code == 0, err
    info = inspect_dataset(out, require_stats=True)
    check_loads_in_the_well(info)
    assert {s: len(f) for s, f in info.splits.items()} == {"train": 2, "valid": 2, "test": 2}
    assert info.first.resolution == (16, 32) and info.first.n_steps == 12
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["system"] == "shear_flow" and len(record["data"]["fingerprint"]) == 16
    files = sorted((out / "data").rglob("*.hdf5"))
    stamps = {p: p.stat().st_mtime_ns for p in files}
    # rerun: nothing to do
    code, stdout, err = cli(
        "simulate", "shear_flow", "--preset", "tiny", "--out", out, "--workers", "1", *FAST
    )
    assert code == 0 and "2 of 2 files already complete; simulating 0" in stdout + err
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    # a missing split file makes its task partial: only that task is redone
    victim = out / "data" / "valid" / files[0].name
    victim.unlink()
    code, stdout, err = cli(
        "simulate", "shear_flow", "--preset", "tiny", "--out", out, "--workers", "1", *FAST
    )
    assert (
        code == 0
        and "1 of 2 files already complete; simulating 1" in stdout + err
        and victim.exists()
    )
    untouched = [p for p in files if files[0].name not in p.name]
    assert all(p.stat().st_mtime_ns == stamps[p] for p in untouched)


def test_held_out_values_go_to_their_own_split(cli, tmp_path):
    out = tmp_path / "ood"
    code, _, err = cli(
        "simulate",
        "shear_flow",
        "--out",
        out,
        "--workers",
        "2",
        *FAST,
        "holdout={Reynolds: [3000.0]}",
    )
    assert code == 0, err
    info = inspect_dataset(out)
    assert list(info.splits) == ["train", "valid", "test", "test_ood"]
    assert [f.params["Reynolds"] for f in info.splits["test_ood"]] == [3000.0]
    assert {f.params["Reynolds"] for f in info.splits["train"]} == {1000.0}
    assert info.splits["test_ood"][0].n_trajectories == 3


def test_refuses_to_mix_configs(cli, tmp_path):
    out = tmp_path / "mix"
    assert cli("simulate", "shear_flow", "--out", out, "--workers", "1", *FAST)[0] == 0
    code, _, err = cli("simulate", "shear_flow", "--out", out, "--workers", "1", *FAST[:-1])
    assert code == 2 and "made with a different config ('params' differs)" in err


def test_unknown_system_and_mismatched_config(cli, tmp_path):
    code, _, err = cli("simulate", "turbulence", "--out", tmp_path / "x")
    assert code == 2 and "unknown dataset 'turbulence'" in err
    code, _, err = cli(
        "simulate",
        "active_matter",
        "--config",
        preset_path("sim", "shear_flow_tiny"),
        "--out",
        tmp_path / "y",
    )
    assert code == 2 and "config is for system 'shear_flow', not 'active_matter'" in err


@pytest.mark.parametrize("system", ["shear_flow", "rayleigh_benard", "active_matter"])
def test_presets_validate(system):
    for preset in ("tiny", "small", "well"):
        cfg = load_config(SimConfig, preset_path("sim", f"{system}_{preset}"))
        assert cfg.system == system
        tasks = plan(cfg)
        assert len({t.stem for t in tasks}) == len(tasks)
        assert cfg.ics_per_file >= 3  # so every file has train, valid and test trajectories


def test_blow_up_names_its_parameters_and_leaves_no_file(cli, tmp_path):
    out = tmp_path / "boom"
    # CFL 50 with a large step cap is far beyond RK4's stability limit: the Re=3000 runs blow up
    args = [
        *FAST[:-1],
        "params={Reynolds: [3000.0], Schmidt: [1.0]}",
        "dt_out=2.0",
        "options={cfl: 50.0, max_dt: 1.0}",
    ]
    code, _, err = cli("simulate", "shear_flow", "--out", out, "--workers", "1", *args)
    assert code == 2
    assert "Reynolds=3000" in err and "blew up at t =" in err and "rerun to retry" in err
    assert not list((out / "data").rglob("*.hdf5")) and not (out / "stats.yaml").exists()


@pytest.mark.parametrize("system", ["shear_flow", "active_matter", "rayleigh_benard"])
def test_tiny_preset_files_pass_inspect(cli, tmp_path, system):
    if system == "rayleigh_benard":
        pytest.importorskip("dedalus")
    out = tmp_path / system
    code, _, err = cli(
        "simulate", system, "--preset", "tiny", "--out", out, "--workers", "2", "--no-progress"
    )
    assert code == 0, err
    code, stdout, err = cli("inspect", out)
    assert code == 0, err
    assert "format      ok" in stdout


def test_a_killed_worker_fails_cleanly_instead_of_hanging(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    slow = [
        "resolution=[32,64]",
        "steps=400",
        "ics_per_file=3",
        "params={Reynolds: [1000.0, 2000.0, 3000.0], Schmidt: [1.0]}",
    ]
    cmd = [
        sys.executable,
        "-m",
        "physrep",
        "simulate",
        "shear_flow",
        "--out",
        str(out),
        "--workers",
        "2",
        "--no-progress",
        *slow,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    workers: list[int] = []
    deadline = time.time() + 60
    while len(workers) < 2 and time.time() < deadline:
        time.sleep(0.5)
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        workers = [
            int(c) for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()
        ]
    time.sleep(3)  # let them start simulating
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "a simulation worker process died" in err
    for w in workers:  # nothing left running
        stat = Path(f"/proc/{w}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z"
