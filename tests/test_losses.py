"""Tests for egan_jax/losses.py."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from egan_jax import losses

REAL = jnp.array([2.0, 0.5, -1.0])
FAKE = jnp.array([-2.0, 0.0, 3.0])
EXTREME = jnp.array([-1e4, -50.0, 0.0, 50.0, 1e4])


def test_hinge_known_values():
    np.testing.assert_allclose(
        losses.hinge_discriminator(REAL, FAKE), [0.0 + 0.0, 0.5 + 1.0, 2.0 + 4.0]
    )
    np.testing.assert_allclose(losses.hinge_generator(FAKE), [2.0, 0.0, -3.0])
    np.testing.assert_allclose(
        losses.hinge_discriminator(REAL, FAKE, margin=0.0), [0.0, 0.0, 1.0 + 3.0]
    )


def test_nonsaturating_matches_log_sigmoid_definition():
    sig = jax.nn.sigmoid
    want_d = -jnp.log(sig(REAL)) - jnp.log(1 - sig(FAKE))
    np.testing.assert_allclose(losses.nonsaturating_discriminator(REAL, FAKE), want_d, rtol=1e-5)
    np.testing.assert_allclose(losses.nonsaturating_generator(FAKE), -jnp.log(sig(FAKE)), rtol=1e-5)
    np.testing.assert_allclose(losses.nonsaturating_generator(jnp.zeros(1)), [np.log(2.0)])


def test_least_squares_known_values():
    np.testing.assert_allclose(
        losses.least_squares_discriminator(REAL, FAKE),
        0.5 * (np.array([1.0, 0.25, 4.0]) + np.array([4.0, 0.0, 9.0])),
    )
    np.testing.assert_allclose(losses.least_squares_generator(FAKE), [4.5, 0.5, 2.0])
    np.testing.assert_allclose(losses.least_squares_generator(FAKE, target=0.0), [2.0, 0.0, 4.5])


def test_l1_l2_per_example_mean():
    pred = jnp.arange(2 * 2 * 3, dtype=jnp.float32).reshape(2, 2, 3)
    target = jnp.zeros_like(pred)
    np.testing.assert_allclose(losses.l1(pred, target), [2.5, 8.5])
    np.testing.assert_allclose(
        losses.l2(pred, target), [np.mean(np.arange(6) ** 2), np.mean(np.arange(6, 12) ** 2)]
    )


def test_bce_with_logits_matches_optax():
    logits = jax.random.normal(jax.random.key(0), (4, 3, 2)) * 5
    targets = jax.random.uniform(jax.random.key(1), (4, 3, 2))
    want = optax.sigmoid_binary_cross_entropy(logits, targets).mean(axis=(1, 2))
    np.testing.assert_allclose(losses.bce_with_logits(logits, targets), want, rtol=1e-5)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: losses.hinge_discriminator(x, -x),
        losses.hinge_generator,
        lambda x: losses.nonsaturating_discriminator(x, -x),
        losses.nonsaturating_generator,
        lambda x: losses.least_squares_discriminator(x, -x),
        losses.least_squares_generator,
        lambda x: losses.bce_with_logits(x, jnp.full_like(x, 0.3)),
        lambda x: losses.l1(x, jnp.zeros_like(x)),
        lambda x: losses.l2(x, jnp.zeros_like(x)),
    ],
)
def test_values_and_gradients_finite_at_extremes_and_per_example_shape(fn):
    values = fn(EXTREME)
    assert values.shape == EXTREME.shape
    grads = jax.grad(lambda x: jnp.sum(fn(x)))(EXTREME)
    assert bool(jnp.all(jnp.isfinite(values))) and bool(jnp.all(jnp.isfinite(grads)))


def test_per_example_shape_on_images():
    images = jnp.ones((5, 4, 4, 3))
    assert losses.l1(images, images).shape == (5,)
    assert losses.bce_with_logits(images, images).shape == (5,)


def test_shape_mismatch_is_rejected():
    with pytest.raises(AssertionError):
        losses.hinge_discriminator(jnp.ones(3), jnp.ones(4))
    with pytest.raises(AssertionError):
        losses.hinge_generator(jnp.ones((3, 1)))
    with pytest.raises(AssertionError):
        losses.l2(jnp.ones((2, 3)), jnp.ones((2, 4)))


def test_registries_name_matching_pairs():
    assert set(losses.GENERATOR_LOSSES) == set(losses.DISCRIMINATOR_LOSSES)
