"""Keyed channel transforms: channel shuffling of images and permutation + sign flip of feature maps.

Kiya's group moved the key from the input image to a network's feature maps for dense tasks (input
encryption hurts segmentation and super-resolution); these are the transforms for that: a key
permutation of the ``C`` channels (``out[..., k] = in[..., permutation[k]]``), optionally with a key
sign ``±1`` per output channel. Both are exact bijections (a gather and a multiplication by ±1).

Arrays are channels-last of any rank ≥ 2 (``[N, C]`` dense activations, ``[N, H, W, C]`` maps).
Use ``tag`` in ``from_key`` to give different layers with the same width independent material.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.errors import ShapeError
from egan_jax.keys import SecretKey, derive_mask, derive_permutation
from egan_jax.transforms.common import (
    KeyMaterial,
    change_one,
    check_array,
    check_sizes,
    run_static,
)

_IMAGE_DTYPES = ("uint8", "uint16", "float16", "bfloat16", "float32")
_FEATURE_DTYPES = ("float16", "bfloat16", "float32")


def _label(kind: str, tag: str, channels: int) -> str:
    return f"{kind}/{tag}/c{channels}" if tag else f"{kind}/c{channels}"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ChannelShuffleMaterial(KeyMaterial):
    """A permutation of the ``C`` channels (int32 ``[C]``)."""

    channels: int
    permutation: np.ndarray
    key_fingerprint: str
    near_miss_field = "permutation"

    @classmethod
    def from_key(cls, key: SecretKey, *, channels: int = 3, tag: str = ""):
        check_sizes(1, channels)
        perm = derive_permutation(key, _label("channel", tag, channels), channels)
        return cls(channels, perm, key.fingerprint)

    def index_map(self, height: int, width: int) -> np.ndarray:
        """int32 ``[H·W·C]``: flat source index of each flat output position of one image."""
        pixel = np.arange(height * width)[:, None] * self.channels
        return (pixel + self.permutation[None, :]).reshape(-1).astype(np.int32)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class FeatureMaterial(KeyMaterial):
    """Channel permutation (int32 ``[C]``) and per-output-channel signs (float32 ±1 ``[C]``)."""

    channels: int
    permutation: np.ndarray
    signs: np.ndarray
    key_fingerprint: str
    # one transposition of the permutation, signs kept: the smallest change of the map
    near_miss_field = "permutation"

    @classmethod
    def from_key(cls, key: SecretKey, *, channels: int, tag: str = "", flip_signs: bool = True):
        check_sizes(1, channels)
        perm = derive_permutation(key, _label("feature/perm", tag, channels), channels)
        if flip_signs:
            flips = derive_mask(key, _label("feature/sign", tag, channels), channels)
            signs = np.where(flips, -1.0, 1.0).astype(np.float32)
        else:
            signs = np.ones(channels, np.float32)
        return cls(channels, perm, signs, key.fingerprint)

    def near_miss_sign(self, rng_seed: int) -> FeatureMaterial:
        """This material with one channel's sign flipped (the other minimal change)."""
        return change_one(self, "signs", np.random.default_rng(rng_seed))


def _check_channels_last(x, channels: int, *, what: str, dtypes: tuple[str, ...]):
    x = check_array(x, what=what, dtypes=dtypes)
    if x.ndim < 2 or x.shape[-1] != channels:
        raise ShapeError(
            f"{what}: expected a channels-last array [..., C] with C={channels} (rank ≥ 2, batch "
            f"first), got shape {tuple(x.shape)}; derive the material with channels=x.shape[-1]"
        )
    return x


def _channel_shuffle_core(material, x):
    return jnp.take(x, material.permutation, axis=-1)


def _channel_unshuffle_core(material, y):
    return jnp.take(y, np.argsort(material.permutation).astype(np.int32), axis=-1)


def _feature_forward_core(material, h):
    return jnp.take(h, material.permutation, axis=-1) * jnp.asarray(material.signs, h.dtype)


def _feature_inverse_core(material, g):
    inverse = np.argsort(material.permutation).astype(np.int32)
    return jnp.take(g, inverse, axis=-1) * jnp.asarray(material.signs[inverse], g.dtype)


def channel_shuffle(material: ChannelShuffleMaterial, x: jax.Array) -> jax.Array:
    """``out[..., k] = x[..., permutation[k]]`` for images or activations ``[..., C]``."""
    x = _check_channels_last(x, material.channels, what="channel_shuffle", dtypes=_IMAGE_DTYPES)
    return run_static(_channel_shuffle_core, material, x)


def channel_unshuffle(material: ChannelShuffleMaterial, y: jax.Array) -> jax.Array:
    """Exact inverse of :func:`channel_shuffle`."""
    y = _check_channels_last(y, material.channels, what="channel_unshuffle", dtypes=_IMAGE_DTYPES)
    return run_static(_channel_unshuffle_core, material, y)


def feature_forward(material: FeatureMaterial, h: jax.Array) -> jax.Array:
    """``out[..., k] = signs[k] · h[..., permutation[k]]`` for a float activation ``[..., C]``."""
    h = _check_channels_last(h, material.channels, what="feature_forward", dtypes=_FEATURE_DTYPES)
    return run_static(_feature_forward_core, material, h)


def feature_inverse(material: FeatureMaterial, g: jax.Array) -> jax.Array:
    """Exact inverse of :func:`feature_forward` (gathers and ±1 products are exact)."""
    g = _check_channels_last(g, material.channels, what="feature_inverse", dtypes=_FEATURE_DTYPES)
    return run_static(_feature_inverse_core, material, g)
