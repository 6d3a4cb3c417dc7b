"""Shared pieces of the keyed transforms: the key-material base class, near-miss material and the
boundary checks (dtype, NaN, NHWC shape, block divisibility) that raise the project's errors.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.errors import ConfigError, ShapeError

BLOCK_SIZES_HINT = "a block size that divides both H and W (e.g. 1, 2, 4, 8)"


# --- key material -----------------------------------------------------------------------------
class KeyMaterial:
    """Base of the frozen material dataclasses: equality by content, no secrets in ``repr``.

    Subclasses are ``@dataclasses.dataclass(frozen=True, eq=False, repr=False)`` whose numpy fields
    are made read-only; ``key_fingerprint`` names the key they came from (public).
    """

    key_fingerprint: str
    # The field :func:`near_miss` changes: ``"permutation"`` gets one transposition, a mask or sign
    # field one flipped entry.
    near_miss_field: ClassVar[str]

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                value = np.array(value)  # a private, read-only copy
                value.setflags(write=False)
                object.__setattr__(self, field.name, value)

    def _digest(self) -> bytes:
        cached = self.__dict__.get("_digest_cache")
        if cached is not None:
            return cached
        h = hashlib.sha256(type(self).__name__.encode())
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            h.update(field.name.encode())
            if isinstance(value, np.ndarray):
                h.update(f"{value.dtype.str}{value.shape}".encode() + value.tobytes())
            else:
                h.update(repr(value).encode())
        object.__setattr__(self, "_digest_cache", h.digest())
        return self._digest_cache

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._digest() == other._digest()

    def __hash__(self) -> int:
        return int.from_bytes(self._digest()[:8], "little")

    def __repr__(self) -> str:
        public = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if not isinstance(getattr(self, f.name), np.ndarray)
        )
        return f"{type(self).__name__}({public})"

    def _near_miss(self, rng: np.random.Generator) -> KeyMaterial:
        return change_one(self, self.near_miss_field, rng)


def near_miss(material: KeyMaterial, rng_seed: int) -> KeyMaterial:
    """Material differing minimally from ``material``, for attack evaluations.

    A permutation gets one transposition (two entries swapped); a mask or sign vector one flipped
    entry; which entries is chosen by ``rng_seed``. The result's ``key_fingerprint`` is marked
    ``"…~near"`` since no key derives it.
    """
    return material._near_miss(np.random.default_rng(rng_seed))


def near_fp(material: KeyMaterial) -> str:
    return material.key_fingerprint + "~near"


def change_one(material: KeyMaterial, field: str, rng: np.random.Generator) -> KeyMaterial:
    """``material`` with its ``field`` changed minimally: a ``"permutation"`` by one transposition,
    a mask or sign vector by one flipped entry; marked ``"…~near"``."""
    change = swap_two if field == "permutation" else flip_one
    value = change(getattr(material, field), rng)
    return dataclasses.replace(material, **{field: value}, key_fingerprint=near_fp(material))


def swap_two(permutation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``permutation`` with two distinct entries swapped (one transposition)."""
    if permutation.size < 2:
        raise ConfigError("near_miss needs a permutation of at least 2 elements to swap two")
    i, j = rng.choice(permutation.size, size=2, replace=False)
    out = permutation.copy()
    out[i], out[j] = permutation[j], permutation[i]
    return out


def flip_one(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``mask`` (bool) or sign vector (±1) with one entry flipped."""
    out = mask.copy()
    i = rng.integers(mask.size)
    out[i] = ~out[i] if out.dtype == bool else -out[i]
    return out


def check_sizes(block_size: int, channels: int) -> None:
    for name, value in (("block_size", block_size), ("channels", channels)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


# --- boundary checks --------------------------------------------------------------------------
def check_array(x, *, what: str, dtypes: tuple[str, ...]):
    """Dtype and NaN checks shared by all transforms; returns ``x`` as an array.

    NaN is checked only when ``x`` is concrete (eager call); inside ``jit`` the caller's boundary is
    trusted.
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        x = np.asarray(x)
    dtype = np.dtype(x.dtype)
    if dtype.name not in dtypes:
        raise ShapeError(
            f"{what}: dtype {dtype.name} is not supported; accepted: {', '.join(dtypes)}. Convert "
            "first, e.g. (x / 127.5 - 1).astype(np.float32) for 8-bit values as floats in [-1, 1]"
        )
    if jnp.issubdtype(dtype, jnp.floating) and not isinstance(x, jax.core.Tracer):
        # on the device for jax arrays: one scalar comes back, not the batch
        nan_count = int(np.isnan(x).sum() if isinstance(x, np.ndarray) else jnp.isnan(x).sum())
        if nan_count:
            raise ShapeError(
                f"{what}: input contains NaN ({nan_count} values); the transforms need finite "
                "values (images in [-1, 1]). Check the data loading and normalisation"
            )
    return x


def check_images(x, *, block_size: int, channels: int, what: str, dtypes: tuple[str, ...]):
    """Validate an NHWC image batch at a transform's boundary (static shapes: also at trace time)."""
    x = check_array(x, what=what, dtypes=dtypes)
    if x.ndim != 4:
        raise ShapeError(
            f"{what}: expected images of rank 4 [N, H, W, C] (NHWC), got shape {tuple(x.shape)}. "
            "Add a batch axis (x[None]) for a single image"
        )
    _, height, width, chans = x.shape
    if height % block_size or width % block_size:
        m = block_size
        fix = f"pad to {-(-height // m) * m}×{-(-width // m) * m}"
        if height >= m and width >= m:
            fix += f" or crop to {height // m * m}×{width // m * m}"
        raise ShapeError(
            f"{what}: image shape {tuple(x.shape)} has H={height}, W={width}, not both divisible by "
            f"the block size M={m}. {fix.capitalize()} (multiples of {m}), or use {BLOCK_SIZES_HINT}"
        )
    if chans != channels:
        raise ShapeError(
            f"{what}: image shape {tuple(x.shape)} has C={chans} channels but the key material was "
            f"made for channels={channels}; derive it with channels={chans}"
        )
    return x


def _explicit_sharding(x):
    """``x``'s sharding when its mesh has Explicit axes (`jax.make_mesh`'s default), else None."""
    sharding = getattr(jax.typeof(x), "sharding", None)
    axis_types = getattr(getattr(sharding, "mesh", None), "axis_types", ())
    explicit = any(t == jax.sharding.AxisType.Explicit for t in axis_types)
    return sharding if explicit else None


def sharding_safe(fn, x):
    """``fn(x)`` that also works on a batch sharded over an Explicit mesh.

    There, JAX asks every gather with sharded indices for an output sharding (a transform's
    gathers would fail deep inside JAX); the transforms work per example, so ``fn`` runs in
    automatic mode and each output keeps ``x``'s batch sharding (scalars are replicated).
    Elsewhere (one device, the engine's Auto mesh, under vmap) it is just ``fn(x)``.
    """
    sharding = _explicit_sharding(x)
    if sharding is None:
        return fn(x)
    batch_axis = sharding.spec[0] if len(sharding.spec) else None

    def out_spec(leaf):
        if leaf.ndim and leaf.shape[0] == x.shape[0]:
            return jax.sharding.NamedSharding(
                sharding.mesh, jax.sharding.PartitionSpec(batch_axis, *([None] * (leaf.ndim - 1)))
            )
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())

    out = jax.tree.map(out_spec, jax.eval_shape(fn, jax.ShapeDtypeStruct(x.shape, x.dtype)))
    return jax.sharding.auto_axes(fn, out_sharding=out)(x)


@functools.partial(jax.jit, static_argnums=(0, 1))
def run_static(fn, material: KeyMaterial, x):
    """``fn(material, x)`` compiled once per (fn, material, shape): material becomes constants.

    Eager calls then cost one dispatch instead of one per primitive; under an outer ``jit`` this
    inlines. ``fn`` must be a module-level pure function. Works on batches sharded over an Explicit
    mesh too (`sharding_safe`).
    """
    return sharding_safe(functools.partial(fn, material), x)
