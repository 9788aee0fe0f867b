"""The evaluation protocol, shared by the benchmark, `physrep probe` and fine-tuning: every
probe × training fraction × seed, fit on train (a seeded, nested subset of its trajectories),
selected on valid, scored on each test split (`test`, and `test_ood` when the dataset holds
out parameter values); the mean-predictor control on the same subsets; and the one schema of
a result row (`result_row`), whatever produced it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from physrep.eval.embed import Embeddings, SplitEmbeddings, chosen_trajectories
from physrep.eval.metrics import estimate_metrics, per_trajectory
from physrep.eval.probes import ProbeConfig, fit_probe
from physrep.eval.uncertainty import TrajectoryErrors, interval_metrics

if TYPE_CHECKING:
    from physrep.eval.finetune import FinetuneResult

TEST_SPLITS = ("test", "test_ood")


def run_probes(
    dataset: str,
    method: str,
    emb: Embeddings,
    probes: list[str],
    fractions: list[float],
    seeds: list[int],
    probe_cfg: ProbeConfig,
    efficiency_probes: list[str] | None = None,
    pretrain_seed: int = 0,
    on_prediction=None,
    progress: bool = True,
    on_fit=None,
) -> list[dict]:
    """Fit every probe × fraction × seed on `emb` (train; selected on valid) and score it on
    each test split present. Fractions below 1 run only for `efficiency_probes` (default: all).
    `on_prediction(probe, split, fraction, seed, pred, test)` sees every prediction and
    `on_fit(probe, fraction, seed, fitted, errors)` every fitted probe with its valid errors."""
    efficiency = probes if efficiency_probes is None else efficiency_probes
    jobs = [
        (probe, fraction, seed)
        for probe in probes
        for fraction in protocol_fractions(probe, fractions, efficiency)
        for seed in seeds
    ]
    rows = []
    valid = emb.splits["valid"]
    for probe, fraction, seed in tqdm(
        jobs, desc=f"probe {dataset}/{method}", disable=not progress, leave=False
    ):
        train = subset_trajectories(emb.splits["train"], fraction, seed)
        fitted = fit_probe(
            probe, (train.tokens, train.params), (valid.tokens, valid.params), probe_cfg, seed
        )
        errors = fit_errors(fitted.predict(valid.tokens), valid)
        if on_fit is not None:
            on_fit(probe, fraction, seed, fitted, errors)
        for split in (s for s in TEST_SPLITS if s in emb.splits):
            test = emb.splits[split]
            pred = fitted.predict(test.tokens)
            rows.append(
                result_row(
                    (dataset, method, probe, split, fraction, seed, pretrain_seed),
                    split_metrics(pred, test, errors, emb),
                    valid_mse=fitted.valid_mse,
                    n_train=len(train),
                    n_train_trajectories=len(np.unique(train.trajectory)),
                    n_test=len(test),
                    tokens=emb.tokens,
                    **fitted.detail,
                )
            )
            if on_prediction is not None:
                on_prediction(probe, split, fraction, seed, pred, test)
    return rows


def subset_trajectories(split: SplitEmbeddings, fraction: float, seed: int) -> SplitEmbeddings:
    """The windows of a seeded `fraction` of the split's trajectories (nested: for one seed,
    a smaller fraction's trajectories are a subset of a larger one's)."""
    if fraction >= 1.0:
        return split
    keep = np.isin(split.trajectory, chosen_trajectories(split.trajectory, fraction, seed))
    return split.subset(keep)


def mean_control(
    dataset: str, emb: Embeddings, fractions: list[float], seeds: list[int]
) -> list[dict]:
    """Predict the mean of the training targets: MSE ≈ 1 by construction."""
    rows = []
    for fraction in fractions:
        for seed in seeds:
            train = subset_trajectories(emb.splits["train"], fraction, seed)
            mean = train.params.mean(0)
            valid = emb.splits["valid"]
            errors = fit_errors(np.broadcast_to(mean, valid.params.shape), valid)
            for split in (s for s in TEST_SPLITS if s in emb.splits):
                test = emb.splits[split]
                pred = np.broadcast_to(mean, test.params.shape)
                key = (dataset, "mean", "none", split, fraction, seed, 0)
                metrics = split_metrics(pred, test, errors, emb)
                rows.append(result_row(key, metrics, n_train=len(train), n_test=len(test)))
    return rows


def fit_errors(pred: np.ndarray, valid: SplitEmbeddings) -> TrajectoryErrors:
    """The errors of trajectory estimates on `valid` (from window predictions `pred`)."""
    trajectory = valid.trajectory
    return TrajectoryErrors.fit(
        per_trajectory(pred, trajectory), per_trajectory(valid.params, trajectory)
    )


def protocol_fractions(probe: str, fractions: list[float], efficiency: list[str]) -> list[float]:
    """The training fractions `probe` runs on: all for the data-efficiency probes, else 1."""
    return [f for f in fractions if f == 1.0 or probe in efficiency]


def split_metrics(
    pred: np.ndarray, test: SplitEmbeddings, errors: TrajectoryErrors, emb: Embeddings
) -> dict[str, float]:
    """Every metric of window predictions `pred` on `test`: errors per window and per
    trajectory, then coverage, widths, NLL and CRPS of the calibrated intervals (calibrated
    on the valid `errors`), per trajectory."""
    metrics = estimate_metrics(pred, test.params, test.trajectory, emb.targets)
    metrics.update(
        interval_metrics(
            per_trajectory(pred, test.trajectory),
            per_trajectory(test.params, test.trajectory),
            errors,
            emb.targets,
        )
    )
    return metrics


def result_row(key: tuple, metrics: dict[str, float], **fit) -> dict:
    """One result row, whatever produced it (probe, control, fine-tuning): its identity
    `key` = (dataset, method, probe, split, fraction, seed, pretrain_seed), then `metrics`,
    then what the fit saw (valid_mse, n_train, n_train_trajectories, n_test, ...)."""
    dataset, method, probe, split, fraction, seed, pretrain_seed = key
    identity = {
        "dataset": dataset,
        "method": method,
        "probe": probe,
        "split": split,
        "fraction": float(fraction),
        "seed": int(seed),
        "pretrain_seed": int(pretrain_seed),
    }
    return {**identity, **metrics, **fit}


def finetune_rows(
    dataset: str, method: str, result: FinetuneResult, fraction: float, seed: int, pretrain_seed=0
) -> list[dict]:
    """Result rows (probe "attentive": the fine-tuned head) of one fine-tuning run."""
    return [
        result_row(
            (dataset, method, "attentive", split, fraction, seed, pretrain_seed),
            estimate_metrics(got.pred, got.params, got.trajectory, result.targets),
            valid_mse=result.valid_mse,
            n_train=result.n_train,
            n_train_trajectories=result.n_train_trajectories,
            n_test=len(got.pred),
            best_epoch=result.best_epoch,
        )
        for split, got in result.splits.items()
    ]
