"""A per-position pixel MLP in front of a classifier: a first layer that tells block positions
apart.

FFX replaces the 8-bit value at each key-selected in-block position by a keyed code with no order
left (neighbouring grey levels get unrelated codes), and negative/positive flips others. A
convolution shares its weights over every position of a block and is linear in each value, so on
FFX images one unit cannot even tell background from ink: the background's code sits somewhere
inside the range of the ink's codes, and at a different value for selected, flipped and plain
positions; nor can it read the clear positions while muting the coded ones. The network has to
sort that out in later layers and generalises worse than on plain images.

:class:`PositionMLP` gives each in-block position (row, column, channel mod the block) its own
small MLP of the scalar value, ``relu(w·x + b) @ v``, summed over channels into ``features``
channels at full resolution. Its hidden units start as hinges ``relu(±(x − t))`` at knots ``t``
spread over [-1, 1], so a unit pair can measure the distance from a position's background code
(tested), and a position's output weights can go to zero. On the digits the trained model does
the latter: the "FFX probe" row with another key's table at the owner's positions keeps its
accuracy, so it reads the positions FFX leaves clear (measured:
``experiments/classifier_digits_mlp.py``).
For plain images it is a learned per-position intensity curve (the plain model uses it too).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax.errors import ConfigError
from egan_jax.transforms.block import from_blocks, to_blocks


class PositionMLP(nnx.Module):
    """``[N, H, W, C]`` in [-1, 1] → ``[N, H, W, features]``: per in-block position and channel, an
    MLP ``relu(w·x + b) @ v + c`` of the value with ``hidden`` units, summed over channels."""

    def __init__(
        self,
        *,
        channels: int,
        features: int,
        hidden: int,
        block_size: int,
        rngs: nnx.Rngs,
    ):
        for name, value in (
            ("channels", channels),
            ("features", features),
            ("model.input_mlp", hidden),
            ("block", block_size),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"position MLP {name}={value!r} must be a positive integer")
        self.channels = channels
        self.block_size = block_size
        positions = block_size * block_size * channels
        slope_key, knot_key, out_key = jax.random.split(rngs.params(), 3)
        # hinges relu(s·(x − t)), s = ±1, knots t uniform in [-1, 1]
        slope = jnp.where(jax.random.bernoulli(slope_key, 0.5, (positions, hidden)), 1.0, -1.0)
        knots = jax.random.uniform(knot_key, (positions, hidden), jnp.float32, -1.0, 1.0)
        self.hidden_kernel = nnx.Param(slope)
        self.hidden_bias = nnx.Param(-slope * knots)
        # hinges average ~1/3 in size: unit-variance features summed over C channels
        scale = np.sqrt(3.0 / (hidden * channels))
        self.out_kernel = nnx.Param(
            scale * jax.random.normal(out_key, (positions, hidden, features), jnp.float32)
        )
        self.out_bias = nnx.Param(jnp.zeros((block_size * block_size, features), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        n, height, width, channels = x.shape
        m = self.block_size
        if height % m or width % m or channels != self.channels:
            raise ConfigError(
                f"position MLP for {self.channels} channel(s) and block {m} got images of shape "
                f"{x.shape}; the image size must be a multiple of the block"
            )
        values = to_blocks(x, m)  # [N, h, w, P]
        hidden = jax.nn.relu(values[..., None] * self.hidden_kernel[...] + self.hidden_bias[...])
        out = jnp.einsum("nhwpk,pkf->nhwpf", hidden, self.out_kernel[...])
        out = out.reshape(*out.shape[:3], m * m, channels, -1).sum(axis=4) + self.out_bias[...]
        # back to full resolution: position (i, j) of block (bh, bw) is pixel (bh·M + i, bw·M + j)
        return from_blocks(out.reshape(*out.shape[:3], -1), m)
