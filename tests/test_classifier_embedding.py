"""The per-position value embedding (models.classifier_embedding): lookup, gradients, locking."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax.errors import ConfigError
from egan_jax.keys import SecretKey
from egan_jax.models.classifier_embedding import (
    EmbeddedClassifier,
    PositionValueEmbedding,
    position_index,
    relabel_embedding,
)
from egan_jax.models.classifiers import build_classifier
from egan_jax.transforms.block import pixel_grid
from egan_jax.transforms.compose import Pipeline

KEY = SecretKey.from_bytes(bytes(range(3, 35)))


def _images(n: int, size: int = 8, channels: int = 2, seed: int = 0) -> jax.Array:
    """Random 8-bit images on the float grid."""
    levels = np.random.default_rng(seed).integers(0, 256, (n, size, size, channels))
    return jnp.asarray(pixel_grid()[levels])


def test_grid_values_read_their_row_and_channels_add():
    embedding = PositionValueEmbedding(
        channels=2, features=3, codes=256, block_size=4, rngs=nnx.Rngs(0)
    )
    x = _images(2)
    out = embedding(x)
    assert out.shape == (2, 8, 8, 3)
    levels = np.rint((np.asarray(x) + 1) * 127.5).astype(int)
    rows = position_index(8, 8, 2, 4) * 256 + levels
    table = np.asarray(embedding.table[...])
    # float32 grid values sit within ~1e-5 of a level: a trace of the neighbour row mixes in
    # (not snapped: snapping would zero the input gradient at every real image)
    np.testing.assert_allclose(out, table[rows].sum(axis=3), atol=2e-4)
    # positions repeat with the block: (5, 6) is in-block (1, 2)
    assert position_index(8, 8, 2, 4)[5, 6, 1] == (1 * 4 + 2) * 2 + 1


def test_between_levels_interpolates_and_input_gradient_flows():
    embedding = PositionValueEmbedding(
        channels=1, features=4, codes=5, block_size=1, rngs=nnx.Rngs(1)
    )
    table = np.asarray(embedding.table[...])
    # levels at -1, -0.5, 0, 0.5, 1: -0.25 is halfway between levels 1 and 2
    out = embedding(jnp.full((1, 1, 1, 1), -0.25))
    np.testing.assert_allclose(out[0, 0, 0], (table[1] + table[2]) / 2, rtol=1e-5)
    np.testing.assert_allclose(embedding(jnp.ones((1, 1, 1, 1)))[0, 0, 0], table[4], rtol=1e-6)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(embedding(x))))(jnp.full((1, 1, 1, 1), -0.3))
    np.testing.assert_allclose(grad[0, 0, 0, 0], 2.0 * np.sum(table[2] - table[1]), rtol=1e-4)


@nnx.jit
def _apply(model, x):
    return model(x)


def _embedded_cnn(seed: int = 0) -> EmbeddedClassifier:
    return build_classifier(
        "cnn",
        num_classes=5,
        image_size=8,
        channels=2,
        width=4,
        input_codes=256,
        input_block=4,
        rngs=nnx.Rngs(seed),
    )


def test_relabelled_model_on_transformed_images_equals_the_model_on_plain_ones():
    model = _embedded_cnn()
    model.eval()
    pipeline = Pipeline.from_config(
        {"block": 4, "steps": ["np", "ffx"], "channels": 2, "ffx_variant": "binary"}, KEY
    )
    before = np.asarray(model.embedding.table[...])
    locked = relabel_embedding(model, pipeline)
    x = _images(3, seed=1)
    y = pipeline.forward(x)
    assert not np.allclose(y, x)
    expected = _apply(model, x)
    np.testing.assert_allclose(_apply(locked, y), expected, atol=1e-3)
    assert not np.allclose(_apply(locked, x), expected, atol=1e-3)  # plain images: not the model
    np.testing.assert_array_equal(np.asarray(model.embedding.table[...]), before)  # a copy


def test_relabel_refuses_what_it_cannot_absorb():
    model = _embedded_cnn()
    shuffle = Pipeline.from_config({"block": 4, "steps": ["shuffle"], "channels": 2}, KEY)
    with pytest.raises(ConfigError, match="steps among np, ffx"):
        relabel_embedding(model, shuffle)
    other_block = Pipeline.from_config({"block": 2, "steps": ["np"], "channels": 2}, KEY)
    with pytest.raises(ConfigError, match="block"):
        relabel_embedding(model, other_block)


def test_bad_settings_raise_config_errors():
    with pytest.raises(ConfigError, match="input_codes"):
        PositionValueEmbedding(channels=1, features=4, codes=1, block_size=4, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="cnn or resnet18"):
        build_classifier(
            "convmixer",
            num_classes=2,
            image_size=8,
            channels=1,
            width=4,
            depth=1,
            input_codes=256,
            rngs=nnx.Rngs(0),
        )
    embedding = PositionValueEmbedding(
        channels=1, features=2, codes=256, block_size=4, rngs=nnx.Rngs(0)
    )
    with pytest.raises(ConfigError, match="multiple of the block"):
        embedding(jnp.zeros((1, 6, 6, 1)))


def test_raw_input_model_starts_with_a_zero_embedding_and_cannot_be_relabelled():
    model = build_classifier(
        "cnn",
        num_classes=3,
        image_size=8,
        channels=2,
        width=4,
        input_codes=256,
        input_block=4,
        input_raw=True,
        rngs=nnx.Rngs(0),
    )
    assert not np.any(np.asarray(model.embedding.table[...]))
    assert model.network.convs[0].kernel.shape == (3, 3, 2 + 4, 4)  # raw channels + features
    model.eval()
    assert _apply(model, _images(2)).shape == (2, 3)
    pipeline = Pipeline.from_config({"block": 4, "steps": ["np"], "channels": 2}, KEY)
    with pytest.raises(ConfigError, match="raw input"):
        relabel_embedding(model, pipeline)
