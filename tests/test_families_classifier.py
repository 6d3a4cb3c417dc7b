"""The classifier family: config checks, keyed batches, the evaluation table, a tiny real run."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from egan_jax import classifier_eval, families
from egan_jax.config import apply_overrides
from egan_jax.data import to_float
from egan_jax.errors import ConfigError, KeyMismatchError
from egan_jax.families import classifier
from egan_jax.keys import SecretKey

TINY = (
    "data.name=lfw",
    "data.image_size=16",
    "model.width=8",
    "model.depth=1",
    "train.batch_size=8",
    "train.steps=3",
    "log.every=1",
    "log.quiet=true",
    "log.tensorboard=false",
    "checkpoint.every=0",
    "loss.random_keys=2",
    "loss.near_miss_keys=1",
    "loss.eval_batch_size=16",
)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "classifier.key"
    SecretKey.from_bytes(bytes(range(7, 39))).save(path)
    return path


def _config(key_file, *overrides):
    return apply_overrides(
        classifier.default_config(), [*TINY, f"model.transform.key_file={key_file}", *overrides]
    )


def _models(config, seed=0):
    """The family's models, built in one compile without backend optimisation (fast on CPU)."""
    make = lambda: classifier.build_models(config, nnx.Rngs(jax.random.key(seed, impl="rbg")))
    graphdef, _ = nnx.split(nnx.eval_shape(make))
    compiled = jax.jit(lambda: nnx.state(make())).lower()
    return nnx.merge(graphdef, compiled.compile({"xla_backend_optimization_level": 0})())


def test_config_errors_name_the_field(key_file):
    with pytest.raises(ConfigError, match="model.transform.key_file"):
        classifier.load_pipeline(apply_overrides(classifier.default_config(), TINY))
    with pytest.raises(ConfigError, match="loss.optimizer"):
        classifier.load_pipeline(_config(key_file, "loss.optimizer=lamb"))
    with pytest.raises(ConfigError, match="label_smoothing"):
        classifier.load_pipeline(_config(key_file, "loss.label_smoothing=1.5"))
    assert classifier.load_pipeline(_config(key_file, "model.transform.steps=()")) is None
    assert classifier.key_fingerprint(_config(key_file, "model.transform.steps=()")) is None
    pipe = classifier.load_pipeline(_config(key_file))
    assert pipe.fingerprint == SecretKey.load(key_file).fingerprint
    assert pipe.config["channels"] == 1 and pipe.config["steps"] == ["shuffle", "np", "ffx"]


def test_cross_entropy_per_example_and_label_smoothing():
    logits = jax.random.normal(jax.random.key(0), (5, 4))
    labels = jnp.array([0, 1, 2, 3, 1])

    @jax.jit  # one compile instead of one per eager op
    def losses(logits):
        log_p = jax.nn.log_softmax(logits)
        return (
            classifier.cross_entropy(logits, labels),
            optax.softmax_cross_entropy_with_integer_labels(logits, labels),
            classifier.cross_entropy(logits, labels, label_smoothing=0.2),
            -(0.8 * log_p[jnp.arange(5), labels] + 0.2 * jnp.mean(log_p, axis=-1)),
        )

    plain, reference, smoothed, expected = losses(logits)
    assert plain.shape == (5,)
    np.testing.assert_allclose(plain, reference, rtol=1e-6)
    np.testing.assert_allclose(smoothed, expected, rtol=1e-5)
    assert not np.allclose(smoothed, plain)


def test_optimizers_and_schedules(key_file):
    for overrides in (("loss.optimizer=sgd", "loss.weight_decay=0.001"), ("loss.optimizer=adam",)):
        config = _config(key_file, *overrides, "optim.schedule=linear_decay", "train.steps=10")
        schedule = families.learning_rate_schedule(config)
        assert float(schedule(0)) == pytest.approx(config.optim.learning_rate, rel=1e-6)
        assert float(schedule(10)) == 0.0
        model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
        optimizers = classifier.build_optimizers(config, {"classifier": model})
        assert isinstance(optimizers["classifier"], nnx.Optimizer)
    sgd = _config(key_file, "loss.optimizer=sgd", "loss.momentum=0.0", "optim.learning_rate=0.5")
    model = nnx.Linear(2, 2, use_bias=False, rngs=nnx.Rngs(0))
    before = np.asarray(model.kernel[...])
    optimizer = classifier.build_optimizers(sgd, {"classifier": model})["classifier"]
    optimizer.update(model, jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param)))
    np.testing.assert_allclose(model.kernel[...], before - 0.5, rtol=1e-6)  # plain SGD step


def test_batches_are_deterministic_and_the_step_sees_transformed_images(key_file):
    config = _config(key_file)
    batches = classifier.make_batches(config)
    first, again = batches(3, 0, 1), batches(3, 0, 1)
    np.testing.assert_array_equal(first["images"], again["images"])
    np.testing.assert_array_equal(first["labels"], again["labels"])
    assert first["images"].shape == (8, 16, 16, 1) and set(np.unique(first["labels"])) <= {0, 1}
    shown = classifier.make_sample(config)(None, jax.random.key(0), 4)
    pipe = classifier.load_pipeline(config)
    plain = classifier._load(config, "train")[0][:4]
    np.testing.assert_array_equal(shown, pipe.forward(jnp.asarray(to_float(plain))))


def test_random_keys_follow_the_jax_key():
    a = classifier_eval.random_keys(jax.random.key(1), 3)
    b = classifier_eval.random_keys(jax.random.key(1), 3)
    c = classifier_eval.random_keys(jax.random.key(2), 3)
    assert [k.fingerprint for k in a] == [k.fingerprint for k in b]
    assert len({k.fingerprint for k in a + c}) == 6


def test_evaluation_of_a_lockable_patch_model_with_matched_init(key_file):
    """ConvMixer, patch = block, shuffle + NP, protected model = the baseline locked with the key."""
    from egan_jax.classifier_lock import lock_kernel

    config = _config(
        key_file,
        "model.arch=convmixer",
        "model.patch_size=4",
        "model.transform.steps=shuffle,np",
        "model.matched_init=true",
    )
    assert classifier.lockable(config)
    assert not classifier.lockable(_config(key_file, "model.arch=convmixer"))  # FFX
    with pytest.raises(ConfigError, match="matched_init"):
        classifier.build_models(
            _config(key_file, "model.arch=convmixer", "model.matched_init=true"), nnx.Rngs(0)
        )
    models = _models(config)  # built inside jit: the lock must trace
    protected, baseline = models["classifier"], models["baseline"]
    pipeline = classifier.load_pipeline(config)
    np.testing.assert_array_equal(
        protected.patch_embedding.kernel[...],
        lock_kernel(baseline.patch_embedding.kernel[...], pipeline),
    )
    np.testing.assert_array_equal(protected.head.kernel[...], baseline.head.kernel[...])
    results = classifier.make_evaluate(config)(models, jax.random.key(0))
    one_image = 1 / 40  # lfw test split: 40 images; float rounding may flip one argmax tie
    assert results["chance"] == 0.5
    assert abs(results["correct_key"] - results["plain_model"]) <= one_image
    assert abs(results["unlocked_plain_images"] - results["correct_key"]) <= one_image
    assert abs(results["locked_baseline_correct_key"] - results["plain_model"]) <= one_image
    for name in ("plain_images", "random_keys_mean", "random_keys_sd", "random_keys_worst"):
        assert 0.0 <= results[name] <= 1.0
    assert {"near_material_shuffle_mean", "near_material_np_worst"} <= set(results)
    assert {"near_miss_keys_mean", "near_miss_keys_sd", "near_miss_keys_worst"} <= set(results)


@pytest.mark.slow
def test_tiny_run_stores_only_the_fingerprint_and_refuses_another_key(key_file, tmp_path):
    from egan_jax.train import train_and_evaluate

    config = _config(key_file, "model.baseline=false", "loss.random_keys=1")
    result = train_and_evaluate(config, tmp_path / "run")
    assert result.step == 3
    assert {"loss", "accuracy"} <= set(result.metrics)
    table = json.loads((tmp_path / "run" / "eval.json").read_text())
    for name in ("correct_key", "plain_images", "random_keys_mean"):
        assert 0.0 <= table[name] <= 1.0
    assert {"near_material_shuffle_mean", "near_material_ffx_mean"} <= set(table)
    assert "near_miss_keys_worst" in table
    secret = bytes(range(7, 39))
    fingerprint = SecretKey.load(key_file).fingerprint
    stored = b"".join(p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file())
    assert fingerprint.encode() in stored
    assert secret.hex().encode() not in stored and secret not in stored
    other = tmp_path / "other.key"
    SecretKey.from_bytes(bytes(range(8, 40))).save(other)
    resumed = apply_overrides(config, [f"model.transform.key_file={other}", "train.steps=4"])
    with pytest.raises(KeyMismatchError, match="fingerprint"):
        train_and_evaluate(resumed, tmp_path / "run")


def test_random_shift_translates_each_image_with_edge_padding():
    images = jnp.arange(2 * 6 * 6, dtype=jnp.float32).reshape(2, 6, 6, 1)
    shifted = classifier.random_shift(images, jax.random.key(0), 2)
    assert shifted.shape == images.shape
    padded = np.pad(np.asarray(images), ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    for i in range(2):  # some crop of the padded image
        crops = [padded[i, dy : dy + 6, dx : dx + 6] for dy in range(5) for dx in range(5)]
        assert any(np.array_equal(shifted[i], c) for c in crops)
    np.testing.assert_array_equal(shifted, classifier.random_shift(images, jax.random.key(0), 2))
    others = [classifier.random_shift(images, jax.random.key(s), 2) for s in range(1, 6)]
    assert any(not np.array_equal(shifted, o) for o in others)
    with pytest.raises(ConfigError, match="augment_shift"):
        classifier._check(
            apply_overrides(
                classifier.default_config(), ["loss.augment_shift=-1", "model.transform.steps=()"]
            )
        )


def test_an_owner_key_whose_step_is_the_identity_is_refused(tmp_path):
    # secret 0x01 × 32: its FFX selection at block 2 with one channel is empty (4 bits: 1 key in 16)
    path = tmp_path / "empty_ffx.key"
    SecretKey.from_bytes(bytes([1]) * 32).save(path)
    config = apply_overrides(
        classifier.default_config(),
        [
            f"model.transform.key_file={path}",
            "model.transform.steps=ffx",
            "model.transform.block=2",
        ],
    )
    with pytest.raises(ConfigError, match="'ffx' material is the identity at block 2"):
        classifier.load_pipeline(config)
    assert classifier.load_pipeline(config, SecretKey.load(path)) is not None  # evaluation keys
    at_block_4 = apply_overrides(config, ["model.transform.block=4"])
    assert classifier.load_pipeline(at_block_4) is not None
