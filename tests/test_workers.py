"""Pool workers die with their parent, so a killed benchmark leaves no orphan writing files."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

PARENT = textwrap.dedent(
    """
    import os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    from physrep.workers import init_worker

    def report(path):
        import torch
        with open(path, "w") as f:
            f.write(f"{os.getpid()} {torch.get_num_threads()} {os.environ['OMP_NUM_THREADS']}")
        time.sleep(120)

    if __name__ == "__main__":
        pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=init_worker)
        pool.submit(report, sys.argv[1])
        time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:  # a zombie awaiting its reaper is dead too
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:  # reaped between the two looks
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_runs_one_thread_and_dies_when_its_parent_is_killed(tmp_path):
    script, report = tmp_path / "parent.py", tmp_path / "worker.txt"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), str(report)])
    try:
        deadline = time.time() + 120
        while not (report.is_file() and report.read_text().count(" ") == 2):
            assert time.time() < deadline, "the worker never started"
            time.sleep(0.2)
        pid, threads, omp = report.read_text().split()
        assert (threads, omp) == ("1", "1")
        assert _alive(int(pid))
        parent.send_signal(signal.SIGKILL)  # no chance to clean up
        parent.wait()
        deadline = time.time() + 20
        while _alive(int(pid)):
            assert time.time() < deadline, "the worker outlived its killed parent"
            time.sleep(0.2)
    finally:
        parent.kill()
