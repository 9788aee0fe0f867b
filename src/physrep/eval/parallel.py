"""Pretraining runs side by side, one thread each.

Why: a benchmark trains many small encoders. On a few CPU cores a batch of small 3-D
convolutions parallelises poorly over threads, so N processes of one thread each finish N
independent runs sooner than one process on N threads does them in turn (benchmarks/
pretrain_workers.py measures the ratio). Each run is a plain `physrep.train.pretrain` call in a
fresh (spawned) process; its outputs land in its own run folder, as in a sequential run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from physrep.workers import init_worker


@dataclass
class PretrainJob:
    key: tuple[str, int]  # (method, pretraining seed)
    cfg: dict  # the resolved PretrainConfig as plain data (its class is built at import)
    data_dir: Path
    run: Path
    resume: bool


def _train(job: PretrainJob) -> float:
    from physrep.config import from_dict
    from physrep.train import PretrainConfig, pretrain

    start = time.perf_counter()
    cfg = from_dict(PretrainConfig, job.cfg)
    pretrain(cfg, job.data_dir, job.run, resume=job.resume, progress=False, quiet=True)
    return time.perf_counter() - start


def run_jobs(jobs: Sequence[PretrainJob], workers: int) -> Iterator[tuple[PretrainJob, float]]:
    """Train every job, `workers` at a time; yield (job, seconds) as each finishes. The first
    failure stops the pool (runs in flight are abandoned; their checkpoints let a rerun
    resume) and is raised here."""
    context = get_context("spawn")  # a fresh interpreter: no state shared with the parent
    with ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker) as pool:
        pending = {pool.submit(_train, job): job for job in jobs}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    yield job, future.result()
        finally:
            for future in pending:
                future.cancel()
