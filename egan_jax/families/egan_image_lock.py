"""The input lock of the protected image families (`model.input_lock`, CycleGAN): DCGAN's
`feature_lock` applied to the key-transformed input image.

The block transform T_k (shuffle + negative/positive, the same per block) is linear, so with a
secret per-block offset β_k ([M, M, C], tiled over the image) the owner's input is

    a_k(x) = T_k(x + β_k) = T_k(x) + γ,        γ = T_k(β_k)  (stored in the model, public)

and the protected generator subtracts γ before its input map: the authorized path sees exactly
T_k(x), the plain design's input. Any other input leaves a residual the network never saw: no key
x − γ (|γ| ≥ 16·M²C), another key T_r(x + β) − γ, a near miss of the shuffle ±(β_i − β_j) ≥ 16 on
the two swapped positions, a flipped NP bit 2|β_c|. Without the lock a near miss of the input
transform is a small perturbation of a texture (one transposition per 4×4 block), which a
translation network maps to gravel just the same (measured 1.0× the keyed Fréchet distance).

Offsets as `feature_lock.FeatureLockMaterial`: |β_i| = gap·(n + rank_i), n = M²C, signs from the
key. Unauthorized variants other than "no key" all get the *owner's* offsets (`lock_variants`):
a thief who knew β but not T_k — the conservative case. γ is a signed permutation of β; it does not
reveal T_k. A white-box thief who deletes the whole wrapper (input map and lock) is the "adapter
removed" row of the report.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.config import Config
from egan_jax.keys import SecretKey, derive_mask, derive_permutation
from egan_jax.unauthorized import Variants

LABEL = "image_lock/v1"
OFFSET_GAP = 16.0


def uses_input_lock(config: Config) -> bool:
    return bool(getattr(config.model, "input_lock", False))


def offsets(key: SecretKey, block: int, channels: int, gap: float = OFFSET_GAP) -> np.ndarray:
    """β_k, float32 [block, block, channels]: distinct magnitudes gap·(n + rank), key signs."""
    n = block * block * channels
    label = f"{LABEL}/b{block}/c{channels}"
    rank = derive_permutation(key, f"{label}/rank", n)
    negative = derive_mask(key, f"{label}/sign", n)
    beta = gap * (n + rank) * np.where(negative, -1.0, 1.0)
    return beta.reshape(block, block, channels).astype(np.float32)


def tile(block_values: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """[M, M, C] tiled to an NHWC batch's [H, W, C] (H, W multiples of M)."""
    m = block_values.shape[0]
    return jnp.tile(block_values, (shape[1] // m, shape[2] // m, 1))


def _shifted(apply, beta: np.ndarray):
    return lambda x: apply(x + tile(jnp.asarray(beta, x.dtype), x.shape))


def lock_variants(variants: Variants, beta: np.ndarray) -> Variants:
    """Every variant with a transform becomes T(x + β); "no key" (the identity) stays x."""

    def shift(v):
        return v if v.material is None else dataclasses.replace(v, apply=_shifted(v.apply, beta))

    return Variants(shift(variants.authorized), tuple(shift(v) for v in variants.unauthorized))


def lock_value(variants: Variants, beta: np.ndarray) -> np.ndarray:
    """γ = T_k(β) per block, float32 [M, M, C] (T_k acts on every block alike)."""
    plain = variants.authorized.apply
    with jax.ensure_compile_time_eval():  # concrete even while models are built in a trace
        return np.asarray(plain(jnp.asarray(beta)[None]))[0].astype(np.float32)
