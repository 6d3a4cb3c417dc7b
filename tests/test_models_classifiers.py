"""Classifier models: shapes, the ResNet-18 structure, patch embeddings, determinism, learning."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax.errors import ConfigError
from egan_jax.models.classifiers import (
    ARCHITECTURES,
    ConvMixer,
    ResNet18,
    ViT,
    build_classifier,
)

SIZE = 16


@functools.cache
def _initializer(arch: str, channels: int, num_classes: int):
    """seed -> a tiny model, one compile per architecture (backend optimisation off: XLA:CPU spends
    most of an initializer's compile optimising the random-bit generator, as in
    egan_jax.train.initial_state)."""

    def make(key):
        return build_classifier(
            arch,
            num_classes=num_classes,
            image_size=SIZE,
            channels=channels,
            width=8,
            depth=1,
            patch_size=4,
            rngs=nnx.Rngs(key),
        )

    key = jax.random.key(0, impl="rbg")  # rbg: its generator compiles faster than threefry
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: make(key)))
    init = jax.jit(lambda k: nnx.state(make(k))).lower(key)
    compiled = init.compile({"xla_backend_optimization_level": 0})
    return lambda seed: nnx.merge(graphdef, compiled(jax.random.key(seed, impl="rbg")))


def _tiny(arch: str, seed: int = 0, channels: int = 3, num_classes: int = 10) -> nnx.Module:
    return _initializer(arch, channels, num_classes)(seed)


@nnx.jit
def _apply(model, x):
    return model(x)


def _params(model) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_logits_shape_and_same_seed_same_model(arch):
    model = _tiny(arch, channels=1, num_classes=7)
    model.eval()
    x = jax.random.uniform(jax.random.key(0), (4, SIZE, SIZE, 1), minval=-1, maxval=1)
    logits = _apply(model, x)
    assert logits.shape == (4, 7) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))
    assert float(jnp.std(logits)) > 0  # not a constant function
    again = _tiny(arch, channels=1, num_classes=7)
    for a, b in zip(_params(model), _params(again), strict=True):
        np.testing.assert_array_equal(a, b)
    other = _tiny(arch, seed=1, channels=1, num_classes=7)
    assert any(
        not np.array_equal(a, b) for a, b in zip(_params(model), _params(other), strict=True)
    )
    with pytest.raises(AssertionError):  # chex shape check at the boundary: 3 channels, not 1
        model(jnp.zeros((1, SIZE, SIZE, 3)))


def test_resnet18_has_the_cifar_resnet18_parameter_count():
    # kuangliu/pytorch-cifar's ResNet18 (3×3 stem, no max-pool, [2, 2, 2, 2] basic blocks, 10
    # classes) has 11,173,962 parameters; batch-norm running statistics are not parameters.
    abstract = nnx.eval_shape(lambda: ResNet18(num_classes=10, width=64, rngs=nnx.Rngs(0)))
    count = sum(leaf.size for leaf in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
    assert count == 11_173_962
    assert len(abstract.blocks) == 8
    strides = [block.conv1.strides for block in abstract.blocks]
    assert strides == [1, 1, 2, 1, 2, 1, 2, 1]


@pytest.mark.parametrize("cls", [ConvMixer, ViT])
@pytest.mark.parametrize("patch_size", [2, 8])
def test_patch_embedding_is_a_conv_with_kernel_equal_stride(cls, patch_size):
    extra = {"image_size": 32, "heads": 2} if cls is ViT else {}
    abstract = nnx.eval_shape(
        lambda: cls(channels=3, dim=16, depth=1, patch_size=patch_size, rngs=nnx.Rngs(0), **extra)
    )
    conv = abstract.patch_embedding
    assert tuple(conv.kernel_size) == (patch_size, patch_size)
    assert conv.strides == patch_size and conv.padding == "VALID"
    assert conv.kernel.shape == (patch_size, patch_size, 3, 16)


def test_invalid_sizes_raise_config_error():
    with pytest.raises(ConfigError, match="model.arch"):
        build_classifier(
            "resnet50", num_classes=10, image_size=32, channels=3, width=8, rngs=nnx.Rngs(0)
        )
    with pytest.raises(ConfigError, match="patch_size"):
        ViT(image_size=30, patch_size=4, dim=16, depth=1, heads=2, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="heads"):
        ViT(image_size=32, patch_size=4, dim=18, depth=1, heads=4, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="width"):
        ResNet18(width=0, rngs=nnx.Rngs(0))


def test_train_mode_updates_batch_norm_statistics_and_eval_mode_uses_them():
    model = _tiny("cnn")
    x = jax.random.uniform(jax.random.key(2), (8, SIZE, SIZE, 3), minval=-1, maxval=1)
    stats_before = [np.asarray(v) for v in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]
    model.train()
    train_logits = _apply(model, x)
    stats_after = [np.asarray(v) for v in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]
    assert any(not np.array_equal(a, b) for a, b in zip(stats_before, stats_after, strict=True))
    model.eval()
    eval_logits = _apply(model, x)
    np.testing.assert_array_equal(_apply(model, x), eval_logits)  # eval: no state change
    assert not np.allclose(eval_logits, train_logits)  # running statistics, not batch ones
