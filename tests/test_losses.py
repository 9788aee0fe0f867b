"""The losses equal their formulas on hand-checked cases, and have the invariances they claim."""

from __future__ import annotations

import math

import pytest
import torch

from physrep.losses import (
    arrange_rows,
    covariance_term,
    effective_rank,
    epps_pulley_quadrature,
    jepa_regularised_loss,
    masked_patch_mse,
    pooled_std,
    sigreg,
    variance_term,
    vicreg,
)

# z = 0.5 · [[0, 0], [1, 1], [2, 0], [3, 3]]
# column 0: 0, .5, 1, 1.5  mean .75  deviations ∓.75, ∓.25  Σd² = 1.25   var = 1.25/3 = 5/12
# column 1: 0, .5, 0, 1.5  mean .5   deviations −.5, 0, −.5, 1  Σd² = 1.5  var = 1.5/3 = .5
# cross:   (−.75)(−.5) + (−.25)(0) + (.25)(−.5) + (.75)(1) = .375 − .125 + .75 = 1  cov = 1/3
Z = 0.5 * torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [3.0, 3.0]], dtype=torch.float64)
# variance = ((1 − √(5/12 + 1e-4)) + (1 − √(.5 + 1e-4))) / 2 = (.3544253 + .2928225) / 2
VAR_Z = 0.32362392
# covariance = (off-diagonal² summed: 2 · (1/3)²) / D = (2/9) / 2 = 1/9
COV_Z = 1 / 9


def hadamard(n: int) -> torch.Tensor:
    """Sylvester Hadamard matrix: ±1 entries, orthogonal columns."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def decorrelated(n: int = 8) -> torch.Tensor:
    """(n, n−1) rows with zero mean, zero covariance and unbiased variance exactly 1."""
    h = hadamard(n)[:, 1:]  # drop the constant column: the rest have zero mean
    return h * ((n - 1) / n) ** 0.5  # Σx² = n → var = n/(n−1); rescale to 1


# ------------------------------------------------------------------------------ VICReg


def test_variance_and_covariance_equal_hand_computed_values():
    assert variance_term(Z).item() == pytest.approx(VAR_Z, abs=1e-7)
    assert covariance_term(Z).item() == pytest.approx(COV_Z, abs=1e-12)


def test_vicreg_total_equals_hand_computed_value():
    target = torch.zeros_like(Z)  # collapsed: variance 1 − √1e-4 = .99, covariance 0
    out = vicreg(Z, target)
    # invariance = mean(z²) = (0 + 0 + .25 + .25 + 1 + 0 + 2.25 + 2.25) / 8 = .75
    assert out["invariance"].item() == pytest.approx(0.75)
    assert out["var_target"].item() == pytest.approx(0.99)
    assert out["cov_target"].item() == 0.0
    # 2·.75 + 40·(.32362392 + .99)/2 + 2·(1/9 + 0) = 1.5 + 26.2724784 + .2222222
    assert out["loss"].item() == pytest.approx(27.9947006, abs=1e-6)


def test_vicreg_matches_independent_formula_on_random_rows():
    g = torch.Generator().manual_seed(0)
    p, t = torch.randn(50, 6, generator=g) * 0.7, torch.randn(50, 6, generator=g) * 0.7

    def reference(x):
        var = torch.relu(1 - torch.sqrt(torch.var(x, dim=0) + 1e-4)).mean()
        c = torch.cov(x.T)
        return var, (c.square().sum() - c.diagonal().square().sum()) / x.shape[1]

    (vp, cp), (vt, ct) = reference(p), reference(t)
    expected = 2 * ((p - t) ** 2).mean() + 40 * (vp + vt) / 2 + 2 * (cp + ct)
    assert vicreg(p, t)["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_chunks_average_per_chunk_vicreg():
    g = torch.Generator().manual_seed(1)
    p, t = torch.randn(10, 3, generator=g), torch.randn(10, 3, generator=g)
    halves = [vicreg(p[:5], t[:5]), vicreg(p[5:], t[5:])]
    got = vicreg(p, t, chunks=2)
    for key in ("loss", "invariance", "variance", "covariance"):
        manual = (halves[0][key] + halves[1][key]) / 2
        assert got[key].item() == pytest.approx(manual.item(), rel=1e-6)
    assert vicreg(p, t, chunks=1)["loss"].item() != pytest.approx(got["loss"].item())


def test_hinge_inactive_when_std_at_least_one():
    z = 2 * decorrelated(8)  # std 2 in every dim
    assert variance_term(z).item() == 0.0
    assert variance_term(decorrelated(8)).item() == 0.0  # std √(1 + eps) > 1


def test_covariance_zero_for_decorrelated_data_and_permutation_invariant():
    z = decorrelated(8)
    assert covariance_term(z).item() == pytest.approx(0.0, abs=1e-12)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, 5, generator=g)
    perm = torch.randperm(32, generator=g)
    assert covariance_term(x[perm]).item() == pytest.approx(covariance_term(x).item(), rel=1e-6)
    assert covariance_term(x).item() > 0


def test_variance_positive_for_collapsed_embeddings():
    z = torch.ones(16, 4) * 3.0
    assert variance_term(z).item() == pytest.approx(1 - 1e-2)  # 1 − √(0 + 1e-4)


# ------------------------------------------------------------ statistics modes / JEPA


def test_arrange_rows_shapes_and_map_layout():
    g = torch.Generator().manual_seed(3)
    fmap = torch.randn(2, 4, 3, 5, generator=g)  # (B, D, h, w)
    tokens = fmap.flatten(2).transpose(1, 2)  # (B, 15, D)
    assert torch.equal(arrange_rows(fmap, "token"), tokens.reshape(30, 4))
    assert arrange_rows(fmap, "position").shape == (15, 2, 4)
    assert torch.allclose(arrange_rows(fmap, "window"), tokens.mean(1))
    with pytest.raises(ValueError):
        arrange_rows(tokens, "pixel")  # type: ignore[arg-type]


def test_position_stats_are_blind_to_a_per_position_offset():
    """The positional shortcut: a constant vector per token position looks like variance to
    token-row statistics, but is invisible to statistics taken per position."""
    g = torch.Generator().manual_seed(4)
    tokens = 0.3 * torch.randn(6, 5, 3, generator=g)  # (B, N, D), weak per-window signal
    offset = 4 * torch.randn(1, 5, 3, generator=g)  # one vector per position, same in every window
    before = jepa_regularised_loss(tokens, tokens, stats="position")
    after = jepa_regularised_loss(tokens + offset, tokens + offset, stats="position")
    for key in ("variance", "covariance"):
        assert after[key].item() == pytest.approx(before[key].item(), rel=1e-5, abs=1e-7)
    tok_before = jepa_regularised_loss(tokens, tokens, stats="token")
    tok_after = jepa_regularised_loss(tokens + offset, tokens + offset, stats="token")
    assert tok_after["variance"].item() < tok_before["variance"].item() - 0.1
    assert tok_after["covariance"].item() != pytest.approx(tok_before["covariance"].item())
    # Pure position code, identical across windows: token rows see no collapse at all.
    code = offset.expand(6, 5, 3)
    assert jepa_regularised_loss(code, code, stats="token")["variance"].item() < 0.5
    assert jepa_regularised_loss(code, code, stats="position")["variance"].item() == pytest.approx(
        0.99
    )


def test_jepa_vicreg_token_mode_equals_vicreg_on_token_rows():
    g = torch.Generator().manual_seed(5)
    p, t = torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 4, 2, 2, generator=g)  # maps
    got = jepa_regularised_loss(p, t, kind="vicreg", stats="token")
    rows = vicreg(arrange_rows(p, "token"), arrange_rows(t, "token"))
    assert got["loss"].item() == pytest.approx(rows["loss"].item(), rel=1e-6)
    # Window mode: invariance stays token-wise, statistics come from the pooled rows.
    win = jepa_regularised_loss(p, t, stats="window")
    assert win["invariance"].item() == pytest.approx(got["invariance"].item())
    pooled = vicreg(arrange_rows(p, "window"), arrange_rows(t, "window"))
    assert win["variance"].item() == pytest.approx(pooled["variance"].item(), rel=1e-6)


def test_jepa_chunks_shuffle_is_shared_and_seeded():
    g = torch.Generator().manual_seed(6)
    p, t = torch.randn(4, 10, 3, generator=g), torch.randn(4, 10, 3, generator=g)
    a = jepa_regularised_loss(p, t, chunks=5, generator=torch.Generator().manual_seed(0))
    b = jepa_regularised_loss(p, t, chunks=5, generator=torch.Generator().manual_seed(0))
    assert a["loss"].item() == b["loss"].item()
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    manual = vicreg(p.reshape(40, 3)[perm], t.reshape(40, 3)[perm], chunks=5)
    assert a["variance"].item() == pytest.approx(manual["variance"].item(), rel=1e-6)
    with pytest.raises(ValueError):
        jepa_regularised_loss(p, t, stats="position", chunks=2)


def test_jepa_sigreg_kind_combines_terms():
    g = torch.Generator().manual_seed(7)
    p, t = torch.randn(8, 6, 4, generator=g), torch.randn(8, 6, 4, generator=g)
    for stats in ("token", "position", "window"):
        out = jepa_regularised_loss(
            p, t, kind="sigreg", stats=stats, sigreg_weight=0.1, num_slices=32
        )
        expected = 0.9 * out["invariance"] + 0.1 * (out["sigreg_pred"] + out["sigreg_target"]) / 2
        assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError):
        jepa_regularised_loss(p, t, kind="barlow")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ SIGReg

# For i.i.d. N(0, 1) projections E|φ̂(t) − φ(t)|² = (1 − e^{−t²})/N exactly, so the N-scaled
# statistic has expectation Σ_k w_k (1 − e^{−t_k²}) ≈ 1.05 whatever N is (not 0). Its spread
# per direction is O(1) and the mean over 256 directions is much tighter (0.9–1.25 over seeds
# at N = 2048, D = 64), so < 2 is a wide margin; any real departure grows ∝ N (hundreds here).
T, W = epps_pulley_quadrature()
NULL_MEAN = float((W * (1 - torch.exp(-(T**2)))).sum())


def test_sigreg_small_for_gaussian_large_for_collapsed_or_anisotropic():
    assert abs(NULL_MEAN - 1.05) < 0.01
    g = torch.Generator().manual_seed(8)
    z = torch.randn(2048, 64, generator=g)
    fixed = torch.Generator().manual_seed(0)
    value = sigreg(z, generator=fixed).item()
    assert 0.5 < value < 2.0
    assert sigreg(torch.zeros(2048, 64)).item() > 100 * NULL_MEAN / 2
    assert sigreg(z * torch.linspace(0.05, 3.0, 64)).item() > 50 * NULL_MEAN
    assert sigreg(3.0 * z).item() > 100 * NULL_MEAN
    assert sigreg(z + 1.0).item() > 100 * NULL_MEAN  # a shared offset is not N(0, I) either


def test_sigreg_mean_over_gaussian_samples_is_the_null_expectation():
    """Checks the N scaling: the average over fresh N(0, I) samples tends to NULL_MEAN for any N."""
    g = torch.Generator().manual_seed(15)
    for n in (64, 1024):
        values = [sigreg(torch.randn(n, 16, generator=g), 64, generator=g) for _ in range(20)]
        assert torch.stack(values).mean().item() == pytest.approx(NULL_MEAN, abs=0.15)


def test_sigreg_matches_direct_quadrature_of_the_formula():
    g = torch.Generator().manual_seed(9)
    z = torch.randn(100, 5, generator=g, dtype=torch.float64) * 1.3
    got = sigreg(z, num_slices=3, generator=torch.Generator().manual_seed(1))
    a = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = a / a.norm(dim=0)
    x = z @ a  # (N, 3)
    t = torch.linspace(-3, 3, 33, dtype=torch.float64)  # full line, plain trapezoid: same nodes
    ecf = torch.exp(1j * x.unsqueeze(-1) * t).mean(0)  # (3, 33)
    integrand = (ecf - torch.exp(-(t**2) / 2)).abs() ** 2 * torch.exp(-(t**2) / 2)
    expected = (100 * torch.trapezoid(integrand, t, dim=-1)).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)


def test_sigreg_slices_seeded_or_fresh():
    z = torch.randn(256, 16)
    a = sigreg(z, generator=torch.Generator().manual_seed(3))
    b = sigreg(z, generator=torch.Generator().manual_seed(3))
    assert a.item() == b.item()
    torch.manual_seed(0)
    values = {sigreg(z, num_slices=8).item() for _ in range(3)}
    assert len(values) == 3  # fresh directions per call, not the released code's frozen ones


def test_sigreg_gradient_flows():
    z = (0.5 * torch.randn(128, 8)).requires_grad_()
    sigreg(z, num_slices=16).backward()
    assert z.grad is not None
    assert torch.isfinite(z.grad).all()
    assert z.grad.abs().sum() > 0


def test_sigreg_groups_are_tested_separately():
    g = torch.Generator().manual_seed(10)
    z = torch.randn(2, 64, 4, generator=g, dtype=torch.float64)
    both = sigreg(z, num_slices=4, generator=torch.Generator().manual_seed(0))
    each = [sigreg(z[i], num_slices=4, generator=torch.Generator().manual_seed(0)) for i in (0, 1)]
    assert both.item() == pytest.approx(((each[0] + each[1]) / 2).item(), rel=1e-10)


# ------------------------------------------------------------------------------ VideoMAE


def test_masked_patch_mse_hand_case():
    target = torch.tensor([[[1.0, 3.0], [5.0, 5.0]]])  # (B=1, N=2, P=2)
    pred = torch.zeros_like(target)
    mask = torch.tensor([[True, False]])
    # raw: masked patch only, ((0 − 1)² + (0 − 3)²) / 2 = 5
    assert masked_patch_mse(pred, target, mask, normalize=False)["loss"].item() == 5.0
    # normalised: mean 2, unbiased std √((1 + 1)/1) = √2 → [−1/√2, 1/√2]; error (½ + ½)/2 = ½
    got = masked_patch_mse(pred, target, mask)["loss"].item()
    assert got == pytest.approx(0.5, rel=1e-5)


def test_masked_patch_mse_ignores_unmasked_predictions():
    g = torch.Generator().manual_seed(11)
    pred, target = torch.randn(2, 6, 8, generator=g), torch.randn(2, 6, 8, generator=g)
    mask = torch.rand(2, 6, generator=g) > 0.5
    mask[0, 0] = True
    other = pred.clone()
    other[~mask] = 100.0
    assert masked_patch_mse(other, target, mask)["loss"].item() == pytest.approx(
        masked_patch_mse(pred, target, mask)["loss"].item()
    )
    other[0, 0] += 1.0  # a masked patch does count
    assert masked_patch_mse(other, target, mask)["loss"].item() != pytest.approx(
        masked_patch_mse(pred, target, mask)["loss"].item()
    )


def test_masked_patch_mse_invariant_to_affine_change_of_a_target_patch():
    g = torch.Generator().manual_seed(12)
    pred, target = torch.randn(1, 4, 8, generator=g), torch.randn(1, 4, 8, generator=g)
    mask = torch.ones(1, 4, dtype=torch.bool)
    changed = target.clone()
    changed[0, 1] = 7.0 * changed[0, 1] - 3.0
    base = masked_patch_mse(pred, target, mask)["loss"].item()
    assert masked_patch_mse(pred, changed, mask)["loss"].item() == pytest.approx(base, rel=1e-5)
    assert masked_patch_mse(pred, changed, mask, normalize=False)["loss"].item() > base + 1


def test_masked_patch_mse_normalises_each_channel_of_a_patch():
    g = torch.Generator().manual_seed(13)
    pred, target = torch.randn(1, 3, 8, generator=g), torch.randn(1, 3, 8, generator=g)
    mask = torch.ones(1, 3, dtype=torch.bool)
    changed = target.clone()
    changed[..., 0::2] = 50.0 * changed[..., 0::2] + 10.0  # channel 0 of (pixels, 2 channels)
    base = masked_patch_mse(pred, target, mask, channels=2)["loss"].item()
    assert masked_patch_mse(pred, changed, mask, channels=2)["loss"].item() == pytest.approx(
        base, rel=1e-5
    )
    assert masked_patch_mse(pred, changed, mask, channels=1)["loss"].item() != pytest.approx(
        masked_patch_mse(pred, target, mask, channels=1)["loss"].item(), rel=1e-3
    )


# ------------------------------------------------------------------------------ monitors


def test_effective_rank_extremes():
    assert effective_rank(decorrelated(8)).item() == pytest.approx(7.0, rel=1e-6)
    rank_one = torch.outer(torch.arange(10.0), torch.tensor([1.0, 2.0, 3.0]))
    assert effective_rank(rank_one).item() == pytest.approx(1.0, rel=1e-6)
    assert effective_rank(torch.ones(5, 3)).item() == 0.0  # no variation at all


def test_effective_rank_is_on_singular_values_of_the_centred_rows():
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])  # σ = √2, 2√2
    expected = math.exp(math.log(3) - 2 / 3 * math.log(2))  # exp entropy of (1/3, 2/3)
    assert effective_rank(z).item() == pytest.approx(expected)
    assert effective_rank(z + 100.0).item() == pytest.approx(expected)  # a shared mean: no rank


def test_pooled_std_sees_the_positional_shortcut():
    g = torch.Generator().manual_seed(14)
    code = 3 * torch.randn(1, 20, 4, generator=g).expand(8, 20, 4)  # same in every window
    assert pooled_std(code).item() == pytest.approx(0.0, abs=1e-6)
    assert variance_term(arrange_rows(code, "token")).item() < 0.5  # tokens look healthy
    windows = torch.randn(8, 20, 4, generator=g) + torch.randn(8, 1, 4, generator=g)
    assert pooled_std(windows).item() > 0.5
