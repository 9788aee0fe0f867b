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
