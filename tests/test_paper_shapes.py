"""The `paper` benchmark preset end to end at The Well's real grids and channel counts.

Synthetic data in the exact layouts of active_matter (256x256, 11 channels), shear_flow
(256x512, 4) and rayleigh_benard (512x128, 4) goes through every method, variant, control and
the autoregressive fine-tune with the preset's windows (16 frames, crops, 224x224 resize) and
model sizes untouched. Only counts are cut: one parameter combination per dataset with one
trajectory per split, 32 steps (one window of 16 context + 16 target frames), one optimiser
step of batch 1, one seed, the full training fraction, one probe and fine-tuning epoch.

Slow (9 min 31 s and 7.9 GB peak RSS alone on 2 CPU cores, one thread; 9.5 to 10.5 min shared):
`make test-slow` runs it, `make test` does not. Its folders (about 6 GB, mostly checkpoints)
are deleted afterwards.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from physrep.cli import main
from physrep.data.validate import inspect_dataset
from physrep.eval.benchmark import Benchmark
from physrep.eval.embed import load_or_embed
from physrep.eval.preset import load_benchmark
from physrep.eval.results import read_results

pytestmark = pytest.mark.slow

# The Well's grids and flattened channels; one value per parameter (one file per split).
LAYOUTS = {
    "active_matter": {
        "resolution": (256, 256),
        "channels": [
            "concentration",
            *("velocity_x", "velocity_y"),
            *("D_xx", "D_xy", "D_yx", "D_yy"),
            *("E_xx", "E_xy", "E_yx", "E_yy"),
        ],
        "params": "{L: [10.0], zeta: [9.0], alpha: [-3.0]}",
    },
    "shear_flow": {
        "resolution": (256, 512),
        "channels": ["tracer", "pressure", "velocity_x", "velocity_y"],
        "params": "{Reynolds: [1.0e5], Schmidt: [1.0]}",
    },
    "rayleigh_benard": {
        "resolution": (512, 128),
        "channels": ["buoyancy", "pressure", "velocity_x", "velocity_y"],
        "params": "{Rayleigh: [1.0e8], Prandtl: [1.0]}",
    },
}
STEPS = 32  # 2 x 16 frames: one window at any stride
TRAJECTORIES = 3  # split 1/1/1 into train, valid and test

OVERRIDES = [
    "pretrain_seeds=[0]",
    "probe_seeds=[0]",
    "fractions=[1.0]",
    "probe.epochs=1",
    "probe.min_steps=1",
    "finetune.epochs=1",
    "pretrain_overrides.train.max_epochs=1",
    "pretrain_overrides.train.max_steps=1",
    "pretrain_overrides.train.batch_size=1",
    "pretrain_overrides.train.global_batch=1",
    "pretrain_overrides.train.devices=1",
    "pretrain_overrides.train.num_workers=0",
    "pretrain_overrides.train.precision=32-true",
]

# (tokens, width) of each encoder's embedding of a 16 x 224 x 224 window
PAPER_TOKENS = {
    "jepa": (196, 128),  # ConvNeXt, stride 16: 14 x 14 tokens of 128
    "jepa_paper": (196, 128),
    "supervised": (196, 128),  # JEPA's encoder trained on the labels
    "random_init": (196, 128),  # JEPA's encoder untrained
    "videomae": (1568, 384),  # ViT-S/16, tubelet 2: 8 x 14 x 14 tokens of 384
    "autoregressive": (196, 192),  # AViT-Ti: the last step's 14 x 14 tokens of 192
    "disco": (1, 384),  # the latent that parameterises the operator
}
PROBED = [*PAPER_TOKENS, "features"]


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    """(Well folder, benchmark folder) of one `paper` benchmark over the three datasets,
    removed afterwards."""
    well = tmp_path_factory.mktemp("well")
    for name, layout in LAYOUTS.items():
        resolution = "[{},{}]".format(*layout["resolution"])
        args = [f"like={name}", f"resolution={resolution}", f"steps={STEPS}"]
        args += [f"trajectories_per_file={TRAJECTORIES}", f"params={layout['params']}"]
        assert main(["synthetic", "--out", str(well / name), *args]) == 0
    out = tmp_path_factory.mktemp("paper")
    command = ["benchmark", "--preset", "paper", "--well-dir", str(well), "--out", str(out)]
    assert main([*command, "--no-progress", *OVERRIDES]) == 0
    yield well, out
    shutil.rmtree(well)
    shutil.rmtree(out)


def test_synthetic_data_has_the_wells_grids_and_channels(paper_run):
    well, _ = paper_run
    for name, layout in LAYOUTS.items():
        info = inspect_dataset(well / name, scan_values=False)
        assert info.name == name
        assert {s: len(files) for s, files in info.splits.items()} == {
            "train": 1,
            "valid": 1,
            "test": 1,
        }
        first = info.first
        assert first.resolution == layout["resolution"]
        assert first.channel_names == layout["channels"]
        assert first.n_steps == STEPS


def test_every_method_probe_and_dataset_has_a_finite_row(paper_run):
    _, out = paper_run
    cfg = load_benchmark("paper", overrides=OVERRIDES)
    rows = read_results(out / "results.json")
    expected = {(d, m, p) for d in LAYOUTS for m in PROBED for p in cfg.probes}
    expected |= {(d, "mean", "none") for d in LAYOUTS}
    expected |= {(d, "autoregressive_finetuned", "attentive") for d in LAYOUTS}
    assert {(r["dataset"], r["method"], r["probe"]) for r in rows} == expected
    assert all(r["split"] == "test" and r["fraction"] == 1.0 for r in rows)
    for r in rows:
        assert np.isfinite([r["mse"], r["traj_mse"]]).all(), r


def test_encoders_embed_at_the_papers_token_shapes(paper_run):
    well, out = paper_run
    bench = Benchmark(load_benchmark("paper", overrides=OVERRIDES), out, well_dir=well)
    for name, data_dir in bench.dataset_dirs().items():
        for method, shape in PAPER_TOKENS.items():
            emb = load_or_embed(
                bench.run_dir(name, method, 0) / "encoder.pt",
                data_dir,
                out / name / "embeddings",
                cfg=bench.probe_windows(name),
            )
            assert emb.cached, (name, method)  # the benchmark's own embeddings
            for split in ("train", "valid", "test"):
                assert emb.splits[split].tokens.shape == (1, *shape), (name, method, split)
