"""The per-position pixel MLP (models.classifier_position_mlp): values, what it can learn, wiring."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from test_families_classifier import _config, _models, key_file  # noqa: F401 (fixture)

from egan_jax import deep_lock
from egan_jax.errors import ConfigError
from egan_jax.models.classifier_embedding import EmbeddedClassifier
from egan_jax.models.classifier_position_mlp import PositionMLP
from egan_jax.models.classifiers import build_classifier
from egan_jax.transforms.block import from_blocks, to_blocks


def test_each_pixel_goes_through_its_in_block_positions_mlp_and_channels_add():
    mlp = PositionMLP(channels=2, features=3, hidden=5, block_size=4, rngs=nnx.Rngs(0))
    x = np.asarray(jax.random.uniform(jax.random.key(1), (2, 8, 8, 2), minval=-1, maxval=1))
    out = np.asarray(mlp(jnp.asarray(x)))
    assert out.shape == (2, 8, 8, 3)
    w, b = np.asarray(mlp.hidden_kernel[...]), np.asarray(mlp.hidden_bias[...])
    v, c = np.asarray(mlp.out_kernel[...]), np.asarray(mlp.out_bias[...])
    for n, row, col in [(0, 0, 0), (0, 5, 6), (1, 3, 7), (1, 4, 4)]:
        pixel = (row % 4) * 4 + col % 4
        expected = c[pixel].copy()
        for channel in range(2):
            p = pixel * 2 + channel  # the transforms' in-block order: (row, column, channel)
            expected += np.maximum(x[n, row, col, channel] * w[p] + b[p], 0) @ v[p]
        np.testing.assert_allclose(out[n, row, col], expected, atol=1e-5)
    blocks = np.asarray(to_blocks(jnp.asarray(x), 4))
    assert blocks.shape == (2, 2, 2, 32) and blocks[1, 0, 1, 6 * 2 + 1] == x[1, 1, 6, 1]
    np.testing.assert_array_equal(from_blocks(jnp.asarray(blocks), 4), x)


def test_it_learns_a_non_monotone_code_per_position_that_an_affine_pixel_map_cannot():
    """FFX's case: the background is one code per position, inside the range of the ink's codes;
    the target 'is this pixel ink' is then no affine function of the value, but a few hinges fit."""
    rng = np.random.default_rng(0)
    background = rng.uniform(-0.5, 0.5, 16)  # a different background code per in-block position
    ink = rng.random((64, 8, 8, 1)) < 0.4
    codes = rng.uniform(-1, 1, ink.shape)
    x = np.where(ink, codes, np.tile(background.reshape(4, 4), (2, 2))[None, :, :, None])
    x, target = jnp.asarray(x, jnp.float32), jnp.asarray(ink, jnp.float32)

    def fit(model) -> float:
        optimizer = nnx.Optimizer(model, optax.adam(0.02), wrt=nnx.Param)

        @nnx.jit
        def step(model, optimizer):
            loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - target) ** 2))(model)
            optimizer.update(model, grads)
            return loss

        for _ in range(300):
            loss = step(model, optimizer)
        return float(loss)

    position_mlp = fit(
        PositionMLP(channels=1, features=1, hidden=16, block_size=4, rngs=nnx.Rngs(0))
    )
    affine = fit(nnx.Conv(1, 1, (1, 1), rngs=nnx.Rngs(0)))
    # the target's variance is 0.24: the affine map learns nothing but the mean (measured 0.04 / 0.24)
    assert position_mlp < 0.06 and affine > 0.2


def test_the_family_builds_it_first_with_the_deep_lock_behind_it(key_file):  # noqa: F811
    config = _config(key_file, "model.arch=cnn", "model.input_mlp=4", "model.deep_lock=stage1")
    models = _models(config)
    for name in ("classifier", "baseline"):  # the plain twin has the same architecture
        assert isinstance(models[name], EmbeddedClassifier)
        assert isinstance(models[name].embedding, PositionMLP)
    assert list(models["classifier"].network.deep_lock.materials) == ["stage1"]
    assert models["baseline"].network.deep_lock is deep_lock.NO_LOCK
    x = jnp.zeros((2, 16, 16, config.data.channels))
    assert models["classifier"](x).shape == (2, 2)


def test_bad_settings_raise_config_errors():
    common = dict(num_classes=2, image_size=8, channels=1, width=4, depth=1, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="input_mlp=4 is for arch cnn or resnet18"):
        build_classifier("vit", input_mlp=4, **common)
    with pytest.raises(ConfigError, match="excludes the other input layer"):
        build_classifier("cnn", input_mlp=4, input_codes=256, **common)
    with pytest.raises(ConfigError, match="model.input_mlp=0"):
        PositionMLP(channels=1, features=2, hidden=0, block_size=4, rngs=nnx.Rngs(0))
    mlp = PositionMLP(channels=1, features=2, hidden=3, block_size=4, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="multiple of the block"):
        mlp(jnp.zeros((1, 6, 6, 1)))
