"""The paper's released JEPA as a physrep method: clear errors without its code, and, where a
checkout is named by $PHYSREP_RELEASED_CODE, real training, export and reload of it."""

import os

import pytest
import torch

from physrep import load_encoder
from physrep.config import load_config, preset_path
from physrep.errors import PhysrepError
from physrep.methods.released import ReleasedJEPA
from physrep.models.released import CODE_ENV
from physrep.train import PretrainConfig, pretrain

CODE = os.environ.get(CODE_ENV, "")


def test_missing_or_wrong_checkout_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.delenv(CODE_ENV, raising=False)
    with pytest.raises(PhysrepError, match="released code's path is not set"):
        ReleasedJEPA(3, 4)
    with pytest.raises(PhysrepError, match="not a checkout of the paper's code") as info:
        ReleasedJEPA(3, 4, jepa_released={"code": str(tmp_path)})
    assert str(tmp_path) in str(info.value)
    with pytest.raises(PhysrepError, match="takes 4 or 16 frames, not 8"):
        ReleasedJEPA(3, 8, jepa_released={"code": str(tmp_path)})


@pytest.mark.skipif(not CODE, reason=f"${CODE_ENV} names no checkout of the paper's code")
def test_released_jepa_trains_exports_and_reloads(synthetic_dataset, tmp_path):
    cfg = load_config(
        PretrainConfig,
        preset_path("pretrain", "tiny"),
        ["method=jepa_released", "train.max_steps=3", "jepa_released.dims=[8,16,32,32]"],
    )
    out = pretrain(cfg, synthetic_dataset("shear_flow"), tmp_path / "run")
    encoder = load_encoder(out / "encoder.pt")
    tokens = encoder.encode(torch.randn(2, 4, 4, 32, 32))
    assert tokens.shape == (2, 16, 32) and torch.isfinite(tokens).all()
