"""EGAN protection losses: divergences, the bounded self-adversarial term, NTL form, composition."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from egan_jax import protection
from egan_jax.errors import ConfigError


def _features(seed, shape=(6, 4, 4, 3)):
    return jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.parametrize("name", sorted(protection.DIVERGENCES))
def test_divergences_are_per_example_zero_on_equal_and_positive_apart(name):
    a, b = _features(0), _features(1)
    fn = protection.DIVERGENCES[name]
    assert fn(a, b).shape == (6,)
    np.testing.assert_allclose(fn(a, a), 0.0, atol=1e-5)
    assert float(jnp.mean(fn(a, b + 3.0))) > 1e-3


def test_divergence_values():
    a = jnp.ones((2, 3))
    b = jnp.stack([jnp.ones(3) * 3.0, -jnp.ones(3)])
    np.testing.assert_allclose(protection.l1_divergence(a, b), [2.0, 2.0])
    np.testing.assert_allclose(protection.l2_divergence(a, b), [4.0, 4.0])
    np.testing.assert_allclose(protection.cosine_divergence(a, b), [0.0, 2.0], atol=1e-6)


def test_mmd_grows_with_the_shift_between_sets():
    a = _features(2, (16, 5))
    near = float(protection.mmd_divergence(a, _features(3, (16, 5)) + 0.5)[0])
    far = float(protection.mmd_divergence(a, _features(3, (16, 5)) + 3.0)[0])
    assert 0 < near < far


def test_self_adversarial_pushes_features_apart_until_the_margin():
    auth, unauth = _features(4), _features(4) + 0.01

    def loss(u):
        return jnp.mean(protection.self_adversarial(auth, u, divergence="l1", margin=0.5))

    before = float(jnp.mean(protection.l1_divergence(auth, unauth)))
    moved = unauth - 0.05 * jnp.sign(jax.grad(loss)(unauth)) * 1.0
    assert float(jnp.mean(protection.l1_divergence(auth, moved))) > before
    far = auth + 2.0  # beyond the margin: bounded value, no gradient
    np.testing.assert_allclose(protection.self_adversarial(auth, far, margin=0.5), -0.5)
    np.testing.assert_allclose(jax.grad(loss)(far), 0.0)


def test_self_adversarial_rejects_a_non_positive_margin():
    with pytest.raises(ConfigError, match="margin"):
        protection.self_adversarial(_features(0), _features(1), margin=0.0)


def test_ntl_product_is_bounded_and_rewards_both_factors():
    a, b = _features(5), _features(6) + 100.0
    strong = protection.ntl_product(a, b, jnp.full((6,), 100.0), divergence="l1")
    np.testing.assert_allclose(strong, -1.0)
    weak = protection.ntl_product(a, b, jnp.zeros(6), divergence="l1")
    np.testing.assert_allclose(weak, 0.0)


def test_compose_is_the_weighted_sum_of_term_means():
    auth, unauth = _features(7), _features(8)
    task = jnp.arange(6.0)
    config = {
        "task": 2.0,
        "self_adversarial": {"weight": 0.5, "divergence": "l2", "margin": 10.0},
    }
    total, parts = protection.compose(config)(
        {"task": task, "features": {"output": (auth, unauth)}}
    )
    expected_sa = -float(jnp.mean(jnp.minimum(protection.l2_divergence(auth, unauth), 10.0)))
    np.testing.assert_allclose(parts["self_adversarial"], expected_sa, rtol=1e-6)
    np.testing.assert_allclose(total, 2.0 * 2.5 + 0.5 * expected_sa, rtol=1e-6)
    assert protection.required_features(config) == {"output"}


@pytest.mark.parametrize(
    "config, message",
    [
        ({"tusk": 1.0}, "valid terms"),
        ({"self_adversarial": {"weight": 1.0, "divergence": "kl"}}, "valid divergences"),
        ({"self_adversarial": {"weight": 1.0, "features": "pixels"}}, "valid"),
        ({"self_adversarial": {"weight": 1.0, "margn": 1.0}}, "unknown field"),
        ({"self_adversarial": {"divergence": "l1"}}, "weight"),
    ],
)
def test_compose_rejects_unknown_names_listing_valid_ones(config, message):
    with pytest.raises(ConfigError, match=message):
        protection.compose(config)
