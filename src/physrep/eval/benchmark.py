"""The benchmark: datasets × methods × probes × protocols × seeds → results.json and a report.

For each dataset of a preset (or a Well-format folder given by the user) the stages are
simulate → pretrain each method (and the supervised control) → export the random-init control →
embed (every encoder, and the physics features) → probe under every protocol → tables and
report. Each stage writes files under OUT and is reused when its output exists and was made
from the same inputs (physrep.eval.stages), so an interrupted benchmark resumes where it
stopped and an unchanged rerun computes nothing; a stage whose inputs changed is refused by
name unless `rerun=True`, which recomputes it and everything downstream of it.

Methods listed in `finetune_methods` are also fine-tuned end to end with an attentive head
(the paper's MPP protocol), on the same fractions and seeds, as rows `<method>_finetuned`.

Protocols: the within-file trajectory split of The Well (`test`), the held-out-parameter
split (`test_ood`: parameter values no stage ever trained on, when the dataset has one), data
efficiency (probes on a seeded, nested fraction of the training trajectories), and seeds
(probe seeds × pretraining seeds).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from physrep.atomic import save_npz_atomic, write_text_atomic
from physrep.config import apply_overrides, from_dict, merge, preset_path, read_yaml, to_dict
from physrep.data.windows import WindowConfig
from physrep.errors import ConfigError, PhysrepError
from physrep.eval.embed import EMBED_DTYPES, FEATURES, Embeddings, load_or_embed
from physrep.eval.finetune import FinetuneConfig
from physrep.eval.metrics import embedding_diagnostics
from physrep.eval.probes import PROBES, ProbeConfig
from physrep.eval.protocols import TEST_SPLITS, mean_control, run_probes
from physrep.eval.saved import save_probe, saved_probe_file
from physrep.eval.stages import Stage, check_stage, clear, merge_timings, summary

# jepa_released needs the paper's code (key pretrain_overrides.jepa_released.code, or
# $PHYSREP_RELEASED_CODE): no preset lists it, a command line adds it (docs/methods.md).
DEFAULT_METHODS = ("jepa", "videomae", "autoregressive", "disco")
LEARNED = (*DEFAULT_METHODS, "jepa_released")
CONTROLS = ("mean", "random_init", "features", "supervised")


@dataclass
class DatasetSpec:
    system: str = ""  # simulator (shear_flow | rayleigh_benard | active_matter); "" for --well-dir
    sim: str = "small"  # simulation preset (configs/sim/<system>_<sim>.yaml)
    sim_overrides: dict = field(default_factory=dict)  # merged into the preset, e.g. holdout
    windows: dict = field(default_factory=dict)  # merged into the pretrain preset's data
    # merged after the preset-wide `pretrain_overrides`, for every method: a system's own
    # recipe (the paper trains shear_flow 6 epochs, active_matter at lr 1e-3)
    pretrain_overrides: dict = field(default_factory=dict)
    # per method, merged after the preset-wide `method_overrides`: a training length that one
    # system needs (the label-trained reference converges at different steps per system)
    method_overrides: dict[str, dict] = field(default_factory=dict)


SLOWEST = ("jepa", "jepa_released")  # started first when runs go side by side


@dataclass
class BenchmarkConfig:
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    controls: list[str] = field(default_factory=lambda: list(CONTROLS))
    pretrain: str = "small"  # pretrain preset (configs/pretrain/)
    pretrain_overrides: dict = field(default_factory=dict)  # merged into it, for every method
    method_overrides: dict[str, dict] = field(default_factory=dict)  # per method
    # named variants of a method, each a row of its own: {name: {method: jepa, jepa: {...}}}
    variants: dict[str, dict] = field(default_factory=dict)
    paper_recipe: bool = True  # with jepa: also the `jepa_paper` row (the paper's JEPA recipe)
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
    # embedding storage: float32, or float16 / bfloat16 (half the bytes; probes upcast)
    embed_dtype: str = "float32"
    # 0: keep every token; N: pool each window's tokens to N (token j is the mean of tokens
    # j, j+N, j+2N...: for a time-major ViT, the mean over time at each patch)
    embed_tokens: int = 0
    sim_workers: int = 0  # 0: one per core
    pretrain_workers: int = 1  # pretraining runs side by side, one thread each when > 1

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
        if self.pretrain_workers < 1:
            raise ConfigError("key 'pretrain_workers' must be at least 1")
        if self.embed_dtype not in EMBED_DTYPES:
            raise ConfigError(
                f"key 'embed_dtype' must be one of {', '.join(EMBED_DTYPES)}, got {self.embed_dtype!r}"
            )
        if self.embed_tokens < 0:
            raise ConfigError("key 'embed_tokens' must be 0 (every token) or a token count")
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


def load_benchmark(
    preset: str | Path, methods: list[str] | None = None, overrides: list[str] | None = None
) -> BenchmarkConfig:
    """A preset by name (configs/benchmark/NAME.yaml) or path, with `key=value` overrides,
    optionally restricted to `methods` (learned methods and controls alike)."""
    path = Path(preset) if str(preset).endswith((".yaml", ".yml")) else None
    data = read_yaml(path or preset_path("benchmark", str(preset)))
    cfg = from_dict(BenchmarkConfig, apply_overrides(data, overrides or []))
    if cfg.paper_recipe and "jepa" in cfg.methods and "jepa_paper" not in cfg.variants:
        from physrep.methods.jepa import PAPER_RECIPE

        cfg.variants = {"jepa_paper": {"method": "jepa", "jepa": PAPER_RECIPE}, **cfg.variants}
    if methods:
        known = set(cfg.methods) | set(cfg.controls) | set(cfg.variants)
        unknown = [m for m in methods if m not in known]
        if unknown:
            raise ConfigError(
                f"method '{unknown[0]}' is not in this preset (it has: {', '.join(sorted(known))})"
            )
        cfg.methods = [m for m in cfg.methods if m in methods]
        cfg.controls = [m for m in cfg.controls if m in methods]
        cfg.variants = {k: v for k, v in cfg.variants.items() if k in methods}
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
        only: list[str] | None = None,
    ):
        self.cfg, self.out, self.rerun, self.progress = cfg, Path(out), rerun, progress
        self.only = only  # run these datasets; results.json keeps the others' rows
        self.notes = notes  # markdown appended to results.md and the report
        self.well_dir = Path(well_dir) if well_dir else None
        self.timings: list[dict] = []
        self.rank, self.world = 0, 1  # this process under a launcher (set by run)
        self.specs: dict[str, DatasetSpec] = {}  # by the dataset's name in rows and folders
        self._fingerprints: dict[str, str] = {}

    # ---- the whole run -------------------------------------------------------------------

    def run(self) -> list[dict]:
        """Every stage; under a launcher (torchrun, srun) every process trains each encoder
        together (Lightning DDP) and embeds a shard, and rank 0 alone does the rest."""
        from physrep.eval.ranks import launched_group

        with launched_group() as (self.rank, self.world):
            return self._run()

    def _run(self) -> list[dict]:
        from physrep.runinfo import write_run_record

        datasets = self.selected(self.dataset_dirs())
        self.check_stages(datasets)  # refuse a stale stage before anything is computed
        if self.world > 1:
            self.check_launched(datasets)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            extra = {"datasets": {k: str(v) for k, v in datasets.items()}}
            write_run_record(self.out, self.cfg, extra=extra)
        rows: list[dict] = []
        for name, data_dir in datasets.items():
            rows += self.run_dataset(name, data_dir)
        if self.rank:
            return []
        rows = self.write_outputs(rows)
        tqdm.write(summary(self.timings))
        return rows

    def check_launched(self, datasets: dict[str, Path]) -> None:
        """What a launched job cannot do: simulate (hours on one rank while the others wait
        at a barrier), or train runs side by side (the launcher's processes train each)."""
        if self.cfg.pretrain_workers > 1:
            raise ConfigError("key 'pretrain_workers' must be 1 under a launcher")
        for name, data_dir in datasets.items():
            if self.well_dir is None and not (data_dir / "stats.yaml").is_file():
                raise PhysrepError(
                    f"dataset '{name}' is not simulated yet: run the benchmark once without a "
                    "launcher (or `physrep simulate`), then launch it with its data in place",
                    data_dir,
                )

    def selected(self, datasets: dict[str, Path]) -> dict[str, Path]:
        """The datasets `only` names (all without it), refusing a name the preset lacks."""
        if self.only is None:
            return datasets
        unknown = [n for n in self.only if n not in datasets]
        if unknown:
            raise ConfigError(
                f"dataset '{unknown[0]}' is not in this benchmark (it has: {', '.join(datasets)})"
            )
        return {n: d for n, d in datasets.items() if n in self.only}

    def dataset_dirs(self) -> dict[str, Path]:
        """Dataset name -> Well-format folder: the user's (`--well-dir`) or simulated ones.

        A user's dataset is named by its files' `dataset_name`, whatever the preset calls its
        datasets; it takes the preset's window settings when the preset has one dataset or
        one of that name."""
        if self.well_dir is None:
            self.specs = dict(self.cfg.datasets)
            return {name: self.out / name / "dataset" for name in self.cfg.datasets}
        if (self.well_dir / "data").is_dir():  # a single dataset folder
            folders = {None: self.well_dir}
        else:
            folders = {
                n: self.well_dir / n for n in self.cfg.datasets if (self.well_dir / n).is_dir()
            }
        if not folders:
            raise PhysrepError(
                f"no dataset folder ({', '.join(self.cfg.datasets)}) and no data/ in it",
                self.well_dir,
            )
        found: dict[str, Path] = {}
        only = next(iter(self.cfg.datasets.values())) if len(self.cfg.datasets) == 1 else None
        for preset_name, folder in folders.items():
            name = _dataset_name(folder)
            if name in found:
                raise PhysrepError(f"two datasets are named '{name}'", folder)
            spec = self.cfg.datasets.get(preset_name or name, only)
            found[name], self.specs[name] = folder, spec or DatasetSpec()
        return found

    def check_stages(self, datasets: dict[str, Path]) -> None:
        """Refuse (unless `rerun`) every simulated dataset and pretraining run made from other
        inputs than the config now asks for; with `rerun`, the stages themselves clear them."""
        for name, data_dir in datasets.items():
            if self.well_dir is None:
                check_stage(data_dir, self.sim_config(name), self.rerun)
                if self.rerun or not (data_dir / "stats.yaml").is_file():
                    continue  # the runs are checked against the dataset once it is complete
            fingerprint = self.fingerprint(name, data_dir)
            for method, seed in self.runs():
                cfg = self.pretrain_config(name, method, seed)
                check_stage(self.run_dir(name, method, seed), cfg, self.rerun, fingerprint)

    def runs(self) -> list[tuple[str, int]]:
        """(method, pretraining seed) of every encoder: trained ones and random_init."""
        methods = [*self.cfg.pretrained]
        if "random_init" in self.cfg.controls:
            methods.append("random_init")
        return [(m, seed) for seed in self.cfg.pretrain_seeds for m in methods]

    def run_dir(self, name: str, method: str, seed: int) -> Path:
        return self.out / name / "pretrain" / f"{method}-s{seed}"

    def fingerprint(self, name: str, data_dir: Path) -> str:
        from physrep.runinfo import data_fingerprint

        if name not in self._fingerprints:
            self._fingerprints[name] = data_fingerprint(data_dir)
        return self._fingerprints[name]

    def run_dataset(self, name: str, data_dir: Path) -> list[dict]:
        if self.well_dir is None:
            with self.stage(name, "simulate") as stage:
                self.simulate(name, data_dir, stage)
        fingerprint = self.fingerprint(name, data_dir)
        encoders = self.pretrain_all(name, data_dir)
        sources: dict[tuple[str, int], str | Path] = dict(encoders)
        if "features" in self.cfg.controls:
            sources["features", 0] = FEATURES
        rows: list[dict] = []
        for (method, pseed), source in sources.items():
            with self.stage(name, f"embed {method} s{pseed}") as stage:
                emb = load_or_embed(
                    source,
                    data_dir,
                    self.out / name / "embeddings",
                    cfg=self.probe_windows(name),
                    batch_size=self.cfg.embed_batch,
                    fingerprint=fingerprint,
                    progress=f"embed {name}/{method}" if self.progress else None,
                    dtype=self.cfg.embed_dtype,
                    tokens=self.cfg.embed_tokens,
                )
                if emb.cached:
                    stage.reuse()
                else:
                    stage.outcome = ", ".join(f"{s} {len(e)}" for s, e in emb.splits.items())
            if self.rank:  # probes, plots and fine-tuning run once, on rank 0
                continue
            with self.stage(name, f"probe {method} s{pseed}") as stage:
                rows += self.probe(name, method, pseed, emb, stage)
            if pseed == self.cfg.pretrain_seeds[0]:
                self.save_projection(name, method, emb)
            self.save_diagnostics(name, method, pseed, emb)
            if method in self.cfg.finetune_methods:
                with self.stage(name, f"finetune {method} s{pseed}") as stage:
                    rows += self.finetune(name, data_dir, method, pseed, source, fingerprint, stage)
        if "mean" in self.cfg.controls and not self.rank:
            if not sources:
                raise ConfigError("the mean control needs one other method (it reads targets)")
            rows += mean_control(name, emb, self.cfg.fractions, self.cfg.probe_seeds)
        return rows

    # ---- stages --------------------------------------------------------------------------

    def sim_config(self, name: str):
        from physrep.sim.base import SimConfig

        spec = self.cfg.datasets[name]
        data = merge(read_yaml(preset_path("sim", f"{spec.system}_{spec.sim}")), spec.sim_overrides)
        return from_dict(SimConfig, data)

    def simulate(self, name: str, root: Path, stage: Stage) -> None:
        from physrep.sim.runner import plan, simulate_dataset

        sim = self.sim_config(name)
        if check_stage(root, sim, self.rerun):
            clear(root)
        tasks = plan(sim)
        if (root / "stats.yaml").is_file() and _all_complete(tasks, root):
            return stage.reuse(f"reused ({len(tasks)} files)")
        workers = self.cfg.sim_workers or os.cpu_count() or 1
        simulate_dataset(sim, root, workers=workers, progress=self.progress)
        self._fingerprints.pop(name, None)  # taken before the files were (re)written
        stage.outcome = f"{len(tasks)} parameter combinations in {root}"

    def pretrain_config(self, name: str, method: str, seed: int):
        from physrep.train import PretrainConfig

        data = read_yaml(preset_path("pretrain", self.cfg.pretrain))
        data = merge(data, self.cfg.pretrain_overrides)
        spec = self.specs.get(name, DatasetSpec())
        data = merge(data, {"data": spec.windows})
        data = merge(data, spec.pretrain_overrides)
        data = merge(data, self.cfg.method_overrides.get(method, {}))
        data = merge(data, spec.method_overrides.get(method, {}))
        train_as = "jepa" if method == "random_init" else method
        if method in self.cfg.variants:
            data = merge(data, self.cfg.variants[method])
            train_as = self.cfg.variants[method]["method"]
        return from_dict(PretrainConfig, {**data, "method": train_as, "seed": seed})

    def probe_windows(self, name: str) -> WindowConfig:
        """The one window config every source is embedded with: the pretraining data section,
        clean (no noise, no augmentation), every trajectory, context only."""
        data = self.pretrain_config(name, "jepa", 0).data
        return data.clean(target=False)

    def pretrain_all(self, name: str, data_dir: Path) -> dict[tuple[str, int], Path]:
        """Every encoder of `runs()`: reused, exported at initialisation, or trained; with
        `pretrain_workers` > 1 the runs to train go side by side, one thread each. Under a
        launcher every rank trains each run together; rank 0 alone clears and exports."""
        from physrep.eval.parallel import PretrainJob, run_jobs
        from physrep.eval.ranks import barrier
        from physrep.train import export_initial, pretrain

        encoders: dict[tuple[str, int], Path] = {}
        jobs: list[PretrainJob] = []
        queued: dict[tuple[str, int], Stage] = {}  # stages recorded when their job finishes
        fingerprint = self.fingerprint(name, data_dir)
        for method, seed in self.runs():
            run = self.run_dir(name, method, seed)
            encoders[method, seed] = run / "encoder.pt"
            cfg = self.pretrain_config(name, method, seed)
            barrier(self.world)  # every rank sees the folders as rank 0 left them
            if check_stage(run, cfg, self.rerun, fingerprint) and self.rank == 0:
                clear(run)
            barrier(self.world)
            label = "init" if method == "random_init" else "pretrain"
            with self.stage(name, f"{label} {method} s{seed}") as stage:
                resume = (run / "checkpoints" / "last.ckpt").is_file()
                trained = f"{'resumed and ' if resume else ''}trained, {run}"
                if (run / "encoder.pt").is_file():
                    stage.reuse()
                elif method == "random_init":
                    if self.rank == 0:
                        export_initial(cfg, data_dir, run)
                    stage.outcome = "exported the untrained encoder"
                elif self.cfg.pretrain_workers > 1:  # trained below, side by side
                    jobs.append(PretrainJob((method, seed), to_dict(cfg), data_dir, run, resume))
                    stage.outcome, stage.timed = trained, False
                    queued[method, seed] = stage
                else:
                    pretrain(cfg, data_dir, run, resume=resume, progress=self.progress, quiet=True)
                    stage.outcome = trained
        jobs.sort(key=lambda job: job.cfg["method"] not in SLOWEST)  # long runs first
        for job, seconds in run_jobs(jobs, self.cfg.pretrain_workers) if jobs else ():
            queued[job.key].record(seconds)
        barrier(self.world)  # rank 0's exports are written before any rank reads them
        return encoders

    def probe(
        self, name: str, method: str, pretrain_seed: int, emb: Embeddings, stage: Stage
    ) -> list[dict]:
        """Every probe × fraction × seed on one source's embeddings, cached per source (the
        key holds the embeddings' own key, so a rerun never needs to recompute a cache)."""
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
        if cache.is_file():
            stage.reuse()
            return json.loads(cache.read_text())

        def keep(probe, split, fraction, seed, pred, test):
            if fraction == 1.0 and seed == cfg.probe_seeds[0]:
                self.save_predictions(
                    name, method, pretrain_seed, probe, split, seed, pred, test, emb
                )

        def save(probe, fraction, seed, fitted, errors):
            if fraction == 1.0 and seed == cfg.probe_seeds[0]:
                path = saved_probe_file(self.out / name, method, pretrain_seed, probe, key)
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
            progress=self.progress,
            on_fit=save,
        )
        write_text_atomic(cache, json.dumps(rows, indent=1) + "\n")
        headline = [
            r["mse"]
            for r in rows
            if (r["probe"], r["split"], r["fraction"]) == (cfg.headline_probe, "test", 1.0)
        ]
        if headline:
            stage.outcome = (
                f"{len(rows)} rows; {cfg.headline_probe} test MSE {np.mean(headline):.3f}"
            )
        return rows

    def finetune(
        self,
        name: str,
        data_dir: Path,
        method: str,
        pretrain_seed: int,
        encoder: Path,
        data: str,
        stage: Stage,
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
        ran = 0
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
            if cache.is_file():
                rows += json.loads(cache.read_text())
                continue
            ran += 1
            result = finetune(encoder, data_dir, cfg.finetune, fraction, seed, splits, windows)
            made = result_rows(name, label, result, fraction, seed, pretrain_seed)
            if (fraction, seed) == (1.0, cfg.probe_seeds[0]):
                for split, got in result.splits.items():
                    self._save_finetuned(
                        name, label, pretrain_seed, split, seed, got, result.targets
                    )
            write_text_atomic(cache, json.dumps(made, indent=1) + "\n")
            rows += made
        if ran:
            stage.outcome = f"fine-tuned {ran} runs (fraction x seed)"
        else:
            stage.reuse()
        return rows

    def _save_finetuned(self, name, label, pretrain_seed, split, seed, got, targets) -> None:
        from physrep.eval.predictions import prediction_file, write_predictions

        path = prediction_file(self.out, name, label, "attentive", split, seed, pretrain_seed)
        true = targets.decode(got.params)
        write_predictions(path, targets.decode(got.pred), true, got.trajectory, targets.names)

    def save_predictions(
        self, name, method, pretrain_seed, probe, split, seed, pred, test, emb
    ) -> None:
        """Physical-unit predictions of the full-data probe, for the report's scatter plots."""
        from physrep.eval.predictions import prediction_file, write_predictions

        path = prediction_file(self.out, name, method, probe, split, seed, pretrain_seed)
        decoded = emb.targets.decode(pred)
        write_predictions(path, decoded, test.params_raw, test.trajectory, emb.names)

    def save_projection(self, name: str, method: str, emb: Embeddings) -> None:
        """2-D PCA of the standardised, mean-pooled test embeddings, for the report."""
        test = emb.splits["test"]
        pooled = test.pooled()
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
        found = embedding_diagnostics(train.pooled(), train.params_raw, train.trajectory)
        record = {"dataset": name, "method": method, "pretrain_seed": pretrain_seed, **found}
        path = self.out / name / "diagnostics" / f"{method}-s{pretrain_seed}.json"
        write_text_atomic(path, json.dumps(record, indent=1) + "\n")

    def write_outputs(self, rows: list[dict]) -> list[dict]:
        """results.json, timings, tables and report; with `only`, the rows of the preset's
        other datasets from an earlier run into the same folder are kept, so per-dataset runs
        build one table. Returns every row written."""
        from physrep.eval.results import read_results, write_results
        from physrep.eval.tables import read_timings, write_tables_and_report
        from physrep.runinfo import record_provenance

        previous = self.out / "results.json"
        made = sorted({r["dataset"] for r in rows})
        if self.only is not None and previous.is_file():  # keep the other datasets' rows
            ran = set(made) | set(self.only)
            rows = [r for r in read_results(previous) if r["dataset"] not in ran] + rows
        write_results(previous, rows)
        record_provenance(self.out, made, self.only is not None)
        timings = merge_timings(read_timings(self.out), self.timings, self.only is not None)
        write_text_atomic(self.out / "timings.json", json.dumps(timings, indent=1) + "\n")
        write_tables_and_report(
            self.out, rows, timings, self.notes, headline_probe=self.cfg.headline_probe
        )
        return rows

    # ---- bookkeeping ---------------------------------------------------------------------

    def stage(self, dataset: str, name: str) -> Stage:
        return Stage(self.timings, dataset, name, echo=self.rank == 0)


def _dataset_name(folder: Path) -> str:
    """The `dataset_name` its train files carry (The Well's own name for it)."""
    from physrep.data.validate import inspect_dataset

    return inspect_dataset(folder, ["train"], scan_values=False).name


def _all_complete(tasks, root: Path) -> bool:
    from physrep.sim.runner import is_complete

    return all(is_complete(t, root) for t in tasks)
