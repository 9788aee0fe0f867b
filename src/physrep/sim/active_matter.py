"""Active nematics in Stokes flow: the second-moment model with the exact 2D Bingham closure.

The Well's active_matter data come from a kinetic solver for Ψ(x, θ, t) (Maddu, Weady and
Shelley, arXiv 2308.06675) that is far too costly here. This module evolves the two lowest
moments of Ψ instead, c = ∫Ψ dθ and D = ∫pp Ψ dθ with p = (cos θ, sin θ), on the periodic box
[0, L)², L = 10:

    ∂ₜc + u·∇c = dT ∇²c
    ∂ₜD + u·∇D = dT ∇²D + T·D + D·Tᵀ − 2 S:T − 4dR (D − c I/2),   T = ∇u + 2ζD
    −∇²u + ∇p = ∇·Σ,  ∇·u = 0,   Σ = α(D − c I/2) + β S:E − 2ζβ (D·D − S:D)

with (∇u)ᵢⱼ = ∂ⱼuᵢ and E = ½(∇u + ∇uᵀ). The fourth moment S = ∫pppp Ψ dθ is closed by the
Bingham distribution Ψ ∝ exp(κ cos 2(θ − θ₀)) that has the given c and D (see
`bingham_closure`). Pseudo-spectral (real FFTs, 2/3 rule), integrating-factor RK4 so that
diffusion is exact, fixed dt chosen to land on every output time. The box is periodic in both
directions, so frames simulated `oversample` times finer are stored as their Fourier
truncation to the stored grid (velocity, c, D and E alike).

The uniform nematic mode grows at ζ − 4dR, trace D = c holds to round-off, and the closure
matches quadrature of the Bingham distribution (tests/test_sim_active_matter.py).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from physrep.data.well_datasets import layout_like
from physrep.data.wellformat import WellLayout
from physrep.errors import ConfigError
from physrep.sim.base import SimConfig, SimulationError
from physrep.sim.spectral import spectral_truncate

BOX = 10.0  # The Well's box; `L` must equal it because the layout's coordinates assume it
TABLE_SIZE = 4097  # nodes of the I₂/I₀ table in s (see `_ratio_table`)
KAPPA_MAX = 1.0e3  # order parameters above I1/I0(KAPPA_MAX) ~ 0.9995 are clamped there

Sym4 = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
Sym2 = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def order_parameter(
    c: torch.Tensor, dxx: torch.Tensor, dxy: torch.Tensor, dyy: torch.Tensor
) -> torch.Tensor:
    """s = |⟨e^{2iθ}⟩| / c, the difference of D/c's eigenvalues: in [0, 1] for any Ψ ≥ 0."""
    return torch.sqrt((dxx - dyy) ** 2 + 4 * dxy**2) / c


def bingham_kappa(s: torch.Tensor, steps: int = 30) -> torch.Tensor:
    """Invert s = A(κ) = I₁(κ)/I₀(κ) by Newton's method, using A'(κ) = 1 − A/κ − A².

    Starts from Banerjee et al.'s approximation κ ≈ s(2 − s²)/(1 − s²), a few % off, so
    Newton reaches round-off in about 5 steps. Needs 0 ≤ s ≤ A(KAPPA_MAX).
    """
    kappa = (s * (2 - s**2) / (1 - s**2)).clamp(1e-12, KAPPA_MAX)
    for _ in range(steps):
        a = torch.special.i1e(kappa) / torch.special.i0e(kappa)
        kappa = (kappa - (a - s) / (1 - a / kappa - a**2)).clamp(1e-12, KAPPA_MAX)
    return kappa


@functools.lru_cache(maxsize=4)
def _ratio_table(device: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    """I₂/I₀(κ(s)) and its s-derivative at TABLE_SIZE uniform s in [0, A(KAPPA_MAX)].

    Evaluating Bessel functions and Newton at every grid point would take half the run
    time; r(s) = 1 − 2s/κ(s) is smooth (≈ s²/2 at 0, ≈ 1 − 4s(1 − s) near 1), so a cubic
    Hermite table with exact slopes is accurate to ~1e-13 at a fraction of the cost.
    """
    kmax = torch.tensor(KAPPA_MAX, dtype=torch.float64)
    s_max = float(torch.special.i1e(kmax) / torch.special.i0e(kmax))
    s = torch.linspace(0.0, s_max, TABLE_SIZE, dtype=torch.float64)[1:]
    kappa = bingham_kappa(s)
    r = 1 - 2 * s / kappa
    dr = -2 / kappa + 2 * s / (kappa**2 * (1 - s / kappa - s**2))  # dκ/ds = 1/A'(κ)
    zero = torch.zeros(1, dtype=torch.float64)
    return torch.cat([zero, r]).to(device), torch.cat([zero, dr]).to(device), s_max


def bingham_ratio(s: torch.Tensor) -> torch.Tensor:
    """I₂(κ)/I₀(κ) of the Bingham distribution with order parameter s (clamped to the table,
    so that unphysical s ≥ 1 of an under-resolved run still gives a finite ratio ≤ 1)."""
    r, dr, s_max = _ratio_table(str(s.device))
    h = s_max / (TABLE_SIZE - 1)
    x = torch.nan_to_num(s, nan=0.0).clamp(0.0, s_max) / h  # NaN: caught by the caller
    i = x.long().clamp(max=TABLE_SIZE - 2)
    t = x - i
    t2, t3 = t * t, t * t * t
    return (
        (2 * t3 - 3 * t2 + 1) * r[i]
        + (t3 - 2 * t2 + t) * h * dr[i]
        + (-2 * t3 + 3 * t2) * r[i + 1]
        + (t3 - t2) * h * dr[i + 1]
    )


def bingham_closure(
    c: torch.Tensor, dxx: torch.Tensor, dxy: torch.Tensor, dyy: torch.Tensor
) -> Sym4:
    """The fourth moment S of the Bingham distribution with zeroth moment c and second D.

    Returns (S_xxxx, S_xxxy, S_xxyy, S_xyyy, S_yyyy) (the index is the number of y's).

    Derivation. Ψ = c exp(κ cos 2(θ − θ₀)) / (2π I₀(κ)) and exp(κ cos φ) = I₀ + 2Σ Iₙ cos nφ
    give the harmonics m₂ = ∫e^{2iθ}Ψ = c (I₁/I₀) e^{2iθ₀} and m₄ = ∫e^{4iθ}Ψ = c (I₂/I₀) e^{4iθ₀}.
    From D: m₂ = D_xx − D_yy + 2i D_xy, so s = |m₂|/c = I₁/I₀ fixes κ and
    e^{4iθ₀} = m₂²/|m₂|²; I₂/I₀ = 1 − 2(I₁/I₀)/κ by the recurrence. Expanding the powers of
    cos θ, sin θ in harmonics (cos⁴θ = (3 + 4 cos 2θ + cos 4θ)/8, cos³θ sin θ =
    (2 sin 2θ + sin 4θ)/8, cos²θ sin²θ = (1 − cos 4θ)/8, ...) gives the components below.
    They satisfy S_iikl = D_kl exactly, which keeps trace D = c in the dynamics.
    """
    m2 = torch.complex(dxx - dyy, 2 * dxy)
    ratio2 = bingham_ratio(order_parameter(c, dxx, dxy, dyy))
    m4 = c * ratio2 * m2**2 / (m2.abs() ** 2).clamp_min(1e-300)
    r2, i2, r4, i4 = m2.real, m2.imag, m4.real, m4.imag
    return (
        (3 * c + 4 * r2 + r4) / 8,
        (2 * i2 + i4) / 8,
        (c - r4) / 8,
        (2 * i2 - i4) / 8,
        (3 * c - 4 * r2 + r4) / 8,
    )


def contract(
    s4: Sym4, axx: torch.Tensor, axy: torch.Tensor, ayx: torch.Tensor, ayy: torch.Tensor
) -> Sym2:
    """(S:A)ᵢⱼ = Sᵢⱼₖₗ Aₖₗ for a fully symmetric S, so only A's symmetric part counts:
    (S:A)ᵢⱼ = Sᵢⱼₓₓ Aₓₓ + 2 Sᵢⱼₓᵧ ½(Aₓᵧ + Aᵧₓ) + Sᵢⱼᵧᵧ Aᵧᵧ. Returns (xx, xy, yy)."""
    a = axy + ayx  # = 2 × symmetric off-diagonal part
    s0, s1, s2, s3, s4_ = s4
    return (
        s0 * axx + s1 * a + s2 * ayy,
        s1 * axx + s2 * a + s3 * ayy,
        s2 * axx + s3 * a + s4_ * ayy,
    )


class ActiveNematicSolver:
    """A batch of trajectories on one n × n grid; state is (ĉ, D̂xx, D̂xy, D̂yy) in rfft2 space.

    The Stokes problem is linear in u except for β S:E, which is solved by `picard`
    fixed-point iterations warm-started from the last velocity (β S:E is a small correction
    to the unit solvent viscosity, so the iteration contracts fast).
    """

    def __init__(
        self,
        n: int,
        alpha: float,
        zeta: float,
        *,
        box: float = BOX,
        beta: float = 0.8,
        d_t: float = 0.05,
        d_r: float = 0.05,
        picard: int = 2,
        device: str = "cpu",
    ):
        self.n, self.alpha, self.zeta, self.beta = n, alpha, zeta, beta
        self.d_t, self.d_r, self.picard = d_t, d_r, picard
        opts = {"dtype": torch.float64, "device": device}
        kx = 2 * math.pi / box * torch.fft.fftfreq(n, 1 / n, **opts)
        ky = 2 * math.pi / box * torch.fft.rfftfreq(n, 1 / n, **opts)
        self.kx, self.ky = kx[:, None], ky[None, :]
        self.k2 = self.kx**2 + self.ky**2
        self.inv_k2 = torch.where(self.k2 > 0, 1 / self.k2.clamp_min(1e-30), 0.0)
        cut = 2 / 3 * (n // 2) * 2 * math.pi / box
        self.mask = ((self.kx.abs() < cut) & (self.ky.abs() < cut)).to(torch.float64)
        self.state: torch.Tensor | None = None
        self.u_hat: torch.Tensor | None = None  # last velocity: the Picard warm start
        self.u_grad: tuple[torch.Tensor, ...] = ()  # its gradient, so it is not recomputed

    # --- transforms -------------------------------------------------------------------------
    def fft(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(x)

    def ifft(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(x, s=(self.n, self.n))

    def set_state(self, c: torch.Tensor, dxx: torch.Tensor, dxy: torch.Tensor, dyy: torch.Tensor):
        """Physical fields (batch, n, n) → dealiased spectral state; the flow starts at rest."""
        self.state = self.fft(torch.stack([c, dxx, dxy, dyy], dim=1)) * self.mask
        self.u_hat = torch.zeros_like(self.state[:, :2])
        self.u_grad = self.grad_u(self.u_hat)

    # --- flow ---------------------------------------------------------------------------------
    def grad_u(self, u_hat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(∂ₓuₓ, ∂ᵧuₓ, ∂ₓuᵧ, ∂ᵧuᵧ) in physical space."""
        ik = torch.stack([1j * self.kx.expand_as(self.k2), 1j * self.ky.expand_as(self.k2)])
        g = self.ifft(u_hat[:, :, None] * ik[None, None])  # (B, i, j, n, n) = ∂ⱼuᵢ
        return g[:, 0, 0], g[:, 0, 1], g[:, 1, 0], g[:, 1, 1]

    def stokes(self, sxx: torch.Tensor, sxy: torch.Tensor, syy: torch.Tensor) -> torch.Tensor:
        """û = P(ik·Σ̂)/k²: the unit-viscosity Stokes velocity of stress Σ, mean flow zero."""
        sig = self.fft(torch.stack([sxx, sxy, syy], dim=1))
        fx = 1j * (self.kx * sig[:, 0] + self.ky * sig[:, 1])
        fy = 1j * (self.kx * sig[:, 1] + self.ky * sig[:, 2])
        kf = (self.kx * fx + self.ky * fy) * self.inv_k2
        return torch.stack([fx - self.kx * kf, fy - self.ky * kf], dim=1) * self.inv_k2 * self.mask

    def velocity(
        self, fields: torch.Tensor, s4: Sym4
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """û and ∇u given physical (c, Dxx, Dxy, Dyy), by Picard on the β S:E stress."""
        c, dxx, dxy, dyy = fields.unbind(1)
        sd = contract(s4, dxx, dxy, dxy, dyy)
        dd = (dxx**2 + dxy**2, dxy * (dxx + dyy), dxy**2 + dyy**2)
        iso = (c / 2, 0.0, c / 2)
        fixed = [
            self.alpha * (d - i) - 2 * self.zeta * self.beta * (p - q)
            for d, i, p, q in zip((dxx, dxy, dyy), iso, dd, sd)
        ]
        u_hat, grad = self.u_hat, self.u_grad
        for _ in range(self.picard):
            se = contract(s4, *grad)
            u_hat = self.stokes(*(f + self.beta * e for f, e in zip(fixed, se)))
            grad = self.grad_u(u_hat)
        self.u_hat, self.u_grad = u_hat, grad
        return u_hat, grad

    # --- dynamics -----------------------------------------------------------------------------
    def rhs(self, state: torch.Tensor) -> torch.Tensor:
        """Everything but diffusion, in spectral space (dealiased).

        The closure is fed trace D, not c: then S_iikl = D_kl exactly and trace D − c only
        relaxes (rate 4dR); fed c, that difference grows at 2ζc − 4dR from round-off.
        """
        fields = self.ifft(state)
        c, dxx, dxy, dyy = fields.unbind(1)
        s4 = bingham_closure(dxx + dyy, dxx, dxy, dyy)
        u_hat, (gxx, gxy, gyx, gyy) = self.velocity(fields, s4)
        u = self.ifft(u_hat)
        two_zeta = 2 * self.zeta
        txx, txy, tyx, tyy = (
            gxx + two_zeta * dxx,
            gxy + two_zeta * dxy,
            gyx + two_zeta * dxy,
            gyy + two_zeta * dyy,
        )
        st = contract(s4, txx, txy, tyx, tyy)
        four_dr = 4 * self.d_r
        react = torch.stack(
            [
                torch.zeros_like(c),
                2 * (txx * dxx + txy * dxy) - 2 * st[0] - four_dr * (dxx - c / 2),
                txx * dxy + txy * dyy + tyx * dxx + tyy * dxy - 2 * st[1] - four_dr * dxy,
                2 * (tyx * dxy + tyy * dyy) - 2 * st[2] - four_dr * (dyy - c / 2),
            ],
            dim=1,
        )
        flux = self.fft(torch.cat([u[:, :1] * fields, u[:, 1:] * fields], dim=1))  # ∇·(uf), ∇·u = 0
        div = 1j * (self.kx * flux[:, :4] + self.ky * flux[:, 4:])
        return (self.fft(react) - div) * self.mask

    def advance(self, dt: float, steps: int) -> None:
        """`steps` integrating-factor (Lawson) RK4 steps of size dt."""
        e_half = torch.exp(-self.d_t * self.k2 * dt / 2)
        e_full = e_half**2
        v = self.state
        for _ in range(steps):
            k1 = self.rhs(v)
            k2 = self.rhs(e_half * (v + dt / 2 * k1))
            k3 = self.rhs(e_half * v + dt / 2 * k2)
            k4 = self.rhs(e_full * v + dt * e_half * k3)
            v = e_full * (v + dt / 6 * k1) + e_half * (dt / 3 * (k2 + k3)) + dt / 6 * k4
        self.state = v

    def fields(self) -> dict[str, torch.Tensor]:
        """Physical c (B,n,n), velocity (B,n,n,2), D and E (B,n,n,2,2) at the current state."""
        f = self.ifft(self.state)
        c, dxx, dxy, dyy = f.unbind(1)
        u_hat, (gxx, gxy, gyx, gyy) = self.velocity(f, bingham_closure(dxx + dyy, dxx, dxy, dyy))
        exy = (gxy + gyx) / 2
        return {
            "concentration": c,
            "velocity": self.ifft(u_hat).movedim(1, -1),
            "D": torch.stack([dxx, dxy, dxy, dyy], dim=-1).unflatten(-1, (2, 2)),
            "E": torch.stack([gxx, exy, exy, gyy], dim=-1).unflatten(-1, (2, 2)),
        }


def initial_state(
    n: int, seed: int, *, box: float = BOX, amplitude: float = 0.01, modes: int = 8, kmax: int = 4
) -> tuple[np.ndarray, ...]:
    """c, Dxx, Dxy, Dyy of Ψ = (1/2π)[1 + ε Σₘ cos(kₘ·x + φₘ) (aₘ + bₘ cos 2θ + cₘ sin 2θ)].

    The isotropic state perturbed by random plane waves of Ψ (as The Well's README describes);
    only Ψ's 0th and 2nd harmonics reach c and D. Wavevectors are integers in [−kmax, kmax]²
    (not both zero) times 2π/L, amplitudes standard normal; all drawn from the seed.
    """
    rng = np.random.default_rng(seed)
    x = np.arange(n) * box / n
    xx, yy = np.meshgrid(x, x, indexing="ij")
    c = np.ones((n, n))
    m2 = np.zeros((n, n), dtype=complex)  # ∫e^{2iθ}Ψ dθ
    for _ in range(modes):
        k = np.zeros(2)
        while not k.any():
            k = rng.integers(-kmax, kmax + 1, size=2).astype(float)
        wave = np.cos(2 * np.pi / box * (k[0] * xx + k[1] * yy) + rng.uniform(0, 2 * np.pi))
        a, b, s = rng.standard_normal(3)
        c += amplitude * a * wave
        m2 += amplitude * (b + 1j * s) / 2 * wave
    return c, (c + m2.real) / 2, m2.imag / 2, (c - m2.real) / 2


# Options read from `cfg.options`, with their defaults.
# dt is lowered so that dt_out is a whole number of steps; s <= 1 for any Ψ >= 0, so an order
# parameter above max_order means an under-resolved run.
DEFAULTS = {"dt": 0.005, "beta": 0.8, "d_t": 0.05, "d_r": 0.05, "picard": 2}
DEFAULTS |= {"ic_amplitude": 0.01, "ic_modes": 8, "ic_kmax": 4, "max_order": 1.2}


def options(cfg: SimConfig) -> dict:
    """cfg.options over DEFAULTS; an unknown knob is a ConfigError."""
    unknown = set(cfg.options) - set(DEFAULTS)
    if unknown:
        raise ConfigError(
            f"unknown active_matter option '{sorted(unknown)[0]}' (known: {', '.join(DEFAULTS)})",
            "options",
        )
    return {**DEFAULTS, **cfg.options}


def layout(cfg: SimConfig) -> WellLayout:
    """The Well's active_matter layout at the stored resolution: [0,10)², t = k·dt_out."""
    return layout_like("active_matter", cfg.resolution, cfg.steps, cfg.dataset_name, cfg.dt_out)


def simulate(cfg: SimConfig, params: dict[str, float], seeds: list[int]) -> dict[str, np.ndarray]:
    """One trajectory per seed at parameters `zeta`, `alpha` (`L` must be 10, The Well's box);
    a run whose order parameter exceeds `max_order` raises SimulationError."""
    if cfg.resolution[0] != cfg.resolution[1]:
        raise ConfigError(f"active_matter needs a square grid, got {cfg.resolution}", "resolution")
    if float(params.get("L", BOX)) != BOX:
        raise ConfigError(
            f"active_matter's box is fixed at L = {BOX:g}, got {params['L']}", "params.L"
        )
    opt = options(cfg)
    n_sim = cfg.sim_resolution[0]
    alpha, zeta = float(params["alpha"]), float(params["zeta"])
    batch = cfg.batch or len(seeds)
    parts = []
    for start in range(0, len(seeds), batch):
        solver = ActiveNematicSolver(
            n_sim,
            alpha,
            zeta,
            beta=float(opt["beta"]),
            d_t=float(opt["d_t"]),
            d_r=float(opt["d_r"]),
            picard=int(opt["picard"]),
            device=cfg.device,
        )
        ics = [
            initial_state(
                n_sim,
                seed,
                amplitude=float(opt["ic_amplitude"]),
                modes=int(opt["ic_modes"]),
                kmax=int(opt["ic_kmax"]),
            )
            for seed in seeds[start : start + batch]
        ]
        solver.set_state(*(torch.as_tensor(np.stack(f), device=cfg.device) for f in zip(*ics)))
        parts.append(_record(cfg, solver, opt, f"alpha={alpha:g}, zeta={zeta:g}"))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _record(cfg: SimConfig, solver: ActiveNematicSolver, opt: dict, where: str) -> dict:
    """Integrate one batch to every output time t = k·dt_out, checking each frame."""
    substeps = max(1, math.ceil(cfg.dt_out / float(opt["dt"]) - 1e-9))
    max_order = float(opt["max_order"])
    frames: dict[str, list[torch.Tensor]] = {}
    for step in range(cfg.steps):
        if step:
            solver.advance(cfg.dt_out / substeps, substeps)
        fields = solver.fields()
        t = step * cfg.dt_out
        if not all(bool(torch.isfinite(v).all()) for v in fields.values()):
            raise SimulationError(f"active_matter {where}: non-finite fields at t = {t:g}")
        d = fields["D"]
        peak = float(
            order_parameter(
                d[..., 0, 0] + d[..., 1, 1], d[..., 0, 0], d[..., 0, 1], d[..., 1, 1]
            ).max()
        )
        if peak > max_order:
            raise SimulationError(
                f"active_matter {where}: order parameter {peak:.3g} > {max_order:g} at t = {t:g}"
                " (under-resolved: raise oversample or lower dt)"
            )
        for k, v in fields.items():
            stored = spectral_truncate(v, cfg.resolution)  # keeps ∇·u = 0, trace D = c
            frames.setdefault(k, []).append(stored.to("cpu", torch.float32))
    return {k: torch.stack(v, dim=1).numpy() for k, v in frames.items()}
