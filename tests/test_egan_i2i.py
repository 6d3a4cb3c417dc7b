"""EGAN-protected SRGAN and CycleGAN (families/egan_srgan.py, egan_cyclegan.py, egan_image.py) and
their report (evaluate_i2i.py), on tiny widths: one short training run per family, shared."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax.config import apply_overrides, read_config
from egan_jax.errors import ConfigError, KeyMismatchError
from egan_jax.families import egan_image as protect
from egan_jax.families import get_family
from egan_jax.keys import SecretKey
from egan_jax.transforms.compose import Pipeline

COMMON = (
    "train.steps=3",
    "log.every=1",
    "log.sample_every=0",
    "log.tensorboard=false",
    "log.quiet=true",
    "checkpoint.every=0",
    "optim.learning_rate=0.001",
    "loss.unauthorized.random_keys=1",
    "loss.unauthorized.near_keys=1",
    "loss.unauthorized.near_materials=1",
)
TINY = {
    "egan_srgan": (
        "model.width=4", "model.num_blocks=0", "model.discriminator_width=4",
        "data.image_size=32", "train.batch_size=4", "loss.pretrain_steps=100",
    ),
    "egan_cyclegan": (
        "model.width=2", "model.num_blocks=0", "model.discriminator_width=2",
        "data.image_size=32", "train.batch_size=1", "loss.pool_size=2",
    ),
}  # fmt: skip


def tiny(family: str, *overrides: str):
    config = get_family(family).default_config()
    return apply_overrides(config, [*COMMON, *TINY[family], *overrides])


def train(family: str, workdir: Path, *overrides: str):
    from egan_jax.train import train_and_evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # srgan's "no VGG weights" notice
        return train_and_evaluate(tiny(family, *overrides), workdir)


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("egan_i2i") / "egan_srgan"
    return workdir, train("egan_srgan", workdir)


def _metric(workdir: Path, name: str) -> list[float]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [r[name] for r in map(json.loads, lines) if name in r]


def test_shapes_and_key_transform_applied(sr_run):
    config = tiny("egan_srgan")
    models = sr_run[1].models
    generator = models["generator"]
    assert isinstance(generator, protect.KeyedGenerator)
    lr = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3), minval=-1, maxval=1)
    chex.assert_shape(generator(lr), (2, 32, 32, 3))
    authorized = protect.authorize(config)
    expected = Pipeline.from_config(protect.transform_config(config), protect.load_key(config))
    np.testing.assert_array_equal(authorized(lr), expected.forward(lr))
    assert not np.allclose(authorized(lr), lr)
    # the sampler feeds the generator a_k(tile), not the raw tile
    sample = get_family("egan_srgan").make_sample(config)(models, jax.random.key(0), 2)
    from egan_jax.data import to_float
    from egan_jax.families.srgan import _test_tiles

    tiles = jnp.asarray(to_float(_test_tiles(config)[0][:2]))
    generator.eval()
    np.testing.assert_allclose(sample, generator(authorized(tiles)), atol=1e-6)
    assert not np.allclose(sample, generator(tiles), atol=1e-3)

    cycle = tiny("egan_cyclegan")
    graphdef, state = nnx.split(
        nnx.eval_shape(lambda: get_family("egan_cyclegan").build_models(cycle, nnx.Rngs(0)))
    )
    images = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)["generator_ab"](x), state, images)
    chex.assert_shape(out, (1, 32, 32, 3))
    cmodels = nnx.merge(graphdef, state)
    assert isinstance(cmodels["generator_ab"], protect.KeyedGenerator)
    assert not isinstance(cmodels["generator_ba"], protect.KeyedGenerator)


class _Head(nnx.Module):
    """A stand-in generator: one bias-only layer, features included."""

    def __init__(self):
        self.bias = nnx.Param(jnp.zeros(3))

    def __call__(self, x, *, return_features=False):
        out = x + self.bias
        return (out, {"head": out}) if return_features else out


def test_adapter_starts_as_identity_and_trains_at_its_own_rate():
    config = tiny("egan_srgan")
    model = protect.keyed(config, _Head(), nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(2), (1, 8, 8, 3))
    np.testing.assert_allclose(model(x), x, atol=1e-6)
    optimizer = protect.keyed_optimizer(config, model)
    before = jax.tree.map(np.array, nnx.state(model, nnx.Param))
    optimizer.update(model, jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param)))
    adapter_step = np.abs(model.adapter.conv.bias[...] - before["adapter"]["conv"]["bias"]).max()
    network_step = np.abs(model.generator.bias[...] - before["generator"]["bias"]).max()
    ratio = adapter_step / network_step
    np.testing.assert_allclose(ratio, config.model.adapter_lr_scale, rtol=1e-3)


def test_bad_config_is_a_clear_error():
    with pytest.raises(ConfigError, match="model.block"):
        get_family("egan_srgan").build_models(tiny("egan_srgan", "model.block=3"), nnx.Rngs(0))
    with pytest.raises(ConfigError, match="steps"):
        get_family("egan_cyclegan").build_models(
            tiny("egan_cyclegan", "model.steps=('rot',)"), nnx.Rngs(0)
        )
    with pytest.raises(ConfigError, match="features"):
        get_family("egan_srgan").make_train_step(
            tiny("egan_srgan", "loss.self_adversarial.features=discriminator")
        )


def _steps(family: str, step, count: int) -> tuple[list[float], list]:
    """`count` steps of a fresh tiny model on one fixed batch: (losses, final parameters)."""
    config = tiny(family)
    f = get_family(family)
    models = f.build_models(config, nnx.Rngs(0))
    optimizers = f.build_optimizers(config, models)
    batch = {k: jnp.asarray(v) for k, v in f.make_batches(config)(0, 0, 1).items()}
    name = "pixel_mse" if family == "egan_srgan" else "g_task"
    losses, terms = [], []
    for i in range(count):
        metrics = step(models, optimizers, batch, jax.random.key(i))
        losses.append(float(metrics[name]))
        terms.append(float(metrics["g_self_adversarial"]))
    margin = config.loss.self_adversarial.margin
    assert all(-margin - 1e-6 <= t <= 0 for t in terms)  # bounded by the margin
    return losses, jax.tree.leaves(jax.tree.map(np.asarray, nnx.state(models, nnx.Param)))


@pytest.mark.parametrize("family", sorted(TINY))
def test_a_few_steps_lower_the_loss_and_are_deterministic(family):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        step = nnx.jit(get_family(family).make_train_step(tiny(family)))
    losses, params = _steps(family, step, 4)
    assert losses[-1] < losses[0], losses
    again, params_again = _steps(family, step, 4)
    assert again == losses
    for a, b in zip(params, params_again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_stores_the_fingerprint_and_training_is_reproducible(sr_run, tmp_path):
    from egan_jax.checkpoint import Checkpointer

    workdir, result = sr_run
    with Checkpointer(workdir / "checkpoints", max_to_keep=2) as checkpointer:
        meta = checkpointer.read_meta(checkpointer.latest_step())
    assert meta["key_fingerprint"] == protect.key_fingerprint(read_config(workdir / "config.json"))
    assert {"psnr_y", "psnr_y_no_key", "bicubic_psnr_y"} <= set(result.evaluation)
    train("egan_srgan", tmp_path / "again")
    assert _metric(tmp_path / "again", "pixel_mse") == _metric(workdir, "pixel_mse")


def test_a_wrong_key_is_refused(sr_run, tmp_path):
    from egan_jax.evaluate_i2i import evaluate_workdir
    from egan_jax.train import train_and_evaluate

    workdir, _ = sr_run
    other = SecretKey.from_passphrase("someone else", bytes(16))
    with pytest.raises(KeyMismatchError, match="fingerprint"):
        evaluate_workdir(workdir, key=other, out=tmp_path / "report")
    key_file = tmp_path / "other.key"
    other.save(key_file)
    config = read_config(workdir / "config.json")
    resumed = dataclasses.replace(
        config, model=dataclasses.replace(config.model, key_file=str(key_file))
    )
    with pytest.raises(KeyMismatchError, match="fingerprint"):
        train_and_evaluate(resumed, workdir)


def test_evaluate_writes_the_sr_report(sr_run, tmp_path):
    from egan_jax.cli import main

    workdir, _ = sr_run
    out = tmp_path / "report"
    assert (
        main(["evaluate", "--workdir", str(workdir), "--out", str(out), "--random-keys", "2"]) == 0
    )
    report = json.loads((out / "report.json").read_text())
    kinds = [row["kind"] for row in report["rows"]]
    assert kinds.count("random_key") == 2 and "bicubic" in kinds and "no_key" in kinds
    assert {"near_key", "near_material", "authorized"} <= set(kinds)
    assert all(np.isfinite(row["psnr_y"]) for row in report["rows"])
    assert "every unauthorized PSNR below bicubic" in report["summary"]["goals"]
    assert "Y-PSNR" in (out / "report.md").read_text()
    assert (out / "grid.png").stat().st_size > 0


@pytest.mark.slow
def test_evaluate_writes_the_cycle_report(tmp_path, cheap_cycle_features):
    from egan_jax import evaluate_i2i

    train("egan_cyclegan", tmp_path / "run")
    report = evaluate_i2i.evaluate_workdir(tmp_path / "run", out=tmp_path / "report", random_keys=1)
    kinds = [row["kind"] for row in report["rows"]]
    assert {"reference", "authorized", "no_key", "random_key", "near_material"} <= set(kinds)
    assert "every unauthorized FD >= 3.0x the correct key's" in report["summary"]["goals"]
    assert (tmp_path / "report" / "grid.png").exists()
    assert "cycle PSNR" in (tmp_path / "report" / "report.md").read_text()


def test_summary_goals_from_rows():
    from egan_jax.evaluate_i2i_report import summarize

    sr = [
        {"name": "bicubic", "kind": "bicubic", "psnr_y": 30.0, "ssim_y": 0.7},
        {"name": "b", "kind": "baseline", "psnr_y": 31.0, "ssim_y": 0.7},
        {"name": "k", "kind": "authorized", "psnr_y": 30.9, "ssim_y": 0.7},
        {"name": "n", "kind": "no_key", "psnr_y": 12.0, "ssim_y": 0.1},
        {"name": "r0", "kind": "random_key", "psnr_y": 14.0, "ssim_y": 0.1},
        {"name": "r1", "kind": "random_key", "psnr_y": 29.0, "ssim_y": 0.1},
    ]
    summary = summarize("egan_srgan", sr)
    assert summary["worst_unauthorized_psnr"] == 29.0
    assert summary["kinds"]["random_key"]["mean"] == 21.5
    assert all(summary["goals"].values())
    sr[-1]["psnr_y"] = 30.5  # a random key above bicubic fails the goal
    assert not summarize("egan_srgan", sr)["goals"]["every unauthorized PSNR below bicubic"]
    cycle = [
        {"name": "k", "kind": "authorized", "fd_a_to_b": 10.0},
        {"name": "n", "kind": "no_key", "fd_a_to_b": 50.0},
        {"name": "m", "kind": "near_material", "fd_a_to_b": 25.0},
    ]
    summary = summarize("egan_cyclegan", cycle)
    assert summary["worst_unauthorized_ratio"] == 2.5
    assert not any(summary["goals"].values())


def test_feature_key_acts_inside_the_generator_and_is_fingerprinted(tmp_path):
    from egan_jax.evaluate_i2i import sr_rows
    from egan_jax.families.egan_dcgan import feature_hook
    from egan_jax.transforms.feature import FeatureMaterial, feature_forward
    from egan_jax.unauthorized import UnauthorizedSpec

    config = tiny("egan_srgan", "model.feature_key=true", "model.width=8")
    generator = get_family("egan_srgan").build_models(config, nnx.Rngs(0))["generator"]
    key = protect.load_key(config)
    owner = FeatureMaterial.from_key(key, channels=8, tag="srgan/head")
    assert not (np.array_equal(owner.permutation, np.arange(8)) and np.all(owner.signs > 0))
    lr = jax.random.uniform(jax.random.key(3), (2, 8, 8, 3), minval=-1, maxval=1)
    keyed = generator(lr)
    with feature_hook(generator.generator, lambda h: feature_forward(owner, h)):
        np.testing.assert_allclose(keyed, generator.generator(generator.adapter(lr)), atol=1e-6)
    assert not np.allclose(keyed, generator(lr, feature=lambda h: h), atol=1e-4)
    assert not np.allclose(keyed, generator.generator(lr), atol=1e-4)  # adapter removed
    # the feature material is the owner key's (same fingerprint), other keys' differ; the state
    # (what a checkpoint stores) holds no feature material
    pairs = protect.paired_variants(config)
    trained = [p.name for p in protect.cached_pairs(config)]  # model.feature_near=false
    assert "no key" in trained and not any("(feature)" in name for name in trained)
    assert pairs[0].material.key_fingerprint == protect.key_fingerprint(config)
    np.testing.assert_array_equal(pairs[0].material.permutation, owner.permutation)
    kinds = {p.name: p for p in pairs}
    assert kinds["no key"].material is None
    assert kinds["random key 0"].material.key_fingerprint != key.fingerprint
    near = kinds["near material 0 (feature)"]
    assert near.image is pairs[0].image and near.material.key_fingerprint.startswith(
        key.fingerprint
    )
    assert not np.array_equal(near.material.permutation, owner.permutation)
    paths = [str(p) for p, _ in jax.tree_util.tree_leaves_with_path(nnx.state(generator))]
    assert not any("feature" in p for p in paths)
    # the report scores each pair through its own feature transform
    spec = UnauthorizedSpec(random_keys=1, near_keys=0, near_materials=2, label="eval")
    rows, _ = sr_rows(config, {"generator": generator}, key, spec, None)
    psnr = {row["name"]: row["psnr_y"] for row in rows}
    assert {"near material 1 (feature)", "adapter removed, raw input"} <= set(psnr)
    others = [value for name, value in psnr.items() if name != "correct key"]
    assert psnr["correct key"] not in others  # (no key = adapter removed: the map is identity)
