"""The `key_inverse` input map of the protected image families (`model.adapter="key_inverse"`,
families/egan_image_deep.py): the exact inverse of the owner's block transform, from the key at build
time, never stored. Tiny widths, no training."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx

from egan_jax import deep_lock
from egan_jax.config import apply_overrides
from egan_jax.errors import ConfigError
from egan_jax.families import egan_image as protect
from egan_jax.families import get_family
from egan_jax.keys import SecretKey
from egan_jax.models import srgan

TINY = {
    "egan_srgan": (
        "model.width=4", "model.num_blocks=2", "model.discriminator_width=4",
        "data.image_size=32", "model.deep_lock=block1,block2,up1", "model.adapter=key_inverse",
    ),
    "egan_cyclegan": (
        "model.width=2", "model.num_blocks=1", "model.discriminator_width=2",
        "data.image_size=32", "model.deep_lock=down1,down2,block1", "model.adapter=key_inverse",
    ),
}  # fmt: skip
INPUT = {"egan_srgan": (2, 8, 8, 3), "egan_cyclegan": (1, 32, 32, 3)}
ROLE = {"egan_srgan": "generator", "egan_cyclegan": "generator_ab"}


def tiny(family: str, *overrides: str):
    return apply_overrides(get_family(family).default_config(), [*TINY[family], *overrides])


def keyed(config):
    return get_family(config.family).build_models(config, nnx.Rngs(0))[ROLE[config.family]]


def _images(family: str) -> jax.Array:
    return jax.random.uniform(jax.random.key(1), INPUT[family], minval=-1, maxval=1)


@pytest.mark.parametrize("family", ["egan_srgan", "egan_cyclegan"])
def test_keyed_path_is_the_plain_generator_with_the_deep_lock_on_x(family):
    config = tiny(family)
    generator = keyed(config)
    generator.eval()
    assert generator.adapter is None and generator.key_inverse is not None
    x = _images(family)
    keyed_input = protect.authorize(config)(x)  # CycleGAN: T_k(x + β), the model subtracts γ
    owner = generator(keyed_input)
    np.testing.assert_array_equal(owner, generator.generator(x))
    assert isinstance(generator.generator.deep_lock, deep_lock.DeepLock)
    with protect.without_deep_lock(generator):  # the lock matters: the output differs without it
        assert not np.allclose(owner, generator.generator(x), atol=1e-4)


@pytest.mark.parametrize("family", ["egan_srgan", "egan_cyclegan"])
def test_the_inverse_is_not_in_the_checkpoint(family):
    """The state (what a checkpoint holds) is a plain no-input-map build's, value for value."""
    owner, plain = keyed(tiny(family)), keyed(tiny(family, "model.adapter=false"))
    assert plain.key_inverse is None
    a, b = nnx.state(owner), nnx.state(plain)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_the_bicubic_skip_gives_raw_input_no_free_bicubic_image():
    """The untrained SRResNet (tail at zero) is its skip alone: bicubic of what the input map
    hands it — x for the owner's keyed input, a scrambled image for raw LR."""
    config = tiny("egan_srgan", "model.skip=bicubic")
    generator = keyed(config)
    generator.eval()
    x = _images("egan_srgan")
    bicubic = jax.image.resize(x, (2, 32, 32, 3), "bicubic").clip(-1, 1)
    np.testing.assert_allclose(generator(protect.authorize(config)(x)), bicubic, atol=1e-6)
    assert np.abs(np.asarray(generator(x)) - np.asarray(bicubic)).mean() > 0.1


def test_builds_without_the_key_have_neither_inverse_nor_lock(tmp_path):
    from egan_jax.attacks_i2i import TASKS

    gone = tiny("egan_srgan", f"model.key_file={tmp_path / 'gone.key'}")  # a thief's machine
    generator = keyed(gone)
    assert generator.key_inverse is None and generator.adapter is None
    assert generator.generator.deep_lock is deep_lock.NO_LOCK
    task = TASKS["egan_srgan"]  # the fine-tuning thief's family: plain models, no key
    thief = apply_overrides(get_family(task.attack).default_config(), TINY["egan_srgan"])
    models = get_family(task.attack).build_models(thief, nnx.Rngs(0))
    assert models["generator"].deep_lock is deep_lock.NO_LOCK


def test_each_key_gives_its_own_inverse_deterministically(tmp_path):
    other = tmp_path / "other.key"
    SecretKey.from_bytes(bytes(range(1, 33))).save(other)
    x = _images("egan_srgan")
    first, again = keyed(tiny("egan_srgan")), keyed(tiny("egan_srgan"))
    np.testing.assert_array_equal(first.key_inverse(x), again.key_inverse(x))
    assert not np.allclose(first.key_inverse(x), keyed(tiny(
        "egan_srgan", f"model.key_file={other}")).key_inverse(x))  # fmt: skip


def test_bad_input_map_values_are_clear_errors():
    with pytest.raises(ConfigError, match=r"model.adapter='inverse'.*key_inverse"):
        keyed(tiny("egan_srgan", "model.adapter=inverse"))
    with pytest.raises(ConfigError, match="ffx"):
        keyed(tiny("egan_srgan", "model.steps=shuffle,np,ffx"))


def test_bypass_pass_runs_without_inverse_and_lock():
    """adapter_bypass with the exact inverse: the keyless build (raw x, no lock) is trained as
    one more unauthorized input."""
    config = tiny("egan_srgan", "model.adapter_bypass=true", "loss.unauthorized.fraction=1.0")
    generator = keyed(config)
    inverted, sites = [], []
    inverse = generator.key_inverse
    generator.key_inverse = lambda x: (inverted.append(x.shape[0]), inverse(x))[1]
    generator.generator.deep_lock = lambda site, h: (sites.append(h.shape[0]), h)[1]
    lr = _images("egan_srgan")
    sr, features = generator(protect.authorize(config)(lr), return_features=True)
    inverted.clear(), sites.clear()
    protect.unauthorized_features(config, generator, lr, sr, features, jax.random.key(0))
    assert inverted == [2]  # the unauthorized pass: through the owner's inverse...
    calls = len(srgan.generator_site_channels(width=4, num_blocks=2))  # every site is called
    assert sites == [2] * calls  # ...and deep lock; the bypass pass (1 example) used neither


def test_report_rows_use_the_holders_inverse():
    """A random key's holder builds his own inverse and lock: his input reaches the network as x;
    "no key" is raw input to the owner's model; the keyless build is the wrapper-deleted row."""
    from egan_jax.evaluate_i2i import OWN, _sr_inputs, forward_fn, has_input_map
    from egan_jax.unauthorized import UnauthorizedSpec

    config = tiny("egan_srgan")
    key = protect.load_key(config)
    generator = keyed(config)
    assert has_input_map(generator)
    spec = UnauthorizedSpec(random_keys=1, near_keys=0, near_materials=1, label="evaluate")
    rows = {kind: (image, lock, inverse) for _, kind, image, _, lock, inverse in _sr_inputs(
        config, key, spec)}  # fmt: skip
    for kind in ("authorized", "no_key", "near_material"):
        assert rows[kind][2] is OWN and rows[kind][1].key_fingerprint == key.fingerprint
    image, lock, inverse = rows["random_key"]
    assert lock.key_fingerprint != key.fingerprint
    x = np.asarray(_images("egan_srgan"))
    np.testing.assert_allclose(inverse(image(x)), x, atol=1e-6)
    got = forward_fn(generator, lock=lock, key_inverse=inverse)(np.asarray(image(x)))
    with deep_lock.attached(generator.generator, lock):
        np.testing.assert_allclose(got, forward_fn(generator.generator)(x), atol=1e-6)
    assert generator.key_inverse is not inverse  # restored after the forward was built


def test_inverse_then_learned_map_stores_only_the_learned_map():
    """`key_inverse_learned`: the exact inverse, then a learned per-block map from the identity —
    at initialisation the plain locked generator on x; the state is the learned design's."""
    config = tiny("egan_srgan", "model.adapter=key_inverse_learned")
    generator = keyed(config)
    generator.eval()
    assert generator.adapter is not None and generator.key_inverse is not None
    x = _images("egan_srgan")
    np.testing.assert_allclose(
        generator(protect.authorize(config)(x)), generator.generator(x), atol=1e-6
    )
    learned = keyed(tiny("egan_srgan", "model.adapter=true"))
    a, b = nnx.state(generator), nnx.state(learned)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for left, right in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(left, right)


def test_holder_bypass_trains_each_other_keys_own_build():
    """`model.holder_bypass`: one more unauthorized pass per training random / near key, raw x
    through the network with that key's own deep lock (its holder's build: his inverse hands the
    network x)."""
    config = tiny(
        "egan_srgan", "model.holder_bypass=true", "loss.unauthorized.fraction=1.0",
        "loss.unauthorized.random_keys=2", "loss.unauthorized.near_keys=1",
    )  # fmt: skip
    generator = keyed(config)
    locks = protect.holder_locks(config)
    key = protect.load_key(config)
    assert len(locks) == 3 and all(lock.key_fingerprint != key.fingerprint for lock in locks)
    seen = []
    generator.generator.deep_lock = lambda site, h: (seen.append(h.shape[0]), h)[1]
    lr = _images("egan_srgan")
    sr, features = generator(protect.authorize(config)(lr), return_features=True)
    seen.clear()
    out = protect.unauthorized_features(config, generator, lr, sr, features, jax.random.key(0))
    # 2 unauthorized rows + 1 wrapper-deleted + 3 holder builds (the bypass share: 1 row each)
    assert out["output"][1].shape[0] == 2 + 1 + 3
    calls = len(srgan.generator_site_channels(width=4, num_blocks=2))
    assert seen == [2] * calls  # the holder passes ran with their own locks, not the patched one
    with pytest.raises(ConfigError, match="holder_bypass"):
        keyed(tiny("egan_srgan", "model.holder_bypass=true", "model.adapter=true"))


@pytest.mark.parametrize("family", ["egan_srgan", "egan_cyclegan"])
def test_site_maps_can_express_the_owners_lock(family):
    """`egan attack estimate --adapter sites` searches a family that holds the owner's lock: its
    C×C maps set to the owner's permutation and signs give the owner's network exactly."""
    from egan_jax.key_estimation import SiteAdapter

    config = tiny(family)
    generator = keyed(config)
    generator.eval()
    inner, owner = generator.generator, generator.generator.deep_lock
    x = _images(family)
    locked = np.asarray(inner(x))
    maps = SiteAdapter(protect.deep_sites(config), rngs=nnx.Rngs(0))
    for site, material in owner.materials.items():  # out[k] = s_k h[p_k]: kernel[p_k, k] = s_k
        kernel = np.zeros((material.channels,) * 2, np.float32)
        kernel[material.permutation, np.arange(material.channels)] = material.signs
        maps.maps[site].kernel[...] = kernel
    with deep_lock.attached(inner, lambda site, h: maps(site, h)):
        np.testing.assert_allclose(np.asarray(inner(x)), locked, atol=1e-5)
    with protect.without_deep_lock(generator):  # and the identity maps' start is the plain build
        assert not np.allclose(np.asarray(inner(x)), locked, atol=1e-4)
