"""Configs as Python data: nested frozen dataclasses, typed overrides, JSON round trips.

A config is a `Config` whose generic sections (data, train, optim, log, checkpoint, eval,
distributed) are defined here and whose `model` and `loss` sections are dataclasses a family defines.
An experiment file (`experiments/*.py`) has a `get_config()` returning one.

Overrides such as `train.steps=2000` are parsed to the type of the field they set; an unknown or
mistyped field raises `ConfigError` naming the field and listing close matches.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
import json
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from egan_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which images to train on; `batch_at` makes each step's batch from (seed, step)."""

    name: str = "digits"
    split: str = "train"
    image_size: int = 32
    channels: int = 1
    data_dir: str | None = None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Length and global batch size of a run (the batch is split over every device), and the
    decay of an exponential moving average of the generator's weights (0 = off; `egan_jax.ema`)."""

    steps: int = 2000
    batch_size: int = 64
    ema_decay: float = 0.0


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Adam settings shared by every optimizer a family builds; `schedule` is "constant" or
    "linear_decay" (constant for the first `decay_start` fraction of steps, then linearly to 0)."""

    learning_rate: float = 2e-4
    b1: float = 0.5
    b2: float = 0.999
    schedule: str = "constant"
    decay_start: float = 0.5


@dataclasses.dataclass(frozen=True)
class LogConfig:
    """Logging cadence (in steps; 0 turns a periodic action off)."""

    every: int = 50
    sample_every: int = 500
    num_samples: int = 64
    tensorboard: bool = True
    quiet: bool = False


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpoints under `workdir/checkpoints`; one is also written at the end and on Ctrl-C."""

    every: int = 500
    max_to_keep: int = 3


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """The family's evaluate hook runs at the end and every `every` steps (0: at the end only)."""

    every: int = 0
    enabled: bool = True
    num_samples: int = 1000
    feature_dir: str | None = None  # feature-network weights/cache; None: ~/.cache/egan_jax


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """Multi-host training through `jax.distributed.initialize` when `coordinator_address` is set."""

    coordinator_address: str | None = None
    num_processes: int = 1
    process_id: int = 0


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run. `family` picks the entry of `egan_jax.families.FAMILIES`."""

    family: str
    model: Any
    loss: Any
    seed: int = 0
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    optim: OptimConfig = OptimConfig()
    log: LogConfig = LogConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    eval: EvalConfig = EvalConfig()
    distributed: DistributedConfig = DistributedConfig()


# Fields that may change between a run and its resumption without changing what it computes.
RESUMABLE_FIELDS = (
    "train.steps",
    "log.",
    "checkpoint.",
    "eval.",
    "distributed.",
    "data.data_dir",
)


def leaf_paths(config: Any, prefix: str = "") -> list[str]:
    """Every settable dotted path of a (nested) dataclass config, e.g. `train.steps`."""
    paths = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        path = prefix + field.name
        if dataclasses.is_dataclass(value):
            paths.extend(leaf_paths(value, path + "."))
        else:
            paths.append(path)
    return paths


def _close_matches(name: str, config: Any) -> str:
    candidates = leaf_paths(config)
    matches = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if not matches:  # a bare field name given without its section, e.g. "steps"
        matches = [path for path in candidates if path.rsplit(".", 1)[-1] == name.rsplit(".")[-1]]
    return f"; did you mean {', '.join(matches)}?" if matches else ""


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, annotation: Any, path: str) -> Any:
    """Checks (and, for strings from the command line, parses) `value` against `annotation`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in options:
                return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, path)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"config field {path!r} cannot be {value!r}")
    if annotation is Any:
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = _literal(value, path)
            if not isinstance(value, tuple | list):
                value = (value,)
        if not isinstance(value, tuple | list):
            raise ConfigError(f"config field {path!r} expects a tuple, got {value!r}")
        args = typing.get_args(annotation)
        item_type = args[0] if args else Any
        return tuple(_coerce(item, item_type, path) for item in value)
    if annotation is bool:
        if isinstance(value, str):
            lowered = value.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config field {path!r} expects true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config field {path!r} expects an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config field {path!r} expects a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config field {path!r} expects a string, got {value!r}")
    return value


def _literal(text: str, path: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return tuple(part.strip() for part in text.split(",") if part.strip())


def _set_path(config: Any, parts: Sequence[str], raw: Any, full: str, root: Any) -> Any:
    name = parts[0]
    names = {field.name for field in dataclasses.fields(config)}
    if name not in names:
        raise ConfigError(f"unknown config field {full!r}{_close_matches(full, root)}")
    current = getattr(config, name)
    if len(parts) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"config field {'.'.join(full.split('.')[:-1])!r} has no sub-fields")
        return dataclasses.replace(config, **{name: _set_path(current, parts[1:], raw, full, root)})
    if dataclasses.is_dataclass(current):
        raise ConfigError(
            f"config field {full!r} is a section; set one of its fields, e.g. "
            f"{full}.{dataclasses.fields(current)[0].name}=..."
        )
    value = _coerce(raw, _field_types(type(config))[name], full)
    return dataclasses.replace(config, **{name: value})


def apply_overrides(config: Config, overrides: Sequence[str]) -> Config:
    """Applies `section.field=value` strings, each parsed to the type of the field it sets."""
    for override in overrides:
        path, sep, raw = override.partition("=")
        if not sep or not path.strip():
            raise ConfigError(f"override {override!r} is not of the form section.field=value")
        path = path.strip()
        config = _set_path(config, path.split("."), raw.strip(), path, config)
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain JSON-compatible data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _apply_dict(template: Any, data: Mapping[str, Any], prefix: str, root: Any) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section {prefix.rstrip('.')!r} must be a mapping, got {data!r}")
    updates = {}
    hints = _field_types(type(template))
    names = {field.name for field in dataclasses.fields(template)}
    for key, value in data.items():
        path = prefix + key
        if key not in names:
            raise ConfigError(f"unknown config field {path!r}{_close_matches(path, root)}")
        current = getattr(template, key)
        if dataclasses.is_dataclass(current):
            updates[key] = _apply_dict(current, value, path + ".", root)
        else:
            updates[key] = _coerce(value, hints[key], path)
    return dataclasses.replace(template, **updates)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Rebuilds a config from `config_to_dict` output, with the family's default as template."""
    from egan_jax.families import get_family

    if "family" not in data:
        raise ConfigError("config has no 'family' field; it is not an egan_jax config")
    template = get_family(data["family"]).default_config()
    return _apply_dict(template, data, "", template)


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(json.dumps(config_to_dict(config), indent=2, sort_keys=True) + "\n")


def read_config(path: str | Path) -> Config:
    """Reads a config written by `save_config` (e.g. `workdir/config.json`)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"no config at {path}; is this a training workdir?") from error
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}); restore or delete it") from error
    return config_from_dict(data)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Loads an experiment file (a Python file with `get_config()`) or a saved JSON config, then
    applies `overrides` such as `["train.steps=2000", "model.width=16"]`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.suffix == ".json":
        config = read_config(path)
    else:
        spec = importlib.util.spec_from_file_location(f"_egan_experiment_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"{path} is not a Python file; pass an experiments/*.py file")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, "get_config"):
            raise ConfigError(f"{path} defines no get_config(); an experiment file must")
        config = module.get_config()
        if not isinstance(config, Config):
            raise ConfigError(f"{path}: get_config() must return egan_jax.config.Config")
    return apply_overrides(config, overrides)


def with_new_fields(saved: Mapping[str, Any]) -> Mapping[str, Any]:
    """A saved `config_to_dict` with the fields added to the config since it was written filled
    in with their defaults (the behaviour the older run had); unchanged if it no longer parses."""
    try:
        return config_to_dict(config_from_dict(saved))
    except ConfigError:
        return saved


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Dotted paths whose values differ between two `config_to_dict` outputs, ignoring the
    fields a resumed run may change (`RESUMABLE_FIELDS`). Fields the saved config predates count
    as their defaults (`with_new_fields`), so a run written before a field existed resumes."""
    flat_saved, flat_current = _flatten(with_new_fields(saved)), _flatten(current)
    differing = []
    for path in sorted(set(flat_saved) | set(flat_current)):
        if any(path == f or (f.endswith(".") and path.startswith(f)) for f in RESUMABLE_FIELDS):
            continue
        if flat_saved.get(path, "<absent>") != flat_current.get(path, "<absent>"):
            differing.append(
                f"{path}: {flat_saved.get(path, '<absent>')!r} -> "
                f"{flat_current.get(path, '<absent>')!r}"
            )
    return differing


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat
