"""The EGAN DCGAN's deep lock (`model.deep_lock`): a re-labelling of the next layer for the owner,
derived from the key at build time, absent from the thief's model and from the checkpoint."""

import jax
import numpy as np
import pytest
from flax import nnx
from test_families_egan import MeanScorer, _models, egan_config, keys  # noqa: F401 (fixture)

from egan_jax import deep_lock
from egan_jax.errors import ConfigError
from egan_jax.families import egan_dcgan, get_family

SITES = "model.deep_lock=linear,block1,block2,block3"


def _run(generator, z):
    generator.eval()
    return np.asarray(nnx.jit(lambda g, z: g(z))(generator, z))


def test_owner_lock_is_a_relabelling_of_the_next_layers_inputs(keys):  # noqa: F811
    config = egan_config(keys["a"], "model.design=latent_offset", "model.deep_lock=block1")
    generator = _models(config)["generator"]
    lock = generator.deep_lock
    assert isinstance(lock, deep_lock.DeepLock) and list(lock.materials) == ["block1"]
    z = jax.random.normal(jax.random.key(0), (4, config.model.latent_dim))
    locked = _run(generator, z)
    # the same function without the lock: fold P and the signs into block 2's input weights
    material = lock.materials["block1"]
    inverse = np.argsort(material.permutation)
    kernel = np.asarray(generator.ups[1].kernel[...])
    generator.ups[1].kernel[...] = (kernel * material.signs)[..., inverse]
    with deep_lock.attached(generator, deep_lock.NO_LOCK):
        np.testing.assert_allclose(_run(generator, z), locked, atol=1e-5)
    generator.ups[1].kernel[...] = kernel
    with deep_lock.attached(generator, deep_lock.NO_LOCK):
        assert np.abs(_run(generator, z) - locked).mean() > 1e-2


def test_thief_build_has_no_lock_and_the_state_holds_no_material(keys, tmp_path):  # noqa: F811
    owner = egan_config(keys["a"], SITES)
    thief = egan_config(tmp_path / "missing.key", SITES)  # restored without the key file
    plain = egan_config(keys["a"], "model.deep_lock=")
    owner_g, thief_g, plain_g = (_models(c)["generator"] for c in (owner, thief, plain))
    assert isinstance(owner_g.deep_lock, deep_lock.DeepLock)
    assert thief_g.deep_lock is deep_lock.NO_LOCK and plain_g.deep_lock is deep_lock.NO_LOCK
    owner_state, plain_state = nnx.state(owner_g), nnx.state(plain_g)
    assert jax.tree_util.tree_structure(owner_state) == jax.tree_util.tree_structure(plain_state)
    for a, b in zip(jax.tree.leaves(owner_state), jax.tree.leaves(plain_state), strict=True):
        np.testing.assert_array_equal(a, b)  # same init: the lock adds and changes no variable
    z = jax.random.normal(jax.random.key(1), (4, owner.model.latent_dim))
    assert not np.allclose(_run(owner_g, z), _run(thief_g, z))
    # a near-miss key gives a different lock
    other = egan_dcgan.deep_sites(owner)
    near = deep_lock.make_lock(egan_dcgan.load_key(owner).flip_bit(3), other)
    assert not np.array_equal(
        near.materials["block2"].permutation, owner_g.deep_lock.materials["block2"].permutation
    )


def test_evaluation_runs_keys_with_their_own_lock_and_the_plain_model_without(keys):  # noqa: F811
    from egan_jax.evaluate import make_generate, plain_variant

    config = egan_config(keys["a"], SITES)
    generator = _models(config)["generator"]
    generate = make_generate(config, generator)
    vs = egan_dcgan.variants(config)
    z = np.asarray(jax.random.normal(jax.random.key(2), (4, config.model.latent_dim)))
    family = np.asarray(
        nnx.jit(lambda g, z: egan_dcgan.generate_variant(g, z, vs.authorized, config))(generator, z)
    )
    np.testing.assert_allclose(generate(vs.authorized, z), family, atol=1e-5)
    with deep_lock.attached(generator, deep_lock.NO_LOCK):
        thief = np.asarray(nnx.jit(lambda g, z: g(z))(generator, z))
    np.testing.assert_allclose(generate(plain_variant(), z), thief, atol=1e-5)
    random_key = vs.by_kind("random_key")[0]
    assert random_key.key is not None
    assert not np.allclose(generate(random_key, z), family)


def test_bad_site_is_a_config_error_naming_the_field(keys):  # noqa: F811
    config = egan_config(keys["a"], "model.deep_lock=block9")
    with pytest.raises(ConfigError, match="model.deep_lock.*block9"):
        get_family("egan_dcgan").make_train_step(config)


def test_site_adapter_starts_as_identity_and_can_express_the_owner_lock(keys):  # noqa: F811
    from egan_jax import attacks
    from egan_jax.models.dcgan import generator_site_channels

    config = egan_config(keys["a"], "model.design=latent_offset", SITES)
    generator = _models(config)["generator"]
    generator.eval()
    owner = generator.deep_lock
    z = jax.random.normal(jax.random.key(3), (4, config.model.latent_dim))
    adapter = attacks.SiteAdapter(generator_site_channels(config.model.width), rngs=nnx.Rngs(0))
    run = nnx.jit(attacks.through_sites)
    with deep_lock.attached(generator, deep_lock.NO_LOCK):
        np.testing.assert_allclose(run(generator, adapter, z), _run(generator, z), atol=1e-6)
    for site, material in owner.materials.items():  # out[k] = s_k h[p_k]: kernel[p_k, k] = s_k
        kernel = np.zeros((material.channels,) * 2, np.float32)
        kernel[material.permutation, np.arange(material.channels)] = material.signs
        adapter.maps[site].kernel[...] = kernel
    np.testing.assert_allclose(run(generator, adapter, z), _run(generator, z), atol=1e-5)


@pytest.mark.slow
def test_deep_locked_run_attacks_store_their_rows(keys, tmp_path, monkeypatch):  # noqa: F811
    from types import SimpleNamespace

    from egan_jax import attack_runs, evaluate
    from egan_jax.train import load_trained, train_and_evaluate

    marks = ("loss.watermark.trigger_weight=0.25", "loss.watermark.signature_weight=1.0")
    config = egan_config(keys["a"], SITES, *marks)
    train_and_evaluate(config, tmp_path / "run")
    monkeypatch.setattr(attack_runs, "FrechetScorer", MeanScorer)
    generator = load_trained(tmp_path / "run")[1]["generator"]
    marks = evaluate.watermark_rows(config, generator, egan_dcgan.load_key(config))
    assert [r["name"] for r in marks] == [
        "black-box watermark (correct key)",
        "black-box watermark (no key)",
        "black-box watermark (plain model)",  # the stolen copy as a thief runs it
        "white-box signature",
    ]
    rows = attack_runs.attack_estimate(
        tmp_path / "run", adapter="sites", steps=2, num_samples=8, control=True
    )
    assert "channel maps at the lock sites" in rows[0]["name"]
    assert [r["kind"] for r in rows] == ["attack_estimate", "attack_control"]
    assert "162 images" in rows[0]["note"]  # the thief's tenth of the 1,617 training digits
    assert (tmp_path / "run" / "attacks" / "estimate_discriminator_sites.json").exists()
    with pytest.raises(ConfigError, match="adapter"):
        attack_runs.attack_estimate(tmp_path / "run", adapter="pixels", steps=1)
    runs = []

    def thief_run(source, workdir, name, steps, **kwargs):  # the thief's training stubbed out:
        runs.append((name, kwargs["lr_scale"]))  # here only the rows and file names are checked
        return SimpleNamespace(models=load_trained(workdir)[1]), None

    monkeypatch.setattr(attack_runs, "_thief_run", thief_run)
    rows = attack_runs.attack_finetune(tmp_path / "run", num_samples=8, steps=1, lr_scale=1.0)
    assert runs == [("with_D_lr1", 1.0), ("without_D_lr1", 1.0)]
    assert [r["name"] for r in rows][:2] == [
        "fine-tune with D, lr × 1 (no key)",
        "fine-tune with D, lr × 1 (correct key)",
    ]
    assert not any("scratch" in r["name"] for r in rows)  # scratch does not depend on the lr
    # the owner queries the thief's model (plain, no key) for his marks, and with his key
    for row in rows:
        assert {"logo_ssim", "bit_error_rate"} <= set(row) and "logo SSIM" in row["note"]
    assert (tmp_path / "run" / "attacks" / "finetune_lr1.json").exists()
