"""Peak memory of embed + probe at two data sizes with the same token shape.

The embedding cache streams a split to disk and the probes read it back a batch at a time,
so peak memory should follow the batch, not the split. This builds synthetic shear_flow data
at 1x and Kx the windows, embeds it with an untrained ViT that makes many tokens per window
(1024 tokens of 192, depth 1, so the encoder costs little and the tokens dominate memory),
then runs the attentive probe (a few epochs) and ridge. Each size runs in a fresh process and
reports its own peak resident memory (ru_maxrss), so nothing carries over. Target: the peak
at Kx is within 25 % of the peak at 1x.

    python benchmarks/embed_probe_memory.py [--scales 1 8] [--json out.json]

`--src PATH` runs the child processes on another checkout's `src` (e.g. a commit before the
streaming cache), for a before/after comparison on the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from physrep.config import from_dict, preset_path, read_yaml
from physrep.data.synthetic import SyntheticConfig, write_synthetic
from physrep.train import PretrainConfig, export_initial

ENCODER = {"frames": 16, "patch": 4, "tubelet": 2, "dim": 192, "depth": 1, "heads": 2}
WINDOWS = {"frames": 16, "stride": 2, "normalization": "zscore"}
BASE_TRAJECTORIES = 8  # per file (split 8/1/1 -> 6/1/1 here); x 4 parameter combinations

CHILD = """
import json, resource, sys, time
from pathlib import Path
from physrep.data.windows import WindowConfig
from physrep.eval.embed import load_or_embed
from physrep.eval.probes import ProbeConfig
from physrep.eval.protocols import run_probes
encoder, data, cache = sys.argv[1:4]
start = time.perf_counter()
emb = load_or_embed(encoder, data, cache, cfg=WindowConfig(**json.loads(sys.argv[4])))
embedded = time.perf_counter() - start
cfg = ProbeConfig(epochs=2, warmup_epochs=1, batch_size=64)
rows = run_probes("d", "m", emb, ["attentive", "ridge"], [1.0], [0], cfg, progress=False)
shape = emb.splits["train"].tokens.shape
print(json.dumps({
    "train_windows": int(shape[0]), "token_shape": list(shape[1:]),
    "embed_s": round(embedded, 1), "probe_s": round(time.perf_counter() - start - embedded, 1),
    "mse": {r["probe"]: round(r["mse"], 3) for r in rows if r["split"] == "test"},
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
"""


def measure(scale: int, root: Path, src: str | None) -> dict:
    data = root / f"data{scale}"
    if not data.exists():
        cfg = SyntheticConfig(
            like="shear_flow",
            resolution=[32, 64],
            steps=40,
            trajectories_per_file=BASE_TRAJECTORIES * scale,
        )
        write_synthetic(data, cfg)
    encoder = root / "encoder" / "encoder.pt"
    if not encoder.exists():
        pretrain = read_yaml(preset_path("pretrain", "tiny"))
        pretrain.update(method="videomae", data=WINDOWS)
        pretrain["videomae"] = {"encoder": "tiny", "encoder_args": ENCODER, "decoder_depth": 1}
        export_initial(from_dict(PretrainConfig, pretrain), data, encoder.parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if src:
        env["PYTHONPATH"] = src
    cache = root / f"cache{scale}-{time.time_ns()}"
    args = [sys.executable, "-c", CHILD, str(encoder), str(data), str(cache), json.dumps(WINDOWS)]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    return {"scale": scale, **json.loads(out.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--src", help="run the measured processes on this checkout's src/")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(scale, Path(tmp), args.src) for scale in args.scales]
    for row in rows:
        print(json.dumps(row))
    first, last = rows[0]["peak_rss_mb"], rows[-1]["peak_rss_mb"]
    print(
        f"peak RSS {last} MB at {rows[-1]['scale']}x vs {first} MB at {rows[0]['scale']}x: "
        f"{100 * (last / first - 1):+.0f} % (target < +25 %)"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
