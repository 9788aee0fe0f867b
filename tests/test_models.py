"""Shape, parameter-count and invariance tests of the encoders, predictor and VideoMAE parts."""

from __future__ import annotations

import pytest
import torch

from physrep.models import (
    ENCODER_PRESETS,
    VIT_PRESETS,
    ConvNeXt3D,
    ConvPredictor,
    VideoMAEDecoder,
    VideoViT,
    convnext3d,
    patchify,
    random_tube_keep,
    unpatchify,
)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny(periodic=(False, False), **kw) -> ConvNeXt3D:
    torch.manual_seed(0)
    model = ConvNeXt3D(3, **{**ENCODER_PRESETS["tiny"], **kw}, periodic=periodic)
    for m in model.modules():  # lift layer scale off 1e-6 so the blocks matter in comparisons
        if hasattr(m, "gamma"):
            m.gamma.data.fill_(0.5)
    return model


def test_paper_encoder_shape_and_size():
    model = ConvNeXt3D(4, **ENCODER_PRESETS["paper"]).eval()
    assert n_params(ConvNeXt3D(11, **ENCODER_PRESETS["paper"])) == 2_468_720
    assert 2.4e6 < n_params(model) < 2.5e6
    with torch.no_grad():
        tokens = model.encode(torch.randn(2, 4, 16, 224, 224))
    assert tokens.shape == (2, 196, 128) and model.embed_dim == 128


def test_predictor_size_and_shape():
    pred = ConvPredictor(128, 256)
    assert n_params(pred) == 801_664
    z = torch.randn(2, 128, 6, 5)
    assert pred(z).shape == z.shape
    assert ConvPredictor(32, 64, periodic=(True, True))(torch.randn(1, 32, 4, 4)).shape == (
        1, 32, 4, 4,
    )  # fmt: skip


@pytest.mark.parametrize("frames", [1, 2, 4, 8])
@pytest.mark.parametrize("size", [(8, 8), (16, 24)])
def test_any_power_of_two_frames_and_divisible_size(frames, size):
    model = tiny(frames=frames)
    x = torch.randn(2, 3, frames, *size)
    assert model(x).shape == (2, 32, size[0] // 8, size[1] // 8)
    assert model.encode(x).shape == (2, size[0] * size[1] // 64, 32)


def test_bad_sizes_raise_clear_errors():
    with pytest.raises(ValueError, match="power of two"):
        tiny(frames=6)
    with pytest.raises(ValueError, match=r"power of two <= 2\^\(stages-1\) = 8"):
        tiny(frames=16)
    model = tiny()
    with pytest.raises(ValueError, match="divisible by the total spatial stride 8"):
        model(torch.randn(1, 3, 8, 12, 16))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(1, 3, 4, 16, 16))


def test_stream_norm_off_lets_tokens_see_amplitude():
    """The paper's encoder (LayerNorm on the residual stream) maps a field and three times that
    field to the same tokens at initialisation; stream_norm=False keeps the factor."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 32, 32)
    ratios = {}
    for stream_norm in (True, False):
        model = ConvNeXt3D(3, **ENCODER_PRESETS["small8"], stream_norm=stream_norm)
        with torch.no_grad():
            ratios[stream_norm] = float(model(3 * x).norm() / model(x).norm())
    assert abs(ratios[True] - 1) < 1e-2 and ratios[False] > 2.5, ratios


def test_circular_padding_is_shift_equivariant():
    x = torch.randn(2, 3, 8, 16, 24)
    periodic = tiny(periodic=(True, True))
    base = periodic(x)
    shifted = periodic(x.roll((8, -16), dims=(-2, -1)))
    torch.testing.assert_close(shifted, base.roll((1, -2), dims=(-2, -1)), atol=1e-5, rtol=1e-5)
    zero = tiny()
    assert not torch.allclose(zero(x.roll(8, -2)), zero(x).roll(1, -2), atol=1e-3)


def test_predictor_circular_padding_is_shift_equivariant():
    pred = ConvPredictor(16, 32, periodic=(True, True))
    z = torch.randn(2, 16, 5, 6)
    torch.testing.assert_close(pred(z.roll(2, -1)), pred(z).roll(2, -1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fast_mode", [True, "auto"])
@pytest.mark.parametrize("periodic", [(False, False), (True, False)])
def test_fast_path_matches_plain_path(periodic, fast_mode, monkeypatch):
    # "auto" on a CPU tensor must take the custom backward (counted here), like fast=True
    calls = []
    custom = convnext3d._FastDepthwiseConv3d.apply

    def counted(*args):
        calls.append(1)
        return custom(*args)

    monkeypatch.setattr(convnext3d._FastDepthwiseConv3d, "apply", counted)
    fast, plain = tiny(periodic, fast=fast_mode), tiny(periodic, fast=False)
    x = torch.randn(2, 3, 8, 16, 16)
    y_fast = fast(x)
    n_custom = len(calls)
    y_plain = plain(x)
    assert n_custom > 0 and len(calls) == n_custom  # the plain model never calls it
    torch.testing.assert_close(y_fast, y_plain, atol=1e-5, rtol=1e-5)
    y_fast.square().sum().backward()
    y_plain.square().sum().backward()
    for (name, a), b in zip(fast.named_parameters(), plain.parameters()):
        scale = b.grad.abs().max().clamp_min(1e-12)
        assert ((a.grad - b.grad).abs().max() / scale) < 1e-5, name


def test_cpu_tuned_backward_is_chosen_per_device():
    assert convnext3d.uses_cpu_tuned_backward(torch.device("cpu"))
    assert not convnext3d.uses_cpu_tuned_backward(torch.device("cuda"))
    assert not convnext3d.uses_cpu_tuned_backward(torch.device("cuda", 1))
    assert not convnext3d.uses_cpu_tuned_backward(torch.device("mps"))
    with pytest.raises(ValueError, match="fast="):
        ConvNeXt3D(3, **ENCODER_PRESETS["tiny"], fast="yes")


def test_vit_small_size_and_tokens():
    vit = VideoViT(4, **VIT_PRESETS["small"])
    assert vit.num_patches == 8 * 14 * 14
    assert 21e6 < n_params(vit) < 22.5e6


def test_vit_keep_hides_dropped_tubes():
    torch.manual_seed(0)
    vit = VideoViT(3, **VIT_PRESETS["tiny"])
    x = torch.randn(2, 3, 8, 32, 32)
    assert vit.encode(x).shape == (2, 64, 48)
    keep = random_tube_keep(2, vit.grid, mask_ratio=0.75)
    assert keep.shape == (2, 4 * 4)
    dropped = torch.ones(2, vit.num_patches, dtype=torch.bool)
    dropped[torch.arange(2)[:, None], keep] = False
    noise = patchify(torch.randn_like(x), vit.tubelet, vit.patch) * dropped[..., None]
    x_changed = x + unpatchify(noise, vit.grid, vit.tubelet, vit.patch)
    assert not torch.equal(x_changed, x)
    torch.testing.assert_close(vit.encode(x_changed, keep), vit.encode(x, keep))


def test_patchify_round_trip_and_decoder_shape():
    x = torch.randn(2, 3, 8, 32, 16)
    tokens = patchify(x, tubelet=2, patch=8)
    assert tokens.shape == (2, 4 * 4 * 2, 2 * 8 * 8 * 3)
    assert torch.equal(unpatchify(tokens, (4, 4, 2), tubelet=2, patch=8), x)
    vit = VideoViT(3, **VIT_PRESETS["tiny"])
    dec = VideoMAEDecoder(vit.num_patches, vit.patch_dim, enc_dim=48, dim=32, depth=1, heads=2)
    keep = random_tube_keep(2, vit.grid, mask_ratio=0.9)
    out = dec(vit.encode(torch.randn(2, 3, 8, 32, 32), keep), keep)
    assert out.shape == (2, vit.num_patches, vit.patch_dim)
