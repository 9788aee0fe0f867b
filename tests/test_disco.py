"""DISCO: per-sample operators really are per sample, padding follows the boundaries, the
rollout lives in the input's units, and real training makes the rollout loss fall."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from physrep.data.windows import WellWindows, WindowConfig, make_loader
from physrep.errors import ConfigError
from physrep.methods.disco import Disco, normalised_mse
from physrep.models.disco import DISCO_PRESETS, DiscoEncoder, OperatorNet


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: on a shared 2-core machine a second OpenMP thread that has to
    wait for a core makes each step ~100x slower (16 ms -> 2 s measured), so use one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_encoder(channels=3, frames=4, size=(8, 12), periodic=(True, False)) -> DiscoEncoder:
    kwargs = {**DISCO_PRESETS["tiny"], "patch": 4}
    return DiscoEncoder(channels, frames, size, periodic=periodic, **kwargs)


def reference_pad(x: torch.Tensor, pad: int, periodic: tuple[bool, bool]) -> torch.Tensor:
    """Independent of the model's padding: wrap by concatenation, zeros by F.pad."""
    if pad == 0:
        return x
    if periodic[0]:
        x = torch.cat([x[..., -pad:, :], x, x[..., :pad, :]], dim=-2)
    else:
        x = F.pad(x, (0, 0, pad, pad))
    if periodic[1]:
        return torch.cat([x[..., -pad:], x, x[..., :pad]], dim=-1)
    return F.pad(x, (pad, pad, 0, 0))


def reference_operator(op: OperatorNet, u: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """A loop over samples with plain (ungrouped) convolutions."""
    outs = []
    for ui, ti in zip(u, theta):
        x, chunks = ui[None], ti.split(op.sizes)
        for n, (o, i, k) in enumerate(op.layers):
            w, b = chunks[2 * n].view(o, i, k, k), chunks[2 * n + 1]
            x = F.conv2d(reference_pad(x, k // 2, op.periodic), w, b)
            x = F.gelu(x) if n < len(op.layers) - 1 else x
        outs.append(x[0])
    return torch.stack(outs)


@pytest.mark.parametrize(
    ("channels", "h", "w", "periodic", "kernel"),
    [
        (1, 8, 8, (False, False), 3),
        (4, 16, 12, (True, False), 3),
        (11, 6, 10, (True, True), 3),
        (2, 9, 7, (False, True), 5),
    ],
)
def test_operator_is_per_sample_and_matches_a_loop(channels, h, w, periodic, kernel):
    torch.manual_seed(0)
    op = OperatorNet(channels, hidden=6, kernel=kernel, periodic=periodic)
    theta = torch.stack([op.init_theta(last_scale=1.0) for _ in range(3)])
    theta[2] = theta[0]  # samples 0 and 2 share an operator
    u = torch.randn(1, channels, h, w).expand(3, -1, -1, -1)  # ... and a state
    out = op(u, theta)
    assert out.shape == (3, channels, h, w) and theta.shape == (3, op.n_params)
    assert (
        op.n_params == 6 * channels * kernel**2 + 6 + 36 * kernel**2 + 6 + 6 * channels + channels
    )
    torch.testing.assert_close(out[0], out[2])
    assert (out[0] - out[1]).abs().max() > 1e-3  # different theta, same state
    u = torch.randn(3, channels, h, w)
    torch.testing.assert_close(op(u, theta), reference_operator(op, u, theta))


def test_padding_follows_the_boundaries():
    torch.manual_seed(0)
    u = torch.randn(2, 3, 8, 10)

    def run(periodic):
        op = OperatorNet(3, hidden=5, periodic=periodic)
        theta = torch.stack([op.init_theta(last_scale=1.0) for _ in range(2)])
        return lambda v: op(v, theta)

    f = run((True, True))
    for shift in [(3, 0), (0, 4), (-2, 5)]:
        torch.testing.assert_close(
            f(u.roll(shift, dims=(2, 3))), f(u).roll(shift, dims=(2, 3)), atol=1e-5, rtol=1e-5
        )
    f = run((True, False))  # periodic in H, a wall in W
    torch.testing.assert_close(f(u.roll(3, dims=2)), f(u).roll(3, dims=2), atol=1e-5, rtol=1e-5)
    assert (f(u.roll(4, dims=3)) - f(u).roll(4, dims=3)).abs().max() > 1e-3


def test_shapes_units_and_shared_start():
    torch.manual_seed(0)
    enc = tiny_encoder().eval()
    x = torch.randn(2, 3, 4, 8, 12)
    assert enc.encode(x).shape == (2, 1, DISCO_PRESETS["tiny"]["latent"])
    theta = enc.theta(x)
    assert theta.shape == (2, enc.n_operator_params)
    # training starts from one shared operator: modulations are small next to theta0
    assert (theta - enc.theta0).norm(dim=1).max() < 0.2 * enc.theta0.norm()
    assert enc.operator(x[:, :, -1], theta).shape == (2, 3, 8, 12)
    out = enc.rollout(x, 3)
    assert out.shape == (2, 3, 3, 8, 12) and torch.isfinite(out).all()
    # the latent sees each channel's amplitude and offset, which standardisation removes
    scale, shift = torch.tensor([3.0, 0.5, 10.0]), torch.tensor([-2.0, 7.0, 0.0])
    view = (1, 3, 1, 1, 1)
    moved_x = x * scale.view(view) + shift.view(view)
    assert (enc.encode(moved_x) - enc.encode(x)).abs().max() > 1e-3
    # reversible normalisation: with the statistics token silenced, rescaling and shifting a
    # channel does the same to the rollout
    with torch.no_grad():
        enc.stats_embed.weight.zero_()
    out = enc.rollout(x, 3)
    torch.testing.assert_close(
        enc.rollout(moved_x, 3), out * scale.view(view) + shift.view(view), atol=1e-3, rtol=1e-3
    )
    # constructor arguments survive a round trip through a file as lists
    kwargs = {**DISCO_PRESETS["tiny"], "patch": 4, "in_channels": 3, "frames": 4}
    again = DiscoEncoder(**kwargs, image_size=[8, 12], periodic=[True, False]).eval()
    again.load_state_dict(enc.state_dict())
    assert again.periodic == (True, False) and again.image_size == (8, 12)
    torch.testing.assert_close(again.rollout(x, 3), out)


def test_bad_inputs_raise_clear_errors():
    enc = tiny_encoder()
    for bad in [
        torch.randn(2, 2, 4, 8, 12),  # channels
        torch.randn(2, 3, 6, 8, 12),  # frames
        torch.randn(2, 3, 4, 8, 8),  # frame size
        torch.randn(3, 4, 8, 12),  # no batch axis
    ]:
        with pytest.raises(ValueError, match=r"expected a context \(B, C, T, H, W\)"):
            enc.encode(bad)
        with pytest.raises(ValueError, match="expected a context"):
            enc.rollout(bad, 2)
    x = torch.randn(2, 3, 4, 8, 12)
    with pytest.raises(ValueError, match="rollout steps"):
        enc.rollout(x, 0)
    theta = enc.theta(x)
    with pytest.raises(ValueError, match=r"theta \(B, P\)"):
        enc.operator(x[:, :, -1], theta[:, :-1])
    with pytest.raises(ValueError, match=r"theta \(B, P\)"):
        enc.operator(x[:1, :, -1], theta)
    with pytest.raises(ValueError, match="state"):
        enc.operator(x[:, :2, -1], theta)
    with pytest.raises(ValueError, match="divisible"):
        tiny_encoder(size=(10, 12))
    with pytest.raises(ValueError, match="odd"):
        OperatorNet(3, 4, kernel=2)
    with pytest.raises(ConfigError, match="disco.rollout_steps: must be in"):
        Disco(3, 4, (8, 12), disco={"rollout_steps": 5, "encoder_args": {"patch": 4}})
    with pytest.raises(ConfigError, match="key 'encoder' must be one of"):
        Disco(3, 4, (8, 12), disco={"encoder": "huge"})


def test_normalised_mse():
    target = torch.randn(2, 3, 4, 5, 6)
    assert normalised_mse(target, target, 1e-6) == 0
    mean = target.mean(dim=(2, 3, 4), keepdim=True).expand_as(target)
    torch.testing.assert_close(normalised_mse(mean, target, 0.0), torch.tensor(1.0))


@pytest.fixture(scope="module")
def windows(synthetic_dataset):
    root = synthetic_dataset("shear_flow")
    cfg = WindowConfig(frames=4, stride=2)
    return WellWindows(root, "train", cfg), WellWindows(root, "valid", cfg)


class Losses(pl.Callback):
    def __init__(self):
        self.values = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.values.append(float(outputs["loss"]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_makes_the_rollout_loss_fall(windows, seed):
    train, valid = windows
    pl.seed_everything(seed, verbose=False)
    module = Disco(
        in_channels=train.n_channels,
        frames=4,
        image_size=train.frame_shape,
        periodic=(True, False),
        disco={"encoder": "tiny", "rollout_steps": 4},
        optim={"lr": 3e-3, "warmup_steps": 2},
        seed=seed,
    )
    record = Losses()
    trainer = pl.Trainer(
        max_steps=60,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[record],
    )
    trainer.fit(module, make_loader(train, 4, shuffle=True, seed=seed))
    first, last = np.mean(record.values[:5]), np.mean(record.values[-5:])
    assert len(record.values) == 60 and last < 0.8 * first, (first, last)
    # the trained rollout beats repeating the last context frame on held-out windows
    module.eval()
    with torch.no_grad():
        terms = [module.loss(b) for b in make_loader(valid, 16, shuffle=False)]
    rollout = np.mean([float(t["loss"]) for t in terms])
    copy = np.mean([float(t["copy_loss"]) for t in terms])
    assert rollout < 0.5 * copy, (rollout, copy)
