"""Probes: small heads trained on frozen embeddings to estimate the governing parameters.

- `attentive`: the paper's V-JEPA-style head. One learned query cross-attends over all tokens,
  then an MLP block and a linear map to the parameters. Keys and values are projected to a
  fixed width, so one recipe serves 128-d conv tokens, 384-d ViT tokens and physics features.
- `linear` and `mlp`: on mean-pooled tokens.
- `ridge`: closed-form ridge regression on mean-pooled tokens, alpha chosen on `valid`.

Inputs are standardised with train statistics; the loss is MSE on normalised targets; AdamW
with linear warmup and cosine decay; the epoch with the lowest `valid` MSE is kept.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from physrep.errors import ConfigError
from physrep.methods.common import OptimConfig, lr_factor

PROBES = ("attentive", "linear", "mlp", "ridge")


@dataclass
class ProbeConfig:
    epochs: int = 100
    min_steps: int = 1000  # pooled probes (cheap) run at least this many steps, so they converge
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_epochs: int = 5
    width: int = 128  # attentive probe: tokens are projected to this width
    heads: int = 8
    mlp_ratio: float = 4.0
    hidden: int = 256  # mlp probe
    dropout: float = 0.1
    ridge_alphas: list[float] = field(default_factory=lambda: [10.0**k for k in range(-3, 5)])

    def validate(self) -> None:
        if self.width % self.heads:
            raise ConfigError(f"key 'width' ({self.width}) must be divisible by 'heads'")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("keys 'epochs' and 'batch_size' must be at least 1")


class AttentiveProbe(nn.Module):
    """(B, N, D) tokens -> (B, P): one query cross-attending over the tokens."""

    def __init__(self, in_dim: int, out_dim: int, width=128, heads=8, mlp_ratio=4.0):
        super().__init__()
        self.norm_tokens = nn.LayerNorm(in_dim)
        self.query = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        # keys and values are projected from the token width straight to the probe width
        self.attn = nn.MultiheadAttention(width, heads, kdim=in_dim, vdim=in_dim, batch_first=True)
        self.norm_mlp = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
        self.norm_out = nn.LayerNorm(width)
        self.out = nn.Linear(width, out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        kv = self.norm_tokens(tokens)
        q = self.query.expand(len(tokens), -1, -1)
        h = q + self.attn(q, kv, kv, need_weights=False)[0]
        h = h + self.mlp(self.norm_mlp(h))
        return self.out(self.norm_out(h[:, 0]))


@dataclass
class FittedProbe:
    kind: str
    predict: Callable[[np.ndarray], np.ndarray]  # tokens (N, n, D) -> normalised targets (N, P)
    valid_mse: float
    detail: dict  # best epoch, or the chosen ridge alpha


def fit_probe(
    kind: str,
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    cfg: ProbeConfig | None = None,
    seed: int = 0,
) -> FittedProbe:
    """Fit probe `kind` on (tokens (N, n, D), targets (N, P)); select on `valid`."""
    cfg = cfg or ProbeConfig()
    if kind not in PROBES:
        raise ConfigError(f"unknown probe '{kind}' (known: {', '.join(PROBES)})")
    x_train, y_train = train
    if kind == "attentive":
        # standardise each token feature over all train tokens; the probe sees every token
        flat = x_train.reshape(-1, x_train.shape[-1]).astype(np.float64)
        mu, sd = flat.mean(0), flat.std(0)
    else:  # everything else reads mean-pooled tokens
        pooled = x_train.mean(1, dtype=np.float64)
        mu, sd = pooled.mean(0), pooled.std(0)
    sd = np.where(sd > 1e-8 * max(float(sd.max()), 1e-30), sd, 1.0)

    def prepare(x: np.ndarray) -> np.ndarray:
        if kind != "attentive":
            x = x.mean(1, dtype=np.float64)
        return ((x - mu) / sd).astype(np.float32)

    if kind == "ridge":
        return _fit_ridge(prepare, train, valid, cfg.ridge_alphas)
    d, p = x_train.shape[-1], y_train.shape[-1]
    torch.manual_seed(seed)
    if kind == "attentive":
        model: nn.Module = AttentiveProbe(d, p, cfg.width, cfg.heads, cfg.mlp_ratio)
    elif kind == "linear":
        model = nn.Linear(d, p)
    else:
        model = nn.Sequential(
            nn.Linear(d, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, p)
        )
    return _fit_sgd(kind, model, prepare, train, valid, cfg, seed)


def _fit_sgd(kind, model, prepare, train, valid, cfg: ProbeConfig, seed: int) -> FittedProbe:
    x, y = torch.from_numpy(prepare(train[0])), torch.from_numpy(train[1].astype(np.float32))
    xv, yv = torch.from_numpy(prepare(valid[0])), torch.from_numpy(valid[1].astype(np.float32))
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    epochs = cfg.epochs
    if kind != "attentive":
        epochs = max(epochs, math.ceil(cfg.min_steps / steps_per_epoch))
    total = epochs * steps_per_epoch
    schedule = OptimConfig(
        lr=cfg.lr, min_lr=cfg.lr * 1e-3, warmup_steps=cfg.warmup_epochs * steps_per_epoch
    )
    decay = [q for q in model.parameters() if q.ndim >= 2]
    rest = [q for q in model.parameters() if q.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0}],
        lr=cfg.lr,
    )
    generator = torch.Generator().manual_seed(seed)
    best = (math.inf, 0, copy.deepcopy(model.state_dict()))
    step = 0
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=generator).split(cfg.batch_size):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, total, schedule)
            loss = F.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        valid_mse = _evaluate(model, xv, yv, cfg.batch_size * 4)
        if valid_mse < best[0]:
            best = (valid_mse, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    model.eval()

    def predict(tokens: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            xs = torch.from_numpy(prepare(tokens))
            return torch.cat([model(c) for c in xs.split(cfg.batch_size * 4)]).numpy()

    return FittedProbe(kind, predict, best[0], {"best_epoch": best[1]})


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(c) for c in x.split(batch)])
    return float(F.mse_loss(pred, y))


def _fit_ridge(prepare, train, valid, alphas: list[float]) -> FittedProbe:
    """Ridge with an unpenalised intercept, for every alpha at once through one SVD."""
    x = prepare(train[0]).astype(np.float64)
    y = train[1].astype(np.float64)
    y_mean = y.mean(0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    uty = u.T @ (y - y_mean)
    xv = prepare(valid[0]).astype(np.float64)
    best = (math.inf, None, None)
    for alpha in alphas:
        w = vt.T @ ((s / (s**2 + alpha))[:, None] * uty)
        mse = float(((xv @ w + y_mean - valid[1]) ** 2).mean())
        if mse < best[0]:
            best = (mse, alpha, w)
    _, alpha, w = best

    def predict(tokens: np.ndarray) -> np.ndarray:
        return (prepare(tokens).astype(np.float64) @ w + y_mean).astype(np.float32)

    return FittedProbe("ridge", predict, best[0], {"alpha": alpha})
