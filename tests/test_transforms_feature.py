"""Channel shuffle and feature-map permutation + sign flip: exact inverses, definition, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egan_jax.errors import ShapeError
from egan_jax.keys import SecretKey
from egan_jax.transforms import (
    ChannelShuffleMaterial,
    FeatureMaterial,
    channel_shuffle,
    channel_unshuffle,
    feature_forward,
    feature_inverse,
    near_miss,
)

FIXED_KEY = SecretKey.from_bytes(bytes(range(32)))


@st.composite
def activations(draw):
    key = SecretKey.from_bytes(draw(st.binary(min_size=32, max_size=32)))
    channels = draw(st.sampled_from([2, 3, 8, 16]))
    shape = draw(st.sampled_from([(2, channels), (1, 2, 3, channels), (2, 4, 4, channels)]))
    dtype = draw(st.sampled_from(["float32", "bfloat16"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return key, jnp.asarray(rng.normal(size=shape), dtype=dtype)


@settings(max_examples=12, deadline=None)
@given(activations())
def test_feature_permutation_and_signs_invert_exactly(case):
    key, h = case
    material = FeatureMaterial.from_key(key, channels=h.shape[-1])
    g = feature_forward(material, h)
    assert g.dtype == h.dtype and g.shape == h.shape
    np.testing.assert_array_equal(np.asarray(feature_inverse(material, g)), np.asarray(h))
    expected = np.asarray(h)[..., material.permutation] * material.signs.astype(np.asarray(h).dtype)
    np.testing.assert_array_equal(np.asarray(g), expected)


@settings(max_examples=12, deadline=None)
@given(activations())
def test_channel_shuffle_inverts_and_matches_definition(case):
    key, h = case
    material = ChannelShuffleMaterial.from_key(key, channels=h.shape[-1])
    y = channel_shuffle(material, h)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(h)[..., material.permutation])
    np.testing.assert_array_equal(np.asarray(channel_unshuffle(material, y)), np.asarray(h))


def test_uint8_images_and_jit_vmap_agree():
    x = np.random.default_rng(0).integers(0, 256, (3, 2, 4, 4, 3)).astype(np.uint8)
    material = ChannelShuffleMaterial.from_key(FIXED_KEY, channels=3)
    eager = np.asarray(channel_shuffle(material, x[0]))
    np.testing.assert_array_equal(
        np.asarray(jax.jit(functools.partial(channel_shuffle, material))(x[0])), eager
    )
    mapped = np.asarray(jax.vmap(functools.partial(channel_shuffle, material))(x))
    np.testing.assert_array_equal(mapped[0], eager)
    np.testing.assert_array_equal(mapped, x[..., material.permutation])


def test_signs_are_key_derived_and_optional():
    material = FeatureMaterial.from_key(FIXED_KEY, channels=64)
    assert set(np.unique(material.signs)) == {-1.0, 1.0}
    plain = FeatureMaterial.from_key(FIXED_KEY, channels=64, flip_signs=False)
    assert (plain.signs == 1).all()
    np.testing.assert_array_equal(plain.permutation, material.permutation)


def test_keys_tags_and_near_misses_give_different_material():
    base = FeatureMaterial.from_key(FIXED_KEY, channels=16)
    assert base == FeatureMaterial.from_key(SecretKey.from_bytes(bytes(range(32))), channels=16)
    assert base != FeatureMaterial.from_key(FIXED_KEY.flip_bit(3), channels=16)
    assert base != FeatureMaterial.from_key(FIXED_KEY, channels=16, tag="layer2")
    assert (near_miss(base, 0).permutation != base.permutation).sum() == 2
    assert (base.near_miss_sign(0).signs != base.signs).sum() == 1
    shuffle = ChannelShuffleMaterial.from_key(FIXED_KEY, channels=16)
    assert shuffle != ChannelShuffleMaterial.from_key(FIXED_KEY.flip_bit(100), channels=16)
    assert "permutation" not in repr(base) and "signs" not in repr(base)


@pytest.mark.parametrize(
    ("h", "message"),
    [
        (np.zeros((2, 4, 4, 5), np.float32), r"C=8 .*got shape \(2, 4, 4, 5\)"),
        (np.zeros((8,), np.float32), r"rank ≥ 2"),
        (
            np.zeros((2, 8), np.uint8),
            r"dtype uint8 is not supported; accepted: float16, bfloat16, float32",
        ),
        (np.zeros((2, 8), np.float64), r"dtype float64 is not supported"),
        (np.full((2, 8), np.nan, np.float32), r"contains NaN \(16 values\)"),
    ],
)
def test_bad_feature_inputs_raise(h, message):
    material = FeatureMaterial.from_key(FIXED_KEY, channels=8)
    with pytest.raises(ShapeError, match=message):
        feature_forward(material, h)


def test_gradients_flow_through_the_feature_transform():
    """Inside a network the transform is differentiable: d/dh of Σ w·f(h) is w un-permuted, signed."""
    material = FeatureMaterial.from_key(FIXED_KEY, channels=6)
    weights = jnp.arange(1.0, 7.0)
    h = jnp.ones((2, 6))
    grad = jax.grad(lambda h: jnp.sum(feature_forward(material, h) * weights))(h)
    expected = np.zeros(6, np.float32)
    expected[material.permutation] = np.asarray(weights) * material.signs
    np.testing.assert_array_equal(np.asarray(grad), np.broadcast_to(expected, (2, 6)))
