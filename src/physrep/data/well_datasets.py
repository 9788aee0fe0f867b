"""The Well's three datasets as they are on disk: grids, fields, parameters and file names.

Everything physrep writes for active_matter, shear_flow or rayleigh_benard (simulated or
synthetic) takes its layout, its parameter order and its file names from here, so that a
physrep file and a downloaded Well file of the same system differ only in their numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from physrep.data.wellformat import Field, WellLayout
from physrep.errors import ConfigError

# The real datasets' grids, frame spacing, fields and parameters. `params` lists each
# dataset's parameters in the order its files store them (/scalars and the file name).
WELL_LAYOUTS: dict[str, dict] = {
    "active_matter": {
        "extent": [(0.0, 10.0), (0.0, 10.0)],
        "resolution": [256, 256],
        "dt": 0.25,
        "steps": 81,
        "boundaries": {"x": "periodic", "y": "periodic"},
        "fields": (
            Field("concentration", 0),
            Field("velocity", 1),
            Field("D", 2, symmetric=True),
            Field("E", 2, symmetric=True),
        ),
        "params": {
            "L": [10.0],
            "zeta": [1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0],
            "alpha": [-1.0, -2.0, -3.0, -4.0, -5.0],
        },
    },
    "shear_flow": {
        "extent": [(0.0, 1.0), (-1.0, 1.0)],
        "resolution": [256, 512],
        "dt": 0.1,
        "steps": 200,
        "boundaries": {"x": "periodic", "y": "periodic"},
        "fields": (Field("tracer", 0), Field("pressure", 0), Field("velocity", 1)),
        "params": {
            "Reynolds": [1e4, 5e4, 1e5, 5e5],
            "Schmidt": [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0],
        },
    },
    "rayleigh_benard": {
        "extent": [(0.0, 4.0), (0.0, 1.0)],
        "resolution": [512, 128],
        "dt": 0.25,
        "steps": 200,
        "boundaries": {"x": "periodic", "y": "wall_dirichlet"},
        "fields": (Field("buoyancy", 0), Field("pressure", 0), Field("velocity", 1)),
        "params": {
            "Rayleigh": [1e6, 1e7, 1e8, 1e9, 1e10],
            "Prandtl": [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0],
        },
    },
}


def layout_like(
    like: str,
    resolution: list[int] | None = None,
    steps: int | None = None,
    dataset_name: str | None = None,
    dt: float | None = None,
) -> WellLayout:
    """The Well layout of `like` (grid, boundaries, fields), at any resolution, length and
    frame spacing (default: the real dataset's).

    rayleigh_benard's wall-normal axis uses Chebyshev–Gauss nodes, as Dedalus stores it.
    """
    spec = WELL_LAYOUTS[like]
    res = resolution or spec["resolution"]
    coords = {}
    for (name, bc), (lo, hi), n in zip(spec["boundaries"].items(), spec["extent"], res):
        if bc == "periodic":
            coords[name] = lo + (hi - lo) * np.arange(n) / n
        else:
            coords[name] = lo + (hi - lo) * 0.5 * (1 - np.cos(np.pi * (np.arange(n) + 0.5) / n))
    n_steps = steps or spec["steps"]
    return WellLayout(
        dataset_name=dataset_name or like,
        coords=coords,
        time=(dt or spec["dt"]) * np.arange(n_steps),
        boundaries=dict(spec["boundaries"]),
        fields=spec["fields"],
    )


def ordered_params(like: str, params: Mapping[str, object], key: str = "params") -> dict:
    """`params` with exactly `like`'s parameter names, in the order its files store them."""
    names = list(WELL_LAYOUTS[like]["params"])
    if set(params) != set(names):
        extra = sorted(set(params) - set(names))
        what = f"has no parameter '{extra[0]}'" if extra else "needs every parameter"
        raise ConfigError(f"key '{key}': {like} {what} ({', '.join(names)})")
    return {name: params[name] for name in names}


def file_stem(like: str, dataset_name: str, params: Mapping[str, float]) -> str:
    """The file name (without .hdf5) The Well gives one parameter combination of `like`:
    `shear_flow_Reynolds_1e4_Schmidt_1e-1`, `rayleigh_benard_Rayleigh_1e6_Prandtl_1`,
    `active_matter_L_10.0_zeta_1.0_alpha_-1.0`. Other datasets: `name_key_value` with %g."""
    write = _NAME_FORMATS.get(like, lambda _key, v: f"{v:g}")
    return dataset_name + "".join(f"_{k}_{write(k, float(v))}" for k, v in params.items())


def scientific(value: float) -> str:
    """1e4, 5e-1, 1e0, 2.5e4: mantissa and exponent without '+', padding or trailing zeros."""
    mantissa, exponent = f"{value:.12e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _rayleigh_benard_value(key: str, value: float) -> str:
    """Rayleigh_1e6 and Prandtl_1e-1, but Prandtl_1 and Prandtl_10: small whole numbers are
    written as integers."""
    if key != "Rayleigh" and value.is_integer() and 1 <= value < 100:
        return str(int(value))
    return scientific(value)


_NAME_FORMATS = {
    "shear_flow": lambda _key, v: scientific(v),
    "rayleigh_benard": _rayleigh_benard_value,
    "active_matter": lambda _key, v: repr(v),
}
