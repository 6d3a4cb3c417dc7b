"""Keyed transforms of latent vectors ``z`` ``[N, D]`` (the input of an unconditional generator).

Why permutations and sign flips are not enough: the authorised latent is ``z ~ N(0, I_D)``. A
permutation ``P`` or a sign flip ``S`` is orthogonal, and an isotropic Gaussian is invariant under
every orthogonal map, so ``Pz`` and ``Sz`` have *exactly the same distribution* as ``z``. A generator
trained to answer keyed inputs well and unkeyed inputs badly would have to tell apart two samples of
the same distribution, which is impossible; for unconditional generation they protect nothing (they
remain useful when ``z`` carries structure, e.g. conditional or encoder-produced codes).

Region transforms fix this: they move authorised latents into a key-specific *region* that plain
Gaussian samples rarely visit, so "keyed" becomes a property of the input a generator can learn.
Two designs (the EGAN experiments compare them):

* :func:`latent_offset` — translate by a key direction: ``z + r·s`` with key signs ``s ∈ {±1}^D``
  (norm ``r·√D``). Keyed latents concentrate near the sphere of radius ``√D`` around ``r·s``; a plain
  ``z`` lies at distance ≈ ``√D·√(1 + r²)`` from that centre. A wrong key's centre is ≈ ``r·√(2D)``
  away (a one-bit near miss only ``2r``).
* :func:`latent_halfspace` — push ``z`` into the key half-space ``{⟨u, z⟩ > m}`` (``u = s/√D``)
  along ``u`` by the smooth bijection ``a ↦ m + (a + √(a² + 4))/2`` of ``ℝ`` onto ``(m, ∞)``,
  leaving the orthogonal part untouched. Plain latents land there with probability ``1 − Φ(m)``.

Directions are key sign vectors (not Gaussian draws) so the material is bit-reproducible on every
platform. Permutation and sign inverses are bit-exact; the region inverses are exact in real
arithmetic and, in float32, recover ``z`` up to rounding (a few ulp of the transformed value).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.errors import ConfigError, ShapeError
from egan_jax.keys import SecretKey, derive_mask, derive_permutation
from egan_jax.transforms.common import (
    KeyMaterial,
    check_array,
    check_sizes,
    run_static,
)

_LATENT_DTYPES = ("float32",)


def _key_signs(key: SecretKey, label: str, dim: int) -> np.ndarray:
    return np.where(derive_mask(key, label, dim), -1.0, 1.0).astype(np.float32)


def _check_positive(name: str, value: float) -> float:
    if not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class LatentPermMaterial(KeyMaterial):
    """A permutation of the ``D`` latent coordinates (int32 ``[D]``)."""

    dim: int
    permutation: np.ndarray
    key_fingerprint: str
    near_miss_field = "permutation"

    @classmethod
    def from_key(cls, key: SecretKey, *, dim: int):
        check_sizes(1, dim)
        return cls(dim, derive_permutation(key, f"latent/perm/d{dim}", dim), key.fingerprint)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class LatentSignMaterial(KeyMaterial):
    """Key signs ``±1`` per latent coordinate (float32 ``[D]``)."""

    dim: int
    signs: np.ndarray
    key_fingerprint: str
    near_miss_field = "signs"

    @classmethod
    def from_key(cls, key: SecretKey, *, dim: int):
        check_sizes(1, dim)
        return cls(dim, _key_signs(key, f"latent/sign/d{dim}", dim), key.fingerprint)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class LatentOffsetMaterial(KeyMaterial):
    """Offset ``radius · signs`` (norm ``radius·√D``) with key signs (float32 ``[D]``)."""

    dim: int
    radius: float
    signs: np.ndarray
    key_fingerprint: str
    near_miss_field = "signs"

    @classmethod
    def from_key(cls, key: SecretKey, *, dim: int, radius: float = 1.0):
        check_sizes(1, dim)
        radius = _check_positive("radius", radius)
        return cls(dim, radius, _key_signs(key, f"latent/offset/d{dim}", dim), key.fingerprint)

    @property
    def offset(self) -> np.ndarray:
        return (self.radius * self.signs).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class LatentHalfSpaceMaterial(KeyMaterial):
    """Key direction ``u = signs/√D`` and margin ``m`` of the half-space ``⟨u, z⟩ > m``."""

    dim: int
    margin: float
    signs: np.ndarray
    key_fingerprint: str
    near_miss_field = "signs"

    @classmethod
    def from_key(cls, key: SecretKey, *, dim: int, margin: float = 2.0):
        check_sizes(1, dim)
        margin = _check_positive("margin", margin)
        return cls(dim, margin, _key_signs(key, f"latent/halfspace/d{dim}", dim), key.fingerprint)

    @property
    def direction(self) -> np.ndarray:
        return (self.signs / np.sqrt(self.dim)).astype(np.float32)


def check_latents(z, dim: int, *, what: str):
    """Validate ``[N, D]`` float32 latents at a transform's boundary."""
    z = check_array(z, what=what, dtypes=_LATENT_DTYPES)
    if z.ndim != 2 or z.shape[1] != dim:
        raise ShapeError(
            f"{what}: expected latents of shape [N, D] with D={dim}, got shape {tuple(z.shape)}; "
            "derive the material with dim=z.shape[1] (add a batch axis with z[None] for one vector)"
        )
    return z


def _permute_core(material, z):
    return jnp.take(z, material.permutation, axis=1)


def _unpermute_core(material, y):
    return jnp.take(y, np.argsort(material.permutation).astype(np.int32), axis=1)


def _sign_core(material, z):
    return z * jnp.asarray(material.signs)


def _offset_core(material, z):
    return z + jnp.asarray(material.offset)


def _offset_inverse_core(material, y):
    return y - jnp.asarray(material.offset)


def _halfspace_core(material, z):
    u = jnp.asarray(material.direction)
    a = z @ u
    pushed = material.margin + 0.5 * (a + jnp.sqrt(a * a + 4.0))
    return z + (pushed - a)[:, None] * u


def _halfspace_inverse_core(material, y):
    u = jnp.asarray(material.direction)
    pushed = y @ u
    s = pushed - material.margin  # (a + √(a²+4))/2 = s  ⇔  a = s − 1/s, for s > 0
    a = jnp.where(s > 0, s - 1.0 / s, jnp.nan)
    return y - (pushed - a)[:, None] * u


def _run(core, material, z, what: str) -> jax.Array:
    return run_static(core, material, check_latents(z, material.dim, what=what))


def latent_permute(material: LatentPermMaterial, z: jax.Array) -> jax.Array:
    """``out[:, k] = z[:, permutation[k]]`` (distribution-preserving for Gaussian ``z``)."""
    return _run(_permute_core, material, z, "latent_permute")


def latent_unpermute(material: LatentPermMaterial, y: jax.Array) -> jax.Array:
    """Exact inverse of :func:`latent_permute`."""
    return _run(_unpermute_core, material, y, "latent_unpermute")


def latent_sign_flip(material: LatentSignMaterial, z: jax.Array) -> jax.Array:
    """``z · signs``; self-inverse, bit-exact (distribution-preserving for Gaussian ``z``)."""
    return _run(_sign_core, material, z, "latent_sign_flip")


def latent_offset(material: LatentOffsetMaterial, z: jax.Array) -> jax.Array:
    """``z + radius·signs``: authorised latents move to a key-specific centre."""
    return _run(_offset_core, material, z, "latent_offset")


def latent_offset_inverse(material: LatentOffsetMaterial, y: jax.Array) -> jax.Array:
    """``y − radius·signs`` (exact up to one float rounding of the forward sum)."""
    return _run(_offset_inverse_core, material, y, "latent_offset_inverse")


def latent_halfspace(material: LatentHalfSpaceMaterial, z: jax.Array) -> jax.Array:
    """Map ``z`` bijectively into ``⟨u, z⟩ > margin`` along the key direction ``u``."""
    return _run(_halfspace_core, material, z, "latent_halfspace")


def latent_halfspace_inverse(material: LatentHalfSpaceMaterial, y: jax.Array) -> jax.Array:
    """Inverse of :func:`latent_halfspace`; inputs outside the half-space give NaN coordinates."""
    return _run(_halfspace_inverse_core, material, y, "latent_halfspace_inverse")
