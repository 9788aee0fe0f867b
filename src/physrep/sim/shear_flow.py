"""Shear flow: 2D periodic incompressible Navier–Stokes with a passive tracer, in torch.

The Well's `shear_flow` system on x ∈ [0, 1) × y ∈ [−1, 1):

    ∂ₜω + ∇·(u ω) = ν ∇²ω,   ∂ₜs + ∇·(u s) = D ∇²s,   u = (∂ᵧψ, −∂ₓψ) + U,   ∇²ψ = −ω

with ν = 1/Re, D = ν/Sc and U the mean velocity (a constant of motion the vorticity cannot see).
Real FFTs, 2/3-rule dealiasing, flux-form advection (4 inverse + 4 forward transforms per
right-hand side), integrating-factor (Lawson) RK4 so that diffusion is exact, and an adaptive
CFL step clipped to land exactly on the output times. Everything is float64 and batched over a
leading trajectory axis, so the same code runs many trajectories at once, on CPU or on
`cfg.device`. Both axes are periodic, so frames simulated `oversample` times finer are stored
as their Fourier truncation to the stored grid.

Initial conditions (`ic_family`): `well` is The Well's fixed grid of 40 (2 or 4 tanh shear
layers × 2–5 blobs × 5 widths, the same formula as its Dedalus generator); `random` draws the
layer count, width, perturbation amplitude, mode and phase from each trajectory's seed. Either
way the tracer starts equal to u, and the velocity is made solenoidal (ω = curl u) before the
first step, so frame 0 holds that projected velocity and its pressure (The Well's frame 0 is
the raw formula with zero pressure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from physrep.data.well_datasets import layout_like
from physrep.data.wellformat import WellLayout
from physrep.errors import ConfigError
from physrep.sim.base import SimConfig, SimulationError, grid_choice
from physrep.sim.spectral import spectral_truncate

LX, LY = 1.0, 2.0
Y0 = -1.0
MIN_DT = 1e-8  # a CFL step below this means the flow has blown up

# Options read from `cfg.options`, with their defaults.
DEFAULTS = {
    "cfl": 0.5,  # safety factor: dt = cfl / max(|u|/dx + |v|/dy)
    "max_dt": 0.01,  # cap on the step
    "ic_family": "well",  # well: The Well's 40 initial conditions; random: drawn per seed
}
# Knobs of the `random` family only.
RANDOM_DEFAULTS = {
    "n_shear": [2, 4],  # number of shear layers, one drawn per trajectory
    "width": [0.05, 0.2],  # layer half-width, drawn log-uniformly
    "amplitude": [0.05, 0.15],  # v-perturbation amplitude, uniform
    "modes": [1, 4],  # x mode number m of sin(2π m x + phase), integer uniform, inclusive
}
# The Well's initial conditions, in its generator's order: (width, n_shear, n_blobs).
WELL_ICS = tuple(
    (width, n_shear, n_blobs)
    for width in (0.25, 0.5, 1.0, 2.0, 4.0)
    for n_shear in (2, 4)
    for n_blobs in (2, 3, 4, 5)
)


@dataclass
class Flow:
    """A batch of states: spectral vorticity and tracer, mean velocity, and each one's time."""

    q: torch.Tensor  # (B, 2, Nx, Ny//2 + 1) complex: ω̂, ŝ (norm="forward": û[0, 0] is the mean)
    mean: torch.Tensor  # (B, 2) mean velocity (U, V)
    t: torch.Tensor  # (B,) time


class ShearFlowSolver:
    """Pseudo-spectral IF-RK4 solver on an Nx × Ny periodic grid for fixed ν and D."""

    def __init__(
        self,
        nx: int,
        ny: int,
        nu: float,
        diffusivity: float,
        cfl: float = 0.5,
        max_dt: float = 0.01,
        device: str | torch.device = "cpu",
    ):
        self.nx, self.ny, self.cfl, self.max_dt = nx, ny, cfl, max_dt
        self.dx, self.dy = LX / nx, LY / ny
        self.device = torch.device(device)
        f64 = {"dtype": torch.float64, "device": self.device}
        nkx = torch.fft.fftfreq(nx, 1.0 / nx, **f64)
        nky = torch.fft.rfftfreq(ny, 1.0 / ny, **f64)
        kx = (2 * math.pi / LX * nkx)[:, None]
        ky = (2 * math.pi / LY * nky)[None, :]
        self.ikx, self.iky = 1j * kx, 1j * ky
        self.k2 = kx**2 + ky**2
        self.inv_k2 = torch.where(self.k2 > 0, 1.0 / self.k2.clamp(min=1e-300), 0.0)
        # 2/3 rule: keep |n| <= N/3, so quadratic products alias only into discarded modes.
        self.mask = ((nkx.abs() <= nx // 3)[:, None] & (nky <= ny // 3)[None, :]).to(torch.float64)
        self.diffusion = torch.stack((nu * self.k2, diffusivity * self.k2))  # (2, Nx, Ny//2+1)
        # Spectral operators, fused once: ω̂ -> (û, v̂), and (F(u f), F(v f)) -> −∇·(u f), dealiased.
        self.curl_inverse = torch.stack((self.iky * self.inv_k2, -self.ikx * self.inv_k2))
        self.neg_div = -torch.stack(torch.broadcast_tensors(self.ikx, self.iky)) * self.mask

    # -- transforms and diagnostics ----------------------------------------------------------

    def to_spectral(self, f: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(f, norm="forward")

    def to_grid(self, f_hat: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(f_hat, s=(self.nx, self.ny), norm="forward")

    def velocity_hat(self, w_hat: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """(û, v̂) from ω̂: the streamfunction inverts ∇²ψ = −ω, so ∇·u = 0 exactly."""
        uv = w_hat[:, None] * self.curl_inverse
        uv[:, :, 0, 0] = mean.to(uv.dtype)
        return uv

    def velocity_from_vorticity(self, w_hat: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """Grid velocity (B, 2, Nx, Ny) of spectral vorticity w_hat (B, Nx, Ny//2+1)."""
        return self.to_grid(self.velocity_hat(w_hat, mean))

    def divergence(self, uv: torch.Tensor) -> torch.Tensor:
        """Spectral ∇·u of a grid velocity (B, 2, Nx, Ny), on the grid."""
        uv_hat = self.to_spectral(uv)
        return self.to_grid(self.ikx * uv_hat[:, 0] + self.iky * uv_hat[:, 1])

    def energy(self, flow: Flow) -> torch.Tensor:
        """E = ½⟨|u|²⟩ per trajectory (domain mean), by Parseval on the half spectrum."""
        return 0.5 * _parseval(self.velocity_hat(flow.q[:, 0], flow.mean))

    def enstrophy(self, flow: Flow) -> torch.Tensor:
        """Z = ½⟨ω²⟩ per trajectory; without forcing dE/dt = −2νZ."""
        return 0.5 * _parseval(flow.q[:, :1])

    def pressure(self, flow: Flow) -> torch.Tensor:
        """Zero-mean pressure on the grid from ∇²p = −∂ᵢ∂ⱼ(uᵢuⱼ) (what Dedalus solves for)."""
        u, v = self.velocity_from_vorticity(flow.q[:, 0], flow.mean).unbind(1)
        uu, uv, vv = self.to_spectral(torch.stack((u * u, u * v, v * v), dim=1)).unbind(1)
        ikx, iky = self.ikx, self.iky
        rhs = ikx * ikx * uu + 2 * ikx * iky * uv + iky * iky * vv
        return self.to_grid(rhs * self.inv_k2 * self.mask)

    def fields(self, flow: Flow) -> dict[str, torch.Tensor]:
        """The stored fields on the simulation grid: tracer, pressure, velocity (..., 2)."""
        uv = self.velocity_from_vorticity(flow.q[:, 0], flow.mean)
        return {
            "tracer": self.to_grid(flow.q[:, 1]),
            "pressure": self.pressure(flow),
            "velocity": uv.permute(0, 2, 3, 1),
        }

    # -- initial states ----------------------------------------------------------------------

    def from_vorticity(
        self, omega: torch.Tensor, tracer: torch.Tensor, mean: torch.Tensor | None = None
    ) -> Flow:
        """A flow from grid vorticity and tracer (B, Nx, Ny), dealiased, at t = 0."""
        q = self.to_spectral(torch.stack((omega, tracer), dim=1).to(self.device)) * self.mask
        q[:, 0, 0, 0] = 0.0  # a periodic vorticity has zero mean
        b = q.shape[0]
        mean = torch.zeros(b, 2, dtype=torch.float64, device=self.device) if mean is None else mean
        return Flow(
            q, mean.to(self.device), torch.zeros(b, dtype=torch.float64, device=self.device)
        )

    def from_velocity(self, uv: torch.Tensor, tracer: torch.Tensor) -> Flow:
        """A solenoidal flow from any grid velocity (B, 2, Nx, Ny): keep only ω = curl u and
        the mean, which drops the divergent part of e.g. a hand-made perturbation."""
        uv_hat = self.to_spectral(uv.to(self.device))
        omega = self.to_grid(self.ikx * uv_hat[:, 1] - self.iky * uv_hat[:, 0])
        return self.from_vorticity(omega, tracer.to(self.device), uv_hat[:, :, 0, 0].real)

    # -- time stepping -----------------------------------------------------------------------

    def rhs(self, q: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """Dealiased −∇·(u f) for f = ω, s: 4 inverse and 4 forward transforms."""
        grid = self.to_grid(torch.cat((self.velocity_hat(q[:, 0], mean), q), dim=1))
        b, _, nx, ny = grid.shape
        products = grid[:, :2, None] * grid[:, None, 2:]  # (B, 2 velocity, 2 fields, Nx, Ny)
        flux = self.to_spectral(products.reshape(b, 4, nx, ny)).view(b, 2, 2, nx, -1)
        return (flux * self.neg_div[None, :, None]).sum(dim=1)

    def max_rate(self, q: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """max(|u|/dx + |v|/dy) per trajectory: the CFL step is cfl / this."""
        u, v = self.velocity_from_vorticity(q[:, 0], mean).abs().unbind(1)
        return (u / self.dx + v / self.dy).amax(dim=(1, 2))

    def _rk4(self, q: torch.Tensor, mean: torch.Tensor, k1: torch.Tensor, h: torch.Tensor):
        """Lawson RK4 on q̂ e^{Lt}: the diffusion factors e^{−νk²h} are applied exactly."""
        h = h[:, None, None, None]
        half = torch.exp(-self.diffusion * (h / 2))
        full = half * half
        k2 = self.rhs(half * (q + h / 2 * k1), mean)
        k3 = self.rhs(half * q + h / 2 * k2, mean)
        k4 = self.rhs(full * q + h * half * k3, mean)
        return full * q + h / 6 * (full * k1 + 2 * half * (k2 + k3) + k4)

    def step(self, flow: Flow, h: float | torch.Tensor) -> Flow:
        """One IF-RK4 step of fixed size h (scalar or one per trajectory)."""
        h = torch.as_tensor(h, dtype=torch.float64, device=self.device).expand(flow.t.shape)
        return Flow(
            self._rk4(flow.q, flow.mean, self.rhs(flow.q, flow.mean), h), flow.mean, flow.t + h
        )

    def advance(self, flow: Flow, t_end: float) -> Flow:
        """CFL-adaptive steps up to exactly t_end, each trajectory with its own dt.

        The remaining interval is split evenly into ceil(remaining / dt_cfl) steps (no tiny
        last step); finished trajectories take h = 0, which leaves them bit-for-bit unchanged,
        so a batch gives the same result as its trajectories run one by one.
        """
        q, t = flow.q, flow.t
        while True:
            remaining = t_end - t
            if not (remaining > 0).any():
                return Flow(q, flow.mean, t)
            dt = torch.clamp(self.cfl / self.max_rate(q, flow.mean), max=self.max_dt)
            bad = (remaining > 0) & ~(dt >= MIN_DT)  # also catches NaN
            if bad.any():
                raise FlowBlowUp(float(t[bad][0]), "CFL collapse or non-finite velocity")
            n = torch.ceil(remaining / dt).clamp(min=1)
            h = torch.where(remaining > 0, remaining / n, 0.0)
            q = self._rk4(q, flow.mean, self.rhs(q, flow.mean), h)
            t = torch.where(n <= 1, torch.full_like(t, t_end), t + h)


class FlowBlowUp(Exception):
    """Raised inside the solver; `simulate` turns it into a SimulationError with the params."""

    def __init__(self, t: float, reason: str):
        self.t, self.reason = t, reason
        super().__init__(f"{reason} at t = {t:.6g}")


def _parseval(f_hat: torch.Tensor) -> torch.Tensor:
    """Σ over channels of ⟨f²⟩ from a half (rfft) spectrum: interior ky columns count twice."""
    weight = torch.full((f_hat.shape[-1],), 2.0, dtype=torch.float64, device=f_hat.device)
    weight[0] = 1.0
    if f_hat.shape[-1] > 1:
        weight[-1] = 1.0  # the Nyquist column of an even Ny (always masked anyway)
    return (f_hat.abs() ** 2 * weight).sum(dim=(1, 2, 3))


def run(solver: ShearFlowSolver, flow: Flow, times: np.ndarray, shape: Sequence[int]) -> dict:
    """Integrate to each of `times` (starting at flow.t) and return float64 numpy frames
    (B, T, *shape[, 2]), spectrally truncated to the stored grid `shape` (so the stored
    velocity stays divergence-free); raises FlowBlowUp on NaN/inf or CFL collapse."""
    frames: dict[str, list[np.ndarray]] = {"tracer": [], "pressure": [], "velocity": []}
    for t_out in times:
        flow = solver.advance(flow, float(t_out))
        if not torch.isfinite(flow.q).all():
            raise FlowBlowUp(float(t_out), "non-finite state")
        for name, value in solver.fields(flow).items():
            frames[name].append(spectral_truncate(value, shape).cpu().numpy())
    return {name: np.stack(f, axis=1) for name, f in frames.items()}


# -- initial conditions and The Well's interface ---------------------------------------------


def options(cfg: SimConfig) -> dict:
    """cfg.options over the defaults; an unknown knob, or a `random` knob given with the
    `well` family (where it would silently do nothing), is a ConfigError."""
    opt = {**DEFAULTS, **cfg.options}
    unknown = set(cfg.options) - set(DEFAULTS) - set(RANDOM_DEFAULTS)
    if unknown:
        known = ", ".join([*DEFAULTS, *RANDOM_DEFAULTS])
        raise ConfigError(f"unknown shear_flow option '{sorted(unknown)[0]}' (known: {known})")
    if opt["ic_family"] not in ("well", "random"):
        raise ConfigError(
            f"key 'options.ic_family' must be 'well' or 'random', got {opt['ic_family']!r}"
        )
    if opt["ic_family"] == "well":
        given = sorted(set(cfg.options) & set(RANDOM_DEFAULTS))
        if given:
            raise ConfigError(
                f"key 'options.{given[0]}' applies to ic_family 'random' only (The Well's "
                "initial conditions are a fixed grid)"
            )
        grid_choice(range(cfg.ics_per_file), len(WELL_ICS))  # refuses more than 40 per file
        return opt
    return {**RANDOM_DEFAULTS, **opt}


def grid(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """x (nx, 1) and y (1, ny): the periodic grid points, as Dedalus places them."""
    return (LX * np.arange(nx) / nx)[:, None], (Y0 + LY * np.arange(ny) / ny)[None, :]


def well_initial_fields(
    width: float, n_shear: int, n_blobs: int, nx: int, ny: int
) -> tuple[np.ndarray, ...]:
    """(u, v, tracer) of one of The Well's initial conditions, exactly as its generator
    writes them: layers at y_j = −1 + (2j + 1)/n_shear with signs −, +, −, …, each a tanh of
    half-width δ = 0.2·width/n_shear carrying a Gaussian-localised perturbation
    0.1·sin(±n_blobs·π·x) whose sign follows the layer's.

    Neither the tanh nor the Gaussian is wrapped around y = ±1, and sin(n_blobs·π·x) is not
    periodic for odd n_blobs: The Well's fields have these kinks, and so do these.
    """
    x, y = grid(nx, ny)
    u = np.full((nx, ny), 0.5)
    v = np.zeros((nx, ny))
    delta = 0.2 * width / n_shear
    for j in range(n_shear):
        centre, sign = Y0 + LY * (2 * j + 1) / (2 * n_shear), 2.0 * (j % 2) - 1.0
        u += sign * 0.5 * np.tanh((y - centre) / delta)
        v += 0.1 * np.sin(sign * n_blobs * np.pi * x / LX) * np.exp(-(((y - centre) / delta) ** 2))
    return u, v, u.copy()


def random_initial_fields(seed: int, nx: int, ny: int, opt: dict) -> tuple[np.ndarray, ...]:
    """(u, v, tracer) for one seed: the same layer construction with its knobs drawn.

    Layers sit at y_j = −1 + (2j + 1)/n with alternating signs, so u = ½ outside and −½ between
    them; tanh images at y ± 2, ± 4, … make the profile exactly periodic in y for any width.
    """
    rng = np.random.default_rng(seed)
    n_shear = int(rng.choice(opt["n_shear"]))
    width = float(np.exp(rng.uniform(*np.log(opt["width"]))))
    amplitude = float(rng.uniform(*opt["amplitude"]))
    mode = int(rng.integers(opt["modes"][0], opt["modes"][1] + 1))
    phases = rng.uniform(0, 2 * np.pi, n_shear)

    x, y = grid(nx, ny)
    centres = Y0 + LY * (2 * np.arange(n_shear) + 1) / (2 * n_shear)
    signs = (-1.0) ** (np.arange(n_shear) + 1)
    profile = 0.5 + 0.5 * sum(
        s * np.tanh((y - c - LY * m) / width) for c, s in zip(centres, signs) for m in range(-3, 4)
    )
    u = np.broadcast_to(profile, (nx, ny)).copy()
    v = np.zeros((nx, ny))
    for c, phase in zip(centres, phases):
        d = (y - c - Y0) % LY + Y0  # periodic distance to the layer
        v += amplitude * np.sin(2 * np.pi * mode * x / LX + phase) * np.exp(-((d / width) ** 2))
    return u, v, u.copy()


def initial_conditions(
    seeds: Sequence[int], nx: int, ny: int, opt: dict
) -> list[tuple[np.ndarray, ...]]:
    """(u, v, tracer) on the simulation grid for every trajectory of one file."""
    if opt["ic_family"] == "well":
        chosen = grid_choice(seeds, len(WELL_ICS))
        return [well_initial_fields(*WELL_ICS[i], nx, ny) for i in chosen]
    return [random_initial_fields(k, nx, ny, opt) for k in seeds]


def layout(cfg: SimConfig) -> WellLayout:
    return layout_like(
        "shear_flow", list(cfg.resolution), cfg.steps, cfg.dataset_name, dt=cfg.dt_out
    )


def trajectories(cfg: SimConfig, params: dict[str, float], seeds: list[int]) -> dict:
    """`simulate` before the float32 cast: float64 frames, `cfg.batch` trajectories at a time."""
    nx, ny = cfg.sim_resolution
    opt = options(cfg)
    nu = 1.0 / params["Reynolds"]
    solver = ShearFlowSolver(
        nx, ny, nu, nu / params["Schmidt"], opt["cfl"], opt["max_dt"], cfg.device
    )
    times = cfg.dt_out * np.arange(cfg.steps)
    ics = initial_conditions(seeds, nx, ny, opt)
    size = cfg.batch or len(seeds)
    parts = []
    for start in range(0, len(seeds), size):
        chunk = seeds[start : start + size]
        u, v, s = (np.stack(f) for f in zip(*ics[start : start + size]))
        flow = solver.from_velocity(torch.from_numpy(np.stack((u, v), axis=1)), torch.from_numpy(s))
        try:
            parts.append(run(solver, flow, times, cfg.resolution))
        except FlowBlowUp as err:
            names = ", ".join(f"{k}={val:g}" for k, val in params.items())
            raise SimulationError(
                f"shear_flow ({names}, seeds {chunk}) blew up at t = {err.t:.6g}: {err.reason}"
            ) from err
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def simulate(cfg: SimConfig, params: dict[str, float], seeds: list[int]) -> dict[str, np.ndarray]:
    """One trajectory per seed, every field float32 (len(seeds), steps, Nx, Ny[, 2])."""
    return {k: v.astype(np.float32) for k, v in trajectories(cfg, params, seeds).items()}
