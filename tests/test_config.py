"""Tests for egan_jax/config.py and the family registry (egan_jax/families/__init__.py)."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json

import pytest
from conftest import REPO, tiny_config

from egan_jax.config import (
    Config,
    apply_overrides,
    config_differences,
    config_from_dict,
    config_to_dict,
    leaf_paths,
    load_config,
    read_config,
    save_config,
)
from egan_jax.errors import ConfigError
from egan_jax.families import FAMILIES, get_family

DIGITS = REPO / "experiments" / "dcgan_digits.py"


def test_overrides_parse_to_the_field_types():
    config = load_config(
        DIGITS,
        [
            "train.steps=2_000",
            "optim.learning_rate=1e-4",
            "optim.b1=0",
            "log.quiet=yes",
            "data.name=tfds:mnist",
            "data.data_dir=/tmp/tfds",
            "model.width=16",
        ],
    )
    assert config.train.steps == 2000 and type(config.train.steps) is int
    assert config.optim.learning_rate == 1e-4
    assert config.optim.b1 == 0.0 and type(config.optim.b1) is float
    assert config.log.quiet is True
    assert config.data.name == "tfds:mnist"
    assert config.data.data_dir == "/tmp/tfds"
    assert config.model.width == 16
    assert apply_overrides(config, ["data.data_dir=none"]).data.data_dir is None


@pytest.mark.parametrize(
    ("override", "expected_in_message"),
    [
        ("train.stpes=10", "train.steps"),
        ("trian.steps=10", "train.steps"),
        ("steps=10", "train.steps"),
        ("model.widht=8", "model.width"),
    ],
)
def test_unknown_fields_name_close_matches(override, expected_in_message):
    with pytest.raises(ConfigError) as error:
        load_config(DIGITS, [override])
    message = str(error.value)
    assert override.split("=")[0] in message and expected_in_message in message


@pytest.mark.parametrize(
    ("override", "kind"),
    [
        ("train.steps=many", "integer"),
        ("train.steps=1.5", "integer"),
        ("optim.learning_rate=fast", "number"),
        ("log.quiet=maybe", "true/false"),
    ],
)
def test_mistyped_values_raise_config_error_naming_the_field(override, kind):
    with pytest.raises(ConfigError, match=rf"{override.split('=')[0]}.*{kind}"):
        load_config(DIGITS, [override])


def test_malformed_overrides_and_sections_are_refused():
    with pytest.raises(ConfigError, match="section.field=value"):
        load_config(DIGITS, ["train.steps"])
    with pytest.raises(ConfigError, match="is a section"):
        load_config(DIGITS, ["train=3"])
    with pytest.raises(ConfigError, match="no sub-fields"):
        load_config(DIGITS, ["seed.value=3"])


def test_tuple_fields_parse_from_strings():
    @dataclasses.dataclass(frozen=True)
    class Section:
        sizes: tuple[int, ...] = (1, 2)
        weights: tuple[float, ...] = (0.5,)

    config = Config(family="dcgan", model=Section(), loss=Section())
    config = apply_overrides(config, ["model.sizes=3,4,5", "loss.weights=(1, 2)"])
    assert config.model.sizes == (3, 4, 5)
    assert config.loss.weights == (1.0, 2.0)
    with pytest.raises(ConfigError, match="model.sizes"):
        apply_overrides(config, ["model.sizes=a,b"])


def test_json_round_trip_is_exact(tmp_path):
    config = tiny_config("seed=7", "optim.learning_rate=3e-4")
    save_config(config, tmp_path / "config.json")
    assert read_config(tmp_path / "config.json") == config
    assert config_from_dict(json.loads((tmp_path / "config.json").read_text())) == config
    assert load_config(tmp_path / "config.json", ["seed=8"]).seed == 8


def test_json_with_unknown_or_mistyped_field_is_refused():
    data = config_to_dict(tiny_config())
    data["train"]["stepz"] = 3
    with pytest.raises(ConfigError, match="train.stepz.*train.steps"):
        config_from_dict(data)
    data = config_to_dict(tiny_config())
    data["model"]["width"] = "wide"
    with pytest.raises(ConfigError, match="model.width"):
        config_from_dict(data)


def test_load_config_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.py")
    (tmp_path / "empty.py").write_text("X = 1\n")
    with pytest.raises(ConfigError, match="get_config"):
        load_config(tmp_path / "empty.py")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path / "bad.json")


def test_every_experiment_file_loads_and_is_a_registered_family():
    experiments = [p for p in sorted((REPO / "experiments").glob("*.py")) if p.name[0] != "_"]
    assert len(experiments) >= 2
    for path in experiments:
        spec = importlib.util.spec_from_file_location(f"_experiment_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not isinstance(module.get_config(), Config):
            continue  # not a training-loop experiment (e.g. LP-GAN's secure-computation run)
        config = load_config(path)
        assert config.family in FAMILIES, f"{path.name}: add {config.family!r} to FAMILIES"
        assert get_family(config.family).name == config.family
        assert "train.steps" in leaf_paths(config)
        assert config_from_dict(config_to_dict(config)) == config, path.name


def test_config_differences_ignore_resumable_fields_only():
    base = config_to_dict(tiny_config())
    resumed = config_to_dict(tiny_config("train.steps=40", "log.every=7", "checkpoint.every=9"))
    assert config_differences(base, resumed) == []
    other = config_to_dict(tiny_config("model.width=16", "seed=3"))
    differences = config_differences(base, other)
    assert [d.split(":")[0] for d in differences] == ["model.width", "seed"]


def test_a_config_saved_before_a_field_existed_resumes_with_its_default():
    """Workdirs written before `train.ema_decay` existed: absent = the default (0.0, off)."""
    current = config_to_dict(tiny_config())
    older = copy.deepcopy(current)
    del older["train"]["ema_decay"]
    assert config_differences(older, current) == []
    with_ema = config_to_dict(tiny_config("train.ema_decay=0.999"))
    assert [d.split(":")[0] for d in config_differences(older, with_ema)] == ["train.ema_decay"]
    removed = copy.deepcopy(current)
    removed["train"]["old_field"] = 1  # a field since removed: reported, not hidden
    assert [d.split(":")[0] for d in config_differences(removed, current)] == ["train.old_field"]


def test_unknown_family_lists_close_names():
    with pytest.raises(ConfigError, match="did you mean dcgan"):
        get_family("dcgann")
    assert get_family("dcgan").name == "dcgan"
    assert all(":" in target for target in FAMILIES.values())
