"""The shear-flow equations in Dedalus 3 (The Well's generator), as a reference to check and
time physrep's own solver against. Needs the optional `physrep[dedalus]`."""

from __future__ import annotations

import numpy as np


def dedalus_shear_flow(
    nx: int, ny: int, nu: float, diffusivity: float, velocity: np.ndarray, tracer: np.ndarray
):
    """A Dedalus RK443 solver on the same periodic [0,1) x [-1,1) grid, started from grid
    `velocity` (2, nx, ny) and `tracer` (nx, ny). Returns (solver, velocity field, tracer field)."""
    import dedalus.public as d3

    coords = d3.CartesianCoordinates("x", "y")
    dist = d3.Distributor(coords, dtype=np.float64)
    xb = d3.RealFourier(coords["x"], size=nx, bounds=(0, 1), dealias=3 / 2)
    yb = d3.RealFourier(coords["y"], size=ny, bounds=(-1, 1), dealias=3 / 2)
    p, s = dist.Field(name="p", bases=(xb, yb)), dist.Field(name="s", bases=(xb, yb))
    u = dist.VectorField(coords, name="u", bases=(xb, yb))
    tau_p = dist.Field(name="tau_p")
    names = {"u": u, "s": s, "p": p, "tau_p": tau_p, "nu": nu, "D": diffusivity}
    names |= {"grad": d3.grad, "lap": d3.lap, "div": d3.div, "integ": d3.integ, "dt": d3.dt}
    problem = d3.IVP([u, s, p, tau_p], namespace=names)
    problem.add_equation("dt(u) + grad(p) - nu*lap(u) = - u@grad(u)")
    problem.add_equation("dt(s) - D*lap(s) = - u@grad(s)")
    problem.add_equation("div(u) + tau_p = 0")
    problem.add_equation("integ(p) = 0")
    u["g"] = velocity
    s["g"] = tracer
    return problem.build_solver(d3.RK443), u, s
