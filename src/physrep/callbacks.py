"""The callbacks every pretraining run's Trainer carries: stop on divergence, one step bar,
windows per second, and the RNG state in every checkpoint."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from physrep.errors import PhysrepError


class TrainingDiverged(PhysrepError):
    """The loss became NaN/inf; the last good checkpoint is kept."""


class DivergenceGuard(pl.Callback):
    """Stop on a NaN/inf loss, on every rank at once, naming the step; last.ckpt stays the
    last good state because no checkpoint is written after the failure."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        bad = loss is not None and not bool(torch.isfinite(loss.detach()).all())
        if trainer.strategy.reduce_boolean_decision(bad, all=False):
            last = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
            keep = f"; last good checkpoint: {last}" if last.exists() else ""
            raise TrainingDiverged(
                f"loss became {loss.item() if loss is not None else 'nan'} at step "
                f"{trainer.global_step} (epoch {trainer.current_epoch}){keep}"
            )


class StepBar(pl.Callback):
    """One progress bar over the run's optimiser steps, with ETA and the last loss."""

    def on_train_start(self, trainer, module) -> None:
        from tqdm.auto import tqdm

        total = int(trainer.estimated_stepping_batches)
        self.bar = tqdm(
            total=total,
            initial=trainer.global_step,
            desc=f"train {module.name}",
            unit="step",
            leave=False,
            disable=not trainer.is_global_zero,
            dynamic_ncols=True,
        )

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self.bar.n:
            loss = trainer.callback_metrics.get("train/loss_step")
            if loss is not None:
                self.bar.set_postfix(loss=f"{float(loss):.3g}", refresh=False)
            self.bar.update(trainer.global_step - self.bar.n)

    def on_train_end(self, trainer, module) -> None:
        self.bar.close()


class Throughput(pl.Callback):
    """Windows per second over the last training batches, shown in the progress bar."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        seconds = time.perf_counter() - self._start
        n = len(batch["context"]) * trainer.world_size
        module.log(
            "windows_per_s", n / max(seconds, 1e-9), prog_bar=True, on_step=True, on_epoch=False
        )


class RNGState(pl.Callback):
    """Carry the torch, numpy and Python RNG states in every checkpoint and restore them on
    resume, so random noise and masks continue exactly as in an uninterrupted run."""

    def state_dict(self) -> dict:
        # only tensors and plain Python values, so `torch.load(weights_only=True)` accepts them
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        version, internal, gauss_next = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": [version, list(internal), gauss_next],
        }

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))
