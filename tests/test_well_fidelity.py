"""physrep's simulators follow The Well's own generators: shear_flow's 40 initial conditions,
rayleigh_benard's balanced grid of drops x noise seeds and its clipped time step, and files whose
names, parameter order and tensor flags match The Well's layout."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from physrep.config import load_config, preset_path
from physrep.data.describe import describe
from physrep.data.validate import inspect_dataset
from physrep.data.well_datasets import file_stem, layout_like
from physrep.data.wellformat import write_well_file
from physrep.data.windows import WellWindows, WindowConfig
from physrep.errors import ConfigError, DataError
from physrep.sim import shear_flow
from physrep.sim.base import SimConfig, SimulationError
from physrep.sim.runner import plan
from real_layout import REAL, write_real_layout


def the_wells_shear_ic(n_shear: int, n_blobs: int, width: float, nx: int, nz: int):
    """The Well's generator, written out independently: grid points as Dedalus places them on
    [0, 1) x [-1, 1), layers at linspace(-1, 1, n, endpoint=False) + 1/n."""
    x = (np.arange(nx) / nx)[:, None]
    z = (-1 + 2 * np.arange(nz) / nz)[None, :]
    shear = np.zeros((nx, nz))
    velocity = np.zeros((nx, nz))
    for i, z1 in enumerate(np.linspace(-1, 1, n_shear, endpoint=False) + 1 / n_shear):
        sign = 2 * (i % 2) - 1
        zs = n_shear * (z - z1) / 2 / width
        shear = shear + sign * 1 / 2 * np.tanh(zs / 0.1)
        velocity = velocity + 0.1 * np.sin(sign * n_blobs * np.pi * x / 1.0) * np.exp(
            -(zs**2) / 0.01
        )
    return shear + 1 / 2, velocity


def test_well_preset_shear_flow_starts_from_the_wells_40_initial_conditions():
    cfg = load_config(SimConfig, preset_path("sim", "shear_flow_well"))
    opt = shear_flow.options(cfg)
    assert opt["ic_family"] == "well"
    nx, ny = cfg.sim_resolution  # 1024 x 2048, The Well's simulation grid
    seeds = plan(cfg)[0].seeds
    chosen = shear_flow.grid_choice(seeds, len(shear_flow.WELL_ICS))
    grid = {
        (width, n_shear, n_blobs)
        for width in (0.25, 0.5, 1.0, 2.0, 4.0)
        for n_shear in (2, 4)
        for n_blobs in (2, 3, 4, 5)
    }
    assert {shear_flow.WELL_ICS[i] for i in chosen} == grid  # every file holds all 40
    for i in chosen:
        width, n_shear, n_blobs = shear_flow.WELL_ICS[i]
        u, v, tracer = shear_flow.well_initial_fields(width, n_shear, n_blobs, nx, ny)
        u_ref, v_ref = the_wells_shear_ic(n_shear, n_blobs, width, nx, ny)
        assert np.abs(u - u_ref).max() < 1e-13 and np.abs(v - v_ref).max() < 1e-13
        assert np.array_equal(tracer, u)  # the tracer starts as u
    # the file's trajectories get them in a seeded order that mixes its splits
    assert [shear_flow.WELL_ICS[i] for i in chosen] != sorted(grid)
    # what the simulator starts from: the same fields, in the order grid_choice gives
    for (u, v, _), i in zip(shear_flow.initial_conditions(seeds, 16, 32, opt), chosen):
        width, n_shear, n_blobs = shear_flow.WELL_ICS[i]
        u_ref, v_ref = the_wells_shear_ic(n_shear, n_blobs, width, 16, 32)
        assert np.abs(u - u_ref).max() < 1e-13 and np.abs(v - v_ref).max() < 1e-13


def test_shear_flow_options_are_checked_before_any_work(cli, tmp_path):
    with pytest.raises(ConfigError, match="'options.width' applies to ic_family 'random' only"):
        shear_flow.options(SimConfig(options={"width": [0.1, 0.2]}))
    with pytest.raises(ConfigError, match="unknown shear_flow option 'blobs'"):
        shear_flow.options(SimConfig(options={"blobs": 3}))
    with pytest.raises(ConfigError, match="has 40 members, got 41"):
        shear_flow.options(SimConfig(ics_per_file=41))
    code, _, err = cli("simulate", "shear_flow", "--out", tmp_path / "x", "options={modes: [1, 2]}")
    assert code == 2 and "applies to ic_family 'random' only" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x" / "data").exists()


@pytest.mark.parametrize(
    ("like", "params", "name"),
    [
        ("shear_flow", {"Reynolds": 1e4, "Schmidt": 0.1}, "shear_flow_Reynolds_1e4_Schmidt_1e-1"),
        ("shear_flow", {"Reynolds": 5e5, "Schmidt": 1.0}, "shear_flow_Reynolds_5e5_Schmidt_1e0"),
        ("shear_flow", {"Reynolds": 1e5, "Schmidt": 2.0}, "shear_flow_Reynolds_1e5_Schmidt_2e0"),
        ("shear_flow", {"Reynolds": 1e4, "Schmidt": 10.0}, "shear_flow_Reynolds_1e4_Schmidt_1e1"),
        (
            "rayleigh_benard",
            {"Rayleigh": 1e6, "Prandtl": 0.1},
            "rayleigh_benard_Rayleigh_1e6_Prandtl_1e-1",
        ),
        (
            "rayleigh_benard",
            {"Rayleigh": 1e8, "Prandtl": 1.0},
            "rayleigh_benard_Rayleigh_1e8_Prandtl_1",
        ),
        (
            "rayleigh_benard",
            {"Rayleigh": 1e9, "Prandtl": 10.0},
            "rayleigh_benard_Rayleigh_1e9_Prandtl_10",
        ),
        (
            "active_matter",
            {"L": 10.0, "zeta": 11.0, "alpha": -2.0},
            "active_matter_L_10.0_zeta_11.0_alpha_-2.0",
        ),
    ],
)
def test_file_names_are_the_wells(like, params, name):
    assert file_stem(like, like, params) == name


def test_active_matter_parameters_keep_the_wells_order_whatever_the_config_says():
    cfg = SimConfig(
        system="active_matter",
        params={"alpha": [-1.0], "zeta": [3.0], "L": [10.0]},
        ics_per_file=1,
    )
    (task,) = plan(cfg)
    assert list(task.params) == ["L", "zeta", "alpha"]
    assert task.stem == "active_matter_L_10.0_zeta_3.0_alpha_-1.0"
    with pytest.raises(ConfigError, match="active_matter has no parameter 'beta'"):
        plan(SimConfig(system="active_matter", params={"L": [10.0], "zeta": [1.0], "beta": [1.0]}))


def _tree(path) -> dict:
    """Every group and dataset of a file: kind, shape, dtype and attributes (the optional,
    unread boundary `values` dataset is left out: The Well's format does not require it)."""
    out = {}
    with h5py.File(path) as h5:

        def visit(name, obj):
            if name.endswith("/values"):
                return
            attrs = {}
            for key, value in obj.attrs.items():
                value = np.asarray(value)
                attrs[key] = (value.dtype.kind, value.astype(str).tolist())
            kind = (
                ("dataset", obj.shape, obj.dtype.str)
                if isinstance(obj, h5py.Dataset)
                else ("group",)
            )
            out[name] = (kind, attrs)

        visit("/", h5)
        h5.visititems(visit)
    return out


@pytest.mark.parametrize("like", ["active_matter", "shear_flow", "rayleigh_benard"])
def test_physreps_files_have_the_wells_structure(like, tmp_path):
    """A file written by physrep and one written in The Well's layout by raw h5py compare equal
    in names, structure, attributes and parameter order; `inspect` summarises them alike."""
    theirs = write_real_layout(tmp_path / "well", like, n_traj=1, n_steps=4)
    spec = REAL[like]
    layout = layout_like(like, steps=4)
    ours = tmp_path / "physrep" / like
    rng = np.random.default_rng(0)
    for split in ("train", "valid", "test"):
        data = {
            f.name: rng.standard_normal(layout.field_shape(f, 1)).astype(np.float32)
            for f in layout.fields
        }
        stem = file_stem(like, like, spec["params"])
        write_well_file(ours / "data" / split / f"{stem}.hdf5", layout, spec["params"], data)
    ours_files = sorted(p.relative_to(ours) for p in ours.rglob("*.hdf5"))
    assert ours_files == sorted(p.relative_to(theirs) for p in theirs.rglob("*.hdf5"))
    mine, real = _tree(ours / ours_files[0]), _tree(theirs / ours_files[0])
    assert mine.keys() == real.keys()
    for name in real:
        (kind_a, attrs_a), (kind_b, attrs_b) = mine[name], real[name]
        assert kind_a == kind_b, name
        assert attrs_a.keys() == attrs_b.keys(), name
        for key in attrs_b:
            kind, value = attrs_b[key]
            if kind == "f":  # parameters as root attributes: equal in float32
                assert np.allclose(np.float64(attrs_a[key][1]), np.float64(value)), (name, key)
            else:
                assert attrs_a[key] == attrs_b[key], (name, key)
    summary = [describe(inspect_dataset(root)).splitlines()[1:] for root in (ours, theirs)]
    assert summary[0] == summary[1]
    if like == "active_matter":
        assert "D (t2, symmetric), E (t2, symmetric)" in "\n".join(summary[0])
        with h5py.File(ours / ours_files[0]) as h5:
            assert list(h5["scalars"].attrs["field_names"]) == ["L", "zeta", "alpha"]
            assert list(h5.attrs["simulation_parameters"]) == ["L", "zeta", "alpha"]


def test_first_frame_skips_the_initial_condition(synthetic_dataset):
    root = synthetic_dataset()  # 24 steps per trajectory
    every = WellWindows(root, "train", WindowConfig(frames=4, stride=4))
    later = WellWindows(root, "train", WindowConfig(frames=4, stride=4, first_frame=1))
    assert every.window_start.min() == 0 and later.window_start.min() == 1
    assert set(later.window_start) == {s + 1 for s in every.window_start if s + 1 + 8 <= 24}
    assert np.allclose(later[0]["context"][:, 0], every[0]["context"][:, 1])
    with pytest.raises(DataError, match="too short .* from frame 17"):
        WellWindows(root, "train", WindowConfig(frames=4, first_frame=17))


def _rbc_config(**options) -> SimConfig:
    return SimConfig(
        system="rayleigh_benard",
        resolution=[32, 16],
        steps=2,
        dt_out=0.25,
        params={"Rayleigh": [1e8], "Prandtl": [1.0]},
        ics_per_file=1,
        options=options,
    )


def test_rayleigh_benard_well_family_is_the_wells_balanced_grid_and_noise():
    pytest.importorskip("dedalus.public")
    import dedalus.public as d3

    from physrep.sim import rayleigh_benard as rb

    opts = rb.options(SimConfig(system="rayleigh_benard", ics_per_file=50))
    ics = rb.initial_conditions(opts, list(range(50)))
    pairs = {(d, s) for d in (0.2, 0.4, 0.6, 0.8, 1.0) for s in range(40, 50)}
    assert {(d, s) for d, s, _ in ics} == pairs and not any(f for *_, f in ics)

    cfg = _rbc_config(ic_family="well")
    ((delta_b0, noise_seed, _),) = rb.initial_conditions(rb.options(cfg), plan(cfg)[0].seeds)
    out = rb.simulate(cfg, plan(cfg)[0].params, list(plan(cfg)[0].seeds))
    # The Well's generator, independently: Dedalus' seeded normal noise on the grid, damped at
    # the walls, over the linear profile.
    coords = d3.CartesianCoordinates("x", "z")
    dist = d3.Distributor(coords, dtype=np.float64)
    xb = d3.RealFourier(coords["x"], size=32, bounds=(0, 4), dealias=3 / 2)
    zb = d3.ChebyshevT(coords["z"], size=16, bounds=(0, 1), dealias=3 / 2)
    b = dist.Field(name="b", bases=(xb, zb))
    b.fill_random("g", seed=noise_seed, distribution="normal", scale=1e-3)
    _, z = dist.local_grids(xb, zb)
    b["g"] *= z * (1 - z)
    b["g"] += delta_b0 * (1 - z)
    assert np.abs(out["buoyancy"][0, 0] - b["g"]).max() < 1e-7  # float32 storage
    assert float(np.abs(out["velocity"][0, 0]).max()) == 0.0


def test_rayleigh_benard_clips_a_collapsing_time_step_where_asked(caplog):
    """Ra = 1e8 with a CFL step forced far below `min_dt`: `clip` holds the step at min_dt and
    reaches the first output; `abort` (physrep's default) stops with a one-line reason."""
    pytest.importorskip("dedalus.public")
    from physrep.sim import rayleigh_benard as rb

    # Dedalus' CFL keeps its first step (0.05) for two iterations, then asks for ~1e-9 x the
    # grid-crossing time; it may halve the step at most, to 0.025, which is below min_dt.
    squeeze = {"cfl_safety": 1e-9, "cfl_cadence": 1, "max_dt": 0.05, "min_dt": 0.04}
    clipped = _rbc_config(ic_family="well", min_dt_action="clip", **squeeze)
    task = plan(clipped)[0]
    with caplog.at_level("WARNING"):
        out = rb.simulate(clipped, task.params, list(task.seeds))
    assert out["buoyancy"].shape == (1, 2, 32, 16) and np.isfinite(out["velocity"]).all()
    assert np.abs(out["velocity"][0, 1]).max() > 0  # the flow has started moving
    assert "held at min_dt = 0.04 on 4 steps" in caplog.text
    aborted = _rbc_config(ic_family="well", **squeeze)
    with pytest.raises(
        SimulationError, match="time step collapsed to 0.025 at t = 0.1 .min_dt 0.04"
    ):
        rb.simulate(aborted, task.params, list(task.seeds))
