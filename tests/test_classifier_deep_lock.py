"""The classifier's deep lock (`model.deep_lock`): a re-labelling of the next layer for the owner,
derived from the key when the model is built, absent from the thief's model and the checkpoint."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx
from test_families_classifier import _config, _models, key_file  # noqa: F401 (fixture)

from egan_jax import classifier_deep_lock, deep_lock
from egan_jax.errors import ConfigError
from egan_jax.families import classifier
from egan_jax.keys import SecretKey

CNN_SITES = "model.deep_lock=stage1,stage2,stage3"


def _images(config, n=4, seed=0):
    size, channels = config.data.image_size, config.data.channels
    return jax.random.uniform(jax.random.key(seed), (n, size, size, channels), minval=-1, maxval=1)


def _logits(model, x):
    model.eval()
    return np.asarray(nnx.jit(lambda m, x: m(x))(model, x))


def _fold(kernel: np.ndarray, material) -> np.ndarray:
    """The next layer's kernel that reads unlocked channels as the original reads locked ones."""
    inverse = np.argsort(material.permutation)
    signed = kernel * material.signs[:, None]  # input channels on axis -2 (conv HWIO, dense IO)
    return np.take(signed, inverse, axis=-2)


@pytest.mark.parametrize(
    ("arch", "site", "layer"),
    [
        ("cnn", "stage1", lambda m: m.convs[1]),
        ("cnn", "stage3", lambda m: m.head),
        ("resnet18", "block0", lambda m: m.blocks[0].conv2),
    ],
)
def test_owner_lock_is_a_relabelling_of_the_next_layers_inputs(key_file, arch, site, layer):  # noqa: F811
    config = _config(key_file, f"model.arch={arch}", f"model.deep_lock={site}")
    model = _models(config)["classifier"]
    lock = model.deep_lock
    assert isinstance(lock, deep_lock.DeepLock) and list(lock.materials) == [site]
    x = _images(config)
    locked = _logits(model, x)  # under jit, with the lock baked in as static data
    kernel = np.asarray(layer(model).kernel[...])
    layer(model).kernel[...] = _fold(kernel, lock.materials[site])
    with deep_lock.attached(model, deep_lock.NO_LOCK):
        np.testing.assert_allclose(_logits(model, x), locked, atol=1e-4)
    layer(model).kernel[...] = kernel
    with deep_lock.attached(model, deep_lock.NO_LOCK):
        assert np.abs(_logits(model, x) - locked).mean() > 1e-3


def test_lock_comes_from_the_key_and_adds_no_variable(key_file, tmp_path):  # noqa: F811
    owner = _config(key_file, CNN_SITES)
    thief = _config(tmp_path / "missing.key", CNN_SITES)  # restored where the key file is not
    plain = _config(key_file)
    owner_m, thief_m, plain_m = (_models(c) for c in (owner, thief, plain))
    assert isinstance(owner_m["classifier"].deep_lock, deep_lock.DeepLock)
    assert thief_m["classifier"].deep_lock is deep_lock.NO_LOCK
    assert plain_m["classifier"].deep_lock is deep_lock.NO_LOCK
    assert owner_m["baseline"].deep_lock is deep_lock.NO_LOCK  # the plain twin never has one
    for a, b in zip(
        jax.tree.leaves(nnx.state(owner_m)), jax.tree.leaves(nnx.state(plain_m)), strict=True
    ):
        np.testing.assert_array_equal(a, b)  # same init, same variables: nothing to checkpoint
    x = _images(owner)
    assert not np.allclose(_logits(owner_m["classifier"], x), _logits(thief_m["classifier"], x))
    # deterministic: built again, the same material; another key, another lock
    again = _models(owner)["classifier"].deep_lock
    other = deep_lock.make_lock(
        SecretKey.load(key_file).flip_bit(5), classifier_deep_lock.sites(owner)
    )
    for site, material in owner_m["classifier"].deep_lock.materials.items():
        np.testing.assert_array_equal(again.materials[site].permutation, material.permutation)
        np.testing.assert_array_equal(again.materials[site].signs, material.signs)
        assert not np.array_equal(other.materials[site].permutation, material.permutation)
    assert "permutation" not in repr(owner_m["classifier"].deep_lock)


def test_all_is_every_site_of_a_protected_run(key_file):  # noqa: F811
    assert list(classifier_deep_lock.sites(_config(key_file, "model.deep_lock=all"))) == [
        "stage1",
        "stage2",
        "stage3",
    ]
    resnet = _config(key_file, "model.deep_lock=all", "model.arch=resnet18")
    assert classifier_deep_lock.sites(resnet) == {
        "block0": 8,
        "block1": 16,
        "block2": 32,
        "block3": 64,
    }
    for overrides in (("model.arch=vit",), ("model.transform.steps=()",)):
        assert (
            classifier_deep_lock.sites(_config(key_file, "model.deep_lock=all", *overrides)) == {}
        )


def test_bad_sites_are_config_errors_naming_the_field(key_file):  # noqa: F811
    with pytest.raises(ConfigError, match=r"model.deep_lock.*stage9"):
        classifier.make_train_step(_config(key_file, "model.deep_lock=stage9"))
    with pytest.raises(ConfigError, match=r"model.deep_lock.*twice"):
        classifier.build_models(_config(key_file, "model.deep_lock=stage1,stage1"), nnx.Rngs(0))
    with pytest.raises(ConfigError, match=r"model.deep_lock.*unknown"):  # no sites in a ViT
        classifier.load_pipeline(_config(key_file, "model.arch=vit", "model.deep_lock=stage1"))
    with pytest.raises(ConfigError, match=r"model.deep_lock.*key_file"):
        classifier.load_pipeline(
            _config(
                key_file, "model.transform.steps=()", "model.transform.key_file=null", CNN_SITES
            )
        )


@pytest.mark.slow
def test_tiny_run_stores_no_lock_and_the_thief_runs_without_it(key_file, tmp_path):  # noqa: F811
    from egan_jax import classifier_attacks
    from egan_jax.classifier_eval import evaluate_workdir
    from egan_jax.train import load_trained, train_and_evaluate

    config = _config(key_file, CNN_SITES, "model.baseline=false", "eval.enabled=false")
    workdir = tmp_path / "run"
    train_and_evaluate(config, workdir)
    _, models, _ = load_trained(workdir)  # built with the key file: the owner's model
    _, stolen = classifier_attacks._load_stolen(workdir)
    owner = models["classifier"]
    assert isinstance(owner.deep_lock, deep_lock.DeepLock) and stolen.deep_lock is deep_lock.NO_LOCK
    for a, b in zip(
        jax.tree.leaves(nnx.state(owner)), jax.tree.leaves(nnx.state(stolen)), strict=True
    ):
        np.testing.assert_array_equal(a, b)  # the same checkpointed variables either way
    stored = b"".join(p.read_bytes() for p in workdir.rglob("*") if p.is_file())
    for material in owner.deep_lock.materials.values():  # 16-128 channels: unique byte strings
        assert material.permutation.astype(np.int32).tobytes() not in stored
        assert material.permutation.astype(np.int64).tobytes() not in stored
    report = evaluate_workdir(workdir)
    kinds = {r["kind"] for r in report["rows"]}
    assert {"authorized", "no_key", "no_lock"} <= kinds
    assert 0.0 <= report["summary"]["stolen_plain_images"] <= 1.0
