"""Hand-made "physics features" of a simulation window: the control every probe table must carry.

Why this exists: a prototype of this benchmark found that a linear probe on plain statistics of
the raw fields (moments, mean gradients, a coarse power spectrum, temporal autocorrelation)
regressed the physical parameters as well as the learned encoders did. A learned representation
only earns credit for what it adds over these numbers, so every results table includes them as a
baseline row, computed on exactly the windows the encoders see.

`physics_features` maps a batch of windows (B, C, T, H, W), already z-scored per channel by the
dataset loader, to (B, F) with F = C * (4 + 3 + spectrum_bins + len(lags)). For each channel, in
this order:

1. moments over (T, H, W): mean, std, skewness, excess kurtosis (population, i.e. divided by N);
2. mean absolute first difference along T, H and W (non-periodic: plain differences, no wrap);
3. log10 of the time-averaged, radially binned power spectrum over (H, W);
4. temporal autocorrelation of the window at each lag (0 for lags >= T).

`feature_names` gives matching names such as "tracer/mean" or "tracer/spec3". Everything is
deterministic and computed in float64, one channel at a time so that peak memory stays a few
float64 copies of one channel; the result is float32.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-12  # added to variances, so a constant field gives skew = kurt = acf = 0, not NaN
SPECTRUM_FLOOR = 1e-8  # added to bin powers before log10; an empty bin gives log10(1e-8) = -8

MOMENT_NAMES: tuple[str, ...] = ("mean", "std", "skew", "kurt")
DERIVATIVE_NAMES: tuple[str, ...] = ("abs_dt", "abs_dh", "abs_dw")


def _check_options(lags: tuple[int, ...], spectrum_bins: int) -> None:
    """Reject lags that are not positive ints and a bin count below 1."""
    if isinstance(spectrum_bins, bool) or not isinstance(spectrum_bins, int) or spectrum_bins < 1:
        raise ValueError(f"spectrum_bins must be an int >= 1, got {spectrum_bins!r}")
    for lag in lags:
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 1:
            raise ValueError(f"lags must be ints >= 1, got {tuple(lags)!r}")


def features_per_channel(lags: tuple[int, ...] = (1, 2, 4), spectrum_bins: int = 8) -> int:
    """Number of features each channel contributes."""
    return len(MOMENT_NAMES) + len(DERIVATIVE_NAMES) + spectrum_bins + len(lags)


def feature_names(
    channel_names: list[str], lags: tuple[int, ...] = (1, 2, 4), spectrum_bins: int = 8
) -> list[str]:
    """Names of `physics_features` columns, in its order: "<channel>/<feature>"."""
    _check_options(tuple(lags), spectrum_bins)
    per_channel = [
        *MOMENT_NAMES,
        *DERIVATIVE_NAMES,
        *(f"spec{i}" for i in range(spectrum_bins)),
        *(f"acf{lag}" for lag in lags),
    ]
    return [f"{channel}/{name}" for channel in channel_names for name in per_channel]


def _spectrum_bin_matrix(h: int, w: int, bins: int, device: torch.device) -> Tensor:
    """One-hot (H * (W//2+1), bins) float64 matrix sending each rfft2 mode to its radial bin.

    Bins split (0, k_max] evenly; a mode with k in (edge_i, edge_{i+1}] goes to bin i. The DC
    mode (k = 0) belongs to no bin.
    """
    ky = torch.round(torch.fft.fftfreq(h, dtype=torch.float64, device=device) * h)
    kx = torch.round(torch.fft.rfftfreq(w, dtype=torch.float64, device=device) * w)
    k = torch.sqrt(ky[:, None].square() + kx[None, :].square()).reshape(-1)
    k_max = k.max()
    if k_max <= 0:  # a 1x1 frame has only the DC mode: every bin is empty
        return torch.zeros(k.numel(), bins, dtype=torch.float64, device=device)
    edges = torch.linspace(0.0, float(k_max), bins + 1, dtype=torch.float64, device=device)
    index = torch.bucketize(k, edges[1:], right=False).clamp_(max=bins - 1)
    one_hot = index[:, None] == torch.arange(bins, device=device)[None, :]
    return (one_hot & (k > 0)[:, None]).to(torch.float64)


def _moments(x: Tensor) -> list[Tensor]:
    """Population mean, std, skewness and excess kurtosis of (B, ...) over all but dim 0."""
    dims = tuple(range(1, x.ndim))
    mean = x.mean(dim=dims, keepdim=True)
    d = x - mean
    d2 = d.square()
    m2 = d2.mean(dim=dims)
    m3 = d.mul_(d2).mean(dim=dims)  # d now holds d**3
    m4 = d2.square_().mean(dim=dims)  # d2 now holds d**4
    var = m2 + EPS
    skew = m3 / var.pow(1.5)
    kurt = m4 / var.square() - 3.0 * (m2 / var).square()  # 0, not -3, for a constant field
    return [mean.reshape(-1), m2.sqrt(), skew, kurt]


def _mean_abs_diff(x: Tensor, dim: int) -> Tensor:
    """Mean |first difference| of (B, ...) along `dim`, no wrap; 0 when that axis has length 1."""
    if x.shape[dim] < 2:
        return x.new_zeros(x.shape[0])
    return torch.diff(x, dim=dim).abs_().mean(dim=tuple(range(1, x.ndim)))


def _log_spectrum(x: Tensor, bin_matrix: Tensor) -> Tensor:
    """log10 of the time-averaged radially binned power of (B, T, H, W) frames: (B, bins)."""
    b, _, h, w = x.shape
    frames = x - x.mean(dim=(-2, -1), keepdim=True)
    modes = torch.fft.rfft2(frames)
    del frames
    power = modes.real.square().add_(modes.imag.square())
    del modes
    power = power.mean(dim=1).reshape(b, -1) / (h * w)
    counts = bin_matrix.sum(dim=0)
    bin_mean = (power @ bin_matrix) / counts.clamp(min=1.0)  # empty bins stay at 0
    return torch.log10(bin_mean + SPECTRUM_FLOOR)


def _autocorrelation(x: Tensor, lag: int) -> Tensor:
    """Correlation over the window of x[:, t] and x[:, t + lag] for (B, T, H, W): (B,)."""
    if lag >= x.shape[1]:
        return x.new_zeros(x.shape[0])
    dims = (1, 2, 3)
    a = x[:, :-lag]
    b = x[:, lag:]
    da = a - a.mean(dim=dims, keepdim=True)
    db = b - b.mean(dim=dims, keepdim=True)
    var_a = da.square().mean(dim=dims)
    var_b = db.square().mean(dim=dims)
    cov = da.mul_(db).mean(dim=dims)
    return cov / torch.sqrt((var_a + EPS) * (var_b + EPS))


@torch.no_grad()
def physics_features(
    context: Tensor, lags: tuple[int, ...] = (1, 2, 4), spectrum_bins: int = 8
) -> Tensor:
    """Hand-made statistics of each window: (B, C, T, H, W) -> (B, F) float32.

    F = C * (4 + 3 + spectrum_bins + len(lags)); columns are grouped by channel in the order of
    `feature_names`. See the module docstring for the definitions.
    """
    if context.ndim != 5:
        raise ValueError(f"context must be (B, C, T, H, W), got shape {tuple(context.shape)}")
    if not context.is_floating_point():
        raise ValueError(f"context must be a floating-point tensor, got {context.dtype}")
    if context.numel() == 0:
        raise ValueError(f"context must not be empty, got shape {tuple(context.shape)}")
    lags = tuple(lags)
    _check_options(lags, spectrum_bins)

    _, channels, _, h, w = context.shape
    bin_matrix = _spectrum_bin_matrix(h, w, spectrum_bins, context.device)
    columns: list[Tensor] = []
    for c in range(channels):
        x = context[:, c].to(torch.float64)  # (B, T, H, W)
        columns.extend(_moments(x))
        columns.extend(_mean_abs_diff(x, dim) for dim in (1, 2, 3))
        columns.extend(_log_spectrum(x, bin_matrix).unbind(dim=1))
        columns.extend(_autocorrelation(x, lag) for lag in lags)
        del x
    return torch.stack(columns, dim=1).to(torch.float32)
