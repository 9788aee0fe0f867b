"""Spectral downsampling for the periodic pseudo-spectral simulators, and its check."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def spectral_truncate(f: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Real fields (B, N1, N2, *components) on a periodic grid -> (B, n1, n2, *components),
    keeping exactly the Fourier modes |k| < n/2 of each axis and dropping every other one.

    A box average followed by subsampling folds the modes above the coarse Nyquist back onto
    the kept ones, so a solenoidal velocity stops being solenoidal; truncation aliases
    nothing and commutes with derivatives, so ∇·u = 0 (and E = sym ∇u) hold on the coarse
    grid too. The Nyquist mode of an even n is dropped as well: the coarse grid sees only its
    cosine half, and its spectral derivative is undefined. Needs N1 >= n1 and N2 >= n2.
    """
    (n1, n2), fine1 = shape, f.shape[1]
    spec = torch.fft.rfftn(f, dim=(1, 2), norm="forward")  # amplitudes independent of N
    h1, h2 = (n1 - 1) // 2, (n2 - 1) // 2  # the highest |k| each coarse axis keeps
    kept = spec.new_zeros((f.shape[0], n1, n2 // 2 + 1, *f.shape[3:]))
    kept[:, : h1 + 1, : h2 + 1] = spec[:, : h1 + 1, : h2 + 1]
    kept[:, n1 - h1 :, : h2 + 1] = spec[:, fine1 - h1 :, : h2 + 1]  # the negative kx
    return torch.fft.irfftn(kept, s=(n1, n2), dim=(1, 2), norm="forward")


def divergence_ratio(velocity: np.ndarray, lengths: tuple[float, float]) -> float:
    """RMS of ∇·u over RMS of ∂u/∂x, by FFT derivatives in float64 on the grid itself: how far
    a stored velocity (..., nx, ny, 2) on a periodic box of size `lengths` is from solenoidal.

    Round-off for a solenoidal field (for float32 data, its rounding noise differentiated);
    an aliased one shows its aliasing error. Nyquist wavenumbers count as zero (see above).
    """
    u = np.asarray(velocity, dtype=np.float64)
    kx, ky = (_wavenumbers(n, length) for n, length in zip(u.shape[-3:-1], lengths))
    u_hat = np.fft.fft2(u, axes=(-3, -2))
    du_dx = 1j * kx[:, None] * u_hat[..., 0]
    div = du_dx + 1j * ky[None, :] * u_hat[..., 1]
    return float(np.sqrt(np.sum(np.abs(div) ** 2) / np.sum(np.abs(du_dx) ** 2)))


def _wavenumbers(n: int, length: float) -> np.ndarray:
    """Angular wavenumbers of an n-point periodic axis, the Nyquist one (even n) set to zero."""
    k = 2 * np.pi / length * np.fft.fftfreq(n, 1.0 / n)
    if n % 2 == 0:
        k[n // 2] = 0.0
    return k
