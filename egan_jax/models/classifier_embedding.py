"""A per-position value embedding in front of a classifier: the input layer that absorbs FFX.

FFX (and negative/positive) replace the value at a key-selected block position by a keyed lookup of
it: a bijection of the value alphabet, different from position to position (identity where not
selected), and for FFX with no order left (neighbouring grey levels get unrelated codes). A
convolution is linear in its input, so it cannot undo the lookup; the network has to learn the
inverse table through its first layer and generalises worse than on plain images (measured: see
``experiments/classifier_digits_embedding.py``).

:class:`PositionValueEmbedding` is a first layer that is *indifferent* to such lookups: each input
value is placed on a grid of ``codes`` levels (``t/((codes−1)/2) − 1``, so the decimal FFX codes,
t = 0…999, and the 8-bit grid, t = 3.9·v, are both on or between grid points) and the output is a
learned ``features``-vector for (in-block position, channel, level), linearly interpolated between
the two nearest levels (exactly a lookup on grid values, differentiable in the input for attacks
that need gradients), summed over channels. Rows start i.i.d., so relabelling the levels of one
position (what NP and FFX do) leaves the distribution of the initial model unchanged: a model
trained on transformed images starts, in distribution, where the plain one does.

:class:`EmbeddedClassifier` puts it in front of any classifier built for ``features`` channels.
The same architecture is used for the plain model (the comparison is like for like).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax.errors import ConfigError


def position_index(height: int, width: int, channels: int, block_size: int) -> np.ndarray:
    """int32 ``[H, W, C]``: the in-block position ``(i mod M, j mod M, c)`` of every value, flat."""
    m = block_size
    rows = (np.arange(height) % m)[:, None, None]
    cols = (np.arange(width) % m)[None, :, None]
    chans = np.arange(channels)[None, None, :]
    return ((rows * m + cols) * channels + chans).astype(np.int32)


class PositionValueEmbedding(nnx.Module):
    """``[N, H, W, C]`` in [-1, 1] → ``[N, H, W, features]``: a learned vector per (in-block
    position, channel, value level), interpolated between levels and summed over channels."""

    def __init__(
        self,
        *,
        channels: int,
        features: int,
        codes: int,
        block_size: int,
        rngs: nnx.Rngs,
        zero_init: bool = False,
    ):
        for name, value in (("channels", channels), ("features", features), ("block", block_size)):
            if value < 1:
                raise ConfigError(f"input embedding {name}={value} must be a positive integer")
        if codes < 2:
            raise ConfigError(
                f"model.input_codes={codes} must be ≥ 2 (256: the 8-bit grid, 1000: decimal FFX "
                "codes) or 0 for no input embedding"
            )
        self.channels = channels
        self.codes = codes
        self.block_size = block_size
        positions = block_size * block_size * channels
        # std 1/√C: the channel sum starts at unit variance whatever C is
        scale = 0.0 if zero_init else 1.0 / np.sqrt(channels)
        self.table = nnx.Param(
            scale * jax.random.normal(rngs.params(), (positions * codes, features), jnp.float32)
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        n, height, width, channels = x.shape
        if height % self.block_size or width % self.block_size or channels != self.channels:
            raise ConfigError(
                f"input embedding for {self.channels} channel(s) and block {self.block_size} got "
                f"images of shape {x.shape}; the image size must be a multiple of the block"
            )
        position = jnp.asarray(position_index(height, width, channels, self.block_size))
        level = jnp.clip((x + 1.0) * ((self.codes - 1) / 2.0), 0.0, self.codes - 1.0)
        lower = jnp.minimum(jnp.floor(level), self.codes - 2.0)
        frac = (level - lower)[..., None]
        row = position * self.codes + lower.astype(jnp.int32)
        table = self.table[...]
        values = (1.0 - frac) * table[row] + frac * table[row + 1]
        return jnp.sum(values, axis=3)


class EmbeddedClassifier(nnx.Module):
    """``network(embedding(x))``: a classifier whose first layer is a position-value embedding;
    with ``raw`` the network sees ``[x, embedding(x)]`` (channels concatenated), so a zero-initialised
    embedding starts as the plain network and adds per-position value features as it learns."""

    def __init__(self, embedding: PositionValueEmbedding, network: nnx.Module, raw: bool = False):
        self.embedding = embedding
        self.network = network
        self.raw = raw

    def __call__(self, x: jax.Array) -> jax.Array:
        features = self.embedding(x)
        return self.network(jnp.concatenate([x, features], axis=-1) if self.raw else features)


def relabel_embedding(model: EmbeddedClassifier, pipeline) -> EmbeddedClassifier:
    """A copy of ``model`` that reads images transformed by ``pipeline`` as ``model`` reads plain
    ones: locking without retraining, for steps that relabel values in place.

    Works when the embedding's levels are the 8-bit grid (``codes`` = 256) and every step maps
    each in-block position's grid values to grid values one to one: negative/positive and binary
    FFX. Then row ``(p, T_p(v))`` of the new table is row ``(p, v)`` of the old one, so
    ``relabelled(T(x)) == model(x)`` for 8-bit images. Pixel shuffling moves values between
    positions, which the network behind a per-position layer cannot undo: refused, as is decimal
    FFX (its codes are not on the 8-bit grid).
    """
    from egan_jax.transforms.block import pixel_grid

    embedding = model.embedding
    steps = list(pipeline.config["steps"])
    if model.raw:
        raise ConfigError(
            "relabel_embedding cannot lock a model that also reads the raw input "
            "(model.input_raw=true): the raw path sees the transformed values"
        )
    if embedding.codes != 256 or not set(steps) <= {"np", "ffx"}:
        raise ConfigError(
            f"relabel_embedding needs model.input_codes=256 and steps among np, ffx; got "
            f"{embedding.codes} levels and steps {steps}"
        )
    if pipeline.block_size != embedding.block_size:
        raise ConfigError(
            f"transform block {pipeline.block_size} ≠ the embedding's block "
            f"{embedding.block_size}; train with model.transform.block equal to both"
        )
    m, c = embedding.block_size, embedding.channels
    # one constant block per grey level: its transform gives every position's map v -> T_p(v)
    constant = np.broadcast_to(pixel_grid()[:, None, None, None], (256, m, m, c))
    out = np.asarray(pipeline.forward(jnp.asarray(constant, jnp.float32)))
    levels = np.rint((out + 1.0) * 127.5).astype(np.int64).reshape(256, m * m * c)
    if not all(np.unique(levels[:, p]).size == 256 for p in range(m * m * c)):
        raise ConfigError("the transform does not map the 8-bit grid one to one at every position")
    table = np.asarray(embedding.table[...]).reshape(m * m * c, 256, -1)
    new = np.empty_like(table)
    for p in range(m * m * c):
        new[p, levels[:, p]] = table[p]
    locked = nnx.clone(model)  # split + merge would share the Variables with ``model``
    locked.embedding.table[...] = jnp.asarray(new.reshape(-1, table.shape[-1]))
    return locked
