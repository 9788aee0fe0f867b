"""Wall time of `physrep simulate SYSTEM --preset NAME` on this machine (all cores).

    python benchmarks/sim_presets.py [--preset small] [--systems shear_flow,active_matter] [--json out.json]

Runs each system's preset into a temporary folder with one worker per core and reports the
wall time, the CPU time of all workers (less sensitive to other load on the machine), the files
and the stored size; the `small` presets are meant to take at most 20 minutes each on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--systems", default="shear_flow,active_matter,rayleigh_benard")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    for system in args.systems.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / system
            cmd = [
                sys.executable,
                "-m",
                "physrep",
                "simulate",
                system,
                "--preset",
                args.preset,
                "--out",
                str(out),
                "--workers",
                str(args.workers),
                "--no-progress",
            ]
            cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
            )
            wall = time.perf_counter() - start
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            if proc.returncode != 0:
                print(f"{system}: failed: {proc.stderr.strip().splitlines()[-1:]}")
                rows.append(
                    {"system": system, "preset": args.preset, "failed": proc.stderr.strip()[-500:]}
                )
                continue
            files = sorted((out / "data").rglob("*.hdf5"))
            size = sum(p.stat().st_size for p in files)
            row = {
                "system": system,
                "preset": args.preset,
                "workers": args.workers,
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "files": len(files),
                "stored_MB": round(size / 1e6, 1),
            }
            rows.append(row)
            print(
                f"{system:<16} {args.preset:<6} wall {wall:7.1f} s  cpu {cpu:7.1f} s  "
                f"{len(files):4d} files  {size / 1e6:8.1f} MB",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
