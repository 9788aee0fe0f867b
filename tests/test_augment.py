"""Augmentation is a symmetry: a transformed stored window equals the stored window of the
transformed simulation, field by field and component by component; windows apply one
transform to context and target; transforms the grid cannot hold are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physrep.data.augment import SymmetryGroup
from physrep.data.wellformat import Field
from physrep.data.windows import WellWindows, WindowConfig
from physrep.errors import ConfigError
from physrep.sim.active_matter import ActiveNematicSolver, initial_state
from physrep.sim.shear_flow import RANDOM_DEFAULTS, ShearFlowSolver, random_initial_fields, run

PERIODIC = [(2, 2), (2, 2)]
SHEAR_FIELDS = [Field("tracer", 0), Field("pressure", 0), Field("velocity", 1)]


def shear_flow_frames(ic: torch.Tensor, shape) -> torch.Tensor:
    """Stored frames (T, H, W, 4) of the flow from an initial (H', W', [tracer, u, v])."""
    solver = ShearFlowSolver(*ic.shape[:2], nu=1e-3, diffusivity=1e-3)
    uv = ic[..., 1:].permute(2, 0, 1)[None]
    flow = solver.from_velocity(uv, ic[..., 0][None])
    out = run(solver, flow, np.array([0.0, 0.05, 0.1]), shape)
    frames = [out["tracer"][..., None], out["pressure"][..., None], out["velocity"]]
    return torch.from_numpy(np.concatenate(frames, axis=-1)[0])


def test_shear_flow_shifts_and_reflections_commute_with_the_simulation():
    fine, stored = (32, 64), (16, 32)
    u, v, s = random_initial_fields(4, *fine, RANDOM_DEFAULTS)
    ic = torch.from_numpy(np.stack([s, u, v], axis=-1))
    ic_fields = [Field("tracer", 0), Field("velocity", 1)]
    names = ["shift", "flip_x", "flip_y"]
    on_fine = SymmetryGroup(names, ic_fields, ["x", "y"], PERIODIC, fine)
    on_stored = SymmetryGroup(names, SHEAR_FIELDS, ["x", "y"], PERIODIC, stored)
    assert len(on_stored.elements) == 4  # identity, two reflections, the half turn
    reference = shear_flow_frames(ic, stored)
    for index in range(4):
        shift = [3, 5]  # stored cells; the simulation grid is twice as fine
        moved = on_fine.apply(ic, index, [2 * k for k in shift])
        expected = shear_flow_frames(moved, stored)
        got = on_stored.apply(reference, index, shift)
        scale = reference.abs().amax(dim=(0, 1, 2))
        error = ((got - expected).abs().amax(dim=(0, 1, 2)) / scale).max()
        assert error < 1e-10, (on_stored.elements[index], float(error))
        if index:  # and the transform did something
            assert (got - reference).abs().max() > 1e-3


def test_active_matter_square_group_commutes_with_the_simulation():
    n = 16
    fields = [Field("concentration", 0), Field("velocity", 1)]
    fields += [Field("D", 2, symmetric=True), Field("E", 2, symmetric=True)]
    state_fields = [Field("concentration", 0), Field("D", 2, symmetric=True)]
    names = ["shift", "flip_x", "flip_y", "rot90"]
    on_state = SymmetryGroup(names, state_fields, ["x", "y"], PERIODIC, (n, n))
    on_stored = SymmetryGroup(names, fields, ["x", "y"], PERIODIC, (n, n))
    assert len(on_stored.elements) == 8

    def frames(state: torch.Tensor) -> torch.Tensor:
        solver = ActiveNematicSolver(n, alpha=-3.0, zeta=9.0)
        c, dxx, dxy, _, dyy = state.unbind(-1)
        solver.set_state(c[None], dxx[None], dxy[None], dyy[None])
        solver.advance(0.01, 5)
        f = solver.fields()
        parts = [
            f["concentration"][..., None],
            f["velocity"],
            f["D"].flatten(-2),
            f["E"].flatten(-2),
        ]
        return torch.cat(parts, dim=-1)[0]

    c, dxx, dxy, dyy = (torch.from_numpy(a) for a in initial_state(n, seed=2))
    state = torch.stack([c, dxx, dxy, dxy, dyy], dim=-1)
    reference = frames(state)
    for index in range(8):
        shift = [index, 2 * index % n]
        expected = frames(on_state.apply(state, index, shift))
        got = on_stored.apply(reference, index, shift)
        scale = reference.abs().amax(dim=(0, 1))
        error = ((got - expected).abs().amax(dim=(0, 1)) / scale).max()
        assert error < 1e-9, (on_stored.elements[index], float(error))


def test_windows_apply_one_transform_to_context_and_target(synthetic_dataset):
    root = synthetic_dataset("shear_flow")
    base = WindowConfig(frames=4, stride=4, normalization="none")
    plain = WellWindows(root, "train", base)
    cfg = WindowConfig(frames=4, stride=4, normalization="none", augment=["shift", "flip_x"])
    augmented = WellWindows(root, "train", cfg)
    group = augmented.symmetries
    torch.manual_seed(0)
    matched = 0
    for i in (0, 5, 9):
        item, ref = augmented[i], plain[i]
        raw = {k: ref[k].permute(1, 2, 3, 0) for k in ("context", "target")}  # (T, H, W, C)
        candidates = [
            (e, (a, b))
            for e in range(len(group.elements))
            for a in range(16)
            for b in range(16)
            if torch.equal(
                group.apply(raw["context"], e, [a, b]).permute(3, 0, 1, 2), item["context"]
            )
        ]
        assert candidates, i  # the window is a transform of the stored one
        e, shift = candidates[0]
        target = group.apply(raw["target"], e, list(shift)).permute(3, 0, 1, 2)
        assert torch.equal(target, item["target"])  # the same transform
        matched += (e, shift) != (0, (0, 0))
    assert matched >= 2
    # evaluation windows of the same config are never augmented
    assert WellWindows(root, "valid", cfg.clean()).symmetries is None


def test_a_cropped_window_is_a_crop_of_the_transformed_field(synthetic_dataset):
    """Transforms act on the whole stored field, then the crop: a cropped augmented window
    is a window of a transformed solution, so crops need not restrict the group."""
    root = synthetic_dataset("shear_flow")
    full = WellWindows(root, "train", WindowConfig(frames=4, stride=4, normalization="none"))
    cfg = WindowConfig(
        frames=4, stride=4, normalization="none", crop=[[2, 10], None], augment=["shift", "flip_x"]
    )
    augmented = WellWindows(root, "train", cfg)
    group = augmented.symmetries
    torch.manual_seed(1)
    moved = 0
    for i in (0, 5, 9):
        item, raw = augmented[i]["context"], full[i]["context"].permute(1, 2, 3, 0)
        assert item.shape[-2] == 8
        moved += not torch.equal(item, full[i]["context"][..., 2:10, :])
        assert any(
            torch.equal(group.apply(raw, e, [a, b]).permute(3, 0, 1, 2)[..., 2:10, :], item)
            for e in range(len(group.elements))
            for a in range(raw.shape[1])
            for b in range(raw.shape[2])
        ), i
    assert moved >= 2


def test_transforms_the_grid_cannot_hold_are_refused():
    fields = SHEAR_FIELDS
    with pytest.raises(ConfigError, match="'rot90' needs a square grid"):
        SymmetryGroup(["rot90"], fields, ["x", "y"], PERIODIC, (16, 32))
    with pytest.raises(ConfigError, match="'shift' needs a periodic axis"):
        SymmetryGroup(["shift"], fields, ["x", "y"], [(0, 0), (0, 0)], (16, 16))
    walls = [(2, 2), (0, 0)]
    group = SymmetryGroup(["shift", "flip_x"], fields, ["x", "y"], walls, (16, 8))
    assert group.periodic == [True, False] and len(group.elements) == 2
    with pytest.raises(ConfigError, match="'rot90' needs both axes alike"):
        SymmetryGroup(["rot90"], fields, ["x", "y"], walls, (8, 8))
    with pytest.raises(ConfigError, match="augment"):
        WindowConfig(augment=["mirror"]).validate()
