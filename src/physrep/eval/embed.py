"""Frozen embeddings of every window of every split, cached on disk by content hash.

Probing trains hundreds of small heads on the same embeddings, so the encoder runs once per
(encoder weights, data, window config) and its output is kept in one `.npz`. The file name is a
hash of everything that shaped it, so a changed checkpoint, dataset or preprocessing can never
be served a stale cache, and it is written atomically, so a crash leaves no file at all rather
than a partial one that looks complete. Each row is one window; no batch padding is stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from physrep.atomic import save_npz_atomic, write_text_atomic
from physrep.config import from_dict, to_dict
from physrep.data.targets import ParamTargets
from physrep.data.validate import present_splits
from physrep.data.windows import WellWindows, WindowConfig, make_loader
from physrep.errors import PhysrepError

FORMAT = "physrep-embeddings/1"
FEATURES = "features"  # the source name of the physics-features control
FEATURES_VERSION = "1"  # bump when physics_features changes, so old caches are not reused
EVAL_SPLITS = ("train", "valid", "test", "test_ood")
EMBED_DTYPES = ("float32", "float16", "bfloat16")  # storage; probes always read float32


@dataclass
class SplitEmbeddings:
    tokens: np.ndarray  # (N, n_tokens, D) float32, one row per window
    params: np.ndarray  # (N, P) normalised targets (train-split statistics)
    params_raw: np.ndarray  # (N, P) physical values
    trajectory: np.ndarray  # (N,) trajectory id within the split
    start: np.ndarray  # (N,) first step of the window

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class Embeddings:
    splits: dict[str, SplitEmbeddings]
    targets: ParamTargets
    key: str
    path: Path
    cached: bool = False  # read from the cache rather than computed by this call

    @property
    def names(self) -> list[str]:
        return self.targets.names


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(source: str, fingerprint: str, cfg: WindowConfig, splits: Sequence[str]) -> str:
    """Hash of what shapes the embeddings: the encoder's bytes (or the features' version), the
    dataset's content, the window/preprocessing config and the splits."""
    keyed = {
        "format": FORMAT,
        "source": source,
        "data": fingerprint,
        "windows": to_dict(cfg),
        "splits": list(splits),
    }
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:20]


def embed_windows(
    fn: Callable[[torch.Tensor], torch.Tensor],
    windows: WellWindows,
    batch_size: int = 32,
    bar: Any = None,
) -> SplitEmbeddings:
    """Run `fn` (context (B,C,T,H,W) -> tokens (B,N,D)) over every window, in order
    (advancing the progress `bar`, if given, by the windows done)."""
    chunks = []
    with torch.inference_mode():
        for batch in make_loader(windows, batch_size, shuffle=False, pin_memory=False):
            out = fn(batch["context"])
            if bar is not None:
                bar.update(len(out))
            if out.ndim == 2:  # a single vector per window: one token
                out = out[:, None]
            chunks.append(out.float().cpu().numpy())
    tokens = np.concatenate(chunks) if chunks else np.zeros((0, 1, 1), np.float32)
    if len(tokens) != len(windows):
        raise PhysrepError(f"embedded {len(tokens)} rows for {len(windows)} windows", windows.root)
    if not np.isfinite(tokens).all():
        raise PhysrepError(
            f"non-finite embeddings in split '{windows.split}' (encoder diverged?)", windows.root
        )
    params_raw = windows.trajectory_params_raw[windows.window_trajectory]
    return SplitEmbeddings(
        tokens=tokens,
        params=windows.targets.encode(params_raw).astype(np.float32),
        params_raw=params_raw,
        trajectory=windows.window_trajectory.copy(),
        start=windows.window_start.copy(),
    )


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
) -> Embeddings:
    """Embeddings of `data_dir` by `source` (an exported `encoder.pt`, or "features"), from
    the cache in `cache_dir` when one with the same key exists, else computed and cached
    (under one progress bar over every split's windows, labelled `progress`, if given)."""
    from physrep.runinfo import data_fingerprint

    data_dir = Path(data_dir)
    if str(source) == FEATURES:
        from physrep.eval.features import physics_features

        source_id, encoder, fn = f"{FEATURES}/{FEATURES_VERSION}", None, physics_features
    else:
        from physrep.models.export import load_encoder

        encoder = load_encoder(source)
        source_id, fn = file_digest(source), encoder.encode
    if cfg is None:
        cfg = encoder_windows(encoder) if encoder is not None else WindowConfig(target=False)
    cfg = dataclasses.replace(cfg, target=False)
    splits = list(splits or [s for s in EVAL_SPLITS if s in present_splits(data_dir)])
    if "train" not in splits:
        raise PhysrepError("embeddings need the train split (targets are scaled on it)", data_dir)
    key = cache_key(source_id, fingerprint or data_fingerprint(data_dir), cfg, splits)
    path = Path(cache_dir) / f"{key}.npz"
    if path.is_file():
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
    total = sum(len(w) for w in windows.values())
    with tqdm(total=total, desc=progress, unit="window", leave=False, disable=not progress) as bar:
        made = {s: embed_windows(fn, w, batch_size, bar) for s, w in windows.items()}
    emb = Embeddings(made, train.targets, key, path)
    _write(emb, {"source": str(source), "source_id": source_id, "data": str(data_dir)})
    return emb


def _write(emb: Embeddings, provenance: dict) -> None:
    arrays = {"format": np.array(FORMAT), "key": np.array(emb.key)}
    arrays["targets"] = np.array(json.dumps(emb.targets.to_dict()))
    for split, s in emb.splits.items():
        for name, value in dataclasses.asdict(s).items():
            arrays[f"{split}.{name}"] = value
    save_npz_atomic(emb.path, **arrays)
    sidecar = {"key": emb.key, **provenance, "rows": {k: len(v) for k, v in emb.splits.items()}}
    write_text_atomic(emb.path.with_suffix(".json"), json.dumps(sidecar, indent=1) + "\n")


def _read(path: Path, key: str) -> Embeddings | None:
    """The cached embeddings, or None when the file is not a complete cache of this key."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != FORMAT or str(z["key"]) != key:
                return None
            targets = ParamTargets.from_dict(json.loads(str(z["targets"])))
            names = {n.split(".", 1)[0] for n in z.files if "." in n}
            fields = [f.name for f in dataclasses.fields(SplitEmbeddings)]
            splits = {s: SplitEmbeddings(*(z[f"{s}.{f}"] for f in fields)) for s in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    order = [s for s in EVAL_SPLITS if s in splits] + sorted(set(splits) - set(EVAL_SPLITS))
    return Embeddings({s: splits[s] for s in order}, targets, key, path, cached=True)
