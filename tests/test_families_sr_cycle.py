"""SRGAN and CycleGAN families on the generic loop: losses fall, runs are deterministic, resume is
bit-identical, 4 devices give the 1-device losses, configs load, the VGG fallback is announced."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, subprocess_env
from flax import nnx

from egan_jax import families
from egan_jax.config import apply_overrides, load_config
from egan_jax.logging_utils import read_metrics
from egan_jax.train import train_and_evaluate

REGISTRY = {
    "srgan": "egan_jax.families.srgan:FAMILY",
    "cyclegan": "egan_jax.families.cyclegan:FAMILY",
}
COMMON = (
    "model.width=8",
    "model.num_blocks=2",
    "model.discriminator_width=8",
    "data.image_size=32",
    "train.steps=6",
    "log.every=1",
    "log.sample_every=0",
    "log.num_samples=4",
    "log.tensorboard=false",
    "log.quiet=true",
    "checkpoint.every=3",
    "eval.enabled=false",
)
TINY = {
    "srgan": (*COMMON, "train.batch_size=4", "loss.pretrain_steps=3", "optim.learning_rate=1e-3"),
    "cyclegan": (*COMMON, "train.batch_size=2", "loss.pool_size=3", "optim.learning_rate=1e-3"),
}
# The metric whose fall shows learning within the first steps of each tiny run.
FALLING = {"srgan": "pixel_mse", "cyclegan": "cycle_l1"}


@pytest.fixture(scope="module", autouse=True)
def registered():
    with pytest.MonkeyPatch.context() as patch:
        for name, target in REGISTRY.items():
            patch.setitem(families.FAMILIES, name, target)
        yield


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    """A converted random VGG19 state up to relu1_2 (torchvision names and layout)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg19_features.npz"
    np.savez(
        path,
        **{
            "features.0.weight": rng.normal(0, 0.2, (64, 3, 3, 3)).astype(np.float32),
            "features.0.bias": np.zeros(64, np.float32),
            "features.2.weight": rng.normal(0, 0.06, (64, 64, 3, 3)).astype(np.float32),
            "features.2.bias": np.zeros(64, np.float32),
        },
    )
    return path


def tiny(name: str, *overrides: str, vgg_weights=None):
    config = families.get_family(name).default_config()
    extra = (f"loss.vgg_weights={vgg_weights}", "loss.vgg_layer=relu1_2") if vgg_weights else ()
    return apply_overrides(config, [*TINY[name], *extra, *overrides])


def state_arrays(models) -> dict[str, np.ndarray]:
    flat = nnx.to_flat_state(nnx.state(models))
    return {"/".join(map(str, path)): np.asarray(value[...]) for path, value in flat}


def metric_rows(workdir) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in read_metrics(workdir)]


@pytest.fixture(scope="module")
def straight_runs(tmp_path_factory, vgg_weights):
    runs = {}
    for name in REGISTRY:
        workdir = tmp_path_factory.mktemp(f"{name}_straight")
        weights = vgg_weights if name == "srgan" else None
        runs[name] = (workdir, train_and_evaluate(tiny(name, vgg_weights=weights), workdir))
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REGISTRY))
def test_a_few_steps_lower_the_losses(name, straight_runs):
    workdir, result = straight_runs[name]
    rows = metric_rows(workdir)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(v) for r in rows for v in r.values())
    falling = [r[FALLING[name]] for r in rows]
    assert falling[2] < falling[0], falling
    if name == "srgan":
        assert [r["pretraining"] for r in rows] == [1, 1, 1, 0, 0, 0]
        assert all(r["content_vgg"] == 1 for r in rows)
        assert rows[0]["d_loss"] == 0 and rows[-1]["d_loss"] > 0  # D trains in the GAN phase
        assert rows[-1]["content"] != rows[-1]["pixel_mse"]  # VGG features, not pixels
    else:
        assert int(result.models["pools"]["a"].count[...]) == 3  # pool filled to its size


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REGISTRY))
def test_resume_from_a_checkpoint_is_bit_identical(name, straight_runs, tmp_path, vgg_weights):
    workdir, result = straight_runs[name]
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(workdir, resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoints" / "6")  # as if killed after step 3's checkpoint
    weights = vgg_weights if name == "srgan" else None
    resumed = train_and_evaluate(tiny(name, vgg_weights=weights), resumed_dir)
    assert metric_rows(resumed_dir) == metric_rows(workdir)
    want, got = state_arrays(result.models), state_arrays(resumed.models)
    assert want.keys() == got.keys() and len(want) > 20
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


_DEVICE_SCRIPT = """
import json, sys
from egan_jax import families
families.FAMILIES.update({registry!r})
import test_families_sr_cycle as t
from egan_jax.train import train_and_evaluate
import jax
assert jax.device_count() == 4
config = t.tiny({name!r}, "train.steps=2", "train.batch_size=4", "checkpoint.every=0")
result = train_and_evaluate(config, sys.argv[1])
print(json.dumps(result.metrics))
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REGISTRY))
def test_four_devices_give_the_one_device_losses(name, tmp_path):
    script = _DEVICE_SCRIPT.format(registry=REGISTRY, name=name)
    env = subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "four")],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    four = json.loads(out.stdout.strip().splitlines()[-1])
    one = train_and_evaluate(
        tiny(name, "train.steps=2", "train.batch_size=4", "checkpoint.every=0"), tmp_path / "one"
    ).metrics
    assert four.keys() == one.keys()
    for key in one:
        np.testing.assert_allclose(four[key], one[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_srgan_without_vgg_weights_announces_the_pixel_fallback():
    family = families.get_family("srgan")
    with pytest.warns(UserWarning, match="falls back to the pixel MSE"):
        family.make_train_step(tiny("srgan"))


@pytest.mark.parametrize(
    "experiment", ["srgan_photos", "srgan_div2k", "cyclegan_grass2gravel", "cyclegan_horse2zebra"]
)
def test_experiment_configs_load(experiment):
    config = load_config(REPO / "experiments" / f"{experiment}.py")
    assert config.family == experiment.split("_")[0]
    assert config.family in families.FAMILIES
