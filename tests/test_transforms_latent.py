"""Latent transforms: exact permutation/sign inverses, region transforms and their inverses."""

import functools

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egan_jax.errors import ConfigError, ShapeError
from egan_jax.keys import SecretKey
from egan_jax.transforms import (
    LatentHalfSpaceMaterial,
    LatentOffsetMaterial,
    LatentPermMaterial,
    LatentSignMaterial,
    latent_halfspace,
    latent_halfspace_inverse,
    latent_offset,
    latent_offset_inverse,
    latent_permute,
    latent_sign_flip,
    latent_unpermute,
    near_miss,
)

FIXED_KEY = SecretKey.from_bytes(bytes(range(32)))


@st.composite
def latents(draw):
    key = SecretKey.from_bytes(draw(st.binary(min_size=32, max_size=32)))
    dim = draw(st.sampled_from([2, 16, 128]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 4.0]))
    return key, (scale * rng.normal(size=(draw(st.sampled_from([1, 8])), dim))).astype(np.float32)


@settings(max_examples=12, deadline=None)
@given(latents())
def test_permutation_and_signs_invert_bit_exactly(case):
    key, z = case
    perm = LatentPermMaterial.from_key(key, dim=z.shape[1])
    signs = LatentSignMaterial.from_key(key, dim=z.shape[1])
    y = latent_permute(perm, z)
    np.testing.assert_array_equal(np.asarray(y), z[:, perm.permutation])
    np.testing.assert_array_equal(np.asarray(latent_unpermute(perm, y)), z)
    np.testing.assert_array_equal(
        np.asarray(latent_sign_flip(signs, latent_sign_flip(signs, z))), z
    )


@settings(max_examples=12, deadline=None)
@given(latents(), st.sampled_from([0.5, 1.0, 3.0]))
def test_region_transforms_invert_up_to_float_rounding(case, size):
    key, z = case
    dim = z.shape[1]
    offset = LatentOffsetMaterial.from_key(key, dim=dim, radius=size)
    y = np.asarray(latent_offset(offset, z))
    np.testing.assert_allclose(np.linalg.norm(offset.offset), size * np.sqrt(dim), rtol=1e-6)
    # one rounding of z + o and one of the subtraction: within 1 ulp of the larger magnitude
    ulp = np.spacing(np.maximum(np.abs(y), np.abs(z)))
    assert (np.abs(np.asarray(latent_offset_inverse(offset, y)) - z) <= ulp).all()
    half = LatentHalfSpaceMaterial.from_key(key, dim=dim, margin=size)
    y = np.asarray(latent_halfspace(half, z))
    assert (y.astype(np.float64) @ half.direction > size).all(), (
        "every output is in the key half-space"
    )
    back = np.asarray(latent_halfspace_inverse(half, y))
    np.testing.assert_allclose(back, z, rtol=0, atol=1e-4 * (1 + np.abs(z).max()))
    # the orthogonal part is untouched: y − z is parallel to the key direction
    residual = (y - z) - np.outer((y - z) @ half.direction, half.direction)
    assert np.abs(residual).max() < 1e-4


def test_region_transforms_move_gaussian_latents_away_from_plain_ones():
    """Why regions: permutation/sign keep N(0, I) statistics, region transforms do not."""
    z = np.random.default_rng(0).normal(size=(4096, 64)).astype(np.float32)
    perm = np.asarray(latent_permute(LatentPermMaterial.from_key(FIXED_KEY, dim=64), z))
    assert abs(perm.mean()) < 0.02 and abs(perm.std() - z.std()) < 0.01
    offset = LatentOffsetMaterial.from_key(FIXED_KEY, dim=64, radius=1.0)
    shifted = np.asarray(latent_offset(offset, z))
    centre = offset.offset
    assert (
        np.linalg.norm(shifted - centre, axis=1).mean()
        < np.linalg.norm(z - centre, axis=1).mean() - 2
    )
    half = LatentHalfSpaceMaterial.from_key(FIXED_KEY, dim=64, margin=2.0)
    assert (z @ half.direction > 2.0).mean() < 0.05  # plain latents rarely in the key region
    assert (np.asarray(latent_halfspace(half, z)) @ half.direction > 2.0).all()


def test_halfspace_inverse_flags_inputs_outside_the_region():
    half = LatentHalfSpaceMaterial.from_key(FIXED_KEY, dim=8, margin=1.0)
    outside = (-3.0 * half.direction)[None].astype(np.float32)
    assert np.isnan(np.asarray(latent_halfspace_inverse(half, outside))).all()


def test_jit_vmap_and_eager_agree():
    z = np.random.default_rng(1).normal(size=(3, 4, 16)).astype(np.float32)
    for material, fn in (
        (LatentOffsetMaterial.from_key(FIXED_KEY, dim=16), latent_offset),
        (LatentHalfSpaceMaterial.from_key(FIXED_KEY, dim=16), latent_halfspace),
        (LatentPermMaterial.from_key(FIXED_KEY, dim=16), latent_permute),
    ):
        eager = np.asarray(fn(material, z[0]))
        np.testing.assert_array_equal(
            np.asarray(jax.jit(functools.partial(fn, material))(z[0])), eager
        )
        np.testing.assert_allclose(np.asarray(jax.vmap(functools.partial(fn, material))(z))[0], eager,
                                   rtol=1e-6, atol=1e-6)  # fmt: skip


def test_keys_and_near_misses_give_different_material():
    for cls in (
        LatentPermMaterial,
        LatentSignMaterial,
        LatentOffsetMaterial,
        LatentHalfSpaceMaterial,
    ):
        mine = cls.from_key(FIXED_KEY, dim=32)
        assert mine == cls.from_key(SecretKey.from_bytes(bytes(range(32))), dim=32)
        assert mine != cls.from_key(FIXED_KEY.flip_bit(7), dim=32)
        moved = near_miss(mine, 3)
        field = "permutation" if cls is LatentPermMaterial else "signs"
        changed = (getattr(moved, field) != getattr(mine, field)).sum()
        assert changed == (2 if cls is LatentPermMaterial else 1)
    offset = LatentOffsetMaterial.from_key(FIXED_KEY, dim=32, radius=1.5)
    distance = np.linalg.norm(near_miss(offset, 0).offset - offset.offset)
    assert distance == pytest.approx(3.0)  # a one-sign near miss moves the centre by 2r


@pytest.mark.parametrize(
    ("z", "message"),
    [
        (np.zeros((4, 8), np.float32), r"D=16, got shape \(4, 8\)"),
        (np.zeros((16,), np.float32), r"shape \[N, D\] with D=16, got shape \(16,\)"),
        (np.zeros((4, 16), np.float64), r"dtype float64 is not supported; accepted: float32"),
        (np.full((4, 16), np.nan, np.float32), r"contains NaN \(64 values\)"),
    ],
)
def test_bad_latents_raise(z, message):
    with pytest.raises(ShapeError, match=message):
        latent_offset(LatentOffsetMaterial.from_key(FIXED_KEY, dim=16), z)


def test_bad_region_parameters_raise_config_errors():
    with pytest.raises(ConfigError, match="radius must be a positive finite number"):
        LatentOffsetMaterial.from_key(FIXED_KEY, dim=4, radius=0.0)
    with pytest.raises(ConfigError, match="margin must be a positive finite number"):
        LatentHalfSpaceMaterial.from_key(FIXED_KEY, dim=4, margin=float("inf"))
