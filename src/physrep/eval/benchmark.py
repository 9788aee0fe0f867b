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

import json
import os
from pathlib import Path

from tqdm.auto import tqdm

from physrep.atomic import write_text_atomic
from physrep.config import from_dict, merge, preset_path, read_yaml, to_dict
from physrep.data.windows import WindowConfig
from physrep.errors import ConfigError, PhysrepError
from physrep.eval.embed import FEATURES, load_or_embed
from physrep.eval.preset import SLOWEST, BenchmarkConfig, DatasetSpec
from physrep.eval.protocols import mean_control
from physrep.eval.source_runs import (
    finetune_source,
    probe_source,
    save_diagnostics,
    save_projection,
)
from physrep.eval.stages import Stage, check_stage, clear, merge_timings, summary


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
                rows += probe_source(
                    self.out, self.cfg, name, method, pseed, emb, stage, self.progress
                )
            if pseed == self.cfg.pretrain_seeds[0]:
                save_projection(self.out, name, method, emb)
            save_diagnostics(self.out, name, method, pseed, emb)
            if method in self.cfg.finetune_methods:
                with self.stage(name, f"finetune {method} s{pseed}") as stage:
                    windows = self.probe_windows(name)
                    rows += finetune_source(
                        self.out,
                        self.cfg,
                        name,
                        data_dir,
                        method,
                        pseed,
                        source,
                        fingerprint,
                        windows,
                        stage,
                        self.progress,
                    )
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

    def write_outputs(self, rows: list[dict]) -> list[dict]:
        """results.json, timings, tables and report; with `only`, the rows of the preset's
        other datasets from an earlier run into the same folder are kept, so per-dataset runs
        build one table. Returns every row written."""
        from physrep.eval.report import read_timings, write_tables_and_report
        from physrep.eval.results import read_results, write_results
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
