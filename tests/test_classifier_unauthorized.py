"""The classifier's self-adversarial term (egan_jax/classifier_unauthorized.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import classifier_config
from flax import nnx

from egan_jax import classifier_unauthorized as unauthorized
from egan_jax.config import apply_overrides
from egan_jax.errors import ConfigError
from egan_jax.families import classifier

TINY = (
    "data.name=lfw",
    "data.image_size=16",
    "model.width=8",
    "model.depth=1",
    "model.baseline=false",
    "train.batch_size=8",
    "loss.unauthorized_keys=3",
)


@pytest.fixture(scope="module")
def key_file(classifier_key_file):
    return classifier_key_file


def _config(key_file, *overrides):
    return classifier_config(key_file, TINY, *overrides)


def test_uniform_kl_is_zero_only_for_equal_logits():
    logits = jnp.array([[2.0, 2.0, 2.0], [0.0, 1.0, 5.0], [-3.0, 0.0, 0.0]])
    kl = unauthorized.uniform_kl(logits)
    assert kl.shape == (3,)
    np.testing.assert_allclose(kl[0], 0.0, atol=1e-6)
    p = jax.nn.softmax(logits[1])
    np.testing.assert_allclose(kl[1], jnp.sum(jnp.log((1 / 3) / p)) / 3, rtol=1e-5)
    assert kl[1] > kl[2] > 0


def test_config_errors_name_the_field(key_file):
    with pytest.raises(ConfigError, match="loss.unauthorized_weight"):
        unauthorized.check(_config(key_file, "loss.unauthorized_weight=-1"))
    with pytest.raises(ConfigError, match="loss.unauthorized_keys"):
        unauthorized.check(
            _config(key_file, "loss.unauthorized_weight=1", "loss.unauthorized_keys=0")
        )
    with pytest.raises(ConfigError, match="keyed transform"):
        unauthorized.check(
            _config(key_file, "loss.unauthorized_weight=1", "model.transform.steps=()")
        )


def test_training_keys_are_deterministic_and_neither_the_owners_nor_the_evaluations(key_file):
    from egan_jax.classifier_eval import random_keys

    config = _config(key_file)
    spec = classifier.transform_config(config)
    first = unauthorized.training_pipelines(config, spec)
    again = unauthorized.training_pipelines(config, spec)
    other_seed = unauthorized.training_pipelines(apply_overrides(config, ["seed=1"]), spec)
    fingerprints = [p.fingerprint for p in first]
    assert fingerprints == [p.fingerprint for p in again] and len(set(fingerprints)) == 3
    assert not set(fingerprints) & {p.fingerprint for p in other_seed}
    evaluation = random_keys(jax.random.key(config.seed), 10)  # `egan evaluate --seed` draws
    owner = classifier.load_pipeline(config).fingerprint
    assert not set(fingerprints) & ({k.fingerprint for k in evaluation} | {owner})


def test_unauthorized_inputs_are_half_plain_half_one_training_key(key_file):
    config = _config(key_file)
    pipelines = unauthorized.training_pipelines(config, classifier.transform_config(config))
    plain = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (6, 16, 16, 1)), jnp.float32)
    out = unauthorized.unauthorized_inputs(plain, pipelines, jax.random.key(4))
    np.testing.assert_array_equal(out[:3], plain[:3])
    matches = [np.array_equal(out[3:], p.forward(plain[3:])) for p in pipelines]
    assert sum(matches) == 1
    chosen = {
        int(np.argmax([np.array_equal(unauthorized.unauthorized_inputs(plain, pipelines, k)[3:],
                                      p.forward(plain[3:])) for p in pipelines]))
        for k in jax.random.split(jax.random.key(5), 12)
    }  # fmt: skip
    assert len(chosen) > 1  # the step's key picks the training key


@pytest.mark.slow
def test_the_term_pushes_unauthorized_predictions_toward_uniform(key_file):
    """Same init, same batches: with the term the final model's predictions on unauthorized inputs
    are closer to uniform than without it, and the step reports the term."""
    spread = {}
    for weight in (0.0, 3.0):
        config = _config(key_file, f"loss.unauthorized_weight={weight}", "optim.learning_rate=3e-3")
        models = classifier.build_models(config, nnx.Rngs(0))
        optimizers = classifier.build_optimizers(config, models)
        step = nnx.jit(classifier.make_train_step(config))
        batches = classifier.make_batches(config)
        for i in range(15):
            metrics = step(models, optimizers, batches(i, 0, 1), jax.random.key(i))
        assert ("unauthorized_kl" in metrics) == bool(weight)
        plain = jnp.asarray(batches(99, 0, 1)["images"])
        spread[weight] = float(jnp.mean(unauthorized.uniform_kl(models["classifier"](plain))))
    assert spread[3.0] < 0.5 * spread[0.0]


@pytest.mark.parametrize(
    ("steps", "channels", "variant"),
    [
        (("shuffle", "np", "ffx"), 1, "decimal"),
        (("ffx", "shuffle"), 3, "binary"),
        (("np",), 3, "decimal"),
    ],
)
def test_fresh_material_is_a_pipeline_per_example(steps, channels, variant):
    """Example i through `apply_material` equals the library `Pipeline` built from draw i."""
    from egan_jax.transforms import Pipeline
    from egan_jax.transforms.block import BlockShuffleMaterial, FfxMaterial, NegPosMaterial

    block, count = 4, 3
    size = block * block * channels
    material = unauthorized.random_material(jax.random.key(7), count, size, variant)
    grid = np.round(np.random.default_rng(1).uniform(0, 255, (count, 8, 12, channels)))
    plain = jnp.asarray(grid / 127.5 - 1.0, jnp.float32)
    out = np.asarray(
        unauthorized.apply_material(plain, steps, material, block=block, variant=variant)
    )
    config = {"block": block, "steps": list(steps), "channels": channels, "ffx_variant": variant}
    for i in range(count):
        draw = {name: np.asarray(value[i]) for name, value in material.items()}
        made = {
            "shuffle": BlockShuffleMaterial(block, channels, draw["permutation"], "egk1-test"),
            "np": NegPosMaterial(block, channels, draw["flip"], "egk1-test"),
            "ffx": FfxMaterial(
                block, channels, variant, draw["ffx_mask"], draw["table"], "egk1-test"
            ),
        }
        pipeline = Pipeline(config, tuple((name, made[name]) for name in steps), "egk1-test")
        np.testing.assert_array_equal(out[i], np.asarray(pipeline.forward(plain[i : i + 1]))[0])
    # every example has its own material; a draw is a permutation, fair bits, distinct codes
    assert len({tuple(p) for p in np.asarray(material["permutation"])}) == count
    assert all(sorted(p) == list(range(size)) for p in np.asarray(material["permutation"]))
    tables = np.asarray(material["table"])
    assert all(np.unique(t).size == 256 for t in tables) and tables.max() < (
        1000 if variant == "decimal" else 256
    )


def test_fresh_inputs_half_plain_and_the_step_key_draws_new_material(key_file):
    config = _config(key_file, "loss.unauthorized_weight=1", "loss.unauthorized_material=fresh")
    unauthorized.check(config)
    spec = classifier.transform_config(config)
    plain = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (6, 16, 16, 1)), jnp.float32)
    first = unauthorized.fresh_inputs(plain, spec, jax.random.key(1))
    np.testing.assert_array_equal(first[:3], plain[:3])
    assert not np.array_equal(first[3:], plain[3:])
    np.testing.assert_array_equal(first, unauthorized.fresh_inputs(plain, spec, jax.random.key(1)))
    assert not np.array_equal(
        first[3:], unauthorized.fresh_inputs(plain, spec, jax.random.key(2))[3:]
    )
    with pytest.raises(ConfigError, match="unauthorized_material"):
        unauthorized.check(
            _config(key_file, "loss.unauthorized_weight=1", "loss.unauthorized_material=few")
        )
    with pytest.raises(ConfigError, match="use loss.unauthorized_material='keys'"):
        unauthorized.check(
            _config(
                key_file,
                "loss.unauthorized_weight=1",
                "loss.unauthorized_material=fresh",
                "model.transform.steps=shuffle,channel",
            )
        )
