"""Unauthorized variants: kinds, determinism from the seed, minimal near misses, mixing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from egan_jax.errors import ConfigError
from egan_jax.keys import SecretKey
from egan_jax.unauthorized import UnauthorizedSpec, make_variants, mix, seeded_key

KEY = SecretKey.from_bytes(bytes(range(32)))
LATENT = {"dim": 16, "steps": ["offset"], "radius": 3.0}
FEATURE = {"channels": 8, "tag": "test"}


def _z(n=4, dim=16):
    return jax.random.normal(jax.random.key(0), (n, dim))


def test_latent_variants_cover_every_kind_and_differ_from_the_owner():
    spec = UnauthorizedSpec(random_keys=2, near_keys=1, near_materials=1, seed=3)
    vs = make_variants("latent", LATENT, KEY, spec)
    assert [v.kind for v in vs.unauthorized] == [
        "no_key",
        "random_key",
        "random_key",
        "near_key",
        "near_material",
    ]
    z = _z()
    owner = np.asarray(vs.authorized.apply(z))
    offset = vs.authorized.material.materials[0][1].offset
    np.testing.assert_allclose(owner - np.asarray(z), np.tile(offset, (4, 1)), atol=1e-5)
    for variant in vs.unauthorized:
        assert not np.allclose(np.asarray(variant.apply(z)), owner), variant.name
    assert KEY.fingerprint not in {v.fingerprint for v in vs.unauthorized}


def test_near_material_of_an_offset_changes_exactly_one_coordinate():
    spec = UnauthorizedSpec(no_key=False, random_keys=0, near_keys=0, near_materials=1)
    vs = make_variants("latent", LATENT, KEY, spec)
    z = _z()
    diff = np.asarray(vs.unauthorized[0].apply(z) - vs.authorized.apply(z))
    changed = np.flatnonzero(np.abs(diff[0]) > 1e-6)
    assert changed.size == 1
    np.testing.assert_allclose(np.abs(diff[:, changed[0]]), 6.0, rtol=1e-6)  # 2·radius


def test_feature_near_misses_are_one_transposition_and_one_sign_flip():
    spec = UnauthorizedSpec(no_key=False, random_keys=0, near_keys=0, near_materials=2)
    vs = make_variants("feature", FEATURE, KEY, spec)
    owner = vs.authorized.material
    swapped, flipped = (v.material for v in vs.unauthorized)
    assert np.sum(swapped.permutation != owner.permutation) == 2
    np.testing.assert_array_equal(swapped.signs, owner.signs)
    assert np.sum(flipped.signs != owner.signs) == 1
    np.testing.assert_array_equal(flipped.permutation, owner.permutation)


def test_near_keys_flip_one_secret_bit_and_change_the_material():
    spec = UnauthorizedSpec(no_key=False, random_keys=0, near_keys=2, near_materials=0, seed=1)
    vs = make_variants("feature", FEATURE, KEY, spec)
    for variant in vs.unauthorized:
        assert variant.fingerprint != KEY.fingerprint
        assert variant.material != vs.authorized.material


def test_training_variants_are_reproducible_from_the_seed():
    spec = UnauthorizedSpec(random_keys=2, near_keys=1, near_materials=1, seed=5)
    a = make_variants("latent", LATENT, KEY, spec)
    b = make_variants("latent", LATENT, KEY, spec)
    c = make_variants("latent", LATENT, KEY, UnauthorizedSpec(random_keys=2, seed=6))
    z = _z()
    for va, vb in zip(a.unauthorized, b.unauthorized, strict=True):
        np.testing.assert_array_equal(np.asarray(va.apply(z)), np.asarray(vb.apply(z)))
    assert a.unauthorized[1].fingerprint != c.unauthorized[1].fingerprint
    assert seeded_key(5, "train", 0) == seeded_key(5, "train", 0)
    assert seeded_key(5, "train", 0) != seeded_key(5, "evaluate", 0)


def test_fresh_keys_come_from_the_os():
    spec = UnauthorizedSpec(no_key=False, random_keys=1, near_keys=0, near_materials=0, fresh=True)
    a = make_variants("feature", FEATURE, KEY, spec).unauthorized[0].fingerprint
    b = make_variants("feature", FEATURE, KEY, spec).unauthorized[0].fingerprint
    assert a != b


def test_mix_applies_the_chosen_variant_per_example_under_jit():
    spec = UnauthorizedSpec(random_keys=1, near_keys=0, near_materials=1)
    vs = make_variants("latent", LATENT, KEY, spec)
    z = _z(8)
    mixed, choice = jax.jit(lambda z, k: mix(vs.unauthorized, z, k))(z, jax.random.key(1))
    for i, c in enumerate(np.asarray(choice)):
        expected = vs.unauthorized[int(c)].apply(z[i : i + 1])[0]
        np.testing.assert_allclose(mixed[i], expected, rtol=1e-6)


def test_bad_names_and_counts_raise_config_errors():
    with pytest.raises(ConfigError, match="valid kinds"):
        make_variants("pixels", LATENT, KEY, UnauthorizedSpec())
    with pytest.raises(ConfigError, match="non-negative"):
        UnauthorizedSpec(random_keys=-1)
    with pytest.raises(ConfigError, match="at least one"):
        mix((), jnp.zeros((2, 3)), jax.random.key(0))


LOCK = {"channels": 8, "tag": "test", "offset_gap": 4.0}


def test_feature_lock_is_the_plain_permutation_once_the_stored_value_is_subtracted():
    from egan_jax.transforms.feature import FeatureMaterial, feature_forward

    vs = make_variants("feature_lock", LOCK, KEY, UnauthorizedSpec(near_materials=3, seed=2))
    lock = vs.authorized.material
    h = jax.random.normal(jax.random.key(1), (3, 2, 2, 8))
    plain = FeatureMaterial.from_key(KEY, channels=8, tag="test")
    keyed = np.asarray(vs.authorized.apply(h)) - lock.lock_value()
    np.testing.assert_allclose(keyed, np.asarray(feature_forward(plain, h)), atol=1e-4)
    # offsets: distinct magnitudes, at least `gap` apart; γ is a signed permutation of them
    magnitudes = np.sort(np.abs(lock.offsets))
    assert np.min(np.diff(magnitudes)) >= 4.0 - 1e-6
    np.testing.assert_allclose(np.sort(np.abs(lock.lock_value())), magnitudes)


def test_every_feature_lock_near_miss_leaves_a_residual_of_at_least_the_gap():
    vs = make_variants("feature_lock", LOCK, KEY, UnauthorizedSpec(near_materials=3, seed=5))
    lock_value = vs.authorized.material.lock_value()
    zero = jnp.zeros((1, 8))
    near = vs.by_kind("near_material")
    assert len(near) == 3
    for variant in (*near, *vs.by_kind("no_key"), *vs.by_kind("random_key")):
        residual = np.abs(np.asarray(variant.apply(zero))[0] - lock_value)
        assert residual.max() >= 4.0, variant.name


@pytest.mark.parametrize("kind, config", [("feature", FEATURE), ("feature_lock", LOCK)])
def test_fresh_near_misses_change_one_transposition_or_one_sign_per_example(kind, config):
    from egan_jax.unauthorized import fresh_near_feature

    owner = make_variants(kind, config, KEY, UnauthorizedSpec()).authorized
    h = jax.random.normal(jax.random.key(3), (64, 8)) + 10.0 * jnp.arange(8)  # distinct channels
    out, use_sign = fresh_near_feature(owner.material, h, jax.random.key(4))
    again, _ = fresh_near_feature(owner.material, h, jax.random.key(4))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(again))  # deterministic
    changed = np.sum(~np.isclose(np.asarray(out), np.asarray(owner.apply(h))), axis=1)
    expected = np.where(np.asarray(use_sign) == 1, 1, 2)
    np.testing.assert_array_equal(changed, expected)
    assert 0 < np.mean(use_sign) < 1  # both kinds of change are drawn
