"""The writer produces every part of The Well's schema, and stats.yaml matches numpy."""

import h5py
import numpy as np
import pytest
import yaml

from physrep.data.well_datasets import layout_like
from physrep.data.wellformat import (
    Field,
    WellLayout,
    finalize_dataset,
    split_counts,
    write_split_files,
    write_well_file,
)
from physrep.errors import DataError


def small_layout() -> WellLayout:
    return WellLayout(
        dataset_name="my_system",
        coords={"x": np.linspace(0, 1, 8, endpoint=False), "y": np.linspace(0, 2, 6)},
        time=np.arange(5) * 0.5,
        boundaries={"x": "periodic", "y": "wall_dirichlet"},
        fields=(Field("b", 0), Field("u", 1), Field("S", 2)),
    )


def random_data(layout: WellLayout, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        f.name: rng.normal(f.order, 1 + f.order, layout.field_shape(f, n)).astype(np.float32)
        for f in layout.fields
    }


def test_file_has_every_schema_element(tmp_path):
    layout = small_layout()
    path = write_well_file(
        tmp_path / "f.hdf5", layout, {"Ra": 1e6, "Pr": 2.0}, random_data(layout, 3)
    )
    with h5py.File(path) as f:
        assert f.attrs["dataset_name"] == "my_system" and f.attrs["grid_type"] == "cartesian"
        assert f.attrs["n_spatial_dims"] == 2 and f.attrs["n_trajectories"] == 3
        assert list(f.attrs["simulation_parameters"]) == ["Ra", "Pr"] and f.attrs["Ra"] == 1e6
        assert set(f) == {
            "dimensions",
            "boundary_conditions",
            "scalars",
            "t0_fields",
            "t1_fields",
            "t2_fields",
        }
        assert list(f["dimensions"].attrs["spatial_dims"]) == ["x", "y"]
        assert (
            f["dimensions/time"].attrs["time_varying"]
            and not f["dimensions/time"].attrs["sample_varying"]
        )
        assert (
            not f["dimensions/x"].attrs["time_varying"]
            and not f["dimensions/x"].attrs["sample_varying"]
        )
        assert set(f["boundary_conditions"]) == {"x_periodic", "y_wall_dirichlet"}
        wall = f["boundary_conditions/y_wall_dirichlet"]
        assert wall.attrs["bc_type"] == "WALL" and list(wall.attrs["associated_dims"]) == ["y"]
        np.testing.assert_array_equal(wall["mask"][()], [True, False, False, False, False, True])
        assert list(f["scalars"].attrs["field_names"]) == ["Ra", "Pr"]
        assert f["scalars/Pr"].shape == () and not f["scalars/Pr"].attrs["sample_varying"]
        assert f["t1_fields/u"].shape == (3, 5, 8, 6, 2) and f["t2_fields/S"].shape == (
            3,
            5,
            8,
            6,
            2,
            2,
        )
        assert f["t0_fields/b"].dtype == np.float32
        assert list(f["t1_fields/u"].attrs["dim_varying"]) == [True, True]
        assert f["t0_fields/b"].attrs["sample_varying"] and f["t0_fields/b"].attrs["time_varying"]


def test_writer_refuses_bad_arrays_and_leaves_nothing(tmp_path):
    layout = small_layout()
    data = random_data(layout, 2)
    data["u"] = data["u"][..., :1]
    with pytest.raises(
        DataError, match=r"field 'u' has shape \(2, 5, 8, 6, 1\), expected \(2, 5, 8, 6, 2\)"
    ):
        write_well_file(tmp_path / "bad.hdf5", layout, {"Ra": 1.0}, data)
    data = random_data(layout, 2)
    data["b"][0, 1, 2, 3] = np.nan
    with pytest.raises(DataError, match="field 'b' holds NaN"):
        write_well_file(tmp_path / "nan.hdf5", layout, {"Ra": 1.0}, data)
    assert list(tmp_path.iterdir()) == []


def test_split_counts_follow_the_well():
    assert split_counts(40) == {"train": 32, "valid": 4, "test": 4}
    assert split_counts(10) == {"train": 8, "valid": 1, "test": 1}
    assert split_counts(5) == {"train": 3, "valid": 1, "test": 1}
    assert split_counts(2) == {"train": 2, "valid": 0, "test": 0}


def test_stats_match_numpy_over_the_train_split(tmp_path):
    layout = small_layout()
    trains = []
    for i, ra in enumerate([1e5, 1e6]):
        data = random_data(layout, 10, seed=i)
        write_split_files(tmp_path, f"sys_Ra_{ra:g}", layout, {"Ra": ra}, data)
        trains.append({k: v[:8] for k, v in data.items()})  # the first 8 go to train
    finalize_dataset(tmp_path)
    stats = yaml.safe_load((tmp_path / "stats.yaml").read_text())
    assert set(stats) == {"mean", "std", "rms", "mean_delta", "std_delta", "rms_delta"}
    for f in layout.fields:
        x = np.concatenate([t[f.name] for t in trains]).astype(np.float64)
        axes = tuple(range(x.ndim - f.order))
        d = np.diff(x, axis=1)
        np.testing.assert_allclose(stats["mean"][f.name], x.mean(axes), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(stats["std"][f.name], x.std(axes), rtol=1e-10)
        np.testing.assert_allclose(stats["rms"][f.name], np.sqrt((x**2).mean(axes)), rtol=1e-10)
        np.testing.assert_allclose(stats["mean_delta"][f.name], d.mean(axes), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(stats["std_delta"][f.name], d.std(axes), rtol=1e-10)
    assert np.shape(stats["mean"]["S"]) == (2, 2) and np.shape(stats["std"]["u"]) == (2,)
    meta = yaml.safe_load((tmp_path / "my_system.yaml").read_text())
    assert meta["n_files"] == {"train": 2, "valid": 2, "test": 2} and meta[
        "spatial_resolution"
    ] == [8, 6]


def test_chebyshev_wall_coordinates_lie_inside_the_walls():
    y = layout_like("rayleigh_benard", [16, 12]).coords["y"]
    assert 0 < y[0] < y[1] and y[-1] < 1 and np.diff(y)[0] < np.diff(y)[5]
