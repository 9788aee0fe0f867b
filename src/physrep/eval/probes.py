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
import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from physrep.errors import ConfigError
from physrep.eval import ranks
from physrep.eval.tokens import TokenRows
from physrep.methods.common import OptimConfig, is_matrix, lr_factor, parameter_groups

PROBES = ("attentive", "linear", "mlp", "ridge")
RESIDENT_BYTES = 256 * 2**20  # a probe's standardised tokens up to this size stay in memory


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
    predict: Callable[[TokenSource], np.ndarray]  # tokens (N, n, D) -> normalised targets (N, P)
    valid_mse: float
    detail: dict  # best epoch, or the chosen ridge alpha
    # everything `predictor` needs to rebuild `predict` (arrays and plain values): what a
    # saved probe stores
    state: dict = field(default_factory=dict)


TokenSource = TokenRows | np.ndarray


def fit_probe(
    kind: str,
    train: tuple[TokenSource, np.ndarray],
    valid: tuple[TokenSource, np.ndarray],
    cfg: ProbeConfig | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> FittedProbe:
    """Fit probe `kind` on (tokens (N, n, D), targets (N, P)); select on `valid`.

    Tokens may be a `TokenRows` on disk: the attentive probe reads its batches from there, the
    pooled probes hold only the (N, D) window means, and ridge sums its normal equations over
    one pass, so memory follows a batch, not the split. `device` defaults to the GPU if any."""
    cfg = cfg or ProbeConfig()
    if kind not in PROBES:
        raise ConfigError(f"unknown probe '{kind}' (known: {', '.join(PROBES)})")
    device = torch.device(device or ranks.device())
    x_train, y_train = _rows(train[0]), train[1]
    if kind == "ridge":
        return _fit_ridge(x_train, y_train, valid, cfg.ridge_alphas)
    if kind == "attentive":  # standardise each token feature over all train tokens
        mu, sd = _token_moments(x_train)
        inputs = _Standardised(x_train, mu, sd)
    else:  # the others read mean-pooled tokens
        pooled = x_train.means()
        mu, sd = pooled.mean(0), _floor(pooled.std(0))
        inputs = _Standardised(pooled, mu, sd)
    d, p = x_train.token_shape[-1], y_train.shape[-1]
    torch.manual_seed(seed)
    model = build_head(kind, d, p, cfg).to(device)
    valid_mse, epoch = _fit_sgd(kind, model, inputs, y_train, valid, cfg, seed, device)
    state = {
        "kind": kind,
        "dims": [d, p],
        "config": dataclasses.asdict(cfg),
        "mu": mu,
        "sd": sd,
        "weights": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }  # predictions go through `predictor`, as a saved probe's do: one path for both
    return FittedProbe(kind, predictor(state, device), valid_mse, {"best_epoch": epoch}, state)


def build_head(kind: str, in_dim: int, out_dim: int, cfg: ProbeConfig) -> nn.Module:
    """The untrained head of an SGD-trained probe."""
    if kind == "attentive":
        return AttentiveProbe(in_dim, out_dim, cfg.width, cfg.heads, cfg.mlp_ratio)
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(
        nn.Linear(in_dim, cfg.hidden),
        nn.GELU(),
        nn.Dropout(cfg.dropout),
        nn.Linear(cfg.hidden, out_dim),
    )


def predictor(
    state: dict, device: torch.device | str = "cpu"
) -> Callable[[TokenSource], np.ndarray]:
    """A fitted probe's `predict`, rebuilt from its `state` (as saved, or just fitted)."""
    if state["kind"] == "ridge":
        mu, sd, w, y_mean = (state[k] for k in ("mu", "sd", "w", "y_mean"))

        def ridge(tokens: TokenSource) -> np.ndarray:
            return (((_rows(tokens).means() - mu) / sd) @ w + y_mean).astype(np.float32)

        return ridge
    cfg = ProbeConfig(**state["config"])
    model = build_head(state["kind"], *state["dims"], cfg)
    model.load_state_dict(state["weights"])
    model.to(device).eval()
    pooled = state["kind"] != "attentive"

    def predict(tokens: TokenSource) -> np.ndarray:
        inputs = _inputs(tokens, pooled, state["mu"], state["sd"])
        return _predict(model, inputs, device).cpu().numpy()

    return predict


def _rows(tokens: TokenSource) -> TokenRows:
    return tokens if isinstance(tokens, TokenRows) else TokenRows(np.asarray(tokens))


def _floor(sd: np.ndarray) -> np.ndarray:
    """Standard deviations with the constant features' set to 1 (they stay 0 after centring)."""
    return np.where(sd > 1e-8 * max(float(sd.max(initial=0.0)), 1e-30), sd, 1.0)


def _token_moments(x: TokenRows) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each feature over every token of every window, in one pass (sums
    taken about the first batch's mean, so a large offset costs no precision)."""
    shift, n, s1, s2 = None, 0, 0.0, 0.0
    for batch in x.batches():
        centred = batch.reshape(-1, batch.shape[-1]).astype(np.float64)
        shift = centred.mean(0) if shift is None else shift
        centred -= shift
        n, s1 = n + len(centred), s1 + centred.sum(0)
        s2 = s2 + np.square(centred, out=centred).sum(0)
    mean = s1 / n
    return shift + mean, _floor(np.sqrt(np.maximum(s2 / n - mean**2, 0.0)))


class _Standardised:
    """A probe's inputs by row, standardised with train statistics: tokens read from disk
    (attentive) or pooled window means held in memory (the others).

    Tokens that fit in RESIDENT_BYTES are read and standardised once, not at every batch and
    every epoch's valid pass (a third of a small probe's time went there); larger ones stream,
    so memory stays bounded at any scale. Both give the same float32 values."""

    def __init__(self, source: TokenRows | np.ndarray, mu: np.ndarray, sd: np.ndarray):
        # float32 statistics: the standardised batch is float32 anyway, and float64 would
        # double the transient memory of every batch
        self.source, self.mu, self.sd = source, mu.astype(np.float32), sd.astype(np.float32)
        self._resident: np.ndarray | None = None
        nbytes = 4 * len(source) * int(np.prod(source.shape[1:]))
        if isinstance(source, TokenRows) and nbytes <= RESIDENT_BYTES:
            whole = source.read(np.arange(len(source)))
            whole -= self.mu
            whole /= self.sd
            self._resident = whole

    def __len__(self) -> int:
        return len(self.source)

    def get(self, index: np.ndarray) -> np.ndarray:
        if self._resident is not None:
            return self._resident[index]
        rows = self.source
        x = rows.read(index) if isinstance(rows, TokenRows) else rows[index]
        return ((x - self.mu) / self.sd).astype(np.float32)

    def spans(self) -> Iterator[np.ndarray]:
        """Positions of every row in order, a bounded read at a time."""
        if isinstance(self.source, TokenRows):
            return self.source.spans()
        return iter(np.array_split(np.arange(len(self)), max(1, len(self) // 4096)))


def _inputs(tokens: TokenSource, pooled: bool, mu: np.ndarray, sd: np.ndarray) -> _Standardised:
    """Tokens (valid, test, new) in a probe's form (window means or every token), standardised
    with its train statistics."""
    rows = _rows(tokens)
    return _Standardised(rows.means() if pooled else rows, mu, sd)


def _fit_sgd(
    kind, model, inputs, y_train, valid, cfg: ProbeConfig, seed, device
) -> tuple[float, int]:
    """Train `model` in place, leaving it at its best valid epoch: (valid MSE, that epoch)."""
    y = torch.from_numpy(y_train.astype(np.float32)).to(device)
    valid_inputs = _inputs(valid[0], kind != "attentive", inputs.mu, inputs.sd)
    yv = torch.from_numpy(valid[1].astype(np.float32)).to(device)
    steps_per_epoch = math.ceil(len(inputs) / cfg.batch_size)
    epochs = cfg.epochs
    if kind != "attentive":
        epochs = max(epochs, math.ceil(cfg.min_steps / steps_per_epoch))
    total = epochs * steps_per_epoch
    schedule = OptimConfig(
        lr=cfg.lr, min_lr=cfg.lr * 1e-3, warmup_steps=cfg.warmup_epochs * steps_per_epoch
    )
    groups = parameter_groups(model, cfg.weight_decay, decays=is_matrix)
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    generator = torch.Generator().manual_seed(seed)
    best = (math.inf, 0, copy.deepcopy(model.state_dict()))
    step = 0
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(inputs), generator=generator).split(cfg.batch_size):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, total, schedule)
            x = torch.from_numpy(inputs.get(idx.numpy())).to(device)
            loss = F.mse_loss(model(x), y[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        valid_mse = float(F.mse_loss(_predict(model, valid_inputs, device), yv))
        if valid_mse < best[0]:
            best = (valid_mse, epoch, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    return best[0], best[1]


def _predict(model: nn.Module, inputs: _Standardised, device) -> torch.Tensor:
    model.eval()
    with torch.inference_mode():
        parts = [model(torch.from_numpy(inputs.get(i)).to(device)) for i in inputs.spans()]
    return torch.cat(parts) if parts else torch.zeros(0, device=device)


def _fit_ridge(x: TokenRows, y: np.ndarray, valid, alphas: list[float]) -> FittedProbe:
    """Ridge on standardised window means with an unpenalised intercept, for every alpha at
    once: the normal equations are summed over one pass of the train tokens (about the first
    batch's mean, for precision) and solved through one eigendecomposition."""
    shift, n, s1, sxx, sxy, sy = None, 0, 0.0, 0.0, 0.0, 0.0
    for index in x.spans():
        pooled, target = x.read(index).mean(1, dtype=np.float64), y[index].astype(np.float64)
        shift = pooled.mean(0) if shift is None else shift
        centred = pooled - shift
        n, s1, sy = n + len(index), s1 + centred.sum(0), sy + target.sum(0)
        sxx, sxy = sxx + centred.T @ centred, sxy + centred.T @ target
    mean, y_mean = s1 / n, sy / n
    scatter = sxx - n * np.outer(mean, mean)  # centred sums of squares and products
    cross = sxy - n * np.outer(mean, y_mean)
    mu, sd = shift + mean, _floor(np.sqrt(np.maximum(np.diag(scatter) / n, 0.0)))
    eigval, eigvec = np.linalg.eigh(scatter / np.outer(sd, sd))
    projected = eigvec.T @ (cross / sd[:, None])
    xv = (_rows(valid[0]).means() - mu) / sd
    best = (math.inf, None, None)
    for alpha in alphas:
        w = eigvec @ (projected / (np.maximum(eigval, 0.0) + alpha)[:, None])
        mse = float(((xv @ w + y_mean - valid[1]) ** 2).mean())
        if mse < best[0]:
            best = (mse, alpha, w)
    _, alpha, w = best
    state = {"kind": "ridge", "mu": mu, "sd": sd, "w": w, "y_mean": y_mean}
    return FittedProbe("ridge", predictor(state), best[0], {"alpha": alpha}, state)
