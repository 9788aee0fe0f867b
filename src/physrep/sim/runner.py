"""Run a parameter grid of simulations in parallel and write it as a Well-format dataset.

One task = one parameter combination = one Well file per split (its trajectories split
0.8/0.1/0.1, as The Well does). Tasks run in worker processes (one per core, one thread each:
these solvers scale better over runs than over threads), each worker writes its own files
atomically, and a rerun skips every task whose files are complete, so an interrupted
`physrep simulate` resumes where it stopped.
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physrep.config import from_dict, read_yaml, save_config, to_dict
from physrep.data.filecheck import inspect_file
from physrep.data.well_datasets import file_stem, ordered_params
from physrep.data.wellformat import OOD_SPLIT, finalize_dataset, split_counts, write_well_file
from physrep.errors import DataError, PhysrepError
from physrep.sim.base import SimConfig, SimulationError
from physrep.workers import init_worker

SYSTEMS = ("shear_flow", "rayleigh_benard", "active_matter")


@dataclass(frozen=True)
class Task:
    index: int
    params: dict[str, float]
    seeds: tuple[int, ...]
    stem: str
    held_out: bool
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)

    def outputs(self, root: Path) -> dict[Path, int]:
        """Files this task writes, with the trajectories each holds."""
        if self.held_out:
            return {root / "data" / OOD_SPLIT / f"{self.stem}.hdf5": len(self.seeds)}
        counts = split_counts(len(self.seeds), self.split)
        return {root / "data" / s / f"{self.stem}.hdf5": n for s, n in counts.items() if n}


def simulator(system: str):
    """The simulator module of `system` (imported lazily: Dedalus is an optional extra)."""
    if system not in SYSTEMS:
        raise PhysrepError(f"unknown system '{system}' (known: {', '.join(SYSTEMS)})")
    return importlib.import_module(f"physrep.sim.{system}")


def seed_key(cfg: SimConfig, combination: int, trajectory: int) -> list[int]:
    return [cfg.seed, trajectory] if cfg.shared_ics else [cfg.seed, combination, trajectory]


def plan(cfg: SimConfig) -> list[Task]:
    """Every parameter combination of the grid, with its trajectories' seeds.

    Parameters are taken in the order the system's Well files store them, and files are
    named as The Well names them. Seeds derive from (config seed, combination index,
    trajectory), or from (config seed, trajectory) with `shared_ics`, so any one file can be
    regenerated alone and adding trajectories never changes the existing ones.
    """
    name = cfg.dataset_name or cfg.system
    grid = ordered_params(cfg.system, cfg.params)
    tasks = []
    for i, combo in enumerate(itertools.product(*grid.values())):
        params = dict(zip(grid, combo))
        seeds = tuple(
            int(np.random.SeedSequence(seed_key(cfg, i, k)).generate_state(1)[0])
            for k in range(cfg.ics_per_file)
        )
        stem = file_stem(cfg.system, name, params)
        held = any(params[k] in values for k, values in cfg.holdout.items())
        tasks.append(Task(i, params, seeds, stem, held, tuple(cfg.split)))
    if not tasks:
        raise PhysrepError("the parameter grid is empty (set params: {name: [values]})")
    return tasks


def is_complete(task: Task, root: Path) -> bool:
    """All of the task's files exist, validate, and hold the expected trajectories."""
    for path, n_traj in task.outputs(root).items():
        if not path.is_file():
            return False
        try:
            info = inspect_file(path, scan_values=False)
        except DataError:
            return False
        if info.n_trajectories != n_traj:
            return False
    return True


def run_task(cfg_dict: dict, root: str, task: Task) -> str | None:
    """Worker: simulate one parameter combination and write its split files.

    Returns None on success, or the SimulationError's message for a blown-up run (so one
    failure does not stop the other tasks); any other exception is a bug and propagates.
    """
    cfg = from_dict(SimConfig, cfg_dict)
    module = simulator(cfg.system)
    layout = module.layout(cfg)
    try:
        data = module.simulate(cfg, task.params, list(task.seeds))
    except SimulationError as exc:
        return str(exc)
    begin = 0
    for path, n in task.outputs(Path(root)).items():
        part = {k: v[begin : begin + n] for k, v in data.items()}
        write_well_file(path, layout, task.params, part)
        begin += n
    return None


def _run_task_args(args: tuple) -> tuple[Task, str | None]:
    return args[2], run_task(*args)


def simulate_dataset(
    cfg: SimConfig, out: str | Path, workers: int = 1, progress: bool = True
) -> Path:
    """Simulate every task not yet complete under `out`, then write stats.yaml and run records.

    A blown-up trajectory stops its task (its files are never written); the other tasks
    finish, and the first failure is then raised naming its parameters and time.
    """
    from physrep.runinfo import write_run_record

    root = Path(out)
    # Fail fast on an unknown system, a missing optional dependency or a bad solver option.
    simulator(cfg.system).options(cfg)
    _check_same_config(root, cfg)
    tasks = plan(cfg)
    todo = [t for t in tasks if not is_complete(t, root)]
    n_traj = sum(len(t.seeds) for t in todo)
    bar = _progress(total=n_traj, enabled=progress, desc=f"simulate {cfg.system}")
    bar.write(
        f"{len(tasks) - len(todo)} of {len(tasks)} files already complete; simulating {len(todo)}"
    )
    failures: list[str] = []
    jobs = [(to_dict(cfg), str(root), t) for t in todo]

    def record(task: Task, failure: str | None) -> None:
        if failure:
            failures.append(failure)
            bar.write(f"failed: {failure}")
        bar.update(len(task.seeds))

    if workers <= 1 or len(todo) <= 1:  # in-process: no start-up cost, plain tracebacks
        for job in jobs:
            record(*_run_task_args(job))
    else:
        _run_in_workers(jobs, min(workers, len(todo)), record)
    bar.close()
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise SimulationError(f"{failures[0]}{more}; rerun to retry, finished files are kept")
    finalize_dataset(root)
    write_run_record(root, cfg, seed=cfg.seed, data_dir=root, extra={"files": len(tasks)})
    return root


def _run_in_workers(jobs: list[tuple], workers: int, record) -> None:
    """Run jobs in spawned worker processes (never fork a parent holding torch threads).

    A worker that dies (killed, out of memory, a crash in native code) fails the run with a
    clear message instead of hanging; on any error or Ctrl-C the remaining workers are
    terminated at once rather than left computing as orphans.
    """
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker)
    try:
        futures = [pool.submit(_run_task_args, job) for job in jobs]
        for future in as_completed(futures):
            try:
                record(*future.result())
            except BrokenProcessPool:
                raise PhysrepError(
                    "a simulation worker process died (killed or crashed); rerun the same "
                    "command to resume, finished files are kept"
                ) from None
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():
            child.terminate()
        raise
    pool.shutdown()


def _check_same_config(root: Path, cfg: SimConfig) -> None:
    """Refuse to resume into a folder made with a different config (mixing would be silent),
    or into data physrep did not simulate; record the config before the first file is written."""
    previous = root / "config.yaml"
    if previous.is_file():
        # a key added to SimConfig since the folder was made reads as its default
        old, new = {**to_dict(SimConfig()), **read_yaml(previous)}, to_dict(cfg)
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            raise PhysrepError(
                f"holds a dataset made with a different config ('{diff[0]}' differs); use another --out",
                root,
            )
    elif (root / "data").exists() and any((root / "data").rglob("*.hdf5")):
        raise PhysrepError(
            "already holds data not written by physrep simulate; use another --out", root
        )
    else:
        save_config(cfg, previous)
    for stale in (root / "data").glob("*/.*.partial"):  # left by a worker killed mid-write
        stale.unlink()


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="traj", disable=not enabled, dynamic_ncols=True)
