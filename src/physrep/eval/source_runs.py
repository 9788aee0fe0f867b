"""One source's probe and fine-tuning stages in a benchmark folder, and the files the report
reads beside the rows: full-data predictions, saved probes, the embedding projection and
diagnostics. Each stage's rows are cached under the folder, keyed by everything they depend
on, so a rerun never needs to recompute a cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from physrep.atomic import save_npz_atomic, write_text_atomic
from physrep.config import to_dict
from physrep.eval.embed import Embeddings
from physrep.eval.metrics import embedding_diagnostics
from physrep.eval.predictions import prediction_file, write_predictions
from physrep.eval.preset import BenchmarkConfig
from physrep.eval.protocols import TEST_SPLITS, finetune_rows, protocol_fractions, run_probes
from physrep.eval.saved import save_probe, saved_probe_file
from physrep.eval.stages import Stage


def _key(keyed: dict) -> str:
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]


def probe_source(
    out: Path,
    cfg: BenchmarkConfig,
    name: str,
    method: str,
    pretrain_seed: int,
    emb: Embeddings,
    stage: Stage,
    progress: bool = True,
) -> list[dict]:
    """Every probe × fraction × seed on one source's embeddings, cached per source (the
    key holds the embeddings' own key)."""
    key = _key(
        {
            "embeddings": emb.key,
            "probe": to_dict(cfg.probe),
            "probes": cfg.probes,
            "efficiency": cfg.efficiency_probes,
            "fractions": cfg.fractions,
            "seeds": cfg.probe_seeds,
        }
    )
    cache = out / name / "probes" / f"{method}-s{pretrain_seed}-{key}.json"
    if cache.is_file():
        stage.reuse()
        return json.loads(cache.read_text())

    def keep(probe, split, fraction, seed, pred, test):
        if fraction == 1.0 and seed == cfg.probe_seeds[0]:
            path = prediction_file(out, name, method, probe, split, seed, pretrain_seed)
            decoded = emb.targets.decode(pred)
            write_predictions(path, decoded, test.params_raw, test.trajectory, emb.names)

    def save(probe, fraction, seed, fitted, errors):
        if fraction == 1.0 and seed == cfg.probe_seeds[0]:
            path = saved_probe_file(out / name, method, pretrain_seed, probe, key)
            source = {"dataset": name, "method": method, "pretrain_seed": pretrain_seed}
            save_probe(path, fitted, errors, emb.targets, {**source, **emb.source, "key": key})

    rows = run_probes(
        name,
        method,
        emb,
        probes=cfg.probes,
        fractions=cfg.fractions,
        seeds=cfg.probe_seeds,
        probe_cfg=cfg.probe,
        efficiency_probes=cfg.efficiency_probes,
        pretrain_seed=pretrain_seed,
        on_prediction=keep,
        progress=progress,
        on_fit=save,
    )
    write_text_atomic(cache, json.dumps(rows, indent=1) + "\n")
    headline = [
        r["mse"]
        for r in rows
        if (r["probe"], r["split"], r["fraction"]) == (cfg.headline_probe, "test", 1.0)
    ]
    if headline:
        stage.outcome = f"{len(rows)} rows; {cfg.headline_probe} test MSE {np.mean(headline):.3f}"
    return rows


def finetune_source(
    out: Path,
    cfg: BenchmarkConfig,
    name: str,
    data_dir: Path,
    method: str,
    pretrain_seed: int,
    encoder: Path,
    data: str,
    windows,
    stage: Stage,
    progress: bool = True,
) -> list[dict]:
    """End-to-end fine-tuning of `encoder` with an attentive head on every fraction × seed
    the attentive probe runs on; each run's rows cached on its own (resumable)."""
    from physrep.data.validate import present_splits
    from physrep.eval.embed import file_digest
    from physrep.eval.finetune import finetune

    key = _key(
        {
            "encoder": file_digest(encoder),
            "data": data,
            "windows": to_dict(windows),
            "finetune": to_dict(cfg.finetune),
        }
    )
    fractions = protocol_fractions("attentive", cfg.fractions, cfg.efficiency_probes)
    label = f"{method}_finetuned"
    splits = tuple(s for s in TEST_SPLITS if s in present_splits(data_dir))
    rows: list[dict] = []
    ran = 0
    for fraction, seed in tqdm(
        [(f, s) for f in fractions for s in cfg.probe_seeds],
        desc=f"finetune {name}/{method}",
        disable=not progress,
        leave=False,
    ):
        cache = out / name / "finetune" / f"{label}-s{pretrain_seed}-f{fraction}-{seed}-{key}.json"
        if cache.is_file():
            rows += json.loads(cache.read_text())
            continue
        ran += 1
        result = finetune(encoder, data_dir, cfg.finetune, fraction, seed, splits, windows)
        made = finetune_rows(name, label, result, fraction, seed, pretrain_seed)
        if (fraction, seed) == (1.0, cfg.probe_seeds[0]):
            targets = result.targets
            for split, got in result.splits.items():
                path = prediction_file(out, name, label, "attentive", split, seed, pretrain_seed)
                true = targets.decode(got.params)
                decoded = targets.decode(got.pred)
                write_predictions(path, decoded, true, got.trajectory, targets.names)
        write_text_atomic(cache, json.dumps(made, indent=1) + "\n")
        rows += made
    if ran:
        stage.outcome = f"fine-tuned {ran} runs (fraction x seed)"
    else:
        stage.reuse()
    return rows


def save_projection(out: Path, name: str, method: str, emb: Embeddings) -> None:
    """2-D PCA of the standardised, mean-pooled test embeddings, for the report."""
    test = emb.splits["test"]
    pooled = test.pooled()
    pooled = (pooled - pooled.mean(0)) / np.where(pooled.std(0) > 0, pooled.std(0), 1.0)
    _, _, vt = np.linalg.svd(pooled, full_matrices=False)
    xy = pooled @ vt[:2].T
    save_npz_atomic(
        out / name / "projection" / f"{method}.npz",
        xy=xy,
        params=test.params_raw,
        names=np.array(emb.names),
    )


def save_diagnostics(
    out: Path, name: str, method: str, pretrain_seed: int, emb: Embeddings
) -> None:
    """Window-level variance diagnostics of the train embeddings (tables.diagnostics_section)."""
    train = emb.splits["train"]
    found = embedding_diagnostics(train.pooled(), train.params_raw, train.trajectory)
    record = {"dataset": name, "method": method, "pretrain_seed": pretrain_seed, **found}
    path = out / name / "diagnostics" / f"{method}-s{pretrain_seed}.json"
    write_text_atomic(path, json.dumps(record, indent=1) + "\n")
