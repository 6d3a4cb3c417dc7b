"""The deep lock (egan_jax/deep_lock.py): per-site key material, exact inverse, identity elsewhere."""

import jax
import numpy as np
import pytest

from egan_jax.deep_lock import (
    NO_LOCK,
    DeepLock,
    attached,
    check_sites,
    from_arrays,
    lock_arrays,
    make_lock,
)
from egan_jax.errors import ConfigError
from egan_jax.keys import SecretKey

KEY = SecretKey.from_bytes(bytes(range(32)))
SITES = {"block1": 8, "block2": 4}
GOLDEN_BLOCK1 = [7, 2, 1, 5, 4, 6, 3, 0]


def test_material_is_per_site_per_key_and_versioned():
    lock = DeepLock.from_key(KEY, SITES)
    again = DeepLock.from_key(KEY, SITES)
    other = DeepLock.from_key(KEY.flip_bit(0), SITES)
    for site, c in SITES.items():
        m = lock.materials[site]
        assert sorted(m.permutation.tolist()) == list(range(c))
        np.testing.assert_array_equal(m.permutation, again.materials[site].permutation)
        assert not (
            np.array_equal(m.permutation, other.materials[site].permutation)
            and np.array_equal(m.signs, other.materials[site].signs)
        )
    # golden values: the HKDF label "deep_lock/v1/<site>" pins the material across releases
    assert lock.materials["block1"].permutation.tolist() == GOLDEN_BLOCK1
    assert lock.key_fingerprint == KEY.fingerprint


def test_apply_inverse_exact_and_other_sites_untouched():
    lock = DeepLock.from_key(KEY, SITES)
    h = jax.random.normal(jax.random.key(0), (2, 3, 3, 8))
    y = jax.jit(lock, static_argnums=0)("block1", h)
    assert not np.allclose(y, h)
    np.testing.assert_array_equal(lock.inverse("block1", y), h)
    np.testing.assert_array_equal(lock("block3", h), h)  # no material at this site
    np.testing.assert_array_equal(NO_LOCK("block1", h), h)


def test_make_lock_without_key_is_identity_and_repr_hides_material():
    assert make_lock(None, SITES) is NO_LOCK
    assert make_lock(KEY, {}) is NO_LOCK
    text = repr(make_lock(KEY, SITES))
    assert "block1" in text and "permutation" not in text


def test_attached_restores_previous_lock():
    class Module:  # an instance attribute, as in the models (a class attribute would bind)
        def __init__(self):
            self.deep_lock = NO_LOCK

    module, lock = Module(), make_lock(KEY, SITES)
    with attached(module, lock):
        assert module.deep_lock is lock
    assert module.deep_lock is NO_LOCK


def test_check_sites_names_the_bad_site():
    assert check_sites(["b"], ["a", "b"], field="model.deep_lock") == ("b",)
    with pytest.raises(
        ConfigError, match="unknown site.*'c'.*model.deep_lock|model.deep_lock.*'c'"
    ):
        check_sites(["c"], ["a", "b"], field="model.deep_lock")
    with pytest.raises(ConfigError, match="twice"):
        check_sites(["a", "a"], ["a", "b"], field="model.deep_lock")


def test_array_form_matches_the_lock_and_identity_without_one():
    lock = DeepLock.from_key(KEY, SITES)
    h = jax.random.normal(jax.random.key(1), (2, 5, 8))
    run = jax.jit(lambda arrays, h: from_arrays(arrays)("block1", h))
    np.testing.assert_array_equal(run(lock_arrays(lock, SITES), h), lock("block1", h))
    np.testing.assert_array_equal(run(lock_arrays(NO_LOCK, SITES), h), h)


def test_owner_lock_needs_sites_and_a_present_key_file(tmp_path):
    from egan_jax.deep_lock import owner_lock

    present = KEY.save(tmp_path / "k.key")
    assert isinstance(owner_lock(str(present), SITES, lambda: KEY), DeepLock)
    assert isinstance(owner_lock(None, SITES, lambda: KEY), DeepLock)  # the demo key
    # restored where the key file is not (a thief): no lock, and the key is never asked for
    missing = owner_lock(str(tmp_path / "gone.key"), SITES, lambda: pytest.fail("loaded"))
    assert missing is NO_LOCK
    assert owner_lock(str(present), {}, lambda: pytest.fail("loaded")) is NO_LOCK


def test_owner_key_is_none_where_the_key_file_is_not(tmp_path):
    from egan_jax.deep_lock import owner_key

    present = KEY.save(tmp_path / "k.key")
    assert owner_key(str(present), lambda: KEY) is KEY
    assert owner_key(None, lambda: KEY) is KEY  # the demo key
    assert owner_key(str(tmp_path / "gone.key"), lambda: pytest.fail("loaded")) is None
