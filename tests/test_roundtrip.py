"""Arrays written by physrep read back identically through the_well and physrep's windows."""

import numpy as np
import pytest
import torch
import yaml
from the_well.data import WellDataset
from the_well.data.normalization import ZScoreNormalization

from physrep.data.wellformat import Field, WellLayout, finalize_dataset, write_split_files
from physrep.data.windows import WellWindows, WindowConfig


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip")
    layout = WellLayout(
        dataset_name="custom_convection",  # not a registered Well name: needs path=
        coords={
            "x": np.linspace(0, 4, 12, endpoint=False),
            "y": 0.5 * (1 - np.cos(np.pi * (np.arange(8) + 0.5) / 8)),
        },
        time=0.25 * np.arange(10),
        boundaries={"x": "periodic", "y": "wall_dirichlet"},
        fields=(Field("buoyancy", 0), Field("velocity", 1), Field("D", 2)),
    )
    rng = np.random.default_rng(1)
    arrays = {}
    for ra in (1e6, 1e8):
        data = {
            f.name: (rng.normal(size=layout.field_shape(f, 10)) * (1 + f.order) + 3).astype(
                np.float32
            )
            for f in layout.fields
        }
        write_split_files(
            root, f"conv_Rayleigh_{ra:g}", layout, {"Rayleigh": ra, "Prandtl": 1.0}, data
        )
        arrays[ra] = data
    finalize_dataset(root)
    return root, arrays


def flat(data: dict, traj: int, steps: slice) -> np.ndarray:
    """(T, X, Y, C) in The Well's channel order: t0, then t1 components, then t2."""
    d = data["D"][traj, steps]
    parts = [
        data["buoyancy"][traj, steps][..., None],
        data["velocity"][traj, steps],
        d.reshape(*d.shape[:3], 4),
    ]
    return np.concatenate(parts, axis=-1)


def test_the_well_reads_the_raw_values_and_boundary_codes(written):
    root, arrays = written
    ds = WellDataset(
        path=str(root),
        well_split_name="train",
        n_steps_input=3,
        n_steps_output=2,
        return_grid=False,
    )
    assert ds.metadata.dataset_name == "custom_convection"
    assert ds.metadata.constant_scalar_names == ["Rayleigh", "Prandtl"]
    # index layout: file 0 (Ra=1e6), trajectory 1, start 4
    windows_per_traj = 10 - 5 + 1
    s = ds[1 * windows_per_traj + 4]
    np.testing.assert_array_equal(s["input_fields"].numpy(), flat(arrays[1e6], 1, slice(4, 7)))
    np.testing.assert_array_equal(s["output_fields"].numpy(), flat(arrays[1e6], 1, slice(7, 9)))
    assert s["boundary_conditions"].tolist() == [[2.0, 2.0], [0.0, 0.0]]  # x periodic, y wall
    assert s["constant_scalars"].tolist() == [1e6, 1.0]


def test_the_well_zscore_uses_the_written_stats(written):
    root, arrays = written
    stats = yaml.safe_load((root / "stats.yaml").read_text())
    ds = WellDataset(
        path=str(root),
        well_split_name="valid",
        n_steps_input=2,
        n_steps_output=1,
        use_normalization=True,
        normalization_type=ZScoreNormalization,
        return_grid=False,
    )
    got = ds[0]["input_fields"].numpy()
    mean = np.concatenate(
        [[stats["mean"]["buoyancy"]], stats["mean"]["velocity"], np.ravel(stats["mean"]["D"])]
    )
    std = np.concatenate(
        [[stats["std"]["buoyancy"]], stats["std"]["velocity"], np.ravel(stats["std"]["D"])]
    )
    expected = (flat(arrays[1e6], 8, slice(0, 2)) - mean) / std  # valid = trajectory 8 of the file
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    train_x = np.concatenate([flat(a, t, slice(None)) for a in arrays.values() for t in range(8)])
    np.testing.assert_allclose(mean, train_x.mean(axis=(0, 1, 2)), rtol=1e-5)


@pytest.mark.parametrize("normalization", ["none", "zscore", "rms"])
def test_physrep_windows_equal_the_well_values(written, normalization):
    root, arrays = written
    cfg = WindowConfig(frames=2, stride=3, normalization=normalization)
    windows = WellWindows(root, "train", cfg)
    kind = {"zscore": ZScoreNormalization, "none": None}.get(normalization)
    if normalization == "rms":
        from the_well.data.normalization import RMSNormalization as kind
    reference = WellDataset(
        path=str(root),
        well_split_name="train",
        n_steps_input=2,
        n_steps_output=2,
        use_normalization=kind is not None,
        normalization_type=kind,
        return_grid=False,
    )
    # 10 steps, windows of 2+2 every 3 steps: starts 0, 3, 6 -> 3 per trajectory, 16 trajectories
    assert len(windows) == 48
    for i in (0, 7, 47):
        f, s = windows.trajectories[windows.window_trajectory[i]]
        start = int(windows.window_start[i])
        ref = reference[f * 8 * 7 + s * 7 + start]
        item = windows[i]
        torch.testing.assert_close(
            item["context"], ref["input_fields"].permute(3, 0, 1, 2), rtol=1e-5, atol=1e-5
        )
        torch.testing.assert_close(
            item["target"], ref["output_fields"].permute(3, 0, 1, 2), rtol=1e-5, atol=1e-5
        )
    raw = WellWindows(root, "train", WindowConfig(frames=2, stride=3, normalization="none"))
    np.testing.assert_array_equal(
        raw[4]["context"].permute(1, 2, 3, 0).numpy(), flat(arrays[1e6], 1, slice(3, 5))
    )
