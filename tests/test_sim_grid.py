import math

import torch

from physrep.sim.grid import box_coarsen


def test_box_coarsen_is_centred_on_the_stored_nodes_and_keeps_the_mean():
    n, k = 64, 4
    x = torch.arange(n, dtype=torch.float64) / n
    f = torch.sin(2 * math.pi * x)[None, :, None] * torch.cos(2 * math.pi * x)[None, None, :]
    f = f[..., None].expand(1, n, n, 2)  # a trailing vector axis rides along
    coarse = box_coarsen(f, k)
    assert coarse.shape == (1, n // k, n // k, 2)
    torch.testing.assert_close(coarse.mean(), f.mean(), atol=1e-15, rtol=0)
    # a smooth field's box average at node i*k differs from its value there only at O(dx²),
    # whereas an uncentred block mean would be off by O(dx)
    err = (coarse - f[:, ::k, ::k]).abs().max().item()
    assert err < 0.02
    block = f.reshape(1, n // k, k, n // k, k, 2).mean(dim=(2, 4))
    assert (block - f[:, ::k, ::k]).abs().max().item() > 5 * err
