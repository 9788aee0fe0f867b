"""Rayleigh–Bénard with Dedalus: physics checks (Nusselt number, boundedness, walls) and the
simulator contract (shapes, dtypes, exactly uniform output times, stored grid = solver grid)."""

from __future__ import annotations

import math

import numpy as np
import pytest

d3 = pytest.importorskip("dedalus.public")

from physrep.config import load_config, preset_path  # noqa: E402
from physrep.sim import rayleigh_benard as rb  # noqa: E402
from physrep.sim.base import SimConfig, SimulationError  # noqa: E402


def _run(resolution: list[int], params: dict[str, float], steps: int, seed: int = 3) -> dict:
    cfg = SimConfig(system="rayleigh_benard", resolution=resolution, steps=steps, dt_out=0.25)
    opts = rb.options(cfg)  # The Well's initial conditions: unfiltered noise, a drop and a seed
    (ic,) = rb.initial_conditions(opts, [seed])
    return rb._run_trajectory(cfg, params, ic, opts)


@pytest.fixture(scope="module")
def ra1e6():
    """Ra = 1e6, Pr = 1 on 64x32 up to t = 50 (about 10 s)."""
    return _run([64, 32], {"Rayleigh": 1e6, "Prandtl": 1.0}, steps=201)


def test_nusselt_matches_2d_scaling(ra1e6):
    kappa, _ = rb.diffusivities(1e6, 1.0)
    nu = rb.nusselt(ra1e6["buoyancy"], ra1e6["velocity"][..., 1], kappa)
    late = nu[0.25 * np.arange(len(nu)) > 30].mean()
    expected = 0.14 * 1e6**0.29  # ≈ 7.7
    assert abs(late - expected) < 0.25 * expected, late


def test_nusselt_of_conduction_is_one():
    y = rb.chebyshev_nodes(16)
    b = np.broadcast_to(1.0 - y, (8, 16))
    assert rb.nusselt(b, np.zeros_like(b), kappa=1e-3) == pytest.approx(1.0, abs=1e-12)


def test_walls_hold_no_slip_and_fixed_buoyancy(ra1e6):
    u_bottom, u_top = rb.wall_values(np.moveaxis(ra1e6["velocity"], -1, -2))
    assert max(np.abs(u_bottom).max(), np.abs(u_top).max()) < 1e-8
    b_bottom, b_top = rb.wall_values(ra1e6["buoyancy"][1:])  # t = 0 holds b = δb₀ (1 − y)
    assert np.abs(b_bottom - 1.0).max() < 1e-8
    assert np.abs(b_top).max() < 1e-8


def test_buoyancy_bounded_at_small_preset_resolution():
    """The hardest corner of the small preset (largest Ra and Pr: thinnest buoyancy fronts)."""
    small = load_config(SimConfig, preset_path("sim", "rayleigh_benard_small"))
    params = {k: max(v) for k, v in small.params.items()}
    b = _run(small.resolution, params, steps=small.steps)["buoyancy"]
    assert b.min() >= -0.05 and b.max() <= 1.05, (b.min(), b.max())


def test_simulate_contract():
    cfg = SimConfig(
        system="rayleigh_benard",
        resolution=[16, 8],
        oversample=2,
        steps=5,
        dt_out=0.3,
        options={"max_dt": 0.07},
    )
    data = rb.simulate(cfg, {"Rayleigh": 1e5, "Prandtl": 1.0}, seeds=[1, 2])
    assert data["buoyancy"].shape == data["pressure"].shape == (2, 5, 16, 8)
    assert data["velocity"].shape == (2, 5, 16, 8, 2)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in data.values())
    assert not np.array_equal(data["buoyancy"][0], data["buoyancy"][1])  # seeds differ
    layout = rb.layout(cfg)
    np.testing.assert_allclose(layout.time, 0.3 * np.arange(5), rtol=0, atol=0)
    assert layout.fields == rb.FIELDS and layout.dataset_name == "rayleigh_benard"


@pytest.mark.parametrize("oversample", [1, 2])
def test_layout_y_is_the_solver_grid(oversample):
    """The stored y nodes are Dedalus' Chebyshev grid (at the scale frames are read at)."""
    cfg = SimConfig(system="rayleigh_benard", resolution=[16, 12], oversample=oversample)
    coords = d3.CartesianCoordinates("x", "y")
    dist = d3.Distributor(coords, dtype=np.float64)
    nx, ny = cfg.sim_resolution
    xbasis = d3.RealFourier(coords["x"], size=nx, bounds=(0, rb.LX))
    ybasis = d3.ChebyshevT(coords["y"], size=ny, bounds=(0, rb.LY))
    x = dist.local_grid(xbasis, scale=1 / oversample).ravel()
    y = dist.local_grid(ybasis, scale=1 / oversample).ravel()
    layout = rb.layout(cfg)
    np.testing.assert_allclose(layout.coords["x"], x, atol=1e-14)
    np.testing.assert_allclose(layout.coords["y"], y, atol=1e-14)
    assert np.all(np.diff(y) > 0) and y[0] > 0 and y[-1] < 1


class _FakeCFL:
    def __init__(self, dts):
        self.dts = iter(dts)

    def compute_timestep(self):
        return next(self.dts)


class _FakeSolver:
    def __init__(self):
        self.sim_time, self.steps = 0.0, []

    def step(self, dt):
        self.steps.append(dt)
        self.sim_time += dt


def test_steps_land_exactly_on_output_times():
    """Equal steps within an interval, none longer than the CFL step, ending on k·dt_out."""
    solver = _FakeSolver()
    rb._advance_to(solver, _FakeCFL([0.07] * 10), 0.3, 0.3, 1e-6, {})
    assert len(solver.steps) == 5 and len(set(solver.steps)) == 1 and solver.sim_time == 0.3
    # The CFL step drops mid-interval: the rest of the interval is re-planned below it.
    rb._advance_to(solver, _FakeCFL([0.07, 0.07, 0.02] + [0.02] * 20), 0.6, 0.3, 1e-6, {})
    assert max(solver.steps[5:]) <= 0.07 and max(solver.steps[7:]) <= 0.02
    assert math.isclose(sum(solver.steps), 0.6, rel_tol=1e-12) and solver.sim_time == 0.6
    # Back at the first CFL step: the bit-identical dt (no refactorisation of the matrices).
    rb._advance_to(solver, _FakeCFL([0.07] * 10), 0.9, 0.3, 1e-6, {})
    assert solver.steps[-5:] == solver.steps[:5] and solver.sim_time == 0.9


def test_time_step_collapse_raises():
    with pytest.raises(SimulationError, match=r"Rayleigh = 1e\+06.*t = 0"):
        rb._advance_to(_FakeSolver(), _FakeCFL([float("nan")]), 0.25, 0.25, 1e-6, {"Rayleigh": 1e6})
