"""The benchmark's stage bookkeeping: when a stage's output may be reused, and what it says.

A stage folder (a simulated dataset, a pretraining run) holds `config.yaml`, the resolved
config that made it, written before its first output; a pretraining run's `run.json` also
holds the fingerprint of the data it read. A rerun reuses the folder only when both still
match. When one does not, the benchmark refuses in one line naming the first key that
differs, before it computes anything; `--rerun` recomputes exactly the stages that differ,
and everything downstream follows, because embeddings, probes and fine-tuning runs are
cached under hashes of their encoder's bytes and their data's fingerprint.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import suppress
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from physrep.config import from_dict, read_yaml, to_dict
from physrep.errors import ConfigError, PhysrepError


class StaleStage(PhysrepError):
    """A stage's output was made from other inputs than the current config asks for."""


def first_difference(old: Any, new: Any, prefix: str = "") -> str | None:
    """The dotted key of the first value that differs between two plain configs."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            found = first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if old == new else prefix.rstrip(".")


def _lookup(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = config.get(part) if isinstance(config, dict) else None
    return config


def stale_reason(folder: Path, config: Any, fingerprint: str | None = None) -> str | None:
    """Why `folder` may not be reused for `config` (and data `fingerprint`), or None if it may.

    A folder without a record is not stale: the stage resumes or starts there (its own code
    refuses folders it did not make)."""
    record = folder / "config.yaml"
    if not record.is_file():
        return None
    try:
        old = read_yaml(record)
    except ConfigError:
        return "its config.yaml is unreadable"
    new = config
    if is_dataclass(config):  # read the record as the class reads it: keys added since take
        new = to_dict(config)  # defaults; one removed or retyped is compared as recorded
        with suppress(ConfigError):
            old = to_dict(from_dict(type(config), old))
    key = first_difference(old, new)
    if key is not None:
        return f"'{key}' was {_lookup(old, key)!r}, the config now says {_lookup(new, key)!r}"
    if fingerprint is not None:
        try:
            made_from = json.loads((folder / "run.json").read_text())["data"]["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            return "its run.json does not record the data it was made from"
        if made_from != fingerprint:
            return "the dataset it was made from has changed"
    return None


def check_stage(folder: Path, config: Any, rerun: bool, fingerprint: str | None = None) -> bool:
    """True when `folder` holds a stale stage that `rerun` allows to recompute (the caller
    clears it); raises StaleStage naming the difference when `rerun` is not set."""
    reason = stale_reason(folder, config, fingerprint)
    if reason is None:
        return False
    if not rerun:
        raise StaleStage(
            f"made from other inputs ({reason}); pass --rerun to recompute the stages that "
            "changed, or choose another --out",
            folder,
        )
    return True


def clear(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)


class Stage:
    """One stage of a benchmark: timed, and closed with its one-line outcome.

    The stage's own progress bar (tqdm, `leave=False`) shows while it runs; then one line,
    `[dataset] stage: outcome (seconds)`. A stage that found its output marks itself reused.
    """

    def __init__(self, log: list[dict], dataset: str, name: str, echo: bool = True):
        self.log, self.dataset, self.name, self.echo = log, dataset, name, echo
        self.reused, self.outcome = False, "done"
        self.timed = True  # False: the work was handed elsewhere, and is recorded when done

    def reuse(self, outcome: str = "reused") -> None:
        self.reused, self.outcome = True, outcome

    def __enter__(self) -> Stage:
        self.start = time.perf_counter()
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is None and self.timed:
            self.record(time.perf_counter() - self.start)

    def record(self, seconds: float) -> None:
        """Log the stage as done, `seconds` long."""
        self.log.append(
            {
                "dataset": self.dataset,
                "stage": self.name,
                "seconds": round(seconds, 2),
                "reused": self.reused,
            }
        )
        # the one-line outcome is the run's log: it prints with or without progress bars (and
        # once per job: `echo` is off on a launcher's other ranks)
        if self.echo:
            tqdm.write(f"[{self.dataset}] {self.name}: {self.outcome} ({seconds:.1f} s)")


def merge_timings(
    previous: list[dict], current: list[dict], keep_others: bool = False
) -> list[dict]:
    """This run's stage log, where a reused stage keeps the seconds it took when it was
    computed (so timings.json and the report say what a stage costs, not what reading it
    cost); `reused` says what this run did. With `keep_others` (a run of some datasets into
    a folder that holds others) the other datasets' entries stay, as their rows do."""
    before = {(t["dataset"], t["stage"]): t["seconds"] for t in previous}
    ran = {t["dataset"] for t in current}
    kept = [t for t in previous if t["dataset"] not in ran] if keep_others else []
    return kept + [
        {**t, "seconds": before.get((t["dataset"], t["stage"]), t["seconds"])} if t["reused"] else t
        for t in current
    ]


def summary(timings: list[dict]) -> str:
    """One line: how many stages ran, and how many were reused."""
    reused = sum(t["reused"] for t in timings)
    if reused == len(timings):
        return f"reused every stage ({reused} of {reused}): nothing changed"
    return f"ran {len(timings) - reused} stages, reused {reused}"
