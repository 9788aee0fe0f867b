"""Evaluation: the embedding cache (keys, atomicity, one row per window), the probes (the
attentive probe fits, ridge equals its closed form) and the metrics (hand-computed values)."""

import dataclasses

import numpy as np
import pytest
import torch

from physrep import load_encoder
from physrep.config import load_config, preset_path
from physrep.data.targets import ParamTargets
from physrep.data.windows import WellWindows, WindowConfig
from physrep.eval.embed import FEATURES, load_or_embed
from physrep.eval.metrics import (
    embedding_diagnostics,
    estimate_metrics,
    per_trajectory,
    regression_metrics,
)
from physrep.eval.probes import ProbeConfig, fit_probe
from physrep.losses import effective_rank
from physrep.methods.common import collapse_metrics
from physrep.train import PretrainConfig, export_initial

WINDOWS = WindowConfig(frames=4, stride=3, target=False)


@pytest.fixture(scope="module")
def data(synthetic_dataset):
    return synthetic_dataset("shear_flow")


@pytest.fixture(scope="module")
def encoders(data, tmp_path_factory):
    """Two untrained tiny JEPA encoders with different seeds (different weights)."""
    root = tmp_path_factory.mktemp("encoders")
    made = []
    for seed in (0, 1):
        cfg = load_config(PretrainConfig, preset_path("pretrain", "tiny"), [f"seed={seed}"])
        made.append(export_initial(cfg, data, root / f"s{seed}"))
    return made


def test_one_row_per_window_and_rows_are_the_encoder_output(data, encoders, tmp_path):
    emb = load_or_embed(encoders[0], data, tmp_path, cfg=WINDOWS, batch_size=7)
    encoder = load_encoder(encoders[0])
    for split, part in emb.splits.items():
        windows = WellWindows(data, split, WINDOWS, targets=emb.targets)
        assert len(part) == len(windows) and len(windows) % 7 != 0  # a ragged last batch
        for i in (0, len(windows) - 1):
            with torch.no_grad():
                expected = encoder.encode(windows[i]["context"][None])[0].numpy()
            np.testing.assert_allclose(part.tokens[i], expected, rtol=1e-4, atol=1e-5)
            assert part.trajectory[i] == windows.window_trajectory[i]
        np.testing.assert_allclose(part.params, emb.targets.encode(part.params_raw), atol=1e-6)


def test_cache_reuses_same_inputs_and_recomputes_changed_ones(data, encoders, tmp_path):
    first = load_or_embed(encoders[0], data, tmp_path, cfg=WINDOWS)
    stamp = (first.path / "meta.json").stat().st_mtime_ns
    again = load_or_embed(encoders[0], data, tmp_path, cfg=WINDOWS)
    assert again.path == first.path and (again.path / "meta.json").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(
        np.asarray(again.splits["test"].tokens), np.asarray(first.splits["test"].tokens)
    )

    other_weights = load_or_embed(encoders[1], data, tmp_path, cfg=WINDOWS)
    other_windows = load_or_embed(
        encoders[0], data, tmp_path, cfg=dataclasses.replace(WINDOWS, stride=5)
    )
    other_norm = load_or_embed(
        encoders[0], data, tmp_path, cfg=dataclasses.replace(WINDOWS, normalization="rms")
    )
    keys = {e.key for e in (first, other_weights, other_windows, other_norm)}
    assert len(keys) == 4
    assert len(other_windows.splits["train"]) != len(first.splits["train"])
    other, same = other_weights.splits["train"].tokens, first.splits["train"].tokens
    assert not np.allclose(np.asarray(other), np.asarray(same))


def test_changed_data_changes_the_key(synthetic_dataset, encoders, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(synthetic_dataset("shear_flow"), copy)
    before = load_or_embed(encoders[0], copy, tmp_path / "cache", cfg=WINDOWS)
    stats = copy / "stats.yaml"
    stats.write_text(stats.read_text() + "\n# edited\n")
    after = load_or_embed(encoders[0], copy, tmp_path / "cache", cfg=WINDOWS)
    assert after.key != before.key and before.path.exists() and after.path.exists()


def test_a_damaged_cache_is_recomputed_not_trusted(data, encoders, tmp_path):
    emb = load_or_embed(encoders[0], data, tmp_path, cfg=WINDOWS)
    good = np.asarray(emb.splits["train"].tokens)
    tokens = emb.path / "train.tokens.npy"
    tokens.write_bytes(tokens.read_bytes()[:1000])  # as a crash mid-write would leave it
    redone = load_or_embed(encoders[0], data, tmp_path, cfg=WINDOWS)
    assert not redone.cached
    np.testing.assert_array_equal(np.asarray(redone.splits["train"].tokens), good)
    assert not list(tmp_path.glob(".*.partial"))


def test_features_control_is_deterministic(data, tmp_path):
    a = load_or_embed(FEATURES, data, tmp_path / "a", cfg=WINDOWS)
    b = load_or_embed(FEATURES, data, tmp_path / "b", cfg=WINDOWS)
    assert a.key == b.key and a.splits["train"].tokens.shape[1] == 1
    for split in a.splits:
        np.testing.assert_array_equal(
            np.asarray(a.splits[split].tokens), np.asarray(b.splits[split].tokens)
        )


def _synthetic_regression(n=384, tokens=8, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, tokens, dim)).astype(np.float32)
    # a target that needs attention: one token's feature, plus a pooled nonlinearity
    y = np.stack([x[:, 3, 0], np.tanh(x.mean(1)[:, 1] * 3)], axis=1).astype(np.float32)
    return x, (y - y.mean(0)) / y.std(0)


def test_attentive_probe_fits_a_synthetic_target():
    x, y = _synthetic_regression()
    cfg = ProbeConfig(epochs=150, width=32, heads=4, lr=3e-3, weight_decay=0.0)
    fitted = fit_probe("attentive", (x, y), (x, y), cfg, seed=0)
    mse = float(((fitted.predict(x) - y) ** 2).mean())
    assert mse < 0.02, mse
    mean_pooled = fit_probe("ridge", (x, y), (x, y))  # pooling loses token 3's feature
    assert float(((mean_pooled.predict(x) - y) ** 2).mean()) > 10 * mse


def test_ridge_equals_its_closed_form():
    x, y = _synthetic_regression(n=200, dim=6)
    alpha = 3.0
    fitted = fit_probe("ridge", (x, y), (x, y), ProbeConfig(ridge_alphas=[alpha]))
    pooled = x.mean(1, dtype=np.float64)
    z = (pooled - pooled.mean(0)) / pooled.std(0)
    w = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean(0)))
    np.testing.assert_allclose(fitted.predict(x), z @ w + y.mean(0), rtol=1e-4, atol=1e-5)
    assert fitted.detail == {"alpha": alpha}


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_pooled_probes_beat_the_mean_on_a_linear_target(kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4, 10)).astype(np.float32)
    y = (x.mean(1) @ rng.normal(size=(10, 2))).astype(np.float32)
    y = (y - y.mean(0)) / y.std(0)
    fitted = fit_probe(kind, (x[:200], y[:200]), (x[200:], y[200:]), ProbeConfig(epochs=80))
    assert float(((fitted.predict(x[200:]) - y[200:]) ** 2).mean()) < 0.2


def test_metrics_match_hand_computed_values():
    true = np.array([[0.0, 1.0], [1.0, -1.0], [2.0, 0.0], [3.0, 0.0]])
    pred = np.array([[1.0, 1.0], [1.0, 0.0], [2.0, 0.0], [1.0, 2.0]])
    m = regression_metrics(pred, true, ["a", "b"])
    # squared errors: a -> 1, 0, 0, 4 (mean 1.25); b -> 0, 1, 0, 4 (mean 1.25)
    assert m["mse_a"] == pytest.approx(1.25) and m["mse_b"] == pytest.approx(1.25)
    assert m["mse"] == pytest.approx(1.25)
    assert m["r2_a"] == pytest.approx(1 - 1.25 / 1.25)  # var of 0,1,2,3 is 1.25
    assert m["r2_b"] == pytest.approx(1 - 1.25 / 0.5)

    trajectory = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(per_trajectory(pred, trajectory), [[1.0, 0.5], [1.5, 1.0]])
    targets = ParamTargets(["a", "b"], ["linear", "log10"], np.zeros(2), np.ones(2))
    full = estimate_metrics(pred, true, trajectory, targets)
    # per trajectory: true means [0.5, 0], [2.5, 0]; errors a -> 0.25, 1; b -> 0.25, 1
    assert full["traj_mse_a"] == pytest.approx(0.625) and full["traj_mse"] == pytest.approx(0.625)
    # physical units: b is log10, so |10^pred - 10^true| per window
    expected_b = np.mean(np.abs(10.0 ** pred[:, 1] - 10.0 ** true[:, 1]))
    assert full["mae_b"] == pytest.approx(expected_b)
    assert full["mae_a"] == pytest.approx(np.mean([1, 0, 0, 2]))


def test_embedding_diagnostics_split_the_variance():
    params = np.repeat([[1.0], [2.0]], 4, axis=0)  # two parameter values, 4 windows each
    trajectory = np.repeat([0, 1, 2, 3], 2)  # two trajectories per value
    signal = params[:, 0] - 1.5  # +-0.5: a pure parameter direction
    ic = np.array([1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0])  # a pure trajectory direction
    tokens = np.stack([signal, ic], axis=1)[:, None, :]  # (N, 1 token, 2)
    d = embedding_diagnostics(tokens, params, trajectory)
    # after standardising, each direction holds half the variance: the parameter explains the
    # first, trajectory identity explains both
    assert d["param_share"] == pytest.approx(0.5) and d["trajectory_share"] == pytest.approx(1.0)
    assert d["top_pc_share"] == pytest.approx(0.5)
    # the rank is not standardised: singular values √2 and 2√2, so p = (1/3, 2/3)
    assert d["effective_rank"] == pytest.approx(np.exp(np.log(3) - 2 / 3 * np.log(2)))
    collapsed = embedding_diagnostics(np.stack([signal, 2 * signal], 1), params, trajectory)
    assert collapsed["effective_rank"] == pytest.approx(1.0)
    assert collapsed["param_share"] == pytest.approx(1.0)


def test_one_effective_rank_for_the_training_monitor_and_the_diagnostics():
    """The number logged during pretraining (`collapse_metrics`), the benchmark's diagnostics
    and `effective_rank` itself agree on the same embeddings."""
    rng = np.random.default_rng(0)
    scales = np.array([5.0, 2.0, 1.0, 0.5, 0.1, 0.01])  # anisotropic, around a shared mean
    spread = 3.0 + rng.standard_normal((40, 3, 6)) * scales
    params = np.repeat(np.arange(4.0), 10)[:, None]
    trajectory = np.repeat(np.arange(8), 5)
    for tokens in (spread, np.ones((40, 3, 6))):
        pooled = torch.tensor(tokens.mean(1))
        expected = effective_rank(pooled).item()
        monitored = collapse_metrics(pooled)["effective_rank"]
        diagnosed = embedding_diagnostics(tokens, params, trajectory)["effective_rank"]
        assert monitored == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert diagnosed == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert 1.0 < effective_rank(torch.tensor(spread.mean(1))).item() < 4.0
    assert expected == 0.0  # no variation at all
