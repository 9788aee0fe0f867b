"""Shared fixtures: small real datasets written to temporary folders, and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from physrep.cli import main
from physrep.data.synthetic import SyntheticConfig, write_synthetic


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    """Build (once per session) a small synthetic dataset in a given Well layout."""
    made: dict[tuple, Path] = {}

    def make(like: str = "shear_flow", **overrides) -> Path:
        key = (like, repr(sorted(overrides.items(), key=str)))
        if key not in made:
            cfg = SyntheticConfig(like=like, **{"resolution": [16, 16], "steps": 24, **overrides})
            made[key] = write_synthetic(tmp_path_factory.mktemp(like), cfg)
        return made[key]

    return make


@pytest.fixture
def cli(capsys):
    """Run `physrep ARGS...`; return (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def written_velocity(tmp_path):
    """Simulate a one-file config through the real runner and writer; return the velocity
    (float32, as stored) read back from the written HDF5 file."""
    import h5py

    from physrep.sim.runner import simulate_dataset

    def run(cfg):
        simulate_dataset(cfg, tmp_path, progress=False)
        (path,) = (tmp_path / "data").rglob("*.hdf5")
        with h5py.File(path) as h5:
            return h5["t1_fields/velocity"][...]

    return run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The `tiny` benchmark, run once per session (a real simulation, every method)."""
    out = tmp_path_factory.mktemp("bench")
    assert main(["benchmark", "--preset", "tiny", "--out", str(out), "--no-progress"]) == 0
    return out
