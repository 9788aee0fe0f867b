"""The active-matter closure model: closure exactness, linear growth, invariants, robustness,
and a solenoidal velocity in the stored files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from physrep.sim.active_matter import (
    BOX,
    ActiveNematicSolver,
    bingham_closure,
    initial_state,
    layout,
    order_parameter,
    simulate,
)
from physrep.sim.base import SimConfig, SimulationError
from physrep.sim.spectral import divergence_ratio


def quadrature_moments(kappa: float, theta0: float, n: int = 2048):
    """D and S of exp(κ cos 2(θ − θ₀)) normalised to c = 1, by the (spectrally exact)
    periodic trapezoid rule."""
    th = torch.arange(n, dtype=torch.float64) * 2 * math.pi / n
    w = torch.exp(kappa * (torch.cos(2 * (th - theta0)) - 1))
    w = w / w.sum()
    px, py = torch.cos(th), torch.sin(th)
    d = [(w * px * px).sum(), (w * px * py).sum(), (w * py * py).sum()]
    s = [(w * px ** (4 - j) * py**j).sum() for j in range(5)]
    return d, s


def start(solver: ActiveNematicSolver, seeds: list[int]) -> None:
    ics = [initial_state(solver.n, seed) for seed in seeds]
    solver.set_state(*(torch.as_tensor(np.stack(f)) for f in zip(*ics)))


def test_closure_matches_quadrature():
    worst = 0.0
    for kappa in np.concatenate([[0.0, 1e-4, 1e-2], np.linspace(0.1, 20.0, 41)]):
        for theta0 in (0.0, 0.4, 1.3, 2.2, -0.9):
            d, s = quadrature_moments(float(kappa), theta0)
            closed = bingham_closure(torch.tensor(1.0, dtype=torch.float64), *d)
            worst = max(worst, max(abs(float(a - b)) for a, b in zip(s, closed)))
    assert worst < 1e-8


@pytest.mark.parametrize("zeta", [1.0, 5.0])
def test_uniform_nematic_mode_grows_at_zeta_minus_4dr(zeta):
    solver = ActiveNematicSolver(8, alpha=-3.0, zeta=zeta)
    eps, t_end = 1e-8, 1.0
    one = torch.ones(1, 8, 8, dtype=torch.float64)
    solver.set_state(one, one * (0.5 + 0.3 * eps), one * 0.2 * eps, one * (0.5 - 0.3 * eps))
    s0 = float(order_parameter(*solver.ifft(solver.state).unbind(1)).mean())
    solver.advance(0.005, round(t_end / 0.005))
    s1 = float(order_parameter(*solver.ifft(solver.state).unbind(1)).mean())
    rate = math.log(s1 / s0) / t_end
    assert rate == pytest.approx(zeta - 4 * solver.d_r, rel=1e-6)


def test_trace_of_d_equals_concentration():
    solver = ActiveNematicSolver(32, alpha=-3.0, zeta=9.0)
    start(solver, [3])
    worst = 0.0
    for _ in range(10):
        solver.advance(0.005, 20)
        c, dxx, _, dyy = solver.ifft(solver.state).unbind(1)
        worst = max(worst, float((dxx + dyy - c).abs().max()))
    assert float(c.std()) > 1e-3  # c is not trivially constant
    assert worst < 1e-12


def test_order_parameter_bounded_at_small_preset_grid():
    """α = −5, ζ = 15 on the small preset's simulated grid (64² stored × oversample 2), to
    t = 0.5: past saturation, where 64² already overshoots to 1.25 (full runs: ≤ 1.02)."""
    solver = ActiveNematicSolver(128, alpha=-5.0, zeta=15.0)
    start(solver, [0])
    peak = 0.0
    for _ in range(4):
        solver.advance(0.005, 25)
        peak = max(peak, float(order_parameter(*solver.ifft(solver.state).unbind(1)).max()))
    assert 0.9 < peak <= 1.05


def tiny_config(**overrides) -> SimConfig:
    base = {"system": "active_matter", "resolution": [16, 16], "steps": 4, "dt_out": 0.1}
    return SimConfig(**{**base, **overrides})


def test_simulate_shapes_dtypes_and_batching():
    cfg = tiny_config(oversample=2, batch=2, options={"dt": 0.01})
    params = {"L": 10.0, "alpha": -2.0, "zeta": 5.0}
    out = simulate(cfg, params, [1, 2, 3])
    lay = layout(cfg)
    assert lay.dataset_name == "active_matter"
    np.testing.assert_allclose(lay.time, [0.0, 0.1, 0.2, 0.3])
    for f in lay.fields:
        assert out[f.name].shape == lay.field_shape(f, 3)
        assert out[f.name].dtype == np.float32
        assert np.isfinite(out[f.name]).all()
    np.testing.assert_allclose(out["concentration"].mean(axis=(2, 3)), 1.0, atol=1e-6)
    assert np.abs(out["velocity"][:, -1]).max() > 1e-4  # the flow is not trivially zero
    single = [
        simulate(tiny_config(oversample=2, options={"dt": 0.01}), params, [s]) for s in (1, 2, 3)
    ]
    for name, arr in out.items():
        np.testing.assert_allclose(arr, np.concatenate([o[name] for o in single]), atol=1e-6)


def test_stored_velocity_is_divergence_free(written_velocity):
    """The file holds the spectral truncation of the flow simulated 2x finer, so ∇·u = 0
    survives on the stored grid: 8e-8 here, the float32 rounding (1e-15 before the cast),
    where block averages aliased 6e-3 in."""
    cfg = tiny_config(
        oversample=2,
        params={"L": [10.0], "alpha": [-5.0], "zeta": [5.0]},
        ics_per_file=1,
        options={"dt": 0.01},
    )
    velocity = written_velocity(cfg)
    assert velocity.dtype == np.float32 and velocity.shape[2:] == (16, 16, 2)
    assert divergence_ratio(velocity, (BOX, BOX)) <= 1e-6


def test_simulate_raises_on_blow_up():
    cfg = tiny_config(dt_out=0.5, options={"dt": 0.5})
    with pytest.raises(SimulationError, match=r"alpha=-5, zeta=17.*t = "):
        simulate(cfg, {"alpha": -5.0, "zeta": 17.0}, [0])
