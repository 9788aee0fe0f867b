"""The physics-features control: shapes, names, determinism and each statistic on known fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from physrep.eval.features import feature_names, physics_features

NAMES = ["tracer", "pressure", "vx"]


def names_for(channels: int, **options) -> list[str]:
    """Feature names for the first `channels` of NAMES."""
    return feature_names(NAMES[:channels], **options)


def col(feats: torch.Tensor, channels: int, key: str, **options) -> torch.Tensor:
    """The (B,) column called `key` ("<channel>/<feature>")."""
    return feats[:, names_for(channels, **options).index(key)]


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("channels", "lags", "bins"), [(3, (1, 2, 4), 8), (1, (1,), 3), (2, (1, 3, 5, 7), 5)]
)
def test_shape_dtype_and_names_agree(channels, lags, bins):
    x = torch.randn(2, channels, 6, 8, 10, generator=generator())
    feats = physics_features(x, lags=lags, spectrum_bins=bins)
    names = names_for(channels, lags=lags, spectrum_bins=bins)
    assert feats.shape == (2, channels * (4 + 3 + bins + len(lags)))
    assert feats.dtype == torch.float32
    assert len(names) == feats.shape[1]
    assert len(set(names)) == len(names)
    assert torch.isfinite(feats).all()


def test_names_order_and_defaults():
    names = feature_names(["tracer", "pressure", "vx", "vy"])
    assert len(names) == 4 * 18
    assert names[:8] == [
        "tracer/mean",
        "tracer/std",
        "tracer/skew",
        "tracer/kurt",
        "tracer/abs_dt",
        "tracer/abs_dh",
        "tracer/abs_dw",
        "tracer/spec0",
    ]
    assert names[14:19] == [
        "tracer/spec7",
        "tracer/acf1",
        "tracer/acf2",
        "tracer/acf4",
        "pressure/mean",
    ]
    assert names[-1] == "vy/acf4"


def test_columns_follow_channels():
    """Channel c's block is computed from channel c alone."""
    x = torch.randn(3, 2, 5, 8, 8, generator=generator(1))
    both = physics_features(x)
    first = physics_features(x[:, :1])
    second = physics_features(x[:, 1:])
    assert torch.equal(both, torch.cat([first, second], dim=1))


def test_batched_matches_one_window_at_a_time():
    x = torch.randn(4, 2, 6, 8, 12, generator=generator(2))
    batched = physics_features(x)
    single = torch.cat([physics_features(x[i : i + 1]) for i in range(len(x))])
    torch.testing.assert_close(batched, single, rtol=1e-6, atol=1e-6)


def test_deterministic():
    x = torch.randn(3, 2, 8, 16, 16, generator=generator(3))
    assert torch.equal(physics_features(x), physics_features(x.clone()))


def test_constant_field():
    x = torch.full((2, 2, 6, 8, 8), 3.7)
    feats = physics_features(x)
    assert torch.isfinite(feats).all()
    for key, expected in [
        ("tracer/mean", 3.7),
        ("tracer/std", 0.0),
        ("tracer/skew", 0.0),
        ("tracer/kurt", 0.0),
        ("tracer/abs_dt", 0.0),
        ("tracer/abs_dh", 0.0),
        ("tracer/abs_dw", 0.0),
        ("pressure/std", 0.0),
        ("pressure/kurt", 0.0),
    ]:
        got = col(feats, 2, key)
        torch.testing.assert_close(got, torch.full_like(got, expected), atol=1e-6, rtol=0)
    spec = feats[:, [i for i, n in enumerate(names_for(2)) if "/spec" in n]]
    torch.testing.assert_close(spec, torch.full_like(spec, -8.0))  # no power anywhere
    acf = feats[:, [i for i, n in enumerate(names_for(2)) if "/acf" in n]]
    assert torch.equal(acf, torch.zeros_like(acf))


@pytest.mark.parametrize("a", [-0.75, 2.0, 0.125])
def test_linear_in_time(a):
    t = torch.arange(10, dtype=torch.float32)
    x = (a * t).reshape(1, 1, 10, 1, 1).expand(2, 1, 10, 6, 7).contiguous()
    feats = physics_features(x)
    assert col(feats, 1, "tracer/abs_dt").tolist() == [abs(a), abs(a)]
    assert col(feats, 1, "tracer/abs_dh").tolist() == [0.0, 0.0]
    assert col(feats, 1, "tracer/abs_dw").tolist() == [0.0, 0.0]


def test_space_derivatives_are_not_periodic():
    """A ramp along W has |dW| = slope exactly; a wrap-around difference would add a big jump."""
    w = torch.arange(8, dtype=torch.float32)
    x = (0.5 * w).reshape(1, 1, 1, 1, 8).expand(1, 1, 4, 5, 8).contiguous()
    feats = physics_features(x)
    assert col(feats, 1, "tracer/abs_dw").item() == 0.5
    assert col(feats, 1, "tracer/abs_dh").item() == 0.0
    assert col(feats, 1, "tracer/abs_dt").item() == 0.0


def expected_bin(k: float, h: int, w: int, bins: int) -> int:
    """Bin holding radial wavenumber k when (0, k_max] is cut into `bins` equal bins."""
    k_max = math.hypot(h // 2, w // 2)
    return math.ceil(k / (k_max / bins)) - 1


@pytest.mark.parametrize(
    ("h", "w", "axis", "k", "bins"),
    [
        (16, 32, "w", 5, 8),
        (16, 32, "w", 7, 8),
        (16, 32, "h", 3, 8),
        (16, 32, "w", 12, 8),
        (16, 32, "h", 6, 4),
        (1, 16, "w", 4, 4),  # k on an edge (edges 0, 2, 4, 6, 8) belongs to the lower bin
        (1, 16, "w", 2, 4),
        (1, 16, "w", 8, 4),  # k = k_max (Nyquist) lands in the last bin
    ],
)
def test_sine_mode_peaks_in_its_bin(h, w, axis, k, bins):
    n = w if axis == "w" else h
    wave = torch.sin(2 * math.pi * k * torch.arange(n, dtype=torch.float64) / n + 0.3)
    field = wave.reshape(1, w).expand(h, w) if axis == "w" else wave.reshape(h, 1).expand(h, w)
    x = field.to(torch.float32).reshape(1, 1, 1, h, w).expand(2, 1, 5, h, w).contiguous()
    feats = physics_features(x, spectrum_bins=bins)
    names = names_for(1, spectrum_bins=bins)
    spec = feats[:, [names.index(f"tracer/spec{i}") for i in range(bins)]]
    target = expected_bin(k, h, w, bins)
    assert spec.argmax(dim=1).tolist() == [target, target]
    others = torch.cat([spec[:, :target], spec[:, target + 1 :]], dim=1)
    assert (others < -6).all()  # the other bins hold (almost) nothing
    assert (spec[:, target] > -1).all()


def test_spectrum_level_is_time_averaged_power_over_hw():
    """H=1, W=16, 8 bins: bin i holds only the mode k=i+1; A sin has power A^2 * H * W / 4."""
    t, w, k = 6, 16, 3
    amplitude = torch.arange(1, t + 1, dtype=torch.float64)
    wave = torch.sin(2 * math.pi * k * torch.arange(w, dtype=torch.float64) / w)
    x = (amplitude[:, None] * wave[None, :]).to(torch.float32).reshape(1, 1, t, 1, w)
    spec = col(physics_features(x), 1, f"tracer/spec{k - 1}")
    expected = math.log10(float(amplitude.square().mean()) * 1 * w / 4 + 1e-8)
    assert spec.item() == pytest.approx(expected, abs=1e-5)


def test_spectrum_ignores_the_frame_mean():
    x = torch.randn(2, 1, 4, 8, 8, generator=generator(4))
    shifted = x + torch.arange(4, dtype=torch.float32).reshape(1, 1, 4, 1, 1)
    names = names_for(1)
    spec = [i for i, n in enumerate(names) if "/spec" in n]
    torch.testing.assert_close(physics_features(shifted)[:, spec], physics_features(x)[:, spec])


def test_white_noise_in_time_has_no_lag_one_correlation():
    x = torch.randn(3, 1, 16, 32, 32, generator=generator(5))
    acf1 = col(physics_features(x), 1, "tracer/acf1")
    assert acf1.abs().max() < 0.05


def test_frozen_field_has_unit_autocorrelation():
    lags = (1, 2, 7, 8, 20)
    frame = torch.randn(3, 1, 1, 16, 16, generator=generator(6))
    x = frame.expand(3, 1, 8, 16, 16).contiguous()
    feats = physics_features(x, lags=lags)
    for lag in (1, 2, 7):
        got = col(feats, 1, f"tracer/acf{lag}", lags=lags)
        torch.testing.assert_close(got, torch.ones_like(got))
    for lag in (8, 20):  # lags >= T give 0
        assert col(feats, 1, f"tracer/acf{lag}", lags=lags).tolist() == [0.0, 0.0, 0.0]


def test_moments_match_numpy():
    g = generator(7)
    x = torch.randn(3, 2, 5, 8, 9, generator=g)
    x[:, 1] = torch.exp(x[:, 1])  # a skewed, heavy-tailed channel
    feats = physics_features(x)
    data = x.numpy().astype(np.float64)
    for b in range(3):
        for c, channel in enumerate(NAMES[:2]):
            v = data[b, c].ravel()
            mean = v.mean()
            d = v - mean
            m2, m3, m4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
            expected = {
                "mean": mean,
                "std": math.sqrt(m2),
                "skew": m3 / m2**1.5,
                "kurt": m4 / m2**2 - 3.0,
            }
            for name, value in expected.items():
                got = col(feats, 2, f"{channel}/{name}")[b].item()
                assert got == pytest.approx(value, rel=1e-5, abs=1e-6), (b, channel, name)
    assert col(feats, 2, "pressure/skew").min() > 1.0  # the exp channel really is skewed


def test_derivatives_match_numpy():
    x = torch.randn(2, 1, 5, 6, 7, generator=generator(8))
    feats = physics_features(x)
    data = x.numpy().astype(np.float64)[:, 0]
    for axis, name in [(1, "abs_dt"), (2, "abs_dh"), (3, "abs_dw")]:
        expected = np.abs(np.diff(data, axis=axis)).mean(axis=(1, 2, 3))
        np.testing.assert_allclose(col(feats, 1, f"tracer/{name}").numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("shape", "options"),
    [
        ((2, 1, 4, 8), {}),
        ((1, 1, 0, 4, 4), {}),
        ((1, 1, 4, 4, 4), {"lags": (0,)}),
        ((1, 1, 4, 4, 4), {"spectrum_bins": 0}),
    ],
)
def test_bad_input_raises(shape, options):
    with pytest.raises(ValueError):
        physics_features(torch.zeros(shape), **options)


def test_integer_input_raises():
    with pytest.raises(ValueError, match="floating"):
        physics_features(torch.zeros(1, 1, 2, 2, 2, dtype=torch.int64))
