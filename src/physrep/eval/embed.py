"""Frozen embeddings of every window of every split, cached on disk by content hash.

Probing trains hundreds of small heads on the same embeddings, so the encoder runs once per
(encoder weights, data, window config, storage) and its output is kept on disk. The cache is a
folder named by a hash of everything that shaped it, so a changed checkpoint, dataset or
preprocessing can never be served a stale cache. It holds one token file per split, written
batch by batch (`physrep.eval.tokens`: a split never sits whole in memory), the per-window
targets, and `meta.json`, written last. The folder is built under a temporary name and renamed
into place when complete, so a crash leaves nothing that looks like a cache.

Under a multi-process launcher (torch.distributed initialised) every rank embeds a contiguous,
batch-aligned shard of each split and rank 0 joins the shards: the rows, and the batches that
produced them, are the same as one process would make, so the files are identical.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset
from tqdm.auto import tqdm

from physrep.atomic import write_text_atomic
from physrep.config import from_dict, to_dict
from physrep.data.targets import ParamTargets
from physrep.data.validate import present_splits
from physrep.data.windows import WellWindows, WindowConfig, make_loader
from physrep.errors import PhysrepError
from physrep.eval.ranks import barrier, ranks
from physrep.eval.sources import FEATURES as FEATURES  # re-exported: the names callers use
from physrep.eval.sources import file_digest as file_digest
from physrep.eval.sources import resolve
from physrep.eval.tokens import STORAGE, TokenRows, TokenWriter, pool_tokens

FORMAT = "physrep-embeddings/2"  # 1: one .npz holding every split in memory
EVAL_SPLITS = ("train", "valid", "test", "test_ood")
EMBED_DTYPES = tuple(STORAGE)  # float32, float16, bfloat16; probes always read float32
ARRAYS = ("params", "params_raw", "trajectory", "start")  # per window, kept beside the tokens
SOURCE_KEYS = ("source", "source_id", "windows", "fields", "resolution", "stats", "dtype", "tokens")


@dataclass
class SplitEmbeddings:
    tokens: TokenRows  # (N, n_tokens, D), read from disk as float32 by rows
    params: np.ndarray  # (N, P) normalised targets (train-split statistics)
    params_raw: np.ndarray  # (N, P) physical values
    trajectory: np.ndarray  # (N,) trajectory id within the split
    start: np.ndarray  # (N,) first step of the window

    def __post_init__(self) -> None:
        if isinstance(self.tokens, np.ndarray):  # in-memory tokens (tests, small callers)
            self.tokens = TokenRows(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, keep: np.ndarray) -> SplitEmbeddings:
        """The windows at positions (or boolean mask) `keep`; tokens stay on disk."""
        return SplitEmbeddings(
            self.tokens.subset(keep), *(getattr(self, name)[keep] for name in ARRAYS)
        )

    def pooled(self) -> np.ndarray:
        """(N, D) float64 mean over each window's tokens, read a batch at a time."""
        return self.tokens.means()


@dataclass
class Embeddings:
    splits: dict[str, SplitEmbeddings]
    targets: ParamTargets
    key: str
    path: Path  # the cache folder
    cached: bool = False  # read from the cache rather than computed by this call
    tokens: str = "all"  # "all", or "pooled-N" when each window's tokens were pooled to N
    # what made them: the source (encoder file or "features") and its digest, the windows,
    # the data's fields, the storage (what a saved probe needs to embed a new run alike)
    source: dict = dataclasses.field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return self.targets.names


def cache_key(
    source: str,
    fingerprint: str,
    cfg: WindowConfig,
    splits: Sequence[str],
    dtype: str = "float32",
    tokens: int = 0,
) -> str:
    """Hash of what shapes the embeddings: the encoder's bytes (or the features' version), the
    dataset's content, the window/preprocessing config, the splits and the storage (dtype,
    pooled token count)."""
    keyed = {
        "format": FORMAT,
        "source": source,
        "data": fingerprint,
        "windows": to_dict(cfg),
        "splits": list(splits),
        "dtype": dtype,
        "tokens": tokens,
    }
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:20]


def embed_windows(
    fn: Callable[[torch.Tensor], torch.Tensor],
    windows: WellWindows | Subset,
    writer: TokenWriter,
    batch_size: int = 32,
    bar: Any = None,
    pool: int = 0,
    device: torch.device | None = None,
) -> None:
    """Run `fn` (context (B,C,T,H,W) -> tokens (B,N,D) or vectors (B,D)) over every window in
    order, appending each batch's tokens (pooled to `pool`, if > 0) to `writer`."""
    with torch.inference_mode():
        for batch in make_loader(windows, batch_size, shuffle=False, pin_memory=False):
            context = batch["context"] if device is None else batch["context"].to(device)
            out = fn(context)
            if out.ndim == 2:  # a single vector per window: one token
                out = out[:, None]
            out = pool_tokens(out.float(), pool)
            if not torch.isfinite(out).all():
                raise PhysrepError("non-finite embeddings (encoder diverged?)", writer.path)
            writer.append(out)
            if bar is not None:
                bar.update(len(out))


def shard(n_windows: int, batch_size: int, rank: int, world: int) -> range:
    """The windows rank `rank` of `world` embeds: a contiguous run of whole batches, so that
    every batch is the one a single process would run."""
    batches = math.ceil(n_windows / batch_size)
    first, last = batches * rank // world, batches * (rank + 1) // world
    return range(min(first * batch_size, n_windows), min(last * batch_size, n_windows))


def check_fields(encoder: torch.nn.Module, fields: Sequence[str], data_dir) -> None:
    """The data's fields must be the ones, in the order, the encoder was trained on: a model
    fed its channels in another order (the released MPP code's no-op reorder) fails loudly."""
    trained = (getattr(encoder, "physrep", {}) or {}).get("fields")
    if trained and list(trained) != list(fields):
        raise PhysrepError(
            f"the encoder was trained on fields {list(trained)} but the data has "
            f"{list(fields)} (order matters)",
            data_dir,
        )


def chosen_trajectories(ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded `fraction` of trajectory ids, nested across fractions for one seed (the rule
    every probe's data-efficiency curve uses)."""
    ids = np.unique(ids)
    if fraction >= 1.0:
        return ids
    order = np.random.default_rng(seed).permutation(ids)
    return order[: max(1, round(fraction * len(ids)))]


def encoder_windows(encoder: torch.nn.Module) -> WindowConfig:
    """The window config an exported encoder was trained with, made clean for probing:
    no noise, no augmentation, every trajectory, context only."""
    data = dict(getattr(encoder, "physrep", {}).get("data") or {})
    cfg = from_dict(WindowConfig, data) if data else WindowConfig()
    return cfg.clean(target=False)


def load_or_embed(
    source: str | Path,
    data_dir: str | Path,
    cache_dir: str | Path,
    cfg: WindowConfig | None = None,
    splits: Sequence[str] | None = None,
    batch_size: int = 32,
    fingerprint: str | None = None,
    progress: str | None = None,
    dtype: str = "float32",
    tokens: int = 0,
) -> Embeddings:
    """Embeddings of `data_dir` by `source` (an exported `encoder.pt`, or "features"), from
    the cache in `cache_dir` when one with the same key exists, else computed and cached
    (under one progress bar over every split's windows, labelled `progress`, if given), stored
    as `dtype` and, with `tokens` > 0, each window's tokens pooled to that many."""
    from physrep.runinfo import data_fingerprint

    if dtype not in EMBED_DTYPES:
        raise PhysrepError(f"unknown embedding dtype {dtype!r} (known: {', '.join(EMBED_DTYPES)})")
    data_dir = Path(data_dir)
    found = resolve(source)
    encoder, fn, device, source_id = found.encoder, found.fn, found.device, found.id
    if cfg is None:
        cfg = encoder_windows(encoder) if encoder is not None else WindowConfig(target=False)
    cfg = dataclasses.replace(cfg, target=False)
    splits = list(splits or [s for s in EVAL_SPLITS if s in present_splits(data_dir)])
    if "train" not in splits:
        raise PhysrepError("embeddings need the train split (targets are scaled on it)", data_dir)
    key = cache_key(
        source_id, fingerprint or data_fingerprint(data_dir), cfg, splits, dtype, tokens
    )
    path = Path(cache_dir) / key
    cached = _read(path, key)
    if cached is not None:
        return cached
    train = WellWindows(data_dir, "train", cfg)
    if encoder is not None:
        check_fields(encoder, train.field_names, data_dir)
    windows = {"train": train}
    windows.update(
        (s, WellWindows(data_dir, s, cfg, targets=train.targets)) for s in splits if s != "train"
    )
    rank, world = ranks()
    partial = path.with_name(f".{key}.partial")
    if rank == 0:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    barrier(world)
    mine = {s: shard(len(w), batch_size, rank, world) for s, w in windows.items()}
    total = sum(len(r) for r in mine.values())
    show = bool(progress) and rank == 0
    with tqdm(total=total, desc=progress, unit="window", leave=False, disable=not show) as bar:
        for split, w in windows.items():
            writer = TokenWriter(partial / f"{split}.rank{rank}.npy", len(mine[split]), dtype)
            part = Subset(w, mine[split]) if world > 1 else w
            embed_windows(fn, part, writer, batch_size, bar, tokens, device)
            writer.close()
    barrier(world)
    if rank == 0:
        provenance = {
            "source": found.label,
            "source_id": source_id,
            "data": str(data_dir),
            "windows": to_dict(cfg),
            "fields": list(train.field_names),
            "resolution": list(train.info.first.resolution),
            "stats": stats.read_text() if (stats := data_dir / "stats.yaml").is_file() else None,
        }
        _finish(partial, path, key, windows, world, dtype, tokens, provenance)
    barrier(world)
    made = _read(path, key)
    if made is None:
        raise PhysrepError("the embedding cache was not complete after writing it", path)
    return dataclasses.replace(made, cached=False)


def _finish(partial, path, key, windows, world, dtype, tokens, provenance) -> None:
    """Join the ranks' token files, add the per-window arrays and meta.json (last), and rename
    the folder into place."""
    rows, token_shape = {}, None
    for split, w in windows.items():
        parts = [TokenRows(partial / f"{split}.rank{r}.npy", dtype) for r in range(world)]
        joined = partial / f"{split}.tokens.npy"
        if world == 1:
            os.replace(parts[0].path, joined)
        else:
            shapes = [p.token_shape for p in parts if len(p)]
            writer = TokenWriter(joined, len(w), dtype)
            for p in parts:
                for chunk in p.batches():
                    writer.append(torch.from_numpy(chunk))
            writer.close(shapes[0] if shapes else (1, 1))
            for p in parts:
                p.path.unlink()
        raw = w.trajectory_params_raw[w.window_trajectory]
        arrays = {
            "params": w.targets.encode(raw).astype(np.float32),
            "params_raw": raw,
            "trajectory": w.window_trajectory,
            "start": w.window_start,
        }
        with (partial / f"{split}.arrays.npz").open("wb") as f:
            np.savez(f, **arrays)
        rows[split] = len(w)
        token_shape = token_shape or TokenRows(joined, dtype).token_shape
    pooled = 0 < tokens <= token_shape[0]  # an encoder with fewer tokens is kept as it is
    meta = {
        "format": FORMAT,
        "key": key,
        "dtype": dtype,
        "tokens": f"pooled-{tokens}" if pooled else "all",
        "token_shape": list(token_shape),
        "rows": rows,
        "targets": next(iter(windows.values())).targets.to_dict(),
        **provenance,
    }
    write_text_atomic(partial / "meta.json", json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(path, ignore_errors=True)  # an incomplete or foreign folder of this name
    os.replace(partial, path)


def _read(path: Path, key: str) -> Embeddings | None:
    """The cached embeddings, or None when the folder is not a complete cache of this key."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != FORMAT or meta.get("key") != key:
            return None
        targets = ParamTargets.from_dict(meta["targets"])
        splits = {}
        for split, n in meta["rows"].items():
            tokens = TokenRows(path / f"{split}.tokens.npy", meta["dtype"])
            with np.load(path / f"{split}.arrays.npz", allow_pickle=False) as z:
                arrays = [z[name] for name in ARRAYS]
            if len(tokens) != n or any(len(a) != n for a in arrays):
                return None
            splits[split] = SplitEmbeddings(tokens, *arrays)
    except (OSError, ValueError, KeyError, TypeError, EOFError, PhysrepError):
        return None
    order = [s for s in EVAL_SPLITS if s in splits] + sorted(set(splits) - set(EVAL_SPLITS))
    source = {k: meta[k] for k in SOURCE_KEYS if k in meta}
    return Embeddings(
        {s: splits[s] for s in order}, targets, key, path, True, meta["tokens"], source
    )
