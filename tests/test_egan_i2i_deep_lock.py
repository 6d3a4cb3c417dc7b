"""The deep lock in the protected image families (models/srgan.py, models/cyclegan.py,
families/egan_image_deep.py, the thief's builds in attacks_i2i.py, the report's wrapper-deleted row):
tiny widths, no training."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax import deep_lock
from egan_jax.config import apply_overrides
from egan_jax.errors import ConfigError
from egan_jax.families import egan_image as protect
from egan_jax.families import get_family
from egan_jax.keys import SecretKey
from egan_jax.models import cyclegan, srgan

KEY = SecretKey.from_bytes(bytes(range(32)))
TINY = {
    "egan_srgan": (
        "model.width=4", "model.num_blocks=2", "model.discriminator_width=4",
        "data.image_size=32", "model.deep_lock=block1,block2,up1",
    ),
    "egan_cyclegan": (
        "model.width=2", "model.num_blocks=1", "model.discriminator_width=2",
        "data.image_size=32", "model.deep_lock=down1,down2,block1",
    ),
}  # fmt: skip
INPUT = {"egan_srgan": (2, 8, 8, 3), "egan_cyclegan": (1, 32, 32, 3)}


def tiny(family: str, *overrides: str):
    return apply_overrides(get_family(family).default_config(), [*TINY[family], *overrides])


def build(config):
    return get_family(config.family).build_models(config, nnx.Rngs(0))


def _role(config) -> str:
    return "generator_ab" if config.family == "egan_cyclegan" else "generator"


def _images(family: str) -> jax.Array:
    return jax.random.uniform(jax.random.key(1), INPUT[family], minval=-1, maxval=1)


@pytest.mark.parametrize(
    "make, sites",
    [
        (lambda: srgan.Generator(width=4, num_blocks=2, rngs=nnx.Rngs(0)),
         srgan.generator_site_channels(width=4, num_blocks=2)),
        (lambda: cyclegan.Generator(width=2, num_blocks=2, rngs=nnx.Rngs(0)),
         cyclegan.generator_site_channels(width=2, num_blocks=2)),
    ],
)  # fmt: skip
def test_block_site_is_a_relabelling_of_the_next_conv(make, sites):
    """A lock at block1 with block1's conv2 input weights permuted/sign-flipped the same way is
    the plain network exactly: training with the lock behaves as plain training."""
    plain, locked = make(), make()
    x = jax.random.uniform(jax.random.key(2), (1, 16, 16, 3), minval=-1, maxval=1)
    lock = deep_lock.make_lock(KEY, {"block1": sites["block1"]})
    locked.deep_lock = lock
    assert not np.allclose(plain(x), locked(x), atol=1e-4)  # the lock changes the output
    material = lock.materials["block1"]
    conv = locked.blocks[0].conv2
    kernel = jnp.take(conv.kernel[...], material.permutation, axis=2)
    conv.kernel[...] = kernel * jnp.asarray(material.signs)[None, None, :, None]
    np.testing.assert_allclose(plain(x), locked(x), atol=1e-5)


@pytest.mark.parametrize("family", ["egan_srgan", "egan_cyclegan"])
def test_owner_build_has_the_lock_and_the_checkpoint_does_not(family):
    config = tiny(family)
    locked, plain = build(config), build(tiny(family, "model.deep_lock="))
    inner = locked[_role(config)].generator
    assert isinstance(inner.deep_lock, deep_lock.DeepLock)
    assert sorted(inner.deep_lock.materials) == sorted(config.model.deep_lock)
    assert plain[_role(config)].generator.deep_lock is deep_lock.NO_LOCK
    # the checkpoint is nnx.state: the same tree and values with and without the lock
    a, b = nnx.state(locked[_role(config)]), nnx.state(plain[_role(config)])
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    x = _images(family)
    locked[_role(config)].eval(), plain[_role(config)].eval()
    assert not np.allclose(locked[_role(config)](x), plain[_role(config)](x), atol=1e-4)


@pytest.mark.parametrize("family", ["egan_srgan", "egan_cyclegan"])
def test_deterministic_per_key(family, tmp_path):
    key_file = tmp_path / "other.key"
    SecretKey.from_bytes(bytes(range(1, 33))).save(key_file)
    config = tiny(family)
    x = _images(family)

    def out(config):
        generator = build(config)[_role(config)].generator
        generator.eval()
        return np.asarray(generator(x))

    np.testing.assert_array_equal(out(config), out(config))
    assert not np.allclose(out(config), out(tiny(family, f"model.key_file={key_file}")), atol=1e-4)


def test_bad_site_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"model.deep_lock.*'block9'.*block1"):
        build(tiny("egan_srgan", "model.deep_lock=block9"))
    with pytest.raises(ConfigError, match="twice"):
        build(tiny("egan_cyclegan", "model.deep_lock=down1,down1"))


@pytest.mark.parametrize("family", ["egan_srgan", "egan_cyclegan"])
def test_thief_builds_have_no_lock(family):
    from egan_jax.attacks_i2i import TASKS

    task = TASKS[family]
    config = tiny(family)
    thief = apply_overrides(get_family(task.attack).default_config(), TINY[family])
    assert thief.model.deep_lock == config.model.deep_lock  # the config lists the sites...
    models = get_family(task.attack).build_models(thief, nnx.Rngs(0))
    for role in task.generators:  # ...but a build without the owner's key has no material
        assert models[role].deep_lock is deep_lock.NO_LOCK


@pytest.mark.parametrize("family", ["egan_srgan", "egan_cyclegan"])
def test_wrapper_deleted_row_runs_without_the_deep_lock(family):
    from egan_jax.evaluate_i2i import forward_fn, wrapper_deleted_fn

    config = tiny(family)
    keyed = build(config)[_role(config)]
    lock = keyed.generator.deep_lock
    x = np.asarray(_images(family))
    thief = wrapper_deleted_fn(keyed)(x)
    assert keyed.generator.deep_lock is lock  # restored for the owner's rows
    with_lock = forward_fn(keyed.generator)(x)
    keyed.generator.deep_lock = deep_lock.NO_LOCK
    np.testing.assert_array_equal(thief, forward_fn(keyed.generator)(x))
    assert not np.allclose(thief, with_lock, atol=1e-4)


def test_bypass_term_trains_without_the_lock():
    """The adapter-bypass unauthorized input (the wrapper deleted) runs with NO_LOCK."""
    config = tiny("egan_srgan", "model.adapter_bypass=true", "loss.unauthorized.fraction=1.0")
    keyed = build(config)["generator"]
    seen = []
    keyed.generator.deep_lock = lambda site, h: (seen.append(site), h)[1]
    lr = _images("egan_srgan")
    sr, features = keyed(protect.authorize(config)(lr), return_features=True)
    seen.clear()
    protect.unauthorized_features(config, keyed, lr, sr, features, jax.random.key(0))
    calls = len(srgan.generator_site_channels(width=4, num_blocks=2))
    assert len(seen) == calls  # the unauthorized pass only; the bypass pass saw none


def test_report_inputs_run_with_the_deep_lock_their_holder_builds():
    from egan_jax.evaluate_i2i import _sr_inputs
    from egan_jax.families.egan_image import load_key
    from egan_jax.unauthorized import UnauthorizedSpec

    config = tiny("egan_cyclegan")
    key = load_key(config)
    spec = UnauthorizedSpec(random_keys=1, near_keys=1, near_materials=1, label="evaluate")
    locks = {kind: [] for kind in ("authorized", "no_key", "random_key", "near_key",
                                   "near_material")}  # fmt: skip
    for _, kind, _, _, lock, _ in _sr_inputs(config, key, spec):
        locks[kind].append(lock)
    owner = locks["authorized"][0]
    assert isinstance(owner, deep_lock.DeepLock) and owner.key_fingerprint == key.fingerprint
    assert locks["no_key"] == [deep_lock.NO_LOCK]
    assert all(lock is owner for lock in locks["near_material"])
    for kind in ("random_key", "near_key"):
        (lock,) = locks[kind]
        assert isinstance(lock, deep_lock.DeepLock) and lock.key_fingerprint != key.fingerprint


def test_srgan_restored_without_its_key_file_builds_without_the_lock(tmp_path):
    # a thief's machine: the config names a key file that is not there (SRGAN's default has no
    # other key-dependent part, so the build must not ask for it)
    config = tiny("egan_srgan", f"model.key_file={tmp_path / 'gone.key'}")
    assert build(config)["generator"].generator.deep_lock is deep_lock.NO_LOCK
