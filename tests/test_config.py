from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from physrep.config import (
    apply_overrides,
    from_dict,
    load_config,
    preset_path,
    save_config,
    to_dict,
)
from physrep.data.windows import WindowConfig
from physrep.errors import ConfigError


@dataclass
class Inner:
    width: int = 8
    scale: float = 1.0


@dataclass
class Outer:
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    maybe: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_defaults_and_nested_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: run\ninner:\n  width: 16\n")
    cfg = load_config(Outer, path, ["inner.scale=2", "sizes=[3, 4, 5]", "maybe=null", "mode=b"])
    assert cfg == Outer(name="run", mode="b", sizes=[3, 4, 5], maybe=None, inner=Inner(16, 2.0))
    assert isinstance(cfg.inner.scale, float)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["nmae=1"], "unknown key 'nmae'"),
        (["inner.widht=3"], "unknown key 'inner.widht'"),
        (["inner.width=wide"], "key 'inner.width' must be of type int, got 'wide'"),
        (["inner.width=1.5"], "key 'inner.width' must be of type int"),
        (["mode=c"], "key 'mode' must be one of 'a', 'b'"),
        (["sizes=[1, x]"], "key 'sizes[1]' must be of type int"),
        (["name"], "not of the form key=value"),
        (["name.sub=1"], "key 'name' must be of type str"),
    ],
)
def test_bad_keys_and_types_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(Outer, None, overrides)


def test_bool_is_not_an_int_and_ints_widen_to_float():
    with pytest.raises(ConfigError, match="key 'inner.width' must be of type int, got True"):
        from_dict(Outer, {"inner": {"width": True}})
    assert from_dict(Inner, {"scale": 3}).scale == 3.0
    assert load_config(Inner, None, ["scale=3e-3"]).scale == 3e-3  # YAML 1.1 reads this as str


def test_bad_yaml_file_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Outer, tmp_path / "missing.yaml")


def test_saved_config_reloads_identically(tmp_path):
    cfg = load_config(Outer, None, ["inner.width=3", "sizes=[9]"])
    save_config(cfg, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == to_dict(cfg)
    assert load_config(Outer, tmp_path / "config.yaml") == cfg


def test_overrides_do_not_mutate_their_input():
    data = {"inner": {"width": 1}}
    apply_overrides(data, ["inner.width=2"])
    assert data == {"inner": {"width": 1}}


def test_packaged_window_presets_validate():
    for name in ("default", "shear_flow_paper", "rayleigh_benard_paper", "active_matter_paper"):
        cfg = load_config(WindowConfig, preset_path("windows", name))
        assert cfg.frames == 16
    assert load_config(WindowConfig, preset_path("windows", "shear_flow_paper")).crop == [
        [0, 256],
        [0, 256],
    ]
    with pytest.raises(ConfigError, match="unknown windows preset 'nope'"):
        preset_path("windows", "nope")


def test_dataclass_validate_hook_runs():
    with pytest.raises(ConfigError, match="fraction"):
        from_dict(WindowConfig, {"fraction": 1.5})


def test_every_packaged_sim_and_benchmark_preset_validates():
    from physrep.eval.preset import load_benchmark
    from physrep.sim.base import SimConfig
    from physrep.sim.runner import plan

    sims = sorted(preset_path("sim", "shear_flow_tiny").parent.glob("*.yaml"))
    for path in sims:
        cfg = load_config(SimConfig, path)
        assert path.stem.startswith(cfg.system) and plan(cfg), path
    benchmarks = sorted(preset_path("benchmark", "tiny").parent.glob("*.yaml"))
    assert {"tiny", "demo", "small", "paper"} <= {p.stem for p in benchmarks}
    for path in benchmarks:
        cfg = load_benchmark(path)
        for name, spec in cfg.datasets.items():
            sim = preset_path("sim", f"{spec.system}_{spec.sim}")  # raises if it is missing
            assert sim.is_file(), (path.stem, name)
        preset_path("pretrain", cfg.pretrain)
