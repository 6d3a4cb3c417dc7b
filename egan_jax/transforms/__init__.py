"""Keyed transforms: pure functions of (key material, array) with exact inverses.

* ``block``: Kiya-style block transforms of images (pixel shuffling, negative/positive, FFX).
* ``feature``: channel shuffling and feature-map permutation + sign flip.
* ``latent``: latent-vector permutation, sign flip and key-region transforms (offset, half-space).
* ``compose``: :class:`Pipeline` (images) and :class:`LatentPipeline` built from config data; the
  image pipeline is fused into one gather + elementwise ops.
* ``ff1``: FF1 (NIST SP 800-38G) and the FFX pixel tables.
* ``reference``: plain numpy per-block implementations for tests and benchmarks.

Material is derived once per key on the host (``*.from_key(key, ...)``); ``near_miss`` gives
material differing minimally (one transposition / one flipped bit) for attack evaluations.
"""

from egan_jax.transforms.block import (
    BlockShuffleMaterial,
    FfxMaterial,
    NegPosMaterial,
    block_shuffle,
    block_unshuffle,
    decimal_grid,
    ffx,
    ffx_inverse,
    negpos,
    pixel_grid,
)
from egan_jax.transforms.common import KeyMaterial, near_miss
from egan_jax.transforms.compose import LATENT_STEPS, STEPS, LatentPipeline, Pipeline
from egan_jax.transforms.feature import (
    ChannelShuffleMaterial,
    FeatureMaterial,
    channel_shuffle,
    channel_unshuffle,
    feature_forward,
    feature_inverse,
)
from egan_jax.transforms.latent import (
    LatentHalfSpaceMaterial,
    LatentOffsetMaterial,
    LatentPermMaterial,
    LatentSignMaterial,
    latent_halfspace,
    latent_halfspace_inverse,
    latent_offset,
    latent_offset_inverse,
    latent_permute,
    latent_sign_flip,
    latent_unpermute,
)

__all__ = [
    "LATENT_STEPS",
    "STEPS",
    "BlockShuffleMaterial",
    "ChannelShuffleMaterial",
    "FeatureMaterial",
    "FfxMaterial",
    "KeyMaterial",
    "LatentHalfSpaceMaterial",
    "LatentOffsetMaterial",
    "LatentPipeline",
    "LatentPermMaterial",
    "LatentSignMaterial",
    "NegPosMaterial",
    "Pipeline",
    "block_shuffle",
    "block_unshuffle",
    "channel_shuffle",
    "channel_unshuffle",
    "decimal_grid",
    "feature_forward",
    "feature_inverse",
    "ffx",
    "ffx_inverse",
    "latent_halfspace",
    "latent_halfspace_inverse",
    "latent_offset",
    "latent_offset_inverse",
    "latent_permute",
    "latent_sign_flip",
    "latent_unpermute",
    "near_miss",
    "negpos",
    "pixel_grid",
]
