"""`physrep estimate`: a benchmark's saved probes turn new Well-format files into parameter
estimates with intervals, equal to the benchmark's own predictions on the same files; files
without their parameters work; files unlike the training data are refused in one line."""

import csv
import shutil

import h5py
import numpy as np
import pytest

from physrep.data.synthetic import SyntheticConfig, write_synthetic
from physrep.eval.metrics import per_trajectory
from physrep.eval.predictions import prediction_file
from physrep.eval.saved import load_probe


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _h5_files(folder):
    return sorted(p for p in folder.iterdir() if p.suffix in (".h5", ".hdf5"))


def _test_files(tiny_run):
    return _h5_files(tiny_run / "shear_flow" / "dataset" / "data" / "test")


def test_estimates_equal_the_benchmarks_trajectory_predictions(tiny_run, cli, tmp_path):
    test_dir = tiny_run / "shear_flow" / "dataset" / "data" / "test"
    out = tmp_path / "estimates.csv"
    code, printed, err = cli("estimate", tiny_run, test_dir, "--probe", "attentive", "--out", out)
    assert code == 0, err
    rows = _read_csv(out)
    saved = load_probe(next((tiny_run / "shear_flow" / "probes" / "saved").glob("jepa-s0-att*")))
    kept = np.load(prediction_file(tiny_run, "shear_flow", "jepa", "attentive", "test", 0, 0))
    expected = saved.targets.decode(
        per_trajectory(saved.targets.encode(kept["pred"]), kept["trajectory"])
    )
    true = saved.targets.decode(
        per_trajectory(saved.targets.encode(kept["true"]), kept["trajectory"])
    )
    assert len(rows) == len(expected)
    for row, want, truth in zip(rows, expected, true):
        for i, name in enumerate(saved.targets.names):
            assert float(row[name]) == pytest.approx(want[i], rel=1e-5)
            assert float(row[f"{name}_low"]) < float(row[name]) < float(row[f"{name}_high"])
            assert float(row[f"{name}_true"]) == pytest.approx(truth[i], rel=1e-9)
    assert "90% interval" in printed and "true" in printed


def _strip_parameters(path):
    """What a new observation looks like: no parameter attributes or scalars."""
    with h5py.File(path, "r+") as h5:
        names = [
            n.decode() if isinstance(n, bytes) else n for n in h5.attrs["simulation_parameters"]
        ]
        for name in names:
            del h5.attrs[name]
            del h5["scalars"][name]
        empty = np.array([], dtype=h5py.string_dtype())
        h5.attrs["simulation_parameters"] = empty
        h5["scalars"].attrs["field_names"] = empty


def test_a_file_without_its_parameters_gets_the_same_estimates(tiny_run, cli, tmp_path):
    stated = _test_files(tiny_run)[0]
    bare = tmp_path / stated.name
    shutil.copy(stated, bare)
    _strip_parameters(bare)
    code, _, err = cli("estimate", tiny_run, stated, "--out", tmp_path / "a.csv")
    assert code == 0, err
    code, printed, err = cli("estimate", tiny_run, bare, "--out", tmp_path / "b.csv")
    assert code == 0, err
    a, b = _read_csv(tmp_path / "a.csv"), _read_csv(tmp_path / "b.csv")
    assert [r["Reynolds"] for r in a] == [r["Reynolds"] for r in b]
    assert all(r["Reynolds_true"] == "" for r in b) and "true" not in printed
    assert all(float(r["Schmidt_low"]) < float(r["Schmidt_high"]) for r in b)


def _reorder_fields(path):
    with h5py.File(path, "r+") as h5:
        names = list(h5["t0_fields"].attrs["field_names"])
        h5["t0_fields"].attrs["field_names"] = np.array(names[::-1], dtype=h5py.string_dtype())


def _drop_a_field(path):
    with h5py.File(path, "r+") as h5:
        name = h5["t0_fields"].attrs["field_names"][0]
        del h5["t0_fields"][name.decode() if isinstance(name, bytes) else name]


@pytest.mark.parametrize(
    "damage, says",
    [
        (_drop_a_field, "listed in field_names but missing"),
        (_reorder_fields, "order matters"),
        ("grid", "grid, but the encoder was trained on"),
        ("short", "its windows need at least"),
    ],
)
def test_files_unlike_the_training_data_are_refused_in_one_line(
    tiny_run, cli, tmp_path, damage, says
):
    if callable(damage):
        path = tmp_path / "bad.h5"
        shutil.copy(_test_files(tiny_run)[0], path)
        damage(path)
    else:
        made = SyntheticConfig(
            like="shear_flow",
            resolution=[16, 16] if damage == "grid" else None,
            steps=6 if damage == "short" else 24,
            trajectories_per_file=3,
        )
        written = write_synthetic(tmp_path / "other", made)
        path = _h5_files(written / "data" / "test")[0]
    code, _, err = cli("estimate", tiny_run, path)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert says in lines[0] and path.name in lines[0], lines[0]
