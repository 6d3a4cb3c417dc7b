"""Locking a patch-embedding classifier with a key, without retraining (and unlocking)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from egan_jax.classifier_lock import (
    block_matrix,
    lock_kernel,
    lock_model,
    unlock_kernel,
    unlock_model,
)
from egan_jax.errors import ConfigError, ShapeError
from egan_jax.keys import SecretKey
from egan_jax.models.classifiers import build_classifier
from egan_jax.transforms.compose import Pipeline

SIZE, CHANNELS, BLOCK = 16, 3, 4


def _key(seed: int) -> SecretKey:
    return SecretKey.from_bytes(np.random.default_rng(seed).bytes(32))


def _pipeline(steps, seed=0, block=BLOCK, channels=CHANNELS) -> Pipeline:
    return Pipeline.from_config(
        {"block": block, "steps": list(steps), "channels": channels}, _key(seed)
    )


def _fast_key(seed: int) -> jax.Array:
    return jax.random.key(seed, impl="rbg")  # its initializers compile several times faster


def _compiled_init(make):
    """``make()`` run in one jit compiled without backend optimisation: XLA:CPU spends most of an
    initializer's compile optimising the random-bit generator (see egan_jax.train.initial_state)."""
    graphdef, _ = nnx.split(nnx.eval_shape(make))
    compiled = jax.jit(lambda: nnx.state(make())).lower()
    return nnx.merge(graphdef, compiled.compile({"xla_backend_optimization_level": 0})())


@functools.cache
def _built(arch: str, seed: int) -> nnx.Module:
    # building a model compiles one initializer per parameter shape (~1 s each on CPU): once per file
    return _compiled_init(
        lambda: build_classifier(
            arch,
            num_classes=10,
            image_size=SIZE,
            channels=CHANNELS,
            width=16,
            depth=2,
            patch_size=BLOCK,
            rngs=nnx.Rngs(_fast_key(seed)),
        )
    )


def _model(arch: str, seed: int = 0) -> nnx.Module:
    """A fresh copy (eval mode) of the cached random-weight model."""
    model = nnx.clone(_built(arch, seed))
    model.eval()
    return model


@nnx.jit
def _apply(model: nnx.Module, x: jax.Array) -> jax.Array:
    return model(x)  # one compiled program per architecture instead of one per eager op


def _images(n=8, seed=1) -> jax.Array:
    return jax.random.uniform(jax.random.key(seed), (n, SIZE, SIZE, CHANNELS), minval=-1, maxval=1)


def _relative(a, b) -> float:
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@pytest.mark.parametrize(
    "steps", [["shuffle"], ["np"], ["shuffle", "np"], ["np", "shuffle", "channel"]]
)
def test_block_matrix_is_the_transform_on_every_block(steps):
    pipe = _pipeline(steps)
    matrix = block_matrix(pipe)
    n = BLOCK * BLOCK * CHANNELS
    np.testing.assert_array_equal(matrix @ matrix.T, np.eye(n))  # a signed permutation
    x = np.asarray(_images(2))
    y = np.asarray(pipe.forward(x))
    # read every block as a vector (row, column, channel) and compare A @ block with T's output
    blocks = lambda t: t.reshape(2, SIZE // BLOCK, BLOCK, SIZE // BLOCK, BLOCK, CHANNELS).transpose(
        0, 1, 3, 2, 4, 5
    )
    np.testing.assert_array_equal(blocks(y).reshape(-1, n), blocks(x).reshape(-1, n) @ matrix.T)


@pytest.mark.parametrize("arch", ["convmixer", "vit"])
@pytest.mark.parametrize("steps", [["shuffle", "np"], ["shuffle"], ["np"]])
def test_locked_model_on_transformed_images_equals_plain_model(arch, steps):
    model = _model(arch)
    pipe = _pipeline(steps)
    locked = lock_model(model, pipe)
    x = _images()
    plain_logits = _apply(model, x)
    np.testing.assert_allclose(_apply(locked, pipe.forward(x)), plain_logits, atol=1e-5, rtol=0)
    # plain images through the locked model: far off
    assert _relative(_apply(locked, x), plain_logits) > 0.3
    # the plain model itself is untouched
    np.testing.assert_array_equal(_apply(model, x), plain_logits)


@pytest.mark.parametrize("arch", ["convmixer", "vit"])
def test_wrong_and_near_miss_keys_do_not_unlock(arch):
    model = _model(arch)
    pipe = _pipeline(["shuffle", "np"], seed=0)
    locked = lock_model(model, pipe)
    x = _images()
    plain_logits = _apply(model, x)
    wrong = _pipeline(["shuffle", "np"], seed=1)
    assert _relative(_apply(locked, wrong.forward(x)), plain_logits) > 0.3
    near = pipe.near_miss(rng_seed=5)  # one transposition of the block permutation
    near_error = _relative(_apply(locked, near.forward(x)), plain_logits)
    assert near_error > 1e-3  # far above float rounding (1e-7), though only 2 of 48 rows moved


@pytest.mark.parametrize("arch", ["convmixer", "vit"])
def test_unlock_inverts_lock_and_model_trained_on_transformed_images(arch):
    model = _model(arch)
    pipe = _pipeline(["shuffle", "np", "channel"])
    x = _images()
    kernel = model.patch_embedding.kernel[...]
    np.testing.assert_array_equal(unlock_kernel(lock_kernel(kernel, pipe), pipe), kernel)
    # a "protected" model (any weights, used on T(x)) is a plain model with another embedding
    unlocked = unlock_model(model, pipe)
    np.testing.assert_allclose(
        _apply(unlocked, x), _apply(model, pipe.forward(x)), atol=1e-5, rtol=0
    )


def test_training_on_transformed_images_is_locked_plain_training():
    """Adam (elementwise) and SGD commute with signed permutations: the key costs no accuracy."""
    optimizer = optax.adam(1e-2)
    pipe = _pipeline(["shuffle", "np"])
    plain = _model("convmixer")
    initial_kernel = plain.patch_embedding.kernel[...]
    protected = lock_model(plain, pipe)  # same initial function, seen through the key
    plain.train()
    protected.train()
    x = _images(8, seed=4)
    labels = jax.random.randint(jax.random.key(5), (8,), 0, 10)
    tx_x = pipe.forward(x)

    @nnx.jit
    def step(model, opt, images):
        def loss_fn(m):
            logits = m(images)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    opt_plain = nnx.Optimizer(plain, optimizer, wrt=nnx.Param)
    opt_protected = nnx.Optimizer(protected, optimizer, wrt=nnx.Param)
    plain_losses = []
    for _ in range(5):
        loss_plain = step(plain, opt_plain, x)
        loss_protected = step(protected, opt_protected, tx_x)
        np.testing.assert_allclose(loss_protected, loss_plain, atol=1e-5)
        plain_losses.append(float(loss_plain))
    assert plain_losses[-1] < plain_losses[0]  # it does learn
    np.testing.assert_allclose(
        protected.patch_embedding.kernel[...],
        lock_kernel(plain.patch_embedding.kernel[...], pipe),
        atol=1e-5,
    )
    assert not np.allclose(plain.patch_embedding.kernel[...], initial_kernel)  # training moved it
    plain.eval()
    protected.eval()
    np.testing.assert_allclose(_apply(protected, tx_x), _apply(plain, x), atol=1e-4, rtol=0)


def test_ffx_is_refused_with_a_reason():
    with pytest.raises(ConfigError, match="nonlinear"):
        lock_model(_model("convmixer"), _pipeline(["shuffle", "np", "ffx"]))


def test_models_without_a_matching_patch_embedding_are_refused():
    with pytest.raises(ConfigError, match="patch_embedding"):
        lock_model(nnx.Linear(2, 2, rngs=nnx.Rngs(_fast_key(0))), _pipeline(["shuffle"]))
    misaligned = _model("convmixer")
    misaligned.patch_embedding = nnx.Conv(
        CHANNELS, 16, (2, 2), strides=2, padding="VALID", rngs=nnx.Rngs(_fast_key(0))
    )
    with pytest.raises(ConfigError, match="patch_size=4"):
        lock_model(misaligned, _pipeline(["shuffle"]))
    with pytest.raises(ShapeError, match="channels"):
        lock_model(_model("convmixer"), _pipeline(["shuffle"], channels=1))
