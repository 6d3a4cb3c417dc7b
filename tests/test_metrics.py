"""Tests for egan_jax/metrics.py and egan_jax/models/inception.py."""

import jax
import numpy as np
import pytest
import scipy.linalg
from flax import nnx

from egan_jax import metrics
from egan_jax.data import load_digits_labels, load_images, to_float
from egan_jax.errors import CheckpointError, ShapeError
from egan_jax.models import inception


def _random_cov(rng, dim):
    a = rng.normal(size=(dim, 2 * dim))
    return a @ a.T / (2 * dim)


def test_frechet_distance_identical_stats_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=16), _random_cov(rng, 16)
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    std1, std2 = rng.uniform(0.1, 2, 8), rng.uniform(0.1, 2, 8)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((std1 - std2) ** 2)
    got = metrics.frechet_distance(mu1, np.diag(std1**2), mu2, np.diag(std2**2))
    assert got == pytest.approx(want, rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_and_handles_singular():
    rng = np.random.default_rng(2)
    s1, s2 = _random_cov(rng, 12), _random_cov(rng, 12)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    want = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-8)
    low_rank = rng.normal(size=(3, 12))  # 3 samples in 12-d: a singular covariance
    mu, sigma = metrics.feature_statistics(low_rank)
    assert np.isfinite(metrics.frechet_distance(mu, sigma, mu2, s2))
    with pytest.raises(ShapeError):
        metrics.frechet_distance(mu1, s1, mu2[:5], s2)


def test_kid_same_distribution_near_zero_and_shifted_larger():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 10)), rng.normal(size=(400, 10))
    same, same_std = metrics.kernel_inception_distance(a, b, subsets=20, subset_size=200)
    shifted, _ = metrics.kernel_inception_distance(a, b + 0.5, subsets=20, subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 10 * abs(same) and shifted > 0.05
    again = metrics.kernel_inception_distance(a, b, subsets=20, subset_size=200)
    assert again == (same, same_std)  # seeded


def test_inception_score_extremes():
    assert metrics.inception_score(np.zeros((20, 5)), splits=2)[0] == pytest.approx(1.0)
    confident = np.tile(100.0 * np.eye(5), (4, 1))  # every class equally often, certain
    assert metrics.inception_score(confident, splits=2)[0] == pytest.approx(5.0, rel=1e-6)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return metrics.DigitsClassifier.load_or_train(tmp_path_factory.mktemp("cache"))


def test_digits_classifier_accuracy_and_cache(classifier, tmp_path_factory):
    test_images = load_images("digits", split="test", image_size=32, channels=1)
    accuracy = classifier.accuracy(test_images, load_digits_labels("test"))
    assert accuracy >= 0.9
    assert classifier.metadata["test_accuracy"] == pytest.approx(accuracy)
    features = classifier(to_float(test_images[:8]))
    assert features.shape == (8, 128)
    cache = tmp_path_factory.mktemp("cache2")
    classifier.save(cache / metrics.DIGITS_CLASSIFIER_FILE)
    reloaded = metrics.DigitsClassifier.load_or_train(cache, epochs=0)  # epochs=0: must not train
    np.testing.assert_array_equal(reloaded(to_float(test_images[:8])), features)
    # 3-channel input at another size works (grey + resize inside the network).
    rgb = load_images("digits", split="test", image_size=16, channels=3)[:4]
    assert classifier(to_float(rgb)).shape == (4, 128)


def test_corrupt_cache_is_retrained(tmp_path):
    (tmp_path / metrics.DIGITS_CLASSIFIER_FILE).write_bytes(b"not msgpack")
    fresh = metrics.DigitsClassifier.load_or_train(tmp_path, epochs=1)
    assert fresh.metadata["epochs"] == 1
    assert metrics.DigitsClassifier.load(tmp_path / metrics.DIGITS_CLASSIFIER_FILE).metadata


def test_digits_fid_real_vs_real_small_and_noise_large(classifier):
    train = load_images("digits", split="train", image_size=32, channels=1)
    test = load_images("digits", split="test", image_size=32, channels=1)
    noise = np.random.default_rng(0).integers(0, 256, test.shape, dtype=np.uint8)
    real_vs_real = metrics.compute_fid(train, test, classifier, batch_size=512)
    real_vs_noise = metrics.compute_fid(train, noise, classifier, batch_size=512)
    assert 0 < real_vs_real < real_vs_noise / 10
    kid_real, _ = metrics.compute_kid(train, test, classifier, subsets=10, subset_size=100)
    kid_noise, _ = metrics.compute_kid(train, noise, classifier, subsets=10, subset_size=100)
    assert kid_real < kid_noise / 10


def _random_inception(seed):
    """An InceptionV3 with random values everywhere (BN statistics too), without eager init."""
    model = nnx.eval_shape(lambda: inception.InceptionV3(resize=False, rngs=nnx.Rngs(0)))
    state = nnx.state(model)
    rng = np.random.default_rng(seed)
    for path, variable in nnx.to_flat_state(state):
        shape = variable.shape
        if path[-1] == "var":
            value = rng.uniform(0.5, 1.5, shape)
        elif path[-1] == "kernel":
            value = rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))
        else:
            value = rng.normal(0, 0.1, shape)
        variable.set_value(np.asarray(value, np.float32))
    nnx.update(model, state)
    return model


@pytest.mark.slow
def test_inception_shapes_and_npz_roundtrip(tmp_path):
    model = _random_inception(0)
    path = tmp_path / "inception.npz"
    inception.export_torch_npz(model, path)
    stored = np.load(path)
    assert stored["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)  # torch OIHW
    assert stored["fc.weight"].shape == (1008, 2048)
    assert "Mixed_7c.branch_pool.bn.running_var" in stored
    loaded = inception.load_inception(path, resize=False)
    images = jax.random.uniform(jax.random.key(0), (2, 75, 75, 3), minval=-1, maxval=1)
    forward = nnx.jit(lambda m, x: m(x, return_logits=True))
    pool3, logits = forward(model, images)
    pool3_loaded, logits_loaded = forward(loaded, images)
    assert pool3.shape == (2, 2048) and logits.shape == (2, 1008)
    assert float(np.std(np.asarray(pool3))) > 0
    np.testing.assert_allclose(pool3_loaded, pool3, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits_loaded, logits, rtol=1e-6, atol=1e-6)


def test_inception_bad_weights_raise_checkpoint_error(tmp_path):
    partial = tmp_path / "partial.npz"
    np.savez(partial, **{"fc.bias": np.zeros(1008, np.float32)})
    with pytest.raises(CheckpointError, match="lack"):
        inception.load_inception(partial)
    with pytest.raises(CheckpointError, match="cannot read"):
        inception.load_inception(tmp_path / "missing.npz")
