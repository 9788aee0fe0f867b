"""Rayleigh–Bénard convection with Dedalus 3, the solver The Well generated its data with.

Boussinesq equations on x ∈ [0, 4) (periodic, RealFourier) × y ∈ [0, 1] (ChebyshevT), in the
first-order tau formulation Dedalus 3 recommends for walls:

    ∂ₜb − κΔb = −u·∇b,   ∂ₜu − νΔu + ∇p − b ŷ = −u·∇u,   ∇·u = 0,   ∫p = 0,
    κ = (Ra·Pr)^−½,  ν = (Ra/Pr)^−½,  u = 0 on both walls,  b = 1 at y = 0,  b = 0 at y = 1.

RK222 with a CFL-limited step. Frames are taken at exactly t = k·dt_out (Dedalus' file handlers
would write on the first step after each multiple): every step of an output interval gets the
same dt = dt_out / ceil(dt_out / CFL dt), re-planned over the time left if the CFL step changes,
so the last step lands on the output time and the implicit matrices (factorised per dt) are
rebuilt only when the CFL step changes. Frames are copies of the solver's fields on the grid.

Stored grid: x uniform, y the Chebyshev–Gauss nodes Dedalus uses, increasing and strictly inside
(0, 1). With `oversample > 1` both directions are simulated finer and brought back to the stored
grid by spectral truncation (Dedalus' `change_scales`): Fourier modes above the stored Nyquist
are dropped in x, and the Chebyshev series is cut to the stored degree and evaluated at the
stored Gauss nodes in y.

Solver knobs read from `cfg.options` (defaults in `DEFAULT_OPTIONS`): `cfl_safety`, `max_dt`,
`cfl_cadence`, `min_dt` and `min_dt_action` (`abort`: a CFL step below `min_dt` counts as a
blown-up run; `clip`: the step is held at `min_dt`, as The Well's generator does), `dealias`,
`noise` (scale of the initial buoyancy noise), `delta_b0` (the initial buoyancy drops) and
`ic_family`: `well` gives each file The Well's balanced grid of drops × noise seeds
(`noise_seeds`) with unfiltered Gaussian noise drawn on the simulation grid, exactly as its
generator does; `random` draws the drop and the noise seed per trajectory and low-passes the
noise to the lower half of the stored spectrum.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np

from physrep.data.well_datasets import WELL_LAYOUTS, layout_like
from physrep.data.wellformat import WellLayout
from physrep.errors import ConfigError, PhysrepError
from physrep.sim.base import SimConfig, SimulationError, grid_choice

LX, LY = 4.0, 1.0
FIELDS = WELL_LAYOUTS["rayleigh_benard"]["fields"]
DEFAULT_OPTIONS: dict[str, Any] = {
    "cfl_safety": 0.5,
    "max_dt": 0.125,  # The Well's generator
    "cfl_cadence": 10,
    "min_dt": 1e-6,
    "min_dt_action": "abort",  # abort | clip
    "dealias": 1.5,
    "noise": 1e-3,
    "delta_b0": [0.2, 0.4, 0.6, 0.8, 1.0],  # The Well's five drops
    "ic_family": "well",  # well | random
    "noise_seeds": list(range(40, 50)),  # The Well's ten noise seeds (ic_family well)
}
CHOICES = {"min_dt_action": ("abort", "clip"), "ic_family": ("well", "random")}


def options(cfg: SimConfig) -> dict[str, Any]:
    """cfg.options over DEFAULT_OPTIONS; an unknown knob or value is a ConfigError."""
    unknown = set(cfg.options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown rayleigh_benard option '{sorted(unknown)[0]}' "
            f"(known: {', '.join(DEFAULT_OPTIONS)})",
            "options",
        )
    opts = {**DEFAULT_OPTIONS, **cfg.options}
    for key, allowed in CHOICES.items():
        if opts[key] not in allowed:
            raise ConfigError(
                f"key 'options.{key}' must be one of {', '.join(allowed)}, got {opts[key]!r}"
            )
    if opts["ic_family"] == "well":
        grid_choice(range(cfg.ics_per_file), len(opts["delta_b0"]) * len(opts["noise_seeds"]))
    return opts


def initial_conditions(opts: dict[str, Any], seeds: list[int]) -> list[tuple[float, int, bool]]:
    """(δb₀, noise seed, low-pass the noise?) for every trajectory of one file."""
    if opts["ic_family"] == "well":
        pairs = [(float(d), int(k)) for d in opts["delta_b0"] for k in opts["noise_seeds"]]
        return [(*pairs[i], False) for i in grid_choice(seeds, len(pairs))]
    drawn = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        delta_b0 = float(rng.choice(np.asarray(opts["delta_b0"], dtype=float)))
        drawn.append((delta_b0, int(rng.integers(2**31)), True))
    return drawn


def layout(cfg: SimConfig) -> WellLayout:
    """The stored grid: uniform x, Dedalus' Chebyshev–Gauss y nodes, t = k·dt_out."""
    return layout_like(
        "rayleigh_benard", list(cfg.resolution), cfg.steps, cfg.dataset_name, cfg.dt_out
    )


def simulate(cfg: SimConfig, params: dict[str, float], seeds: list[int]) -> dict[str, np.ndarray]:
    """One Dedalus run per seed, in sequence; float32 arrays (len(seeds), steps, Nx, Ny[, 2])."""
    opts = options(cfg)
    runs = [_run_trajectory(cfg, params, ic, opts) for ic in initial_conditions(opts, seeds)]
    return {f.name: np.stack([r[f.name] for r in runs]).astype(np.float32) for f in FIELDS}


def diffusivities(rayleigh: float, prandtl: float) -> tuple[float, float]:
    """(κ, ν) of the non-dimensionalisation The Well used (free-fall units, Lz = 1)."""
    return (rayleigh * prandtl) ** -0.5, (rayleigh / prandtl) ** -0.5


def chebyshev_nodes(n: int) -> np.ndarray:
    """Chebyshev–Gauss nodes mapped to (0, 1), increasing: Dedalus' ChebyshevT grid."""
    return 0.5 * (1.0 - np.cos(np.pi * (np.arange(n) + 0.5) / n))


def chebyshev_coefficients(values: np.ndarray) -> np.ndarray:
    """Coefficients (last axis) of the Chebyshev series interpolating `values` at the nodes.

    Discrete orthogonality at Gauss nodes makes this exact for data on the stored y grid, so
    wall values and y integrals of stored fields follow the solver's own representation.
    """
    n = values.shape[-1]
    vander = np.polynomial.chebyshev.chebvander(2.0 * chebyshev_nodes(n) - 1.0, n - 1)
    coeffs = (2.0 / n) * values @ vander
    coeffs[..., 0] /= 2.0
    return coeffs


def wall_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values at y = 0 and y = 1 (last axis) of the Chebyshev interpolant of stored data."""
    coeffs = chebyshev_coefficients(values)
    signs = (-1.0) ** np.arange(coeffs.shape[-1])  # T_k(−1)
    return coeffs @ signs, coeffs.sum(axis=-1)


def nusselt(
    buoyancy: np.ndarray, velocity_y: np.ndarray, kappa: float, delta_b: float = 1.0
) -> np.ndarray:
    """Nusselt number per frame: the volume-averaged vertical heat flux ⟨v b − κ ∂_y b⟩ over the
    conductive flux κ Δb / Lz, reducing the last two axes (x, y on the stored grid).

    The conductive part integrates exactly to κ (b(0) − b(1)) / Lz, taken from the interpolant's
    wall values; ⟨v b⟩ uses the Chebyshev series' exact integral (Fejér quadrature).
    """
    ny = buoyancy.shape[-1]
    mean_of_tk = np.zeros(ny)  # ½∫T_k over [−1, 1]: 1 / (1 − k²) for even k, 0 for odd k
    mean_of_tk[::2] = 1.0 / (1.0 - np.arange(0, ny, 2) ** 2)
    advective = (chebyshev_coefficients(velocity_y * buoyancy) @ mean_of_tk).mean(axis=-1)
    bottom, top = wall_values(buoyancy)
    conductive = kappa * (bottom - top).mean(axis=-1) / LY
    return (advective + conductive) / (kappa * delta_b / LY)


def _run_trajectory(
    cfg: SimConfig, params: dict[str, float], ic: tuple[float, int, bool], opts: dict[str, Any]
) -> dict[str, np.ndarray]:
    """One run in float64: fields (steps, Nx, Ny[, 2]) at t = k·dt_out on the stored grid."""
    d3 = _dedalus()
    ra, pr = float(params["Rayleigh"]), float(params["Prandtl"])
    kappa, nu = diffusivities(ra, pr)
    nx, ny = cfg.sim_resolution

    coords = d3.CartesianCoordinates("x", "y")
    dist = d3.Distributor(coords, dtype=np.float64)
    xbasis = d3.RealFourier(coords["x"], size=nx, bounds=(0, LX), dealias=opts["dealias"])
    ybasis = d3.ChebyshevT(coords["y"], size=ny, bounds=(0, LY), dealias=opts["dealias"])
    p = dist.Field(name="p", bases=(xbasis, ybasis))
    b = dist.Field(name="b", bases=(xbasis, ybasis))
    u = dist.VectorField(coords, name="u", bases=(xbasis, ybasis))
    # Tau terms: one per wall condition, plus a constant one for the pressure gauge.
    tau_p = dist.Field(name="tau_p")
    tau_b1, tau_b2 = (dist.Field(name=f"tau_b{i}", bases=xbasis) for i in (1, 2))
    tau_u1, tau_u2 = (dist.VectorField(coords, name=f"tau_u{i}", bases=xbasis) for i in (1, 2))
    _, ey = coords.unit_vector_fields(dist)
    lift_basis = ybasis.derivative_basis(1)

    def lift(field):
        return d3.Lift(field, lift_basis, -1)

    ns = {
        "p": p, "b": b, "u": u, "tau_p": tau_p, "tau_b1": tau_b1, "tau_b2": tau_b2,
        "tau_u1": tau_u1, "tau_u2": tau_u2, "ey": ey, "lift": lift, "kappa": kappa, "nu": nu,
        "grad_u": d3.grad(u) + ey * lift(tau_u1), "grad_b": d3.grad(b) + ey * lift(tau_b1),
        "Ly": LY,
    }  # fmt: skip
    problem = d3.IVP([p, b, u, tau_p, tau_b1, tau_b2, tau_u1, tau_u2], namespace=ns)
    problem.add_equation("trace(grad_u) + tau_p = 0")
    problem.add_equation("dt(b) - kappa*div(grad_b) + lift(tau_b2) = - u@grad(b)")
    problem.add_equation("dt(u) - nu*div(grad_u) + grad(p) - b*ey + lift(tau_u2) = - u@grad(u)")
    problem.add_equation("b(y=0) = 1")
    problem.add_equation("u(y=0) = 0")
    problem.add_equation("b(y=Ly) = 0")
    problem.add_equation("u(y=Ly) = 0")
    problem.add_equation("integ(p) = 0")
    solver = problem.build_solver(d3.RK222)

    scale = 1.0 / cfg.oversample  # frames are read on the stored grid
    _initial_buoyancy(b, dist, xbasis, ybasis, ic, scale, opts["noise"])
    clip = opts["min_dt_action"] == "clip"
    cfl = d3.CFL(
        solver,
        initial_dt=opts["max_dt"],
        cadence=opts["cfl_cadence"],
        safety=opts["cfl_safety"],
        threshold=0.05,
        max_change=1.5,
        min_change=0.5,
        max_dt=opts["max_dt"],
        min_dt=opts["min_dt"] if clip else 0.0,
    )
    cfl.add_velocity(u)
    clipped = 0

    frames: dict[str, list[np.ndarray]] = {f.name: [] for f in FIELDS}
    for k in range(cfg.steps):
        if k:
            clipped += _advance_to(solver, cfl, k * cfg.dt_out, cfg.dt_out, opts["min_dt"], params)
        for name, field in (("buoyancy", b), ("pressure", p), ("velocity", u)):
            view = field.copy()  # rescaling the state itself would truncate it when oversampled
            view.change_scales(scale)
            frames[name].append(np.array(view["g"], dtype=np.float64))
        if not all(np.isfinite(v[-1]).all() for v in frames.values()):
            raise SimulationError(
                f"rayleigh_benard {_describe(params)}: NaN/inf at t = {k * cfg.dt_out:g}"
            )
    if clipped:
        logging.getLogger(__name__).warning(
            "rayleigh_benard %s: the CFL step was held at min_dt = %g on %d steps",
            _describe(params), opts["min_dt"], clipped,
        )  # fmt: skip
    return {
        "buoyancy": np.stack(frames["buoyancy"]),
        "pressure": np.stack(frames["pressure"]),
        "velocity": np.moveaxis(np.stack(frames["velocity"]), 1, -1),  # (steps, Nx, Ny, 2)
    }


def _initial_buoyancy(b, dist, xbasis, ybasis, ic: tuple[float, int, bool], scale, noise):
    """b = δb₀ (1 − y) + y (1 − y) ε, with ε Gaussian of std `noise` from the IC's seed.

    The Well's family draws ε on the simulation grid, unfiltered, as its generator does. The
    random family draws it on the stored grid (`scale` = 1 / oversample), so a seed gives the
    same initial condition at every oversampling factor, and low-passes it to the lower half
    of the stored spectrum so that the seed, not grid-scale ringing, sets the first plumes.
    """
    delta_b0, noise_seed, low_pass = ic
    if low_pass:
        b.fill_random("g", scales=scale, seed=noise_seed, distribution="normal", scale=noise)
        b.low_pass_filter(scales=0.5 * scale)
        b.change_scales(1)
    else:
        b.fill_random("g", scales=1, seed=noise_seed, distribution="normal", scale=noise)
    _, y = dist.local_grids(xbasis, ybasis)
    b["g"] *= y * (LY - y)
    b["g"] += delta_b0 * (LY - y)


def _advance_to(
    solver, cfl, t_target: float, interval: float, min_dt: float, params: dict[str, float]
) -> int:
    """Step from t_target − interval to exactly t_target in equal steps no longer than the
    CFL step; returns how many steps the CFL held at `min_dt` (a clipping CFL never goes
    below it; an aborting one stops the run there). The plan divides `interval` itself (not a
    difference of times), so while the CFL step holds, every interval reuses the
    bit-identical dt and Dedalus' factorised matrices."""
    cfl_dt, dt, left, clipped = math.nan, math.nan, 0, 0
    while left > 0 or math.isnan(dt):
        new_cfl_dt = cfl.compute_timestep()
        if not new_cfl_dt >= min_dt:  # also catches NaN from a blown-up velocity
            raise SimulationError(
                f"rayleigh_benard {_describe(params)}: time step collapsed to {new_cfl_dt:g} "
                f"at t = {solver.sim_time:g} (min_dt {min_dt:g}; min_dt_action: clip holds it "
                "there instead)"
            )
        clipped += new_cfl_dt == min_dt
        if new_cfl_dt != cfl_dt:
            remaining = interval if math.isnan(cfl_dt) else t_target - solver.sim_time
            cfl_dt = new_cfl_dt
            left = max(1, math.ceil(remaining / cfl_dt - 1e-9))
            dt = remaining / left
        solver.step(dt)
        left -= 1
    solver.sim_time = t_target  # remove the last ulps of accumulated rounding
    return clipped


def _describe(params: dict[str, float]) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in params.items())


def _dedalus():
    """Import Dedalus on first use (an optional extra), serial, and quiet below warnings.

    On import Dedalus opens the root logger to every level and adds an INFO stdout handler;
    both are turned back, so neither its per-solve chatter nor other libraries' INFO records
    reach the terminal.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root_level = logging.root.level
    try:
        import dedalus.public as d3
        from dedalus.tools import logging as dedalus_logging
    except ImportError as exc:
        raise PhysrepError(
            "rayleigh_benard needs Dedalus 3: pip install 'physrep[dedalus]' "
            "(see README for its apt packages)"
        ) from exc
    logging.root.setLevel(root_level)
    handler = getattr(dedalus_logging, "stdout_handler", None)
    if handler is not None:
        handler.setLevel(logging.WARNING)
    return d3
