"""Worker processes that run one thread each and die with their parent.

Why: simulations and pretraining runs go side by side in spawned processes, one thread each
(on a few cores, threads inside small kernels lose to processes). If the parent is killed
without a chance to clean up (SIGTERM, SIGKILL, a closed terminal), a plain pool worker lives
on as an orphan and keeps writing a file or run folder that a rerun is about to use. On Linux
each worker asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import sys

PR_SET_PDEATHSIG = 1


def init_worker() -> None:
    """`ProcessPoolExecutor` initializer: one thread, and die with the parent (Linux)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
