"""The benchmark: datasets × methods × probes × protocols × seeds → results.json and a report.

For each dataset of a preset (or a Well-format folder given by the user) the stages are
simulate → pretrain each method (and the supervised control) → export the random-init control →
embed (every encoder, and the physics features) → probe under every protocol → tables and
report. Each stage writes files under OUT and is skipped when its output exists, so an
interrupted benchmark resumes where it stopped; `rerun=True` recomputes everything.

Methods listed in `finetune_methods` are also fine-tuned end to end with an attentive head
(the paper's MPP protocol), on the same fractions and seeds, as rows `<method>_finetuned`.

Protocols: the within-file trajectory split of The Well (`test`), the held-out-parameter
split (`test_ood`: parameter values no stage ever trained on, when the dataset has one), data
efficiency (probes on a seeded, nested fraction of the training trajectories), and seeds
(probe seeds × pretraining seeds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from physrep.atomic import save_npz_atomic, write_text_atomic
from physrep.config import from_dict, merge, preset_path, read_yaml, to_dict
from physrep.data.windows import WindowConfig
from physrep.errors import ConfigError, PhysrepError
from physrep.eval.embed import (
    FEATURES,
    Embeddings,
    SplitEmbeddings,
    chosen_trajectories,
    load_or_embed,
)
from physrep.eval.finetune import FinetuneConfig
from physrep.eval.metrics import embedding_diagnostics, estimate_metrics
from physrep.eval.probes import PROBES, ProbeConfig, fit_probe

LEARNED = ("jepa", "videomae", "autoregressive", "disco")
CONTROLS = ("mean", "random_init", "features", "supervised")
TEST_SPLITS = ("test", "test_ood")


@dataclass
class DatasetSpec:
    system: str = ""  # simulator (shear_flow | rayleigh_benard | active_matter); "" for --well-dir
    sim: str = "small"  # simulation preset (configs/sim/<system>_<sim>.yaml)
    sim_overrides: dict = field(default_factory=dict)  # merged into the preset, e.g. holdout
    windows: dict = field(default_factory=dict)  # merged into the pretrain preset's data


@dataclass
class BenchmarkConfig:
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: list(LEARNED))
    controls: list[str] = field(default_factory=lambda: list(CONTROLS))
    pretrain: str = "small"  # pretrain preset (configs/pretrain/)
    pretrain_overrides: dict = field(default_factory=dict)  # merged into it, for every method
    method_overrides: dict[str, dict] = field(default_factory=dict)  # per method
    # named variants of a method, each a row of its own: {name: {method: jepa, jepa: {...}}}
    variants: dict[str, dict] = field(default_factory=dict)
    pretrain_seeds: list[int] = field(default_factory=lambda: [0])
    probes: list[str] = field(default_factory=lambda: list(PROBES))
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    probe_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0])
    efficiency_probes: list[str] = field(default_factory=lambda: ["attentive", "ridge"])
    headline_probe: str = "attentive"
    finetune_methods: list[str] = field(default_factory=list)  # also fine-tuned end to end
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    embed_batch: int = 32
    sim_workers: int = 0  # 0: one per core

    def validate(self) -> None:
        known = (*LEARNED, *CONTROLS)
        for name in (*self.methods, *self.controls):
            if name not in known:
                raise ConfigError(f"unknown method '{name}' (known: {', '.join(known)})")
        for name, variant in self.variants.items():
            if variant.get("method") not in (*LEARNED, "supervised"):
                raise ConfigError(f"key 'variants.{name}.method' must be a trained method")
        for name in (*self.probes, *self.efficiency_probes, self.headline_probe):
            if name not in PROBES:
                raise ConfigError(f"unknown probe '{name}' (known: {', '.join(PROBES)})")
        for name in self.finetune_methods:
            if name not in self.methods:
                raise ConfigError(f"key 'finetune_methods': '{name}' is not in 'methods'")
        if any(not 0 < f <= 1 for f in self.fractions) or 1.0 not in self.fractions:
            raise ConfigError("key 'fractions' must lie in (0, 1] and include 1.0")

    @property
    def pretrained(self) -> list[str]:
        """Methods with a training run: the learned ones and the supervised control."""
        supervised = ["supervised"] if "supervised" in self.controls else []
        return [*self.methods, *self.variants, *supervised]

    @property
    def sources(self) -> list[str]:
        """Everything that is embedded and probed (all but the mean control)."""
        extra = [c for c in ("random_init", "features") if c in self.controls]
        return [*self.pretrained, *extra]


def load_benchmark(preset: str | Path, methods: list[str] | None = None) -> BenchmarkConfig:
    """A preset by name (configs/benchmark/NAME.yaml) or path, optionally restricted to
    `methods` (learned methods and controls alike)."""
    path = Path(preset) if str(preset).endswith((".yaml", ".yml")) else None
    cfg = from_dict(BenchmarkConfig, read_yaml(path or preset_path("benchmark", str(preset))))
    if methods:
        known = set(cfg.methods) | set(cfg.controls)
        unknown = [m for m in methods if m not in known]
        if unknown:
            raise ConfigError(
                f"method '{unknown[0]}' is not in this preset (it has: {', '.join(sorted(known))})"
            )
        cfg.methods = [m for m in cfg.methods if m in methods]
        cfg.controls = [m for m in cfg.controls if m in methods]
        cfg.finetune_methods = [m for m in cfg.finetune_methods if m in cfg.methods]
    return cfg


class Benchmark:
    """One benchmark run in folder `out`; `run()` does every stage not yet done."""

    def __init__(
        self,
        cfg: BenchmarkConfig,
        out: str | Path,
        well_dir: str | Path | None = None,
        rerun: bool = False,
        progress: bool = True,
        notes: str = "",
    ):
        self.cfg, self.out, self.rerun, self.progress = cfg, Path(out), rerun, progress
        self.notes = notes  # markdown appended to results.md and the report
        self.well_dir = Path(well_dir) if well_dir else None
        self.timings: list[dict] = []

    # ---- the whole run -------------------------------------------------------------------

    def run(self) -> list[dict]:
        from physrep.runinfo import write_run_record

        self.out.mkdir(parents=True, exist_ok=True)
        datasets = self.dataset_dirs()
        write_run_record(
            self.out, self.cfg, extra={"datasets": {k: str(v) for k, v in datasets.items()}}
        )
        rows: list[dict] = []
        for name, data_dir in datasets.items():
            rows += self.run_dataset(name, data_dir)
        self.write_outputs(rows)
        return rows

    def dataset_dirs(self) -> dict[str, Path]:
        """Dataset name -> Well-format folder: the user's (`--well-dir`) or simulated ones."""
        if self.well_dir is None:
            return {name: self.out / name / "dataset" for name in self.cfg.datasets}
        if (self.well_dir / "data").is_dir():  # a single dataset folder
            names = list(self.cfg.datasets)
            name = names[0] if len(names) == 1 else self.well_dir.name
            return {name: self.well_dir}
        found = {n: self.well_dir / n for n in self.cfg.datasets if (self.well_dir / n).is_dir()}
        if not found:
            raise PhysrepError(
                f"no dataset folder ({', '.join(self.cfg.datasets)}) and no data/ in it",
                self.well_dir,
            )
        return found

    def run_dataset(self, name: str, data_dir: Path) -> list[dict]:
        from physrep.runinfo import data_fingerprint

        if self.well_dir is None:
            with self.stage(name, "simulate"):
                self.simulate(name, data_dir)
        fingerprint = data_fingerprint(data_dir)
        encoders: dict[tuple[str, int], Path] = {}
        for seed in self.cfg.pretrain_seeds:
            for method in self.cfg.pretrained:
                with self.stage(name, f"pretrain {method} s{seed}"):
                    encoders[method, seed] = self.pretrain(name, data_dir, method, seed)
            if "random_init" in self.cfg.controls:
                with self.stage(name, f"init random_init s{seed}"):
                    encoders["random_init", seed] = self.random_init(name, data_dir, seed)
        sources: dict[tuple[str, int], str | Path] = dict(encoders)
        if "features" in self.cfg.controls:
            sources["features", 0] = FEATURES
        rows: list[dict] = []
        for (method, pseed), source in sources.items():
            with self.stage(name, f"embed {method} s{pseed}"):
                emb = load_or_embed(
                    source,
                    data_dir,
                    self.out / name / "embeddings",
                    cfg=self.probe_windows(name),
                    batch_size=self.cfg.embed_batch,
                    fingerprint=fingerprint,
                )
            with self.stage(name, f"probe {method} s{pseed}"):
                rows += self.probe(name, method, pseed, emb)
            if pseed == self.cfg.pretrain_seeds[0]:
                self.save_projection(name, method, emb)
            self.save_diagnostics(name, method, pseed, emb)
            if method in self.cfg.finetune_methods:
                with self.stage(name, f"finetune {method} s{pseed}"):
                    rows += self.finetune(name, data_dir, method, pseed, source, fingerprint)
        if "mean" in self.cfg.controls:
            if not sources:
                raise ConfigError("the mean control needs one other method (it reads targets)")
            rows += self.mean_control(name, emb)
        return rows

    # ---- stages --------------------------------------------------------------------------

    def simulate(self, name: str, root: Path) -> None:
        from physrep.sim.base import SimConfig
        from physrep.sim.runner import plan, simulate_dataset

        spec = self.cfg.datasets[name]
        data = merge(read_yaml(preset_path("sim", f"{spec.system}_{spec.sim}")), spec.sim_overrides)
        sim = from_dict(SimConfig, data)
        if self.rerun and root.exists():
            shutil.rmtree(root)
        if (root / "stats.yaml").is_file() and _all_complete(plan(sim), root):
            return
        workers = self.cfg.sim_workers or os.cpu_count() or 1
        simulate_dataset(sim, root, workers=workers, progress=self.progress)

    def pretrain_config(self, name: str, method: str, seed: int):
        from physrep.train import PretrainConfig

        data = read_yaml(preset_path("pretrain", self.cfg.pretrain))
        data = merge(data, self.cfg.pretrain_overrides)
        data = merge(data, {"data": self.cfg.datasets.get(name, DatasetSpec()).windows})
        data = merge(data, self.cfg.method_overrides.get(method, {}))
        train_as = "jepa" if method == "random_init" else method
        if method in self.cfg.variants:
            data = merge(data, self.cfg.variants[method])
            train_as = self.cfg.variants[method]["method"]
        return from_dict(PretrainConfig, {**data, "method": train_as, "seed": seed})

    def probe_windows(self, name: str) -> WindowConfig:
        """The one window config every source is embedded with: the pretraining data section,
        clean (no noise), every trajectory, context only."""
        data = self.pretrain_config(name, "jepa", 0).data
        return dataclasses.replace(data, noise_std=0.0, fraction=1.0, target=False)

    def pretrain(self, name: str, data_dir: Path, method: str, seed: int) -> Path:
        from physrep.train import pretrain

        run = self.out / name / "pretrain" / f"{method}-s{seed}"
        if self.rerun and run.exists():
            shutil.rmtree(run)
        if not (run / "encoder.pt").is_file():
            resume = (run / "checkpoints" / "last.ckpt").is_file()
            cfg = self.pretrain_config(name, method, seed)
            pretrain(cfg, data_dir, run, resume=resume, progress=self.progress)
        return run / "encoder.pt"

    def random_init(self, name: str, data_dir: Path, seed: int) -> Path:
        from physrep.train import export_initial

        run = self.out / name / "pretrain" / f"random_init-s{seed}"
        if self.rerun or not (run / "encoder.pt").is_file():
            export_initial(self.pretrain_config(name, "random_init", seed), data_dir, run)
        return run / "encoder.pt"

    def probe(self, name: str, method: str, pretrain_seed: int, emb: Embeddings) -> list[dict]:
        """Every probe × fraction × seed on one source's embeddings, cached per source."""
        cfg = self.cfg
        keyed = {
            "embeddings": emb.key,
            "probe": to_dict(cfg.probe),
            "probes": cfg.probes,
            "efficiency": cfg.efficiency_probes,
            "fractions": cfg.fractions,
            "seeds": cfg.probe_seeds,
        }
        key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
        cache = self.out / name / "probes" / f"{method}-s{pretrain_seed}-{key}.json"
        if cache.is_file() and not self.rerun:
            return json.loads(cache.read_text())

        def keep(probe, split, fraction, seed, pred, test):
            if fraction == 1.0 and seed == cfg.probe_seeds[0]:
                self.save_predictions(name, method, probe, split, seed, pred, test, emb)

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
            progress=self.progress,
        )
        write_text_atomic(cache, json.dumps(rows, indent=1) + "\n")
        return rows

    def finetune(
        self, name: str, data_dir: Path, method: str, pretrain_seed: int, encoder: Path, data: str
    ) -> list[dict]:
        """End-to-end fine-tuning of `encoder` with an attentive head on every fraction × seed
        the attentive probe runs on; each run's rows cached on its own (resumable)."""
        from physrep.data.validate import present_splits
        from physrep.eval.embed import file_digest
        from physrep.eval.finetune import finetune, result_rows

        cfg = self.cfg
        windows = self.probe_windows(name)
        keyed = {
            "encoder": file_digest(encoder),
            "data": data,
            "windows": to_dict(windows),
            "finetune": to_dict(cfg.finetune),
        }
        key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
        efficient = "attentive" in cfg.efficiency_probes
        fractions = [f for f in cfg.fractions if f == 1.0 or efficient]
        label = f"{method}_finetuned"
        splits = tuple(s for s in TEST_SPLITS if s in present_splits(data_dir))
        rows: list[dict] = []
        for fraction, seed in tqdm(
            [(f, s) for f in fractions for s in cfg.probe_seeds],
            desc=f"finetune {name}/{method}",
            disable=not self.progress,
            leave=False,
        ):
            cache = (
                self.out
                / name
                / "finetune"
                / f"{label}-s{pretrain_seed}-f{fraction}-{seed}-{key}.json"
            )
            if cache.is_file() and not self.rerun:
                rows += json.loads(cache.read_text())
                continue
            result = finetune(encoder, data_dir, cfg.finetune, fraction, seed, splits, windows)
            made = result_rows(name, label, result, fraction, seed, pretrain_seed)
            if (fraction, seed, pretrain_seed) == (1.0, cfg.probe_seeds[0], cfg.pretrain_seeds[0]):
                for split, got in result.splits.items():
                    self._save_finetuned(name, label, split, seed, got, result.targets)
            write_text_atomic(cache, json.dumps(made, indent=1) + "\n")
            rows += made
        return rows

    def _save_finetuned(self, name, label, split, seed, got, targets) -> None:
        save_npz_atomic(
            self.out / name / "predictions" / f"{label}__attentive__{split}__f1__s{seed}.npz",
            pred=targets.decode(got.pred),
            true=targets.decode(got.params),
            trajectory=got.trajectory,
            names=np.array(targets.names),
        )

    def mean_control(self, name: str, emb: Embeddings) -> list[dict]:
        """Predict the mean of the training targets: MSE ≈ 1 by construction."""
        rows = []
        for fraction in self.cfg.fractions:
            for seed in self.cfg.probe_seeds:
                train = subset_trajectories(emb.splits["train"], fraction, seed)
                for split in (s for s in TEST_SPLITS if s in emb.splits):
                    test = emb.splits[split]
                    pred = np.broadcast_to(train.params.mean(0), test.params.shape)
                    metrics = estimate_metrics(pred, test.params, test.trajectory, emb.targets)
                    key = _row_key(name, "mean", "none", split, fraction, seed, 0)
                    rows.append({**key, **metrics, "n_train": len(train), "n_test": len(test)})
        return rows

    def save_predictions(self, name, method, probe, split, seed, pred, test, emb) -> None:
        """Physical-unit predictions of the full-data probe, for the report's scatter plots."""
        stem = f"{method}__{probe}__{split}__f1__s{seed}"
        path = self.out / name / "predictions" / f"{stem}.npz"
        save_npz_atomic(
            path,
            pred=emb.targets.decode(pred),
            true=test.params_raw,
            trajectory=test.trajectory,
            names=np.array(emb.names),
        )

    def save_projection(self, name: str, method: str, emb: Embeddings) -> None:
        """2-D PCA of the standardised, mean-pooled test embeddings, for the report."""
        test = emb.splits["test"]
        pooled = test.tokens.mean(1, dtype=np.float64)
        pooled = (pooled - pooled.mean(0)) / np.where(pooled.std(0) > 0, pooled.std(0), 1.0)
        _, _, vt = np.linalg.svd(pooled, full_matrices=False)
        xy = pooled @ vt[:2].T
        save_npz_atomic(
            self.out / name / "projection" / f"{method}.npz",
            xy=xy,
            params=test.params_raw,
            names=np.array(emb.names),
        )

    def save_diagnostics(self, name: str, method: str, pretrain_seed: int, emb: Embeddings) -> None:
        """Window-level variance diagnostics of the train embeddings (see `diagnostics_table`)."""
        train = emb.splits["train"]
        found = embedding_diagnostics(train.tokens, train.params_raw, train.trajectory)
        record = {"dataset": name, "method": method, "pretrain_seed": pretrain_seed, **found}
        path = self.out / name / "diagnostics" / f"{method}-s{pretrain_seed}.json"
        write_text_atomic(path, json.dumps(record, indent=1) + "\n")

    def write_outputs(self, rows: list[dict]) -> None:
        from physrep.eval.results import write_results

        write_results(self.out / "results.json", rows)
        write_text_atomic(self.out / "timings.json", json.dumps(self.timings, indent=1) + "\n")
        write_tables_and_report(self.out, rows, self.timings, self.notes)

    # ---- bookkeeping ---------------------------------------------------------------------

    def stage(self, dataset: str, name: str):
        return _Stage(self.timings, dataset, name, self.progress)


class _Stage:
    """Times one stage and announces it (tqdm.write keeps progress bars intact)."""

    def __init__(self, log: list[dict], dataset: str, name: str, verbose: bool):
        self.log, self.dataset, self.name, self.verbose = log, dataset, name, verbose

    def __enter__(self):
        if self.verbose:
            tqdm.write(f"[{self.dataset}] {self.name} …")
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        seconds = time.perf_counter() - self.start
        self.log.append({"dataset": self.dataset, "stage": self.name, "seconds": round(seconds, 2)})


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
) -> list[dict]:
    """Fit every probe × fraction × seed on `emb` (train; selected on valid) and score it on
    each test split present. Fractions below 1 run only for `efficiency_probes` (default: all).
    `on_prediction(probe, split, fraction, seed, pred, test)` sees every prediction."""
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
        for split in (s for s in TEST_SPLITS if s in emb.splits):
            test = emb.splits[split]
            pred = fitted.predict(test.tokens)
            rows.append(
                {
                    **_row_key(dataset, method, probe, split, fraction, seed, pretrain_seed),
                    **estimate_metrics(pred, test.params, test.trajectory, emb.targets),
                    "valid_mse": fitted.valid_mse,
                    "n_train": len(train),
                    "n_train_trajectories": len(np.unique(train.trajectory)),
                    "n_test": len(test),
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
    return SplitEmbeddings(*(getattr(split, f.name)[keep] for f in dataclasses.fields(split)))


def write_tables_and_report(
    out: Path, rows: list[dict], timings: list[dict], notes: str = ""
) -> None:
    """results.md and report.html from result rows, stage timings and free-form notes."""
    from physrep.eval.report import write_report, write_results_md

    parts = (notes, diagnostics_table(out), timing_table(timings))
    text = "\n\n".join(n for n in parts if n)
    write_results_md(rows, out / "results.md", notes=text)
    write_report(out, rows, notes=text)


def rewrite_report(out: str | Path, notes: str = "") -> Path:
    """Regenerate results.md and report.html of a finished benchmark folder (e.g. with notes),
    from its results.json and timings.json, without rerunning any stage."""
    from physrep.eval.results import read_results

    out = Path(out)
    rows = read_results(out / "results.json")
    timings_file = out / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else []
    write_tables_and_report(out, rows, timings, notes)
    return out / "report.html"


def diagnostics_table(out: Path) -> str:
    """Markdown table of every embedding's window-level diagnostics found under `out`."""
    from physrep.eval.report import METHOD_ORDER

    records = []
    for path in sorted(Path(out).glob("*/diagnostics/*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a damaged optional file is left out, not fatal
    if not records:
        return ""
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    records.sort(key=lambda r: (r["dataset"], rank.get(r["method"], 99), r["method"]))
    lines = [
        "## Embedding diagnostics (train windows, mean-pooled, standardised)",
        "",
        "Effective rank of the window embeddings, and the share of their variance explained by "
        "the parameter values and by trajectory identity (the excess over the parameter share "
        "is initial-condition identity, which a probe must learn to ignore).",
        "",
        "| dataset | method | pretrain seed | effective rank | parameter share | "
        "trajectory share | top PC share |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['dataset']} | {r['method']} | {r['pretrain_seed']} | {r['effective_rank']:.1f} "
        f"| {r['param_share']:.2f} | {r['trajectory_share']:.2f} | {r['top_pc_share']:.2f} |"
        for r in records
    ]
    return "\n".join([*lines, ""])


def timing_table(timings: list[dict]) -> str:
    """Markdown table of wall time per stage (this process's stages only)."""
    if not timings:
        return ""
    lines = ["## Wall time per stage", "", "| dataset | stage | seconds |", "|---|---|---|"]
    lines += [f"| {t['dataset']} | {t['stage']} | {t['seconds']:.1f} |" for t in timings]
    total = sum(t["seconds"] for t in timings)
    return "\n".join([*lines, f"| all | total | {total:.1f} |", ""])


def _row_key(dataset, method, probe, split, fraction, seed, pretrain_seed) -> dict:
    return {
        "dataset": dataset,
        "method": method,
        "probe": probe,
        "split": split,
        "fraction": float(fraction),
        "seed": int(seed),
        "pretrain_seed": int(pretrain_seed),
    }


def _all_complete(tasks, root: Path) -> bool:
    from physrep.sim.runner import is_complete

    return all(is_complete(t, root) for t in tasks)
