"""A keyed *affine* feature lock: permutation + sign flip of a feature map after a large key offset.

The plain feature design (`transforms.feature`) maps the generator's first feature map h to
``T_k(h)`` (a key permutation and sign flip of the C channels). A near miss of that material — one
transposition, one flipped sign — changes only 2 (or 1) of C channels, and the generator's output
barely moves (measured: 0.90–0.96× the baseline's Fréchet distance, i.e. it works).

The lock adds a secret per-channel offset β_k before the permutation, and the *model* stores the
image of zero, ``γ = a_k(0) = T_k(β_k)`` (a non-trainable variable, `egan_dcgan.KeyLock`), which it
subtracts after the hook:

    authorized:  a_k(h) − γ = T_k(h + β_k) − T_k(β_k) = T_k(h)          (exactly the plain design)
    any other a: a(h) − γ   = a(h) − T_k(β_k)                            (a large residual)

For a near miss of the permutation the residual is ±(β_i − β_j) on two channels, for a flipped sign
2|β_c|. The offsets are distinct by construction: |β_c| = gap·(C + rank_c) with `rank` a key
permutation of 0..C−1 and key signs, so every transposition leaves a residual ≥ `gap` (same-sign
pair) and every sign flip ≥ 2·gap·C, whatever the pair — far outside the O(1) activations the
generator was trained on, and batch norm in eval mode does not renormalise it away.

γ is public (it is in the checkpoint) but is a signed permutation of the secret β: without β it
says nothing about T_k. Ours, not EGAN's (the paper publishes no design).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.errors import ConfigError
from egan_jax.keys import SecretKey, derive_mask, derive_permutation
from egan_jax.transforms.common import KeyMaterial, change_one, check_sizes
from egan_jax.transforms.feature import FeatureMaterial

LABEL = "feature_lock/v1"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class FeatureLockMaterial(KeyMaterial):
    """Permutation (int32 [C]), signs (±1 float32 [C]) and offsets β (float32 [C])."""

    channels: int
    permutation: np.ndarray
    signs: np.ndarray
    offsets: np.ndarray
    key_fingerprint: str
    near_miss_field = "permutation"

    @classmethod
    def from_key(
        cls,
        key: SecretKey,
        *,
        channels: int,
        tag: str = "",
        flip_signs: bool = True,
        offset_gap: float = 16.0,
    ) -> FeatureLockMaterial:
        check_sizes(1, channels)
        if not offset_gap > 0:
            raise ConfigError(f"offset_gap must be positive, got {offset_gap}")
        plain = FeatureMaterial.from_key(key, channels=channels, tag=tag, flip_signs=flip_signs)
        label = f"{LABEL}/{tag}/c{channels}"
        rank = derive_permutation(key, f"{label}/rank", channels)
        negative = derive_mask(key, f"{label}/sign", channels)
        offsets = offset_gap * (channels + rank) * np.where(negative, -1.0, 1.0)
        return cls(
            channels, plain.permutation, plain.signs, offsets.astype(np.float32), key.fingerprint
        )

    def lock_value(self) -> np.ndarray:
        """γ = a_k(0) = signs · β[permutation], float32 [C]: what the model stores and subtracts."""
        return (self.signs * self.offsets[self.permutation]).astype(np.float32)

    def near_misses(self, seed: int) -> list[FeatureLockMaterial]:
        """The minimal changes: one transposition, one flipped channel sign (when the key flips
        signs), one flipped offset sign."""
        rng = lambda i: np.random.default_rng(np.random.SeedSequence([seed, i]))
        out = [change_one(self, "permutation", rng(0))]
        if np.any(self.signs < 0):
            out.append(change_one(self, "signs", rng(1)))
        out.append(change_one(self, "offsets", rng(2)))
        return out


def lock_forward(material: FeatureLockMaterial, h: jax.Array) -> jax.Array:
    """a(h) = signs · (h + β)[permutation] for channels-last h [..., C] (no γ: the model has it)."""
    shifted = h + jnp.asarray(material.offsets, h.dtype)
    return jnp.take(shifted, material.permutation, axis=-1) * jnp.asarray(material.signs, h.dtype)


def lock_arrays(material, channels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(permutation, signs, offsets) of a feature or lock material; None is the identity."""
    if material is None:
        return (
            np.arange(channels, dtype=np.int32),
            np.ones(channels, np.float32),
            np.zeros(channels, np.float32),
        )
    offsets = getattr(material, "offsets", None)
    if offsets is None:
        offsets = np.zeros(channels, np.float32)
    return np.asarray(material.permutation), np.asarray(material.signs), np.asarray(offsets)
