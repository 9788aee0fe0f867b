"""Every kind of bad input gives one clear line naming the file and the problem, and exit 2."""

import pathlib
import shutil

import h5py
import numpy as np
import pytest
import torch

from physrep.cli import main
from physrep.config import load_config, preset_path
from physrep.data.synthetic import SyntheticConfig, write_synthetic
from physrep.data.windows import WellWindows, WindowConfig
from physrep.errors import DataError
from physrep.train import PretrainConfig, export_initial


@pytest.fixture
def dataset(synthetic_dataset, tmp_path):
    """A private, writable copy of a valid dataset, to break."""
    root = tmp_path / "ds"
    shutil.copytree(synthetic_dataset("shear_flow"), root)
    return root


def first_train_file(root):
    return sorted((root / "data" / "train").glob("*.hdf5"))[0]


def assert_one_line_error(cli, args, *needles):
    code, _, err = cli(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("physrep: error: "), err
    for needle in needles:
        assert str(needle) in lines[0], lines[0]
    assert "Traceback" not in err


def test_missing_folder(cli, tmp_path):
    assert_one_line_error(
        cli, ["inspect", tmp_path / "nowhere"], tmp_path / "nowhere", "no such dataset folder"
    )


def test_folder_without_data(cli, tmp_path):
    assert_one_line_error(cli, ["inspect", tmp_path], tmp_path, "no 'data/' folder")


def test_unknown_split(cli, dataset):
    assert_one_line_error(
        cli,
        ["inspect", dataset, "--split", "training"],
        "unknown split 'training'",
        "train, valid, test",
    )


def test_empty_split(cli, dataset):
    for f in (dataset / "data" / "valid").glob("*"):
        f.unlink()
    assert_one_line_error(cli, ["inspect", dataset], dataset / "data" / "valid", "no .hdf5 files")


def test_truncated_file(cli, dataset):
    path = first_train_file(dataset)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    assert_one_line_error(cli, ["inspect", dataset], path, "truncated or corrupt")


def test_not_hdf5(cli, dataset):
    path = first_train_file(dataset)
    path.write_text("this is not HDF5\n")
    assert_one_line_error(cli, ["inspect", dataset], path, "not a readable HDF5 file")


def test_missing_group(cli, dataset):
    path = first_train_file(dataset)
    with h5py.File(path, "a") as f:
        del f["t1_fields"]
    assert_one_line_error(cli, ["inspect", dataset], path, "missing group '/t1_fields'")


def test_missing_root_attribute(cli, dataset):
    path = first_train_file(dataset)
    with h5py.File(path, "a") as f:
        del f.attrs["n_trajectories"]
    assert_one_line_error(
        cli, ["inspect", dataset], path, "missing root attribute 'n_trajectories'"
    )


def test_missing_parameter_scalar(cli, dataset):
    path = first_train_file(dataset)
    with h5py.File(path, "a") as f:
        del f["scalars/Schmidt"]
    assert_one_line_error(cli, ["inspect", dataset], path, "'Schmidt' has no dataset in /scalars")


def test_wrong_field_shape(cli, dataset):
    path = first_train_file(dataset)
    with h5py.File(path, "a") as f:
        shape = f["t0_fields/tracer"].shape
        del f["t0_fields/tracer"]
        ds = f["t0_fields"].create_dataset(
            "tracer", data=np.zeros((shape[0], shape[1] - 1, *shape[2:]), np.float32)
        )
        ds.attrs.update({"dim_varying": [True, True], "sample_varying": True, "time_varying": True})
    assert_one_line_error(
        cli,
        ["inspect", dataset],
        path,
        "field '/t0_fields/tracer' has shape (8, 23, 16, 16), expected (8, 24, 16, 16)",
    )


def test_wrong_boundary_mask(cli, dataset):
    path = first_train_file(dataset)
    with h5py.File(path, "a") as f:
        del f["boundary_conditions/y_periodic/mask"]
        f["boundary_conditions/y_periodic"].create_dataset("mask", data=np.ones(5, bool))
    assert_one_line_error(cli, ["inspect", dataset], path, "has shape (5,), expected (16,)")


def test_mismatched_resolution(cli, dataset, tmp_path):
    other = write_synthetic(
        tmp_path / "coarse", SyntheticConfig(resolution=[8, 8], steps=24, trajectories_per_file=2)
    )
    odd = sorted((other / "data" / "train").glob("*.hdf5"))[-1]
    target = dataset / "data" / "train" / "zz_coarse.hdf5"
    shutil.copy(odd, target)
    assert_one_line_error(cli, ["inspect", dataset], target, "resolution 8x8 differs from 16x16")


def test_nan_in_field(cli, dataset):
    path = first_train_file(dataset)
    with h5py.File(path, "a") as f:
        f["t1_fields/velocity"][2, 5, 3, 3, 1] = np.nan
    assert_one_line_error(
        cli,
        ["inspect", dataset],
        path,
        "'/t1_fields/velocity' has 1 NaN/inf values (first at trajectory 2, step 5)",
    )


def test_nan_found_when_a_window_is_read(dataset):
    path = first_train_file(dataset)
    with h5py.File(path, "a") as f:
        f["t0_fields/pressure"][0, 1, 0, 0] = np.inf
    windows = WellWindows(
        dataset, "train", WindowConfig(frames=4, stride=4)
    )  # no value scan at start-up
    windows[1]  # steps 4-11 of trajectory 0: clean
    with pytest.raises(
        DataError,
        match=r"NaN/inf values in window 0 \(.*Reynolds_1e4_Schmidt_1e-1.hdf5 trajectory 0, steps 0\+\)",
    ):
        windows[0]


def test_missing_stats(cli, dataset):
    (dataset / "stats.yaml").unlink()
    assert_one_line_error(
        cli, ["inspect", dataset], dataset / "stats.yaml", "stats.yaml is missing"
    )
    with pytest.raises(DataError, match="stats.yaml is missing"):
        WellWindows(dataset, "train", WindowConfig(frames=4))
    WellWindows(dataset, "train", WindowConfig(frames=4, normalization="none"))  # not needed then


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("mean: [unclosed\n", "malformed YAML"),
        ("- a list\n", "expected a mapping"),
        ("mean: {tracer: 0}\n", "missing section 'std'"),
        (None, "section 'std' has no entry for field 'velocity'"),
        (None, "'mean.tracer' is not numeric"),
    ],
)
def test_malformed_stats(cli, dataset, content, problem):
    import yaml

    path = dataset / "stats.yaml"
    if content is None:
        stats = yaml.safe_load(path.read_text())
        if "velocity" in problem:
            del stats["std"]["velocity"]
        else:
            stats["mean"]["tracer"] = "zero"
        content = yaml.safe_dump(stats)
    path.write_text(content)
    assert_one_line_error(cli, ["inspect", dataset], path, problem)


def copy_trajectory(src, i, dst, j):
    """Overwrite trajectory `j` of file `dst` with trajectory `i` of file `src`, every field."""
    with h5py.File(src, "r") as a:
        fields = {
            f"{g}/{n}": a[g][n][i] for g in ("t0_fields", "t1_fields", "t2_fields") for n in a[g]
        }
    with h5py.File(dst, "a") as b:
        for where, values in fields.items():
            b[where][j] = values


def test_trajectory_in_two_splits(cli, dataset):
    train = first_train_file(dataset)
    test = dataset / "data" / "test" / train.name
    copy_trajectory(train, 3, test, 0)
    assert_one_line_error(
        cli,
        ["inspect", dataset],
        f"{test}: trajectory 0 is byte-identical to trajectory 3 of data/train/{train.name}",
        "(a train/test leak: test scores would be inflated)",
    )
    assert cli("inspect", dataset, "--no-scan")[0] == 0  # the opt-out skips every value check


def test_file_copied_into_another_split(cli, dataset):
    train = first_train_file(dataset)
    with h5py.File(train) as f:
        n_traj = int(f.attrs["n_trajectories"])
    shutil.copy(train, dataset / "data" / "valid" / "copy.hdf5")
    assert_one_line_error(
        cli,
        ["inspect", dataset],
        dataset / "data" / "valid" / "copy.hdf5",
        f"trajectory 0 is byte-identical to trajectory 0 of data/train/{train.name}",
        f"train/valid leak: valid scores would be inflated; {n_traj} trajectories in all",
    )


def test_trajectory_repeated_within_a_split_is_a_warning(cli, dataset):
    train = first_train_file(dataset)
    copy_trajectory(train, 0, train, 2)
    code, out, err = cli("inspect", dataset)
    assert code == 0, err
    assert (
        f"warning     train repeats trajectories (1 copies; e.g. trajectory 2 of {train.name} "
        f"is byte-identical to trajectory 0 of {train.name})"
    ) in out.splitlines()


@pytest.fixture(scope="module")
def encoder_file(synthetic_dataset, tmp_path_factory):
    """A real exported encoder (the tiny preset, untrained), to break copies of."""
    cfg = load_config(PretrainConfig, preset_path("pretrain", "tiny"), [])
    out = tmp_path_factory.mktemp("encoder") / "jepa"
    return export_initial(cfg, synthetic_dataset("shear_flow"), out)


def truncated(good, bad):
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) * 9 // 10])  # an interrupted copy: no zip directory


def random_bytes(good, bad):
    bad.write_bytes(np.random.default_rng(0).bytes(4096))


def foreign_pickle(good, bad):
    torch.save({"format": "physrep-encoder/1", "where": pathlib.PurePosixPath("/")}, bad)


def missing_weight(good, bad):
    payload = torch.load(good, weights_only=True)
    del payload["state_dict"]["stem.weight"]
    torch.save(payload, bad)


def no_arguments(good, bad):
    payload = torch.load(good, weights_only=True)
    del payload["kwargs"]
    torch.save(payload, bad)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (truncated, "damaged or of another kind: RuntimeError: PytorchStreamReader failed"),
        (random_bytes, "damaged or of another kind: UnpicklingError: Unsupported operand"),
        (foreign_pickle, "UnpicklingError: Unsupported global: GLOBAL pathlib.PurePosixPath"),
        (missing_weight, "weights do not fit ConvNeXt3D: 1 missing, e.g. 'stem.weight'"),
        (no_arguments, "damaged physrep encoder file (no 'kwargs' entry)"),
    ],
)
def test_damaged_encoder(cli, encoder_file, synthetic_dataset, tmp_path, damage, problem):
    bad = tmp_path / "encoder.pt"
    damage(encoder_file, bad)
    args = ["embed", bad, "--data", synthetic_dataset("shear_flow")]
    assert_one_line_error(cli, args, bad, problem)
    _, _, err = cli(*args)
    message = err.strip().removeprefix(f"physrep: error: {bad}: ")
    assert len(message) <= 200, message  # a short line, not torch's essay


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(DataError, match="no such dataset folder"):
        main(["inspect", str(tmp_path / "nowhere"), "--debug"])
