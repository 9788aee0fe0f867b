"""Pretraining throughput on CPU: JEPA (paper ConvNeXt-3D + conv predictor) and VideoMAE-S.

One JEPA step = the shared encoder on context and target (gradients through both), the
predictor, VICReg (physrep.losses.vicreg if present, else an inline stand-in), backward and an
AdamW step, at batch 8 x 16 frames. The first rows climb an optimisation ladder at 32^2 with 4
channels, each row adding one lever to the one above; the rest use the best fp32 combination.
"2 MB pages" sets THP_MEM_ALLOC_ENABLE=1, so torch's CPU allocator asks for transparent huge
pages: the big activations are fresh allocations every step, and first-touching them in 4 KB
pages costs as much as the copy itself. VideoMAE-S: ViT-S/16 on the 10 % visible tubes (tube
masking, ratio 0.9), a 4-layer width-192 decoder (3 heads), masked normalised-pixel MSE.
Every case runs in its own process with 2 threads, so its peak RSS is its own. Reference: the
released code's modules take 7.9 s per JEPA step at 32^2 / 4 channels (1.0 windows/s).

    OMP_NUM_THREADS=2 python benchmarks/train_throughput.py [--steps 3] [--json out.json]
    python benchmarks/train_throughput.py --bf16-check      # bf16 vs fp32 loss and gradients
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from physrep.models import (
    ENCODER_PRESETS,
    VIT_PRESETS,
    ConvNeXt3D,
    ConvPredictor,
    VideoMAEDecoder,
    VideoViT,
    patchify,
    random_tube_keep,
)

BATCH, FRAMES, THREADS = 8, 16, 2
BEST = dict(fast=True, fused_batch=True, adamw="default", thp=True, bf16=False, compile=False)
PLAIN = dict(fast=False, fused_batch=False, adamw="default", thp=False, bf16=False, compile=False)
LADDER = [  # (label, options) at 32^2, 4 channels; each adds one lever to the row above
    ("plain: channels-last conv3d", PLAIN),
    ("+ fast depthwise backward", {**PLAIN, "fast": True}),
    ("+ context & target in one pass", {**PLAIN, "fast": True, "fused_batch": True}),
    ("+ fused AdamW (faster on a quiet CPU)", {**BEST, "adamw": "fused", "thp": False}),
    ("+ 2 MB pages (THP_MEM_ALLOC_ENABLE)", BEST),
    ("+ bf16 autocast", {**BEST, "bf16": True}),
    ("+ torch.compile", {**BEST, "compile": True}),
]


def vicreg_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """VICReg over token rows, weights 2/40/2, 5 chunks (physrep.losses when available)."""
    rows_p = pred.permute(0, 2, 3, 1).reshape(-1, pred.shape[1])
    rows_t = target.permute(0, 2, 3, 1).reshape(-1, target.shape[1])
    try:
        from physrep.losses import vicreg
    except ImportError:  # stand-in: invariance + variance, one chunk
        std = lambda z: F.relu(1 - (z.var(0) + 1e-4).sqrt()).mean()  # noqa: E731
        return 2 * F.mse_loss(rows_p, rows_t) + 20 * (std(rows_p) + std(rows_t))
    return vicreg(rows_p, rows_t, chunks=5)["loss"]


def make_optimizer(params, kind: str) -> torch.optim.Optimizer:
    extra = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[kind]
    return torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05, **extra)


def jepa_step_fn(channels: int, size: int, opts: dict):
    """Build models and data; return a function that runs one training step and its loss."""
    torch.manual_seed(0)
    encoder = ConvNeXt3D(channels, **ENCODER_PRESETS["paper"], fast=opts["fast"])
    predictor = ConvPredictor(128, 256)
    optim = make_optimizer([*encoder.parameters(), *predictor.parameters()], opts["adamw"])
    if opts["compile"]:
        encoder, predictor = torch.compile(encoder), torch.compile(predictor)
    context, target = torch.randn(2, BATCH, channels, FRAMES, size, size)

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts["bf16"]):
            if opts["fused_batch"]:  # no batch statistics in the encoder: same numbers
                z_context, z_target = encoder(torch.cat([context, target])).chunk(2)
            else:
                z_context, z_target = encoder(context), encoder(target)
            loss = vicreg_loss(predictor(z_context).float(), z_target.float())
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        return loss.item()

    return step


def videomae_step_fn(channels: int, size: int, opts: dict):
    from physrep.losses import masked_patch_mse

    torch.manual_seed(0)
    vit = VideoViT(channels, **{**VIT_PRESETS["small"], "image_size": size})
    decoder = VideoMAEDecoder(vit.num_patches, vit.patch_dim, 384, dim=192, depth=4, heads=3)
    optim = make_optimizer([*vit.parameters(), *decoder.parameters()], opts["adamw"])
    clip = torch.randn(BATCH, channels, FRAMES, size, size)

    def step() -> float:
        keep = random_tube_keep(BATCH, vit.grid, mask_ratio=0.9)
        masked = torch.ones(BATCH, vit.num_patches, dtype=torch.bool)
        masked[torch.arange(BATCH)[:, None], keep] = False
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts["bf16"]):
            pred = decoder(vit.encode(clip, keep), keep).float()
        target = patchify(clip, vit.tubelet, vit.patch)
        loss = masked_patch_mse(pred, target, masked, channels=channels)["loss"]
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        return loss.item()

    return step


def run_case(case: dict) -> dict:
    """Time one case in this process: first step (warm-up / compile), then `steps` steps."""
    torch.set_num_threads(THREADS)
    build = jepa_step_fn if case["method"] == "jepa" else videomae_step_fn
    step = build(case["channels"], case["size"], case["opts"])
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(case["steps"]):
        loss = step()
    per_step = (time.perf_counter() - start) / case["steps"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    return {**case, "first_step_s": first, "step_s": per_step, "windows_per_s": BATCH / per_step,
            "peak_rss_mib": peak, "loss": loss}  # fmt: skip


def bf16_check(size: int = 32, channels: int = 4) -> dict:
    """Loss and gradients of one JEPA batch under bf16 autocast, relative to fp32."""
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    encoder = ConvNeXt3D(channels, **ENCODER_PRESETS["paper"])
    predictor = ConvPredictor(128, 256)
    params = [*encoder.parameters(), *predictor.parameters()]
    context, target = torch.randn(2, BATCH, channels, FRAMES, size, size)
    out = {}
    for bf16 in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            z_context, z_target = encoder(torch.cat([context, target])).chunk(2)
            loss = vicreg_loss(predictor(z_context).float(), z_target.float())
        grads = torch.autograd.grad(loss, params)
        out[bf16] = loss.detach(), torch.cat([g.flatten() for g in grads])
    (loss32, g32), (loss16, g16) = out[False], out[True]
    return {"size": size, "channels": channels, "loss_fp32": loss32.item(),
            "loss_rel_diff": ((loss16 - loss32).abs() / loss32.abs()).item(),
            "grad_rel_l2_diff": ((g16 - g32).norm() / g32.norm()).item(),
            "grad_cosine": F.cosine_similarity(g16, g32, dim=0).item()}  # fmt: skip


def cases(steps: int) -> list[dict]:
    out = [dict(method="jepa", label=label, size=32, channels=4, opts=o) for label, o in LADDER]
    for size, channels in [(32, 11), (64, 4), (64, 11)]:
        out.append(dict(method="jepa", label="best fp32", size=size, channels=channels, opts=BEST))
    for size, channels in [(32, 4), (32, 11), (64, 4), (64, 11)]:
        out.append(dict(method="videomae", label="ViT-S/16 + dec 4x192", size=size,
                        channels=channels, opts=BEST))  # fmt: skip
    out.sort(key=lambda c: c["opts"]["compile"])  # the slow-to-build compiled case last
    return [{**c, "steps": steps} for c in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case")
    parser.add_argument("--json", help="save the rows to this file")
    parser.add_argument("--only", help="run only cases whose method or label contains this")
    parser.add_argument("--bf16-check", action="store_true", help="compare bf16 with fp32")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case, JSON in/out
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    if args.bf16_check:
        print(json.dumps(bf16_check()))
        return
    rows = []
    header = f"{'method':9} {'lever':34} {'px':>4} {'C':>3} {'s/step':>7} {'win/s':>6} "
    print(header + f"{'1st s':>6} {'RSS MiB':>8} {'loss':>8}")
    for case in cases(args.steps):
        if args.only and args.only not in case["method"] + case["label"]:
            continue
        cmd = [sys.executable, __file__, "--case", json.dumps(case)]
        env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
        if case["opts"]["thp"]:  # torch's CPU allocator: 2 MB-aligned, madvise(MADV_HUGEPAGE)
            env["THP_MEM_ALLOC_ENABLE"] = "1"
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode:
            print(f"{case['method']:9} {case['label']:34} failed: {done.stderr.strip()[-300:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{r['method']:9} {r['label']:34} {r['size']:4d} {r['channels']:3d} "
              f"{r['step_s']:7.3f} {r['windows_per_s']:6.2f} {r['first_step_s']:6.1f} "
              f"{r['peak_rss_mib']:8.0f} {r['loss']:8.3f}", flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
