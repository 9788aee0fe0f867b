"""Self-supervised losses and collapse monitors, as pure functions on tensors.

- `vicreg`: VICReg as the paper's code computes it (weights 2/40/2, 5 row chunks), without its
  defects.
- `sigreg`: LeJEPA's sketched isotropic Gaussian regulariser (Epps–Pulley test on random 1D
  projections), with fresh directions on every call.
- `jepa_regularised_loss`: the one call the JEPA method makes: token-wise MSE invariance plus
  VICReg or SIGReg statistics over token rows, per token position, or per window.
- `masked_patch_mse`: VideoMAE's loss on masked, per-patch-normalised pixels.
- `effective_rank`, `pooled_std`: collapse monitors logged each epoch.

Losses return a dict of named scalar terms that always holds "loss"; the terms keep their
graph, so detach them before logging. Row-statistic helpers accept (..., n, D): leading dims
are independent groups (row chunks, token positions) whose statistics are averaged.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Stats = Literal["token", "position", "window"]
Kind = Literal["vicreg", "sigreg"]

STATS_MODES: tuple[str, ...] = ("token", "position", "window")
KINDS: tuple[str, ...] = ("vicreg", "sigreg")


# --------------------------------------------------------------------------------------------
# VICReg


def variance_term(z: Tensor, eps: float = 1e-4) -> Tensor:
    """mean(relu(1 − sqrt(var + eps))) over dims, with unbiased (n−1) variance over rows.

    z: (..., n, D); the mean also runs over the leading (group) dims.
    """
    if z.shape[-2] < 2:
        raise ValueError(f"variance needs at least 2 rows per group, got shape {tuple(z.shape)}")
    std = torch.sqrt(z.var(dim=-2, unbiased=True) + eps)
    return F.relu(1.0 - std).mean()


def covariance_term(z: Tensor) -> Tensor:
    """Sum of squared off-diagonal covariance entries / D (unbiased), averaged over groups.

    z: (..., n, D). Dividing by D (not D²) is VICReg's convention.
    """
    n, d = z.shape[-2], z.shape[-1]
    if n < 2:
        raise ValueError(f"covariance needs at least 2 rows per group, got shape {tuple(z.shape)}")
    zc = z - z.mean(dim=-2, keepdim=True)
    c = zc.transpose(-1, -2) @ zc / (n - 1)  # (..., D, D)
    off_diag_sq = c.square().sum(dim=(-1, -2)) - torch.diagonal(c, dim1=-2, dim2=-1).square().sum(
        dim=-1
    )
    return (off_diag_sq / d).mean()


def _vicreg_statistics(zp: Tensor, zt: Tensor, eps: float, chunks: int) -> dict[str, Tensor]:
    """Variance/covariance per branch, computed per row chunk (dim −2) and averaged."""
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1, got {chunks}")
    n = zp.shape[-2]
    if n < 2 * chunks:
        raise ValueError(f"{n} rows cannot make {chunks} chunks of at least 2 rows")
    # The paper's code splits 1568 token rows into 5, which cannot be even; tensor_split gives
    # near-equal chunks (sizes differ by at most one) and each chunk counts equally.
    parts = list(zip(zp.tensor_split(chunks, dim=-2), zt.tensor_split(chunks, dim=-2)))
    terms = {
        "var_pred": torch.stack([variance_term(p, eps) for p, _ in parts]).mean(),
        "var_target": torch.stack([variance_term(t, eps) for _, t in parts]).mean(),
        "cov_pred": torch.stack([covariance_term(p) for p, _ in parts]).mean(),
        "cov_target": torch.stack([covariance_term(t) for _, t in parts]).mean(),
    }
    return terms


def _combine_vicreg(
    invariance: Tensor, s: dict[str, Tensor], sim: float, std: float, cov: float
) -> dict[str, Tensor]:
    """total = sim·inv + std·(var_p + var_t)/2 + cov·(cov_p + cov_t).

    Variance is halved per branch, covariance is summed: this is how both the paper's code
    and the original VICReg code (Bardes et al. 2022) combine branches.
    """
    variance = (s["var_pred"] + s["var_target"]) / 2
    covariance = s["cov_pred"] + s["cov_target"]
    loss = sim * invariance + std * variance + cov * covariance
    return {"loss": loss, "invariance": invariance, "variance": variance, "covariance": covariance}


def vicreg(
    pred: Tensor,
    target: Tensor,
    sim: float = 2.0,
    std: float = 40.0,
    cov: float = 2.0,
    eps: float = 1e-4,
    chunks: int = 1,
) -> dict[str, Tensor]:
    """VICReg between rows `pred` and `target`, (N, D) (or (..., N, D): groups averaged).

    Per chunk: invariance = MSE(pred, target); variance = mean(relu(1 − sqrt(var + eps)))
    per branch; covariance = Σ off-diagonal cov² / D per branch (unbiased estimates). With
    `chunks` > 1 the rows are split into near-equal consecutive chunks (shuffle them first, as
    `jepa_regularised_loss` does) and every term is averaged over chunks, as the paper's code.
    loss = sim·inv + std·(var_p + var_t)/2 + cov·(cov_p + cov_t).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.ndim < 2:
        raise ValueError(f"vicreg expects rows (N, D), got shape {tuple(pred.shape)}")
    s = _vicreg_statistics(pred, target, eps, chunks)
    inv = torch.stack(
        [
            F.mse_loss(p, t)
            for p, t in zip(pred.tensor_split(chunks, dim=-2), target.tensor_split(chunks, dim=-2))
        ]
    ).mean()
    return {**_combine_vicreg(inv, s, sim, std, cov), **s}


# --------------------------------------------------------------------------------------------
# SIGReg (LeJEPA)


def epps_pulley_quadrature(
    t_max: float = 3.0, knots: int = 17, dtype: torch.dtype = torch.float32, device=None
) -> tuple[Tensor, Tensor]:
    """Nodes t_k on [0, t_max] and weights w_k with Σ_k w_k f(t_k) ≈ ∫_{−t_max}^{t_max} f e^{−t²/2}.

    The integrand |φ̂(t) − φ(t)|² is even in t, so LeJEPA integrates on the half line with
    doubled trapezoid weights (dt at the two ends, 2·dt inside) and folds in w(t) = e^{−t²/2}.
    """
    if knots < 2:
        raise ValueError(f"knots must be >= 2, got {knots}")
    t = torch.linspace(0.0, t_max, knots, dtype=dtype, device=device)
    dt = t_max / (knots - 1)
    w = torch.full((knots,), 2 * dt, dtype=dtype, device=device)
    w[0] = w[-1] = dt
    return t, w * torch.exp(-0.5 * t.square())


def sigreg(
    z: Tensor,
    num_slices: int = 256,
    knots: int = 17,
    t_max: float = 3.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SIGReg (Balestriero & LeCun 2025): how far the rows of z are from N(0, I), as a scalar.

    z: (N, D) rows, or (..., N, D) groups (each group tested on its own, same directions,
    averaged). Draw M = `num_slices` random unit directions a_m (fresh on every call, from
    `generator` when given, so tests can fix them; the released BCS loss reused the same
    ones every step); project x = z·a_m, standardising nothing; for each direction compute the
    Epps–Pulley statistic against N(0, 1),

        EP_m = N · ∫ |φ̂_m(t) − e^{−t²/2}|² e^{−t²/2} dt,   φ̂_m(t) = (1/N) Σ_n exp(i t x_n),
        |φ̂ − φ|² = (mean cos(t x) − e^{−t²/2})² + (mean sin(t x))²,

    by trapezoid quadrature on `knots` nodes over [−t_max, t_max] (see
    `epps_pulley_quadrature`); return the mean over directions (and groups). This is the
    `lejepa` package's `SlicingUnivariateTest(EppsPulley())` with its defaults (17 knots,
    t_max 3, mean reduction). For i.i.d. N(0, 1) samples E|φ̂ − φ|² = (1 − e^{−t²})/N exactly,
    so the N scaling makes the expected value independent of N: Σ_k w_k (1 − e^{−t_k²}) ≈ 1.06,
    not 0; collapsed or badly scaled embeddings grow ∝ N.
    """
    if z.ndim < 2 or z.shape[-2] < 1:
        raise ValueError(f"sigreg expects rows (N, D), got shape {tuple(z.shape)}")
    n, d = z.shape[-2], z.shape[-1]
    with torch.no_grad():
        gen_device = generator.device if generator is not None else z.device
        a = torch.randn(d, num_slices, generator=generator, device=gen_device, dtype=z.dtype)
        a = (a / a.norm(dim=0, keepdim=True)).to(z.device)
    t, w = epps_pulley_quadrature(t_max, knots, dtype=z.dtype, device=z.device)
    xt = (z @ a).unsqueeze(-1) * t  # (..., N, M, K)
    phi = torch.exp(-0.5 * t.square())
    err = (xt.cos().mean(dim=-3) - phi).square() + xt.sin().mean(dim=-3).square()  # (..., M, K)
    return (n * (err @ w)).mean()


# --------------------------------------------------------------------------------------------
# Arranging embeddings for the statistics modes


def as_tokens(x: Tensor) -> Tensor:
    """(B, N, D) tokens from (B, N, D) as is, or from a channel-first map (B, D, *spatial)."""
    if x.ndim == 3:
        return x
    if x.ndim >= 4:
        return x.flatten(2).transpose(1, 2)
    raise ValueError(f"expected (B, N, D) tokens or a (B, D, h, w) map, got {tuple(x.shape)}")


def arrange_rows(tokens: Tensor, stats: Stats) -> Tensor:
    """Rows on which the variance/covariance (or SIGReg) statistics are taken.

    - "token": every token of every window is a row, (B·N, D) — the paper. Lets an encoder
      meet the variance target by encoding token position (docs/decisions.md).
    - "position": (N, B, D), one group per token position; statistics run across the batch
      at each position and are averaged, so a per-position constant cannot satisfy them.
    - "window": the mean-pooled embedding of each window is a row, (B, D).
    """
    tokens = as_tokens(tokens)
    if stats == "token":
        return tokens.reshape(-1, tokens.shape[-1])
    if stats == "position":
        return tokens.transpose(0, 1)
    if stats == "window":
        return tokens.mean(dim=1)
    raise ValueError(f"stats must be one of {STATS_MODES}, got {stats!r}")


def jepa_regularised_loss(
    pred_tokens: Tensor,
    target_tokens: Tensor,
    kind: Kind = "vicreg",
    stats: Stats = "token",
    *,
    sim: float | None = None,
    std: float = 40.0,
    cov: float = 2.0,
    eps: float = 1e-4,
    chunks: int = 1,
    sigreg_weight: float = 0.05,
    num_slices: int = 256,
    knots: int = 17,
    t_max: float = 3.0,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """The JEPA objective: token-wise MSE invariance + a regulariser on both branches.

    pred_tokens, target_tokens: (B, N, D) tokens or (B, D, h, w) maps. `stats` picks the
    rows (see `arrange_rows`). `kind`:
    - "vicreg": loss = sim·inv + std·(var_p + var_t)/2 + cov·(cov_p + cov_t); sim defaults
      to the paper's 2. With `chunks` > 1 ("token"/"window" only) rows are shuffled with one
      permutation shared by both branches (from `generator`) and split, as the paper's code.
    - "sigreg": loss = sim·inv + sigreg_weight·(SIGReg_p + SIGReg_t)/2, with fresh slices per
      call; sim defaults to 1 − sigreg_weight, LeJEPA's (1 − λ)·pred + λ·SIGReg form.
    """
    pred_tokens, target_tokens = as_tokens(pred_tokens), as_tokens(target_tokens)
    if pred_tokens.shape != target_tokens.shape:
        raise ValueError(
            f"pred {tuple(pred_tokens.shape)} and target {tuple(target_tokens.shape)} differ"
        )
    invariance = F.mse_loss(pred_tokens, target_tokens)
    zp, zt = arrange_rows(pred_tokens, stats), arrange_rows(target_tokens, stats)

    if kind == "vicreg":
        if chunks > 1:
            if stats == "position":
                raise ValueError("chunks > 1 is only meaningful for 'token' or 'window' stats")
            device = generator.device if generator is not None else torch.device("cpu")
            perm = torch.randperm(zp.shape[0], generator=generator, device=device).to(zp.device)
            zp, zt = zp[perm], zt[perm]
        s = _vicreg_statistics(zp, zt, eps, chunks)
        return {**_combine_vicreg(invariance, s, 2.0 if sim is None else sim, std, cov), **s}

    if kind == "sigreg":
        if chunks != 1:
            raise ValueError("chunks applies to VICReg only")
        sim = 1.0 - sigreg_weight if sim is None else sim
        kw = {"num_slices": num_slices, "knots": knots, "t_max": t_max, "generator": generator}
        sp, st = sigreg(zp, **kw), sigreg(zt, **kw)
        reg = (sp + st) / 2
        loss = sim * invariance + sigreg_weight * reg
        return {
            "loss": loss,
            "invariance": invariance,
            "sigreg": reg,
            "sigreg_pred": sp,
            "sigreg_target": st,
        }

    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


# --------------------------------------------------------------------------------------------
# VideoMAE


def masked_patch_mse(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    normalize: bool = True,
    eps: float = 1e-6,
    channels: int = 1,
) -> dict[str, Tensor]:
    """VideoMAE's loss: MSE between predicted and target pixels of the masked patches only.

    pred, target: (B, N, P) pixels per patch; mask: (B, N) bool, True where masked. With
    `normalize`, each target patch becomes (x − mean) / (std + eps) with its own mean and
    unbiased std, as VideoMAE's normalised-pixel target, so the loss ignores each patch's
    offset and scale. With `channels` = C > 1, P is laid out as (pixels, C), channel fastest
    (VideoMAE's '(p0 p1 p2 c)'), and each channel of a patch is normalised on its own — fields
    with different units then weigh alike.
    """
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)}: need (B,N,P)")
    if mask.shape != pred.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool of shape {tuple(pred.shape[:2])}")
    if not mask.any():
        raise ValueError("no patch is masked: the loss would be empty")
    if normalize:
        b, n, p = target.shape
        if p % channels:
            raise ValueError(f"patch size {p} is not a multiple of channels={channels}")
        x = target.reshape(b, n, p // channels, channels)
        x = (x - x.mean(dim=-2, keepdim=True)) / (x.std(dim=-2, keepdim=True) + eps)
        target = x.reshape(b, n, p)
    per_patch = (pred - target).square().mean(dim=-1)  # (B, N)
    loss = per_patch[mask].mean()
    return {"loss": loss, "masked_fraction": mask.float().mean()}


def normalised_mse(pred: Tensor, target: Tensor, eps: float) -> Tensor:
    """MSE per sample and channel over the remaining axes ((H, W) for a frame, (T, H, W) for a
    rollout), divided by the target's variance there plus `eps`, then averaged (MPP's
    normalised MSE): every field counts alike whatever its amplitude; 1.0 is predicting the
    target's mean."""
    dims = tuple(range(2, target.ndim))
    err = (pred - target).square().mean(dim=dims)
    return (err / (target.var(dim=dims, correction=0) + eps)).mean()


# --------------------------------------------------------------------------------------------
# Collapse monitors


@torch.no_grad()
def effective_rank(z: Tensor, eps: float = 1e-12) -> Tensor:
    """How many directions rows z (N, D) spread over: exp(entropy of p = σ / Σσ), σ the
    singular values of z with its column means removed; 1 = a line, min(N, D) = even spread.

    physrep's one definition (the training monitor and the benchmark's diagnostics both call
    this): RankMe's (Garrido et al. 2023, Roy & Vetterli's effective rank on embeddings), on
    singular values, not their squares; centred, so a large shared mean does not read as
    rank 1. Rows with no variation at all give 0.
    """
    if z.ndim != 2:
        raise ValueError(f"effective_rank expects rows (N, D), got {tuple(z.shape)}")
    z = z.double()
    s = torch.linalg.svdvals(z - z.mean(dim=0, keepdim=True))
    if s.sum() <= eps:
        return torch.zeros((), dtype=torch.float64)
    p = s / s.sum()
    p = p[p > 0]
    return torch.exp(-(p * torch.log(p)).sum())


@torch.no_grad()
def pooled_std(tokens: Tensor) -> Tensor:
    """Std across windows of the mean-pooled embedding, averaged over dims.

    Catches the positional shortcut: tokens can keep std ≈ 1 while this is ≈ 0.
    tokens: (B, N, D) or (B, D, h, w); needs B >= 2.
    """
    pooled = arrange_rows(tokens, "window")
    if pooled.shape[0] < 2:
        raise ValueError("pooled_std needs at least 2 windows")
    return pooled.std(dim=0, unbiased=True).mean()


__all__ = [
    "KINDS",
    "STATS_MODES",
    "arrange_rows",
    "as_tokens",
    "covariance_term",
    "effective_rank",
    "epps_pulley_quadrature",
    "jepa_regularised_loss",
    "masked_patch_mse",
    "normalised_mse",
    "pooled_std",
    "sigreg",
    "variance_term",
    "vicreg",
]
