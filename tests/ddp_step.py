"""One DDP training step, run by `torchrun --nproc-per-node 2 tests/ddp_step.py DATA OUT`
from tests/test_train.py: every rank saves the gradients it steps with and its weights after."""

import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, DistributedSampler

from physrep.config import load_config, preset_path
from physrep.train import PretrainConfig, build_module, build_windows


class Gradients(pl.Callback):
    """The gradients the optimiser is about to apply (after DDP's all-reduce)."""

    def on_before_optimizer_step(self, trainer, module, optimizer):
        self.grads = {
            n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None
        }


def main(data: str, out: str) -> None:
    cfg = load_config(
        PretrainConfig,
        preset_path("pretrain", "tiny"),
        ["train.batch_size=2", "train.global_batch=4"],
    )
    pl.seed_everything(cfg.seed, verbose=False)
    train, _ = build_windows(cfg, data)
    module = build_module(cfg, train)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_steps=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        deterministic=True, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[grads := Gradients()],
        use_distributed_sampler=False,
    )  # fmt: skip
    # rank r takes windows r, r + 2, ...: known shards for the single-process comparison
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=False)
    trainer.fit(module, train_dataloaders=DataLoader(train, batch_size=2, sampler=sampler))
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    torch.save(
        {"weights": state, "grads": grads.grads}, Path(out) / f"rank{trainer.global_rank}.pt"
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
