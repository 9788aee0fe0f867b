"""The command line as a user runs it: help, synthetic -> inspect, run records, exit codes."""

import json
import subprocess
import sys

import yaml

from physrep.runinfo import data_fingerprint


def test_help_lists_the_commands(cli, capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        cli("--help")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("inspect", "stats", "synthetic"):
        assert command in out


def test_synthetic_then_inspect_with_plot(cli, tmp_path):
    out_dir = tmp_path / "am"
    code, out, err = cli(
        "synthetic",
        "--out",
        out_dir,
        "like=active_matter",
        "resolution=[12,12]",
        "steps=6",
        "trajectories_per_file=3",
    )
    assert code == 0, err
    record = json.loads((out_dir / "run.json").read_text())
    assert record["seed"] == 0 and record["versions"]["the-well"] == "1.2.0"
    assert record["data"]["fingerprint"] == data_fingerprint(out_dir)
    assert yaml.safe_load((out_dir / "config.yaml").read_text())["resolution"] == [12, 12]
    code, out, err = cli("inspect", out_dir, "--plot", tmp_path / "frames.png")
    assert code == 0, err
    assert "channels    11:" in out and "format      ok" in out
    assert (tmp_path / "frames.png").stat().st_size > 1000
    # the same command again must not overwrite a finished dataset
    code, _, err = cli("synthetic", "--out", out_dir)
    assert code == 2 and "already holds a dataset" in err


def test_fingerprint_follows_content(synthetic_dataset, tmp_path):
    import shutil

    import h5py

    root = tmp_path / "copy"
    shutil.copytree(synthetic_dataset("shear_flow"), root)
    before = data_fingerprint(root)
    assert before == data_fingerprint(synthetic_dataset("shear_flow"))  # location does not matter
    path = sorted((root / "data" / "test").glob("*.hdf5"))[0]
    with h5py.File(path, "a") as f:
        f["t0_fields/tracer"][0, 0, 0, 0] += 1.0
    assert data_fingerprint(root) != before


def test_process_exit_code_and_single_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "physrep", "inspect", str(tmp_path / "none")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"physrep: error: {tmp_path / 'none'}: no such dataset folder"


def test_bad_override_is_exit_2(cli, tmp_path):
    code, _, err = cli("synthetic", "--out", tmp_path / "x", "like=turbulence")
    assert code == 2 and "key 'like' must be one of" in err
    assert not (tmp_path / "x").exists()


def test_pretrain_help_lists_the_registered_methods(cli, capsys):
    import pytest

    from physrep.methods import METHODS

    with pytest.raises(SystemExit) as exit_info:
        cli("pretrain", "--help")
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"one of the registered methods: {', '.join(METHODS)}" in out


def test_devices_reaches_the_trainer(synthetic_dataset, tmp_path):
    from physrep.cli import parse_args, pretrain_config
    from physrep.train import build_trainer

    data = synthetic_dataset("shear_flow")
    args = parse_args(
        ["pretrain", "jepa", "--data", str(data), "--devices", "2", "train.global_batch=16"]
    )
    cfg = pretrain_config(args)
    assert cfg.train.devices == 2
    trainer = build_trainer(cfg, tmp_path / "run", progress=False)
    assert trainer.num_devices == 2
    assert trainer.accumulate_grad_batches == 16 // (2 * cfg.train.batch_size)


def test_out_of_range_config_values_are_one_line_exit_2(cli, synthetic_dataset, tmp_path):
    data = synthetic_dataset("shear_flow")
    for override, message in [
        ("optim.lr=-1", "key 'optim.lr' must be > 0, got -1.0"),
        ("train.max_epochs=0", "key 'train.max_epochs' must be >= 1, got 0"),
        ("jepa.encoder=huge", "key 'jepa.encoder' must be one of"),
        ("videomae.encoder=huge", "key 'videomae.encoder' must be one of"),
        ("disco.encoder=huge", "key 'disco.encoder' must be one of"),
        ("autoregressive.encoder=huge", "key 'autoregressive.encoder' must be one of"),
        ("data.fraction=2", "key 'data.fraction' must be in (0, 1], got 2"),
    ]:
        out = tmp_path / override.split("=")[0]
        code, _, err = cli("pretrain", "jepa", "--data", data, "--out", out, override)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (out / "encoder.pt").exists()
