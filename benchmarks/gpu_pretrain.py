"""Pretraining throughput on one CUDA GPU at the paper's size: JEPA vs VideoMAE-S at 224^2.

Both methods train in bf16 autocast with fused AdamW, each with and without `torch.compile`;
the script prints clips/s (JEPA: context + target windows; VideoMAE: one clip per sample) and
`torch.cuda.max_memory_allocated`. The JEPA encoder keeps its default `fast="auto"`, which on
CUDA tensors takes the plain depthwise-conv path (the custom backward is tuned for oneDNN on
CPU; `physrep.models.convnext3d.uses_cpu_tuned_backward` decides).

    python benchmarks/gpu_pretrain.py [--batch 8] [--channels 4] [--steps 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

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

FRAMES, SIZE = 16, 224


def vicreg_rows(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """VICReg over token rows (physrep.losses.vicreg, the paper's 2/40/2 and 5 chunks)."""
    from physrep.losses import vicreg

    rows = [z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]) for z in (pred, target)]
    return vicreg(*rows, chunks=5)["loss"]


def jepa(batch: int, channels: int, compile_: bool):
    encoder = ConvNeXt3D(channels, **ENCODER_PRESETS["paper"]).cuda()
    predictor = ConvPredictor(128, 256).cuda()
    params = [*encoder.parameters(), *predictor.parameters()]
    if compile_:
        encoder, predictor = torch.compile(encoder), torch.compile(predictor)
    context, target = torch.randn(2, batch, channels, FRAMES, SIZE, SIZE, device="cuda")

    def loss() -> torch.Tensor:
        z_context, z_target = encoder(torch.cat([context, target])).chunk(2)
        return vicreg_rows(predictor(z_context).float(), z_target.float())

    return params, loss


def videomae(batch: int, channels: int, compile_: bool):
    from physrep.losses import masked_patch_mse

    vit = VideoViT(channels, **VIT_PRESETS["small"]).cuda()
    decoder = VideoMAEDecoder(vit.num_patches, vit.patch_dim, 384, dim=192, depth=4, heads=3)
    decoder = decoder.cuda()
    params = [*vit.parameters(), *decoder.parameters()]
    encode, decode = (torch.compile(vit.encode), torch.compile(decoder)) if compile_ else (
        vit.encode, decoder,
    )  # fmt: skip
    clip = torch.randn(batch, channels, FRAMES, SIZE, SIZE, device="cuda")
    target = patchify(clip, vit.tubelet, vit.patch)

    def loss() -> torch.Tensor:
        keep = random_tube_keep(batch, vit.grid, mask_ratio=0.9).cuda()
        masked = torch.ones(batch, vit.num_patches, dtype=torch.bool, device="cuda")
        masked[torch.arange(batch, device="cuda")[:, None], keep] = False
        pred = decode(encode(clip, keep), keep).float()
        return masked_patch_mse(pred, target, masked, channels=channels)["loss"]

    return params, loss


def time_case(method: str, batch: int, channels: int, compile_: bool, steps: int) -> dict:
    torch.manual_seed(0)
    torch.cuda.reset_peak_memory_stats()
    params, loss_fn = {"jepa": jepa, "videomae": videomae}[method](batch, channels, compile_)
    optim = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, fused=True)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn()
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)

    start = time.perf_counter()
    for _ in range(3):  # warm-up; includes compilation
        step()
    torch.cuda.synchronize()
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    per_step = (time.perf_counter() - start) / steps
    return {"method": method, "compile": compile_, "batch": batch, "channels": channels,
            "warmup_s": warmup, "step_s": per_step, "clips_per_s": batch / per_step,
            "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case")
    parser.add_argument("--json", help="save the rows to this file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_pretrain.py needs a CUDA GPU, and torch sees none here; run it on a GPU box")
    torch.backends.cudnn.benchmark = True
    print(f"{torch.cuda.get_device_name()}, batch {args.batch}, {args.channels} channels, 224^2")
    print(f"{'method':9} {'compile':>7} {'warm-up s':>9} {'s/step':>7} {'clips/s':>8} {'GiB':>6}")
    rows = []
    for method in ("jepa", "videomae"):
        for compile_ in (False, True):
            r = time_case(method, args.batch, args.channels, compile_, args.steps)
            rows.append(r)
            print(f"{method:9} {compile_!s:>7} {r['warmup_s']:9.1f} {r['step_s']:7.3f} "
                  f"{r['clips_per_s']:8.1f} {r['max_memory_gib']:6.2f}", flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
