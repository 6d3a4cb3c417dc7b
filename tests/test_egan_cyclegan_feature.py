"""The CycleGAN feature key (`egan_cyclegan` with `model.feature_key`): the owner's key permutes and
sign-flips G_ab's head feature map; the report and the keyless attacks run each input kind
through its own feature transform (identity for no key and for the thief). Tiny widths, untrained."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from test_egan_i2i import tiny

from egan_jax.families import egan_image as protect
from egan_jax.families import get_family
from egan_jax.families.egan_dcgan import feature_hook
from egan_jax.transforms.feature import FeatureMaterial, feature_forward
from egan_jax.unauthorized import UnauthorizedSpec


def _models(*overrides: str):
    config = tiny("egan_cyclegan", "model.feature_key=true", "model.width=4", *overrides)
    return config, get_family("egan_cyclegan").build_models(config, nnx.Rngs(0))


def test_the_owner_feature_key_acts_inside_g_ab():
    config, models = _models()
    g_ab = models["generator_ab"]
    key = protect.load_key(config)
    owner = FeatureMaterial.from_key(key, channels=4, tag="cyclegan/head")
    srgan = FeatureMaterial.from_key(key, channels=4, tag="srgan/head")
    assert protect.feature_config(config)["tag"] == "cyclegan/head"  # its own material, not SRGAN's
    assert not (np.array_equal(owner.permutation, srgan.permutation)
                and np.array_equal(owner.signs, srgan.signs))  # fmt: skip
    x = jax.random.uniform(jax.random.key(1), (1, 32, 32, 3), minval=-1, maxval=1)
    keyed = g_ab(x)
    with feature_hook(g_ab.generator, lambda h: feature_forward(owner, h)):
        np.testing.assert_allclose(keyed, g_ab.generator(g_ab.adapter(x)), atol=1e-6)
    assert not np.allclose(keyed, g_ab(x, feature=lambda h: h), atol=1e-4)
    # the plain family (no feature key) is unchanged: no hook stored
    assert (
        get_family("egan_cyclegan")
        .build_models(tiny("egan_cyclegan", "model.width=4"), nnx.Rngs(0))["generator_ab"]
        .feature_key
        is None
    )


def test_report_rows_use_each_inputs_feature_transform(cheap_cycle_features):
    from egan_jax.evaluate_i2i import _no_feature, cycle_rows, forward_fn

    config, models = _models()
    key = protect.load_key(config)
    spec = UnauthorizedSpec(random_keys=1, near_keys=0, near_materials=1, label="eval")
    rows, previews, _ = cycle_rows(config, models, key, spec, None, None)
    names = [row["name"] for row in rows]
    assert {"correct key", "no key", "random key 0", "near material 0 (feature)"} <= set(names)
    from egan_jax.evaluate_i2i import _cycle_test

    test_a = _cycle_test(config)[0]
    no_key = forward_fn(models["generator_ab"], feature=_no_feature(config))(test_a)
    stored = forward_fn(models["generator_ab"])(test_a)  # raw input but the owner's feature key
    np.testing.assert_allclose(previews["no key"], no_key[: len(previews["no key"])], atol=1e-5)
    assert not np.allclose(no_key, stored, atol=1e-4)


@pytest.mark.slow
def test_keyless_attacks_drop_the_stored_feature_key(tmp_path, cheap_cycle_features):
    from test_egan_i2i import train

    from egan_jax import attack_runs_i2i as runs

    workdir = tmp_path / "run"
    train("egan_cyclegan", workdir, "model.feature_lock=true", "train.steps=1")
    _, models, _ = runs._load(workdir, None, False)  # the thief: weights, no key
    assert models["generator_ab"].feature_key is None
    config, models, key = runs._load(workdir, None, True)  # the owner
    assert models["generator_ab"].feature_key is not None
    gamma = np.asarray(models["generator_ab"].key_lock[...])
    # the thief's fine-tuning model: the stolen weights and γ (public), no feature key
    from egan_jax import attacks, attacks_i2i

    attacks._stolen_state(str(workdir.absolute()))
    thief = attacks_i2i.build_models(attacks_i2i.finetune_config(config, workdir), nnx.Rngs(1))
    assert thief["generator_ab"].feature_key is None
    np.testing.assert_array_equal(np.asarray(thief["generator_ab"].key_lock[...]), gamma)
    rows = runs.attack_search(workdir, candidates=1)
    rows += runs.attack_estimate(workdir, steps=1, with_scratch=False)  # the locked G in a trace
    assert [r["kind"] for r in rows] == ["attack_search", "attack_estimate"]
    assert all(np.isfinite(r["fd_a_to_b"]) for r in rows)


def test_feature_lock_stores_gamma_and_breaks_every_other_feature_transform():
    from egan_jax.feature_lock import FeatureLockMaterial

    config, models = _models("model.feature_lock=true")
    g_ab = models["generator_ab"]
    key = protect.load_key(config)
    owner = FeatureLockMaterial.from_key(key, channels=4, tag="cyclegan/head")
    np.testing.assert_array_equal(np.asarray(g_ab.key_lock[...]), owner.lock_value())
    paths = [str(p) for p, _ in jax.tree_util.tree_leaves_with_path(nnx.state(g_ab))]
    assert any("key_lock" in p for p in paths)  # γ is public state; β and T_k are not
    assert not any("offsets" in p or "permutation" in p for p in paths)
    # authorized: a_k(h) − γ = T_k(h), exactly the plain feature key's map
    plain = FeatureMaterial.from_key(key, channels=4, tag="cyclegan/head")
    x = jax.random.uniform(jax.random.key(2), (1, 32, 32, 3), minval=-1, maxval=1)
    with feature_hook(g_ab.generator, lambda h: feature_forward(plain, h)):
        np.testing.assert_allclose(g_ab(x), g_ab.generator(g_ab.adapter(x)), atol=1e-5)
    # no key: h − γ reaches the network (a residual of hundreds, |γ| ≥ 16·C)
    with feature_hook(g_ab.generator, lambda h: h - jnp.asarray(owner.lock_value())):
        np.testing.assert_allclose(g_ab(x, feature=lambda h: h), g_ab.generator(g_ab.adapter(x)),
                                   atol=1e-5)  # fmt: skip
    assert np.min(np.abs(owner.lock_value())) >= 16 * 4
    assert [p.material.__class__.__name__ for p in protect.paired_variants(config)][:2] == [
        "FeatureLockMaterial",
        "NoneType",
    ]


def test_input_lock_subtracts_gamma_so_only_the_owners_input_is_clean():
    from egan_jax.families import egan_image_lock as lock

    config, models = _models("model.input_lock=true")
    g_ab = models["generator_ab"]
    key = protect.load_key(config)
    beta = lock.offsets(key, 4, 3)
    assert len(np.unique(np.abs(beta))) == beta.size and np.min(np.abs(beta)) >= 16 * 48
    plain = protect.variants(tiny("egan_cyclegan"), key).authorized.apply  # no lock
    x = jax.random.uniform(jax.random.key(4), (2, 32, 32, 3), minval=-1, maxval=1)
    gamma = np.asarray(g_ab.input_lock[...])
    # T_k is linear and the same per block: T_k(x + β) = T_k(x) + tile(γ)
    locked = protect.variants(config, key)
    np.testing.assert_allclose(
        locked.authorized.apply(x), plain(x) + lock.tile(jnp.asarray(gamma), x.shape), atol=1e-3
    )
    # the model sees T_k(x) after the lock, the plain design's input
    inner = []
    with feature_hook(g_ab.generator, lambda h: h):
        g_ab.adapter = _Spy(g_ab.adapter, inner)
        g_ab(locked.authorized.apply(x), feature=lambda h: h)
        np.testing.assert_allclose(inner[-1], plain(x), atol=1e-3)
        for v in locked.unauthorized:  # no key, other keys, near misses: a residual ≥ 16
            g_ab(v.apply(x), feature=lambda h: h)
            assert np.max(np.abs(inner[-1] - plain(x))) >= 16 - 2, v.name
    assert any("input_lock" in str(p) for p, _ in jax.tree_util.tree_leaves_with_path(
        nnx.state(g_ab)))  # fmt: skip


class _Spy(nnx.Module):
    """Records what the input map receives."""

    def __init__(self, inner, seen):
        self.inner, self.seen = inner, seen

    def __call__(self, x):
        self.seen.append(np.asarray(x))
        return self.inner(x)


def test_locks_build_inside_a_trace():
    """The engine builds models under `nnx.eval_shape`: γ must still be concrete."""
    config = tiny(
        "egan_cyclegan", "model.width=4", "model.input_lock=true", "model.feature_lock=true"
    )
    shapes = nnx.eval_shape(lambda: get_family("egan_cyclegan").build_models(config, nnx.Rngs(0)))
    assert shapes["generator_ab"].input_lock.shape == (4, 4, 3)
    assert shapes["generator_ab"].key_lock.shape == (4,)
