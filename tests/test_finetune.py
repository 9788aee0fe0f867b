"""End-to-end fine-tuning (the paper's MPP protocol): it learns the parameters, keeps the best
validation epoch, leaves the encoder file alone, and refuses data with other fields."""

import numpy as np
import pytest
import torch

from physrep.config import load_config, preset_path
from physrep.errors import PhysrepError
from physrep.eval.embed import file_digest, load_or_embed
from physrep.eval.finetune import FinetuneConfig, finetune
from physrep.eval.protocols import finetune_rows
from physrep.eval.results import read_results
from physrep.train import PretrainConfig, pretrain


@pytest.fixture(scope="module")
def data(synthetic_dataset):
    # parameters far apart, so that drift speed and decay differ clearly between runs (the
    # default pair differs by a few per cent, which no model recovers from 4 frames of 16 px)
    return synthetic_dataset("shear_flow", params={"Reynolds": [1e2, 1e6], "Schmidt": [0.1, 10.0]})


@pytest.fixture(scope="module")
def autoregressive(data, tmp_path_factory):
    """A tiny MPP-style model after a short next-frame pretraining."""
    cfg = load_config(
        PretrainConfig,
        preset_path("pretrain", "tiny"),
        ["method=autoregressive", "train.max_steps=20", "data.stride=4"],
    )
    out = pretrain(cfg, data, tmp_path_factory.mktemp("ar") / "autoregressive", progress=False)
    return out / "encoder.pt"


def test_finetuned_autoregressive_beats_the_mean(data, autoregressive):
    digest = file_digest(autoregressive)
    cfg = FinetuneConfig(epochs=6, batch_size=4, lr=1e-3, width=32, heads=4)
    result = finetune(autoregressive, data, cfg, seed=0, splits=("test",))
    rows = finetune_rows("shear_flow", "autoregressive_finetuned", result, 1.0, 0)
    assert [r["split"] for r in rows] == ["test"] and rows[0]["probe"] == "attentive"
    assert np.isfinite(rows[0]["mse"]) and rows[0]["mse"] < 0.8, rows[0]["mse"]  # mean: ~1
    assert set(rows[0]) >= {"mse_Reynolds", "mse_Schmidt", "traj_mse", "best_epoch"}
    assert result.losses[-1] < result.losses[0]
    assert 0 <= result.best_epoch < 6 and result.valid_mse == pytest.approx(
        min(result.valid_history)
    )
    assert file_digest(autoregressive) == digest  # the exported encoder is never modified


def test_fraction_trains_on_fewer_trajectories(data, autoregressive):
    cfg = FinetuneConfig(epochs=1, batch_size=4, width=32, heads=4)
    full = finetune(autoregressive, data, cfg, 1.0, seed=0, splits=())
    half = finetune(autoregressive, data, cfg, 0.5, seed=0, splits=())
    assert half.n_train_trajectories == round(full.n_train_trajectories / 2)
    assert half.n_train < full.n_train


def test_windows_are_streamed_batch_by_batch(data, autoregressive, monkeypatch):
    """At the paper's sizes a window is tens of MB: fine-tuning must read a batch at a time,
    never a whole split before the first step."""
    from physrep.data.windows import WellWindows
    from physrep.eval.finetune import FineTuner

    read, seen = [0], []
    get, forward = WellWindows.__getitem__, FineTuner.forward

    def counting_get(self, i):
        read[0] += 1
        return get(self, i)

    def recording_forward(self, context):
        seen.append(read[0])
        return forward(self, context)

    monkeypatch.setattr(WellWindows, "__getitem__", counting_get)
    monkeypatch.setattr(FineTuner, "forward", recording_forward)
    cfg = FinetuneConfig(epochs=1, batch_size=2, width=32, heads=4)
    result = finetune(autoregressive, data, cfg, seed=0, splits=())
    assert result.n_train > 4  # more windows than the first step reads
    assert seen[0] <= 1 + cfg.batch_size  # the head's width probe, then one batch


def test_fields_in_another_order_are_refused(data, autoregressive, tmp_path):
    payload = torch.load(autoregressive, weights_only=True)
    payload["fields"] = list(reversed(payload["fields"]))
    swapped = tmp_path / "swapped.pt"
    torch.save(payload, swapped)
    with pytest.raises(PhysrepError, match="order matters"):
        finetune(swapped, data, FinetuneConfig(epochs=1), splits=())
    with pytest.raises(PhysrepError, match="order matters"):
        load_or_embed(swapped, data, tmp_path / "cache")


def test_probe_command_finetunes(data, autoregressive, cli, tmp_path):
    code, out, err = cli(
        "probe", autoregressive, "--data", data, "--finetune", "--epochs", "1", "--seeds", "0",
        "--out", tmp_path / "rows.json",
    )  # fmt: skip
    assert code == 0 and "attentive probe" in out and "autoregressive_finetuned" in out, err
    rows = read_results(tmp_path / "rows.json")
    assert {r["method"] for r in rows} == {"autoregressive_finetuned"}
    code, _, err = cli("probe", "features", "--data", data, "--finetune")
    assert code == 2 and "needs an encoder file" in err
