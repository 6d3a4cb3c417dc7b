"""DCGAN generator and SNGAN-style discriminator (the IPR-GAN baseline, REFERENCE.md §4), Flax NNX.

Both take keyword-only sizes, validate them once at construction, and can return intermediate
feature maps (name -> NHWC array) for the EGAN feature-divergence terms.
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
from flax import nnx

from egan_jax.deep_lock import NO_LOCK
from egan_jax.errors import ConfigError
from egan_jax.models.layers import SpectralNormConv, SpectralNormLinear
from egan_jax.models.resample import UPSAMPLERS

FeatureTransform = Callable[[jax.Array], jax.Array]


def _identity(x: jax.Array) -> jax.Array:
    return x


def _check_sizes(image_size: int, channels: int, width: int) -> None:
    if image_size < 8 or image_size % 8:
        raise ConfigError(
            f"image_size={image_size} is not supported: the DCGAN models need a multiple of 8 "
            "(three ×2 stages), e.g. 32 or 64."
        )
    if channels < 1 or width < 1:
        raise ConfigError(
            f"channels={channels} and width={width} must be positive integers; use e.g. "
            "channels=3, width=64."
        )


GENERATOR_SITES = ("linear", "block1", "block2", "block3")


def generator_site_channels(width: int) -> dict[str, int]:
    """Channels of each `GENERATOR_SITES` feature map of a width-`width` generator."""
    return dict(zip(GENERATOR_SITES, (8 * width, 4 * width, 2 * width, width), strict=True))


class Generator(nnx.Module):
    """z [N, latent_dim] -> images [N, image_size, image_size, channels] in [-1, 1].

    Linear z -> (image_size/8)²·8w, then three [Upsample2x, BatchNorm, ReLU] blocks 8w->4w->2w->w,
    a 3×3 conv to `channels` and tanh. `feature_transform` is applied to the first feature map
    (right after the linear layer, [N, s, s, 8w]) and defaults to identity; EGAN inserts keyed
    feature-map permutations there. `upsample` picks the ×2 layer: "vjp" (fast custom-VJP
    `Upsample2x`) or "conv_transpose" (stock `nnx.ConvTranspose`). `deep_lock` (`egan_jax.deep_lock`,
    identity by default) is called at each of `GENERATOR_SITES`: the first feature map and the output
    of each block.
    """

    def __init__(
        self,
        *,
        latent_dim: int = 128,
        image_size: int = 32,
        channels: int = 3,
        width: int = 64,
        feature_transform: FeatureTransform | None = None,
        upsample: str = "vjp",
        rngs: nnx.Rngs,
    ):
        _check_sizes(image_size, channels, width)
        if upsample not in UPSAMPLERS:
            raise ConfigError(f"upsample={upsample!r} is unknown; use one of {sorted(UPSAMPLERS)}.")
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.channels = channels
        self.start = image_size // 8
        self.width = width
        self.feature_transform = feature_transform or _identity
        self.linear = nnx.Linear(latent_dim, self.start * self.start * 8 * width, rngs=rngs)
        widths = [8 * width, 4 * width, 2 * width, width]
        up = UPSAMPLERS[upsample]
        self.ups = nnx.List(
            [up(widths[i], widths[i + 1], use_bias=False, rngs=rngs) for i in range(3)]
        )
        self.norms = nnx.List([nnx.BatchNorm(widths[i + 1], rngs=rngs) for i in range(3)])
        self.to_image = nnx.Conv(width, channels, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.deep_lock = NO_LOCK

    def __call__(
        self, z: jax.Array, *, return_features: bool = False
    ) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
        chex.assert_rank(z, 2)
        chex.assert_axis_dimension(z, 1, self.latent_dim)
        features: dict[str, jax.Array] = {}
        h = self.linear(z).reshape(z.shape[0], self.start, self.start, 8 * self.width)
        h = self.deep_lock("linear", self.feature_transform(h))
        features["linear"] = h
        for i, (up, norm) in enumerate(zip(self.ups, self.norms, strict=True)):
            h = self.deep_lock(f"block{i + 1}", jax.nn.relu(norm(up(h))))
            features[f"block{i + 1}"] = h
        images = jnp.tanh(self.to_image(h))
        if return_features:
            return images, features
        return images


class Discriminator(nnx.Module):
    """images [N, image_size, image_size, channels] -> logits [N] (SNGAN-style, spectral norm).

    Three blocks [SN conv 3×3, LeakyReLU, SN conv 4×4 stride 2, LeakyReLU] C->w->2w->4w, SN conv
    3×3 -> 8w with LeakyReLU, flatten, SN linear -> 1. LeakyReLU slope 0.1.
    """

    def __init__(
        self,
        *,
        image_size: int = 32,
        channels: int = 3,
        width: int = 64,
        negative_slope: float = 0.1,
        rngs: nnx.Rngs,
    ):
        _check_sizes(image_size, channels, width)
        self.image_size = image_size
        self.channels = channels
        self.negative_slope = negative_slope
        widths = [channels, width, 2 * width, 4 * width]
        self.convs = nnx.List(
            [SpectralNormConv(widths[i], widths[i + 1], (3, 3), rngs=rngs) for i in range(3)]
        )
        self.downs = nnx.List(
            [
                SpectralNormConv(
                    widths[i + 1],
                    widths[i + 1],
                    (4, 4),
                    strides=(2, 2),
                    padding=((1, 1), (1, 1)),
                    rngs=rngs,
                )
                for i in range(3)
            ]
        )
        self.final_conv = SpectralNormConv(4 * width, 8 * width, (3, 3), rngs=rngs)
        final = image_size // 8
        self.head = SpectralNormLinear(final * final * 8 * width, 1, rngs=rngs)

    def __call__(
        self, x: jax.Array, *, return_features: bool = False
    ) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
        chex.assert_rank(x, 4)
        chex.assert_axis_dimension(x, 1, self.image_size)
        chex.assert_axis_dimension(x, 2, self.image_size)
        chex.assert_axis_dimension(x, 3, self.channels)
        act = lambda t: jax.nn.leaky_relu(t, self.negative_slope)
        features: dict[str, jax.Array] = {}
        h = x
        for i, (conv, down) in enumerate(zip(self.convs, self.downs, strict=True)):
            h = act(down(act(conv(h))))
            features[f"block{i + 1}"] = h
        h = act(self.final_conv(h))
        features["final"] = h
        logits = self.head(h.reshape(h.shape[0], -1))[:, 0]
        if return_features:
            return logits, features
        return logits
