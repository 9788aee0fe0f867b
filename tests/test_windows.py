"""Windows: shapes, strides, targets, subsets, crops, noise and loaders."""

import numpy as np
import pytest
import torch

from physrep.data.targets import ParamTargets
from physrep.data.windows import WellWindows, WindowConfig, make_loader
from physrep.errors import ConfigError, DataError


def test_shapes_counts_and_channel_names(synthetic_dataset):
    root = synthetic_dataset("active_matter")
    w = WellWindows(root, "train", WindowConfig(frames=4, stride=3))
    # 24 steps, windows of 4 + 4 starting every 3 steps: 0, 3, ..., 15 -> 6 per trajectory
    assert len(w) == 6 * 32
    item = w[0]
    assert item["context"].shape == (11, 4, 16, 16) and item["target"].shape == (11, 4, 16, 16)
    assert item["context"].dtype == torch.float32 and item["params"].shape == (2,)
    assert (
        w.field_names[:3] == ["concentration", "velocity_x", "velocity_y"]
        and w.field_names[-1] == "E_yy"
    )
    assert w.param_names == ["zeta", "alpha"]  # The Well's order; L is constant and drops out


def test_target_is_the_next_frames(synthetic_dataset):
    root = synthetic_dataset("shear_flow")
    long = WellWindows(root, "train", WindowConfig(frames=8, stride=4, normalization="none"))
    short = WellWindows(root, "train", WindowConfig(frames=4, stride=4, normalization="none"))
    # short windows start every 4 steps too; short window k+1 starts 4 steps after window k
    torch.testing.assert_close(short[0]["target"], short[1]["context"])
    torch.testing.assert_close(long[0]["context"][:, 4:], short[0]["target"])


def test_parameter_targets_are_log10_zscored_on_train_and_invertible(synthetic_dataset):
    root = synthetic_dataset("shear_flow")
    train = WellWindows(root, "train", WindowConfig(frames=4))
    assert train.targets.transforms == ["log10", "linear"]
    z = torch.stack([train[i]["params"] for i in range(len(train))]).numpy()
    per_traj = train._trajectory_params.numpy()
    np.testing.assert_allclose(per_traj.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(per_traj.std(0), 1, atol=1e-6)
    raw = train.targets.decode(z)
    assert set(np.round(raw[:, 0]).astype(int)) == {10_000, 500_000}
    valid = WellWindows(root, "valid", WindowConfig(frames=4), targets=train.targets)
    assert valid.targets is train.targets  # one scale for every split
    np.testing.assert_allclose(
        valid.targets.decode(valid._trajectory_params.numpy()),
        valid.trajectory_params_raw,
        rtol=1e-6,
    )


def test_a_diverged_prediction_decodes_to_a_finite_value():
    """A probe that predicts log10 Re = 1e4 (z-scored) must not make its row's MAE inf."""
    t = ParamTargets.fit([{"Reynolds": 1e4, "Sc": 1.0}, {"Reynolds": 1e5, "Sc": 3.0}])
    decoded = t.decode(np.array([[1e4, 0.0], [-1e4, 0.0]]))
    assert np.isfinite(decoded).all()
    np.testing.assert_allclose(decoded[:, 0], [1e300, 1e-300])


def test_targets_round_trip_through_dict():
    t = ParamTargets.fit([{"Reynolds": 1e4, "Sc": 1.0}, {"Reynolds": 1e5, "Sc": 3.0}])
    again = ParamTargets.from_dict(t.to_dict())
    np.testing.assert_allclose(again.encode([[1e4, 1.0]]), [[-1.0, -1.0]])
    with pytest.raises(DataError, match="unknown parameter 'Pr'"):
        ParamTargets.fit([{"Reynolds": 1e4}], names=["Pr"])


def test_fraction_subsets_are_seeded_random_and_nested(synthetic_dataset):
    root = synthetic_dataset("shear_flow")

    def trajs(fraction, seed):
        return set(
            WellWindows(
                root, "train", WindowConfig(frames=4, fraction=fraction, seed=seed)
            ).trajectories
        )

    a, b = trajs(0.25, 0), trajs(0.25, 1)
    assert len(a) == len(b) == 8 and a != b
    assert a == trajs(0.25, 0)  # same seed, same subset
    assert a <= trajs(0.5, 0)  # larger fractions contain smaller ones
    firsts = {min(trajs(0.25, s)) for s in range(5)}
    assert len(firsts) > 1  # not always the first trajectory (the_well 1.2.0's bug)


def test_crop_resize_and_noise(synthetic_dataset):
    root = synthetic_dataset("rayleigh_benard")
    plain = WellWindows(root, "train", WindowConfig(frames=2))
    cropped = WellWindows(root, "train", WindowConfig(frames=2, crop=[[4, 12], None]))
    torch.testing.assert_close(cropped[3]["context"], plain[3]["context"][:, :, 4:12, :])
    resized = WellWindows(
        root, "train", WindowConfig(frames=2, crop=[[4, 12], None], resize=[24, 20])
    )
    assert resized[0]["context"].shape == (4, 2, 24, 20) and resized.frame_shape == (24, 20)
    noisy = WellWindows(root, "train", WindowConfig(frames=2, noise_std=0.5))
    diff = noisy[3]["context"] - plain[3]["context"]
    assert 0.45 < diff.std().item() < 0.55 and abs(diff.mean().item()) < 0.05
    with pytest.raises(ConfigError, match="exceeds axis 'x' of size 16"):
        WellWindows(root, "train", WindowConfig(frames=2, crop=[[0, 40], None]))


def test_context_only_windows_match(synthetic_dataset):
    root = synthetic_dataset("shear_flow")
    both = WellWindows(root, "test", WindowConfig(frames=4))
    ctx = WellWindows(root, "test", WindowConfig(frames=4, target=False), targets=both.targets)
    assert len(ctx) == len(both) and "target" not in ctx[0]
    torch.testing.assert_close(ctx[5]["context"], both[5]["context"])


def test_windows_too_long_for_the_trajectories(synthetic_dataset):
    with pytest.raises(DataError, match="too short for windows of 16 context"):
        WellWindows(synthetic_dataset("shear_flow"), "train", WindowConfig(frames=16))


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_every_window_once(synthetic_dataset, workers):
    root = synthetic_dataset("shear_flow")
    w = WellWindows(root, "valid", WindowConfig(frames=4, stride=8))
    loader = make_loader(w, batch_size=3, shuffle=True, num_workers=workers, seed=0)
    seen = []
    for batch in loader:
        assert batch["context"].shape[1:] == (4, 4, 16, 16)
        seen += list(zip(batch["trajectory"].tolist(), batch["start"].tolist()))
    assert sorted(seen) == sorted(zip(w.window_trajectory.tolist(), w.window_start.tolist()))


def test_a_relative_dataset_path_reads_like_an_absolute_one(synthetic_dataset, monkeypatch):
    root = synthetic_dataset("shear_flow")
    absolute = WellWindows(root, "train", WindowConfig(frames=4))
    monkeypatch.chdir(root.parent)
    relative = WellWindows(root.name, "train", WindowConfig(frames=4))
    assert len(relative) == len(absolute)
    assert torch.equal(relative[3]["context"], absolute[3]["context"])
