"""End-to-end fine-tuning of an exported encoder on the parameters: the paper's MPP protocol.

Frozen probes measure what pretraining put into a representation; fine-tuning measures what the
pretrained weights make learnable. The paper fine-tuned MPP end to end with an attentive head
on the last time step's tokens and kept the best validation checkpoint; `finetune` does that
for any exported encoder (the benchmark does it for `autoregressive`), on the windows, the
trajectory fractions and the seeds the probes use, so its rows sit in the same tables.

The windows are streamed from the files batch by batch, as pretraining reads them: at the
paper's sizes one window is 16 x 224 x 224 x C floats (35 MB for active_matter's 11 channels),
so a split held in memory would need hundreds of GB. The encoder is checked against the data's
fields, in order: a model fed its channels in the wrong order (the released MPP code's no-op
reorder) fails loudly.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Subset

from physrep.data.targets import ParamTargets
from physrep.data.windows import WellWindows, make_loader
from physrep.errors import ConfigError, PhysrepError
from physrep.eval.probes import AttentiveProbe
from physrep.methods.common import OptimConfig, is_matrix, lr_factor, parameter_groups


@dataclass
class FinetuneConfig:
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-4  # the pretrained encoder's peak rate (the paper: Adam 1e-5 for 30 epochs)
    head_lr: float = 1e-3  # the new attentive head's
    weight_decay: float = 0.01
    warmup_epochs: int = 1
    width: int = 128  # attentive head, as the probes'
    heads: int = 8
    mlp_ratio: float = 4.0

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("keys 'finetune.epochs' and 'finetune.batch_size' must be >= 1")
        if self.width % self.heads:
            raise ConfigError(f"key 'finetune.width' ({self.width}) must be divisible by heads")


@dataclass
class SplitPrediction:
    pred: np.ndarray  # (N, P) normalised-unit estimates, one row per window
    params: np.ndarray  # (N, P) normalised true values
    trajectory: np.ndarray  # (N,) trajectory id within the split


@dataclass
class FinetuneResult:
    """Predictions of the best-on-valid model for each evaluated split."""

    splits: dict[str, SplitPrediction]
    targets: ParamTargets  # the train split's parameter scaling
    valid_mse: float
    best_epoch: int
    n_train: int
    n_train_trajectories: int
    losses: list[float]  # training loss per step
    valid_history: list[float]  # validation MSE per epoch


class FineTuner(pl.LightningModule):
    """Encoder + attentive head trained together on the normalised parameters (MSE)."""

    def __init__(self, encoder: nn.Module, n_params: int, dim: int, cfg: FinetuneConfig):
        super().__init__()
        self.encoder, self.cfg = encoder, cfg
        self.head = AttentiveProbe(dim, n_params, cfg.width, cfg.heads, cfg.mlp_ratio)
        self.best_valid, self.best_epoch, self.best_state = math.inf, -1, None
        self.valid_history: list[float] = []

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.encode(context))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        params = batch["params"]
        loss = F.mse_loss(self(batch["context"]), params)
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, batch_size=len(params))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        params = batch["params"]
        loss = F.mse_loss(self(batch["context"]), params, reduction="sum") / params.shape[1]
        self._valid_sum += float(loss)
        self._valid_n += len(params)

    def on_validation_epoch_start(self) -> None:
        self._valid_sum, self._valid_n = 0.0, 0

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's validation MSE and keep the weights of the best epoch, in memory."""
        value = self._valid_sum / max(self._valid_n, 1)
        self.log("val/loss", value)
        self.valid_history.append(value)
        if value < self.best_valid:
            self.best_valid, self.best_epoch = value, self.current_epoch
            self.best_state = copy.deepcopy(self.state_dict())

    def configure_optimizers(self):
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = max(total // max(self.trainer.max_epochs, 1), 1)
        schedule = OptimConfig(lr=1.0, min_lr=1e-3, warmup_steps=self.cfg.warmup_epochs * per_epoch)
        groups = []  # encoder and head at their own rates; no decay on norms and biases
        for module, lr in ((self.encoder, self.cfg.lr), (self.head, self.cfg.head_lr)):
            groups += parameter_groups(module, self.cfg.weight_decay, lr=lr, decays=is_matrix)
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]])
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, total, schedule)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class _LossGuard(pl.Callback):
    """Record the training loss per step; stop with a clear error on a non-finite one."""

    def __init__(self):
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        loss = float(outputs["loss"] if isinstance(outputs, dict) else outputs)
        if not math.isfinite(loss):
            raise PhysrepError(f"fine-tuning loss became {loss} at step {trainer.global_step}")
        self.losses.append(loss)


def _predict(module: FineTuner, windows: WellWindows, batch_size: int) -> SplitPrediction:
    """The module's estimates for every window of `windows`, read batch by batch in order."""
    preds, params, trajectory = [], [], []
    with torch.inference_mode():
        for batch in make_loader(windows, batch_size, shuffle=False, pin_memory=False):
            preds.append(module(batch["context"]))
            params.append(batch["params"])
            trajectory.append(batch["trajectory"])
    return SplitPrediction(
        torch.cat(preds).numpy(), torch.cat(params).numpy(), torch.cat(trajectory).numpy()
    )


def finetune(
    encoder_path,
    data_dir,
    cfg: FinetuneConfig | None = None,
    fraction: float = 1.0,
    seed: int = 0,
    splits: tuple[str, ...] = ("test",),
    windows_cfg=None,
) -> FinetuneResult:
    """Fine-tune the exported encoder at `encoder_path` with a new attentive head on a seeded
    `fraction` of `data_dir`'s train trajectories; select the epoch on `valid`; predict
    `splits`. The encoder file is not modified."""
    from physrep.eval.embed import check_fields, chosen_trajectories, encoder_windows
    from physrep.models.export import load_encoder
    from physrep.train import lightning_messages

    cfg = cfg or FinetuneConfig()
    cfg.validate()
    pl.seed_everything(seed, workers=True, verbose=False)
    encoder = load_encoder(encoder_path).train()
    wcfg = dataclasses.replace(windows_cfg or encoder_windows(encoder), target=False)
    train_windows = WellWindows(data_dir, "train", wcfg)
    check_fields(encoder, train_windows.field_names, data_dir)
    keep = chosen_trajectories(train_windows.window_trajectory, fraction, seed)
    train = Subset(train_windows, np.flatnonzero(np.isin(train_windows.window_trajectory, keep)))
    valid = WellWindows(data_dir, "valid", wcfg, targets=train_windows.targets)
    with torch.no_grad():
        dim = encoder.encode(train[0]["context"][None]).shape[-1]
    module = FineTuner(encoder, len(train_windows.param_names), dim, cfg)
    guard = _LossGuard()
    with lightning_messages(quiet=True):
        trainer = pl.Trainer(
            accelerator="cpu" if not torch.cuda.is_available() else "auto",
            devices=1,
            max_epochs=cfg.epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            deterministic=True,
            gradient_clip_val=1.0,
            callbacks=[guard],
        )
        shuffle = make_loader(train, cfg.batch_size, shuffle=True, seed=seed, pin_memory=False)
        ordered = make_loader(valid, cfg.batch_size * 4, shuffle=False, pin_memory=False)
        trainer.fit(module, shuffle, ordered)
    module.load_state_dict(module.best_state)
    module.eval()
    predicted = {
        split: _predict(
            module,
            WellWindows(data_dir, split, wcfg, targets=train_windows.targets),
            cfg.batch_size * 4,
        )
        for split in splits
    }
    return FinetuneResult(
        splits=predicted,
        targets=train_windows.targets,
        valid_mse=module.best_valid,
        best_epoch=module.best_epoch,
        n_train=len(train),
        n_train_trajectories=len(keep),
        losses=guard.losses,
        valid_history=module.valid_history,
    )
