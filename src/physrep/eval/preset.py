"""The benchmark's configuration: its datasets, methods, controls, pretraining recipe, probes,
protocols and seeds (configs/benchmark/<preset>.yaml, with `key=value` overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from physrep.config import apply_overrides, from_dict, preset_path, read_yaml
from physrep.errors import ConfigError
from physrep.eval.embed import EMBED_DTYPES
from physrep.eval.finetune import FinetuneConfig
from physrep.eval.probes import PROBES, ProbeConfig

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
