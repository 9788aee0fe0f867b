"""Configs: plain YAML files validated into dataclasses, with `key=value` overrides.

A config is a (possibly nested) dataclass. `load_config` reads the YAML preset, applies the
command line's `a.b=value` overrides (values parsed as YAML, so `frames=16`, `crop=null`,
`resize=[64,64]` all work), then checks every key and type against the dataclass, so a typo
fails at start-up with the key's name instead of silently doing nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from physrep.atomic import write_text_atomic
from physrep.errors import ConfigError

T = TypeVar("T")


class InvalidValue(ConfigError):
    """A value of the right type outside its allowed range. A dataclass's `validate` raises
    it with the field's own name; `from_dict` prefixes the section, so the user reads the
    full key (`optim.lr`), whichever section the dataclass sits in."""

    def __init__(self, key: str, rule: str, value: Any):
        self.key, self.rule, self.value = key, rule, value
        super().__init__(f"key '{key}' must be {rule}, got {value!r}")


def check(ok: bool, key: str, rule: str, value: Any) -> None:
    """Raise `InvalidValue(key, rule, value)` unless `ok`: one line per range rule."""
    if not ok:
        raise InvalidValue(key, rule, value)


def preset_path(kind: str, name: str) -> Path:
    """Path of the packaged preset `configs/<kind>/<name>.yaml`."""
    path = Path(str(resources.files("physrep") / "configs" / kind / f"{name}.yaml"))
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise ConfigError(f"unknown {kind} preset '{name}' (known: {', '.join(known) or 'none'})")
    return path


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({str(exc).splitlines()[0]})", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping of keys to values", path)
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `data` with each `a.b.c=value` set (value parsed as YAML)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return data


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` with `over` merged in, section by section (a copy; neither is changed)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass `cls` from `data`, naming the full key of any unknown or mistyped value."""
    if not isinstance(data, dict):
        raise ConfigError(f"key '{prefix.rstrip('.')}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key '{prefix}{unknown[0]}' (known keys: {', '.join(sorted(fields))})"
        )
    kwargs = {name: _coerce(hints[name], data[name], prefix + name) for name in data}
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field without a default was not given
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except InvalidValue as exc:
            raise InvalidValue(prefix + exc.key, exc.rule, exc.value) from None
    return obj


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None
) -> T:
    """Read YAML `path` (or the dataclass defaults), apply overrides, validate into `cls`."""
    data = read_yaml(path) if path is not None else {}
    return from_dict(cls, apply_overrides(data, overrides or []))


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-YAML view of a config dataclass (tuples become lists)."""
    return _plain(dataclasses.asdict(cfg))


def dump_config(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config atomically, so a run's folder always says what made it."""
    write_text_atomic(path, dump_config(cfg))


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else _type_error(key, tp, value)
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"key '{key}' must be one of {choices}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value if value is not None else {}, key + ".")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(key, tp, value)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"key '{key}' needs {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(key, tp, value)
        ktp, vtp = args if args else (Any, Any)
        return {_coerce(ktp, k, key): _coerce(vtp, v, f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `3e-3` (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise _type_error(key, tp, value) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(key, tp, value)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(key, tp, value)
        return value
    if tp in (dict, list):  # unparameterised: any mapping / list, checked by its consumer
        if not isinstance(value, tp):
            raise _type_error(key, tp, value)
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise _type_error(key, tp, value)
        return value
    raise ConfigError(f"key '{key}': unsupported config type {tp!r}")


def _type_error(key: str, tp: Any, value: Any) -> ConfigError:
    name = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
    return ConfigError(
        f"key '{key}' must be of type {name}, got {value!r} ({type(value).__name__})"
    )


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
