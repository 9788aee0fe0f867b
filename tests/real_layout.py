"""Files laid out exactly like The Well's real active_matter, shear_flow and rayleigh_benard
downloads, written with raw h5py (not physrep's writer), so physrep's reader is tested against
the real schema rather than against itself. Grids and names are the real ones; only the
numbers of trajectories and steps are cut down."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

REAL = {
    "active_matter": {
        "file": "active_matter_L_10.0_zeta_5.0_alpha_-1.0.hdf5",
        "dims": {
            "x": np.linspace(0, 10, 256, endpoint=False),
            "y": np.linspace(0, 10, 256, endpoint=False),
        },
        "dt": 0.25,
        "bcs": {"x_periodic": ("PERIODIC", "x"), "y_periodic": ("PERIODIC", "y")},
        "t0": ["concentration"],
        "t1": ["velocity"],
        "t2": ["D", "E"],
        "params": {"L": 10.0, "zeta": 5.0, "alpha": -1.0},
    },
    "shear_flow": {
        "file": "shear_flow_Reynolds_1e4_Schmidt_1e-1.hdf5",
        "dims": {
            "x": np.linspace(0, 1, 256, endpoint=False),
            "y": np.linspace(-1, 1, 512, endpoint=False),
        },
        "dt": 0.1,
        "bcs": {"x_periodic": ("PERIODIC", "x"), "y_periodic": ("PERIODIC", "y")},
        "t0": ["tracer", "pressure"],
        "t1": ["velocity"],
        "t2": [],
        "params": {"Reynolds": 1e4, "Schmidt": 0.1},
    },
    "rayleigh_benard": {
        "file": "rayleigh_benard_Rayleigh_1e6_Prandtl_1.hdf5",
        "dims": {
            "x": np.linspace(0, 4, 512, endpoint=False),
            "y": 0.5 * (1 - np.cos(np.pi * (np.arange(128) + 0.5) / 128)),  # Chebyshev-Gauss nodes
        },
        "dt": 0.25,
        "bcs": {"x_periodic": ("PERIODIC", "x"), "y_wall_dirichlet": ("WALL", "y")},
        "t0": ["buoyancy", "pressure"],
        "t1": ["velocity"],
        "t2": [],
        "params": {"Rayleigh": 1e6, "Prandtl": 1.0},
    },
}


def write_real_layout(
    root: Path, name: str, n_traj: int = 1, n_steps: int = 4, seed: int = 0
) -> Path:
    """A dataset folder with one file per split, shaped like the real `name` files."""
    spec = REAL[name]
    rng = np.random.default_rng(seed)
    shape = tuple(len(c) for c in spec["dims"].values())
    for split in ("train", "valid", "test"):
        folder = root / name / "data" / split
        folder.mkdir(parents=True, exist_ok=True)
        with h5py.File(folder / spec["file"], "w") as f:
            f.attrs["dataset_name"] = name
            f.attrs["grid_type"] = "cartesian"
            f.attrs["n_spatial_dims"] = 2
            f.attrs["n_trajectories"] = n_traj
            f.attrs["simulation_parameters"] = list(spec["params"])
            for k, v in spec["params"].items():
                f.attrs[k] = v
            dims = f.create_group("dimensions")
            dims.attrs["spatial_dims"] = ["x", "y"]
            t = dims.create_dataset("time", data=spec["dt"] * np.arange(n_steps, dtype=np.float32))
            t.attrs.update({"sample_varying": False, "time_varying": True})
            for d, c in spec["dims"].items():
                ds = dims.create_dataset(d, data=c.astype(np.float32))
                ds.attrs.update({"sample_varying": False, "time_varying": False})
            bcs = f.create_group("boundary_conditions")
            for gname, (kind, dim) in spec["bcs"].items():
                g = bcs.create_group(gname)
                g.attrs.update(
                    {
                        "bc_type": kind,
                        "associated_dims": [dim],
                        "sample_varying": False,
                        "time_varying": False,
                    }
                )
                g.attrs["associated_fields"] = []
                mask = np.zeros(len(spec["dims"][dim]), dtype=bool)
                mask[[0, -1]] = True
                g.create_dataset("mask", data=mask)
                g.create_dataset("values", data=np.zeros(2, dtype=np.float32))
            sc = f.create_group("scalars")
            sc.attrs["field_names"] = list(spec["params"])
            for k, v in spec["params"].items():
                ds = sc.create_dataset(k, data=np.float32(v))
                ds.attrs.update({"sample_varying": False, "time_varying": False})
            for order, group in enumerate(("t0", "t1", "t2")):
                g = f.create_group(f"{group}_fields")
                g.attrs["field_names"] = spec[group]
                for field in spec[group]:
                    data = rng.standard_normal((n_traj, n_steps, *shape, *([2] * order))).astype(
                        np.float32
                    )
                    ds = g.create_dataset(field, data=data)
                    ds.attrs.update(
                        {"dim_varying": [True, True], "sample_varying": True, "time_varying": True}
                    )
                    if order == 2:  # D and E are symmetric tensors
                        ds.attrs.update({"symmetric": True, "antisymmetric": False})
    return root / name
