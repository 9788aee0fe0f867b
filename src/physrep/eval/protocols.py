"""The probing protocols on cached embeddings: every probe × training fraction × seed, fit
on train, selected on valid, scored on each test split (`test`, and `test_ood` when the
dataset holds out parameter values); and the mean-predictor control on the same subsets."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from physrep.eval.embed import Embeddings, SplitEmbeddings, chosen_trajectories
from physrep.eval.metrics import estimate_metrics, per_trajectory
from physrep.eval.probes import ProbeConfig, fit_probe
from physrep.eval.uncertainty import TrajectoryErrors, interval_metrics

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
        for fraction in fractions
        if fraction == 1.0 or probe in efficiency
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
                {
                    **row_key(dataset, method, probe, split, fraction, seed, pretrain_seed),
                    **estimate_metrics(pred, test.params, test.trajectory, emb.targets),
                    **trajectory_intervals(pred, test, errors, emb),
                    "valid_mse": fitted.valid_mse,
                    "n_train": len(train),
                    "n_train_trajectories": len(np.unique(train.trajectory)),
                    "n_test": len(test),
                    "tokens": emb.tokens,
                    **fitted.detail,
                }
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
                metrics = estimate_metrics(pred, test.params, test.trajectory, emb.targets)
                metrics.update(trajectory_intervals(pred, test, errors, emb))
                key = row_key(dataset, "mean", "none", split, fraction, seed, 0)
                rows.append({**key, **metrics, "n_train": len(train), "n_test": len(test)})
    return rows


def fit_errors(pred: np.ndarray, valid: SplitEmbeddings) -> TrajectoryErrors:
    """The errors of trajectory estimates on `valid` (from window predictions `pred`)."""
    trajectory = valid.trajectory
    return TrajectoryErrors.fit(
        per_trajectory(pred, trajectory), per_trajectory(valid.params, trajectory)
    )


def trajectory_intervals(
    pred: np.ndarray, test: SplitEmbeddings, errors: TrajectoryErrors, emb: Embeddings
) -> dict[str, float]:
    """Coverage, widths, NLL and CRPS of the calibrated intervals, per trajectory."""
    return interval_metrics(
        per_trajectory(pred, test.trajectory),
        per_trajectory(test.params, test.trajectory),
        errors,
        emb.targets,
    )


def row_key(dataset, method, probe, split, fraction, seed, pretrain_seed) -> dict:
    return {
        "dataset": dataset,
        "method": method,
        "probe": probe,
        "split": split,
        "fraction": float(fraction),
        "seed": int(seed),
        "pretrain_seed": int(pretrain_seed),
    }
