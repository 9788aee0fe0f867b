"""Pretraining with Lightning: losses fall, no collapse, real DDP, exact resume, warmup,
divergence stops cleanly, exported encoders load without Lightning."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import Subset

from physrep import load_encoder
from physrep.callbacks import TrainingDiverged
from physrep.config import load_config, preset_path
from physrep.data.windows import make_loader
from physrep.errors import PhysrepError
from physrep.methods.common import OptimConfig, lr_factor
from physrep.train import PretrainConfig, build_module, build_windows, pretrain


@pytest.fixture(scope="module")
def data(synthetic_dataset):
    return synthetic_dataset("shear_flow")


def tiny(method: str, *overrides: str) -> PretrainConfig:
    return load_config(
        PretrainConfig, preset_path("pretrain", "tiny"), [f"method={method}", *overrides]
    )


class Losses(pl.Callback):
    def __init__(self):
        self.values, self.lrs = [], []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.values.append(float(outputs["loss"]))


@pytest.mark.parametrize("method", ["jepa", "videomae", "autoregressive", "disco", "supervised"])
def test_loss_falls_and_encoder_exports(data, tmp_path, method):
    record = Losses()
    cfg = tiny(method, "train.max_epochs=1", "train.max_steps=40", "optim.lr=3e-3")
    out = pretrain(cfg, data, tmp_path / method, callbacks=[record])
    first, last = np.mean(record.values[:5]), np.mean(record.values[-5:])
    assert len(record.values) == 40 and last < 0.8 * first, (first, last)
    encoder = load_encoder(out / "encoder.pt")
    tokens = encoder.encode(torch.randn(2, 4, 4, 16, 16))
    assert tokens.ndim == 3 and tokens.shape[0] == 2
    # loading needs neither Lightning nor physrep's training code
    check = "import sys, physrep; physrep.load_encoder(sys.argv[1]); print('pytorch_lightning' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", check, str(out / "encoder.pt")], capture_output=True, text=True
    )
    assert done.stdout.strip() == "False", done.stderr
    assert (out / "checkpoints" / "last.ckpt").exists() and (out / "config.yaml").exists()
    assert "train/loss_step" in (out / "logs" / "csv" / "metrics.csv").read_text()


def test_jepa_window_embeddings_do_not_collapse(data, tmp_path):
    import csv

    out = pretrain(tiny("jepa", "train.max_epochs=2", "data.stride=4"), data, tmp_path / "run")
    with open(out / "logs" / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/pooled_std")]
    assert len(rows) == 2
    assert min(float(r["val/pooled_std"]) for r in rows) > 1e-2  # the prototype collapsed to 6e-4
    assert float(rows[-1]["val/effective_rank"]) > 2.0


def test_warmup_starts_low():
    cfg = OptimConfig(lr=1e-3, warmup_steps=10, warmup_start=0.01, min_lr=1e-6)
    assert lr_factor(0, 100, cfg) == pytest.approx(0.01)
    assert lr_factor(10, 100, cfg) == pytest.approx(1.0)
    assert lr_factor(100, 100, cfg) == pytest.approx(1e-3)
    assert all(lr_factor(s, 100, cfg) < lr_factor(s + 1, 100, cfg) for s in range(10))


def test_trainer_applies_the_warmup(data, tmp_path):
    record = Losses()
    pretrain(
        tiny("jepa", "train.max_steps=3", "optim.warmup_steps=4", "optim.lr=1e-3"),
        data,
        tmp_path / "w",
        callbacks=[record],
    )
    assert record.lrs[0] == pytest.approx(1e-5)  # warmup start (1 % of the peak), not the peak
    assert record.lrs[0] < record.lrs[1] < record.lrs[2] < 1e-3


class Killed(Exception):
    pass


class KillAt(pl.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Killed  # as if the job were killed here


def test_resume_is_exact(data, tmp_path):
    def weights(out):
        return torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]

    args = [
        "train.max_epochs=2",
        "data.stride=4",
        "data.fraction=0.5",
        "data.noise_std=0.1",
    ]  # noise too
    straight = pretrain(tiny("jepa", *args), data, tmp_path / "straight")
    steps_per_epoch = (
        torch.load(straight / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] // 2
    )
    with pytest.raises(Killed):  # killed mid-way through the second epoch
        pretrain(
            tiny("jepa", *args), data, tmp_path / "killed", callbacks=[KillAt(steps_per_epoch + 5)]
        )
    resumed = pretrain(tiny("jepa", *args), data, tmp_path / "killed", resume=True)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    with pytest.raises(PhysrepError, match="already holds a training run"):
        pretrain(tiny("jepa"), data, tmp_path / "straight")


def test_divergence_stops_with_a_clear_message(data, tmp_path):
    cfg = tiny(
        "jepa", "train.max_epochs=3", "optim.lr=1e12", "optim.warmup_steps=0", "optim.clip_grad=0"
    )
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf) at step \d+ \(epoch \d\)"):
        pretrain(cfg, data, tmp_path / "boom")


def test_ddp_replicas_match_a_single_process_step(data, tmp_path):
    """2 CPU processes (gloo) through Lightning's DDP: after one step both replicas equal each
    other and a single process stepping on the concatenated batch."""
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = Path(__file__).with_name("ddp_step.py")
    proc = subprocess.run(
        [str(torchrun), "--nproc-per-node", "2", "--standalone", str(script), str(data), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for k in rank0["weights"]:  # the replicas stay identical: gradients really were all-reduced
        torch.testing.assert_close(rank0["weights"][k], rank1["weights"][k], rtol=0, atol=0, msg=k)

    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).parent))
    from ddp_step import Gradients

    cfg = tiny("jepa", "train.batch_size=4", "train.global_batch=4")
    pl.seed_everything(cfg.seed, verbose=False)
    train, _ = build_windows(cfg, data)
    module = build_module(cfg, train)
    # DistributedSampler without shuffle gives rank 0 windows 0, 2 and rank 1 windows 1, 3
    loader = make_loader(Subset(train, [0, 2, 1, 3]), 4, shuffle=False)
    single = Gradients()
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_steps=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, callbacks=[single],
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=loader)
    # The step's gradient is the single-process gradient of the concatenated batch. (Adam's first
    # step is lr·sign(g), so weights themselves would amplify round-off in near-zero gradients.)
    assert rank0["grads"].keys() == single.grads.keys() and len(single.grads) > 10
    for k, g in single.grads.items():
        scale = g.abs().max().item()
        torch.testing.assert_close(
            rank0["grads"][k], g, rtol=1e-4, atol=1e-5 * scale + 1e-12, msg=k
        )


def test_load_encoder_rejects_other_files(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PhysrepError, match="not a physrep encoder file"):
        load_encoder(bad)
    torch.save({"weights": 1}, bad)
    with pytest.raises(PhysrepError, match="no 'physrep-encoder/1' format tag"):
        load_encoder(bad)


def test_pretrain_command_line(data, tmp_path, cli):
    out = tmp_path / "cli"
    code, stdout, err = cli(
        "pretrain", "jepa", "--data", data, "--out", out, "train.max_steps=3", "jepa.ema=0.99"
    )
    assert code == 0, err
    assert (out / "encoder.pt").exists() and "encoder:" in stdout
    code, _, err = cli("pretrain", "jepa", "--data", data, "--out", tmp_path / "none", "--resume")
    assert code == 2 and "no checkpoints/last.ckpt to resume from" in err
    code, _, err = cli("pretrain", "simclr", "--data", data)
    assert code == 2 and "unknown method 'simclr'" in err
    code, _, err = cli(
        "pretrain", "jepa", "--data", data, "--out", tmp_path / "bad", "jepa.loss=mse"
    )
    assert code == 2 and "key 'jepa.loss' must be one of 'vicreg', 'sigreg'" in err


@pytest.mark.parametrize("preset", ["tiny", "demo", "small", "paper"])
def test_pretrain_presets_validate(preset):
    cfg = load_config(PretrainConfig, preset_path("pretrain", preset))
    assert cfg.train.global_batch % cfg.train.batch_size == 0


@pytest.mark.parametrize(
    "options",
    [
        ["jepa.loss=sigreg"],
        ["train.precision=bf16-mixed"],
        ["jepa.stats=position"],
        ["jepa.stats=window", "jepa.loss=sigreg"],
        ["jepa.padding=zeros", "jepa.chunks=2"],
        ["jepa.target=masked"],
        ["jepa.target=masked", "jepa.ema=0.99", "jepa.stats=window"],
    ],
)
def test_jepa_options_train(data, tmp_path, options):
    record = Losses()
    pretrain(tiny("jepa", "train.max_steps=4", *options), data, tmp_path / "o", callbacks=[record])
    assert len(record.values) == 4 and np.isfinite(record.values).all()


def test_masked_target_predicts_only_what_the_context_cannot_see():
    """jepa.target=masked: the context branch sees none of the hidden tubes (changing them at
    every frame leaves it unchanged), the target branch does, and the loss uses only the
    hidden positions."""
    from physrep.methods.jepa import JEPA, hidden_positions

    torch.manual_seed(0)
    module = JEPA(3, 8, (True, True), jepa={"target": "masked", "mask_ratio": 0.25})
    clip = torch.randn(2, 3, 8, 32, 32)
    stride = module.encoder.stride
    hidden = hidden_positions(2, 16, 0.25, torch.Generator().manual_seed(5))
    assert hidden.shape == (2, 4) and all(len(set(row.tolist())) == 4 for row in hidden)
    changed = clip.clone()
    for window, positions in enumerate(hidden.tolist()):
        for pos in positions:
            i, j = divmod(pos, 4)
            changed[window, :, :, i * stride : (i + 1) * stride, j * stride : (j + 1) * stride] += 5
    outputs = [module._masked(x, torch.Generator().manual_seed(5)) for x in (clip, changed)]
    (context, pred, target), (context2, pred2, target2) = outputs
    torch.testing.assert_close(context, context2)
    torch.testing.assert_close(pred, pred2)
    assert pred.shape == target.shape == (2, 4, module.encoder.embed_dim)
    assert (target - target2).abs().max() > 1e-3


def test_ema_target_follows_the_encoder(data, tmp_path):
    cfg = tiny("jepa", "jepa.ema=0.75", "train.max_steps=1")
    pl.seed_everything(cfg.seed, verbose=False)
    train, _ = build_windows(cfg, data)
    module = build_module(cfg, train)
    start = [p.detach().clone() for p in module.encoder.parameters()]
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=make_loader(train, 4, shuffle=False))
    for t, s, s0 in zip(module.target_encoder.parameters(), module.encoder.parameters(), start):
        torch.testing.assert_close(t, 0.75 * s0 + 0.25 * s)  # one EMA update, no gradient
        assert not t.requires_grad


class Counts(Losses):
    def on_train_end(self, trainer, module):
        self.steps, self.ema_updates = trainer.global_step, module.ema_updates


def test_ema_moves_once_per_optimiser_step_under_accumulation(data, tmp_path):
    """global_batch = 2 x batch_size: two batches per optimiser step, one EMA update each."""
    record = Counts()
    cfg = tiny(
        "jepa",
        "jepa.ema=0.9",
        "train.max_epochs=1",
        "train.batch_size=2",
        "train.global_batch=4",
        "data.stride=8",
    )
    pretrain(cfg, data, tmp_path / "ema", callbacks=[record])
    assert record.steps >= 2 and len(record.values) == 2 * record.steps
    assert record.ema_updates == record.steps


def test_torchrun_launches_data_parallel_pretraining(data, tmp_path):
    """`torchrun --nproc-per-node 2 -m physrep pretrain ...`: Lightning takes the launcher's
    layout (no train.devices needed), both ranks train, rank 0 writes the outputs."""
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    cmd = [str(torchrun), "--nproc-per-node", "2", "--standalone", "-m", "physrep",
           "pretrain", "jepa", "--data", str(data), "--out", str(out), "train.max_steps=2",
           "train.batch_size=2", "train.global_batch=4"]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stderr + proc.stdout
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    assert (out / "encoder.pt").exists()


def test_gradients_accumulate_to_the_global_batch(data, tmp_path):
    """batch 2, global batch 8: one optimiser step per 4 batches."""
    record = Losses()
    cfg = tiny(
        "jepa", "train.max_epochs=1", "train.batch_size=2", "train.global_batch=8", "data.stride=8"
    )
    out = pretrain(cfg, data, tmp_path / "acc", callbacks=[record])
    steps = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert len(record.values) == 4 * steps and steps > 0
    with pytest.raises(PhysrepError, match="not a multiple of batch_size"):
        pretrain(tiny("jepa", "train.batch_size=3", "train.global_batch=8"), data, tmp_path / "bad")
