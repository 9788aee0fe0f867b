"""What every run records next to its outputs: resolved config, seed, versions, data fingerprint.

A result is only worth keeping if it can be traced back to exactly what produced it.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from physrep.atomic import write_text_atomic
from physrep.config import save_config, to_dict
from physrep.errors import PhysrepError

_PACKAGES = ("physrep", "torch", "pytorch-lightning", "the-well", "h5py", "numpy")
_FULL_HASH_LIMIT = 1 << 30  # hash every byte of datasets up to 1 GiB, sample larger ones
_SAMPLE_BLOCK = 1 << 16
_SAMPLES_PER_FILE = 32


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    commit = _git_commit()
    if commit:
        found["physrep_git"] = commit
    return found


def data_fingerprint(dataset_dir: str | Path) -> str:
    """Content hash of a Well-format folder (HDF5 files and stats.yaml).

    Every byte is hashed when the folder holds at most 1 GiB; above that, each file
    contributes its size and 32 evenly spaced 64 KiB blocks, so fingerprinting The Well's
    hundreds of GB stays a matter of seconds while any resized or rewritten file still changes it.
    """
    root = Path(dataset_dir)
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and (p.suffix in {".hdf5", ".h5"} or p.name == "stats.yaml")
    )
    full = sum(p.stat().st_size for p in files) <= _FULL_HASH_LIMIT
    digest = hashlib.sha256()
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.relative_to(root).as_posix()}\0{size}\0".encode())
        with path.open("rb") as f:
            if full:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            else:
                step = max(size // _SAMPLES_PER_FILE, 1)
                for offset in range(0, size, step):
                    f.seek(offset)
                    digest.update(f.read(_SAMPLE_BLOCK))
    return digest.hexdigest()[:16]


def write_run_record(
    out_dir: str | Path,
    config: Any,
    *,
    seed: int | None = None,
    data_dir: str | Path | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `config.yaml` (resolved config) and `run.json` (seed, versions, data, command)."""
    out_dir = Path(out_dir)
    save_config(config, out_dir / "config.yaml")
    record: dict[str, Any] = {
        "command": sys.argv,
        "seed": seed,
        "config": to_dict(config),
        "versions": versions(),
    }
    if data_dir is not None:
        record["data"] = {
            "path": str(Path(data_dir).resolve()),
            "fingerprint": data_fingerprint(data_dir),
        }
    record.update(extra or {})
    write_text_atomic(out_dir / "run.json", json.dumps(record, indent=2, default=str) + "\n")
    return record


def record_provenance(out_dir: str | Path, datasets: list[str], keep_others: bool) -> Path:
    """`provenance.json` of a benchmark folder: for each dataset, the command and physrep
    commit that made its rows, so per-dataset runs merged into one table stay traceable."""
    path = Path(out_dir) / "provenance.json"
    found: dict[str, Any] = {}
    if keep_others and path.is_file():
        try:
            found = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise PhysrepError(
                f"invalid JSON ({exc.msg}); delete it to start afresh", path
            ) from None
    made = {"command": shlex.join(sys.argv), "physrep_git": _git_commit()}
    found.update({name: made for name in datasets})
    write_text_atomic(path, json.dumps(found, indent=1, sort_keys=True) + "\n")
    return path


def _git(*args: str) -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _git_commit() -> str | None:
    """Short commit of the physrep checkout, '+dirty' when tracked files differ from it."""
    commit = _git("rev-parse", "--short", "HEAD")
    if not commit:
        return None
    return commit + "+dirty" if _git("status", "--porcelain", "--untracked-files=no") else commit
