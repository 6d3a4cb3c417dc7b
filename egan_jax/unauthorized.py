"""Authorized and unauthorized versions of a keyed transform, for training and evaluating EGAN.

Given the owner's key and a transform config, `make_variants` derives — once, on the host — the
authorized transform a_k and a set of unauthorized ones u:

* ``no_key``: the identity (a thief feeds raw prior samples / raw inputs);
* ``random_key_i``: the same transform under other keys. For training these keys come from the run
  seed by a labelled derivation (`seeded_key`), so a run is reproducible bit for bit; evaluation
  can ask for fresh keys from the OS (`fresh=True`);
* ``near_key_i``: the owner's secret with one bit flipped (`SecretKey.flip_bit`): by HKDF, entirely
  new material — a near miss of the *secret*;
* ``near_material_i``: the owner's *material* changed minimally — one transposition of a
  permutation, or one flipped mask/sign bit (`transforms.common.near_miss`) — the hardest case.

Adapters (`ADAPTERS`) say how to build, apply and nudge each kind of transform: ``latent`` (a
`LatentPipeline` on z [N, D]), ``image`` (a `Pipeline` on NHWC images) and ``feature`` (a
`FeatureMaterial` permutation + sign flip of channels-last feature maps) and ``feature_lock`` (the
same after a key offset, `feature_lock`). Every variant's `apply`
is a pure jittable function with the material baked in as constants; `mix` applies one variant per
example, chosen from a `jax.random` key, in one pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.errors import ConfigError
from egan_jax.feature_lock import FeatureLockMaterial, lock_forward
from egan_jax.keys import SECRET_BYTES, SecretKey
from egan_jax.transforms.common import near_miss
from egan_jax.transforms.compose import LatentPipeline, Pipeline
from egan_jax.transforms.feature import FeatureMaterial, feature_forward

Apply = Callable[[jax.Array], jax.Array]
KINDS = ("authorized", "no_key", "random_key", "near_key", "near_material")


def seeded_key(seed: int, label: str, index: int) -> SecretKey:
    """A reproducible stand-in key: SHA-256 of a versioned label, the seed and an index.

    Not secret (anyone can compute it from the seed); it plays "some other user's key" in training
    and evaluation, where reproducibility matters more than secrecy.
    """
    digest = hashlib.sha256(f"egan_jax/unauthorized/v1/{label}/seed{seed}/{index}".encode())
    return SecretKey.from_bytes(digest.digest()[:SECRET_BYTES])


@dataclasses.dataclass(frozen=True)
class Adapter:
    """How to build a keyed transform from (key, config), apply it, and make minimal variants."""

    make: Callable[[SecretKey, Mapping[str, Any]], Any]
    apply: Callable[[Any, jax.Array], jax.Array]
    near_materials: Callable[[Any, int], list[Any]]


def _feature_make(key: SecretKey, config: Mapping[str, Any]) -> FeatureMaterial:
    return FeatureMaterial.from_key(
        key,
        channels=config["channels"],
        tag=config.get("tag", ""),
        flip_signs=config.get("flip_signs", True),
    )


def _feature_near(material: FeatureMaterial, seed: int) -> list[FeatureMaterial]:
    # the two minimal changes: one transposition, one flipped channel sign
    out = [near_miss(material, seed)]
    if np.any(material.signs < 0):
        out.append(material.near_miss_sign(seed))
    return out


def _pipeline_near(pipeline, seed: int) -> list[Any]:
    # one minimal change per step (a transposition for permutations, one bit for masks/signs)
    return [pipeline.near_miss(seed, step=name) for name, _ in pipeline.materials]


ADAPTERS: dict[str, Adapter] = {
    "latent": Adapter(
        lambda key, cfg: LatentPipeline.from_config(cfg, key),
        lambda pipeline, z: pipeline.forward(z),
        _pipeline_near,
    ),
    "image": Adapter(
        lambda key, cfg: Pipeline.from_config(cfg, key),
        lambda pipeline, x: pipeline.forward(x),
        _pipeline_near,
    ),
    "feature": Adapter(_feature_make, feature_forward, _feature_near),
    "feature_lock": Adapter(
        lambda key, cfg: FeatureLockMaterial.from_key(
            key,
            channels=cfg["channels"],
            tag=cfg.get("tag", ""),
            flip_signs=cfg.get("flip_signs", True),
            offset_gap=cfg.get("offset_gap", 16.0),
        ),
        lock_forward,
        lambda material, seed: material.near_misses(seed),
    ),
}


def get_adapter(kind: str) -> Adapter:
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown transform kind {kind!r}; valid kinds: {sorted(ADAPTERS)}"
        ) from None


@dataclasses.dataclass(frozen=True)
class UnauthorizedSpec:
    """How many unauthorized variants of each kind to make, and from which seed."""

    no_key: bool = True
    random_keys: int = 2
    near_keys: int = 1
    near_materials: int = 1
    seed: int = 0
    label: str = "train"  # separates training's stand-in keys from evaluation's
    fresh: bool = False  # random keys from the OS CSPRNG instead of the seed (not reproducible)
    near_offset: int = 0  # first near-material index (evaluation skips the ones training used)

    def __post_init__(self):
        for name in ("random_keys", "near_keys", "near_materials", "seed", "near_offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"unauthorized.{name} must be a non-negative int, got {value!r}")


def training_spec(config) -> UnauthorizedSpec:
    """Training's spec from a protected family's config (`config.loss.unauthorized` and the seed)."""
    u = config.loss.unauthorized
    return UnauthorizedSpec(
        no_key=u.no_key,
        random_keys=u.random_keys,
        near_keys=u.near_keys,
        near_materials=u.near_materials,
        seed=config.seed,
        label="train",
    )


@dataclasses.dataclass(frozen=True)
class Variant:
    """One transform: a display name, its kind (from `KINDS`) and a pure `apply(x) -> x'`."""

    name: str
    kind: str
    apply: Apply
    fingerprint: str | None
    material: Any = None  # the transform's material (None: identity), e.g. for array-form use
    # the key the material came from (random and near-miss keys; None otherwise): material of
    # other sites, e.g. a deep lock's, is derived from it
    key: SecretKey | None = dataclasses.field(default=None, repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Variants:
    """The authorized transform and the unauthorized ones, all precomputed."""

    authorized: Variant
    unauthorized: tuple[Variant, ...]

    def by_kind(self, kind: str) -> tuple[Variant, ...]:
        return tuple(v for v in self.unauthorized if v.kind == kind)


def _identity(x: jax.Array) -> jax.Array:
    return x


def _bind(adapter: Adapter, material: Any) -> Apply:
    return lambda x: adapter.apply(material, x)


def make_variants(
    kind: str, config: Mapping[str, Any], key: SecretKey, spec: UnauthorizedSpec
) -> Variants:
    """Derive the authorized transform and `spec`'s unauthorized ones (host side, once).

    Near-miss keys flip secret bits chosen from the seed; near-miss materials cycle through each
    minimal change the adapter offers (for a feature map: a transposition, then a sign flip).
    """
    adapter = get_adapter(kind)
    owner = adapter.make(key, config)
    authorized = Variant(
        "correct key", "authorized", _bind(adapter, owner), key.fingerprint, owner, key=key
    )
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x6E6B]))
    out: list[Variant] = []
    if spec.no_key:
        out.append(Variant("no key", "no_key", _identity, None))
    for i in range(spec.random_keys):
        other = SecretKey.generate() if spec.fresh else seeded_key(spec.seed, spec.label, i)
        material = adapter.make(other, config)
        out.append(
            Variant(
                f"random key {i}",
                "random_key",
                _bind(adapter, material),
                other.fingerprint,
                material,
                key=other,
            )
        )
    bits = (
        rng.choice(8 * SECRET_BYTES, size=spec.near_keys, replace=False) if spec.near_keys else []
    )
    for i, bit in enumerate(bits):
        near = key.flip_bit(int(bit))
        material = adapter.make(near, config)
        out.append(
            Variant(
                f"near key {i}",
                "near_key",
                _bind(adapter, material),
                near.fingerprint,
                material,
                key=near,
            )
        )
    for i in range(spec.near_materials):
        index = spec.near_offset + i
        options = adapter.near_materials(owner, spec.seed * 1000 + index)
        material = options[index % len(options)]
        fingerprint = getattr(material, "key_fingerprint", None) or getattr(
            material, "fingerprint", None
        )
        out.append(
            Variant(
                f"near material {i}",
                "near_material",
                _bind(adapter, material),
                fingerprint,
                material,
            )
        )
    return Variants(authorized, tuple(out))


def mix(variants: tuple[Variant, ...], x: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Apply one variant per example: returns (x' [N, ...], chosen variant index [N]).

    The choice is uniform from `key`; every variant is applied to the whole batch and the rows
    selected, which is cheap for latents and early feature maps (the intended use).
    """
    if not variants:
        raise ConfigError("mix needs at least one unauthorized variant; enable one in the spec")
    choice = jax.random.randint(key, (x.shape[0],), 0, len(variants))
    if len(variants) == 1:
        return variants[0].apply(x), choice
    stacked = jnp.stack([v.apply(x) for v in variants])
    return stacked[choice, jnp.arange(x.shape[0])], choice


def fresh_near_feature(
    material: FeatureMaterial | FeatureLockMaterial, h: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Each example through its own freshly drawn near miss of `material` (inside `jit`); a lock
    material's offsets are added first, as `feature_lock.lock_forward` does.

    Per example, from `key`: either one transposition of the permutation (two distinct positions
    chosen uniformly) or one flipped channel sign, half and half. A fixed handful of near misses
    (`make_variants`) covers a few of the C(C, 2) + C minimal changes; drawing them every step lets
    training reach all of them. Returns (h' [N, ..., C], which change: 0 = transposition,
    1 = sign [N]).
    """
    n, channels = h.shape[0], material.channels
    perm = jnp.asarray(material.permutation, jnp.int32)
    signs = jnp.asarray(material.signs, h.dtype)
    k_pair, k_shift, k_sign, k_kind = jax.random.split(key, 4)
    first = jax.random.randint(k_pair, (n,), 0, channels)
    # a non-zero shift modulo C makes the second position distinct from the first
    second = (first + jax.random.randint(k_shift, (n,), 1, channels)) % channels
    rows = jnp.arange(n)
    perms = jnp.broadcast_to(perm, (n, channels))
    swapped = perms.at[rows, first].set(perm[second]).at[rows, second].set(perm[first])
    flipped = jnp.broadcast_to(signs, (n, channels))
    flipped = flipped.at[rows, jax.random.randint(k_sign, (n,), 0, channels)].multiply(-1)
    use_sign = jax.random.bernoulli(k_kind, 0.5, (n,))
    if not np.any(material.signs < 0):  # no key signs: only transpositions are near misses
        use_sign = jnp.zeros((n,), bool)
    chosen_perm = jnp.where(use_sign[:, None], perms, swapped)
    chosen_signs = jnp.where(use_sign[:, None], flipped, jnp.broadcast_to(signs, (n, channels)))
    shape = (n,) + (1,) * (h.ndim - 2) + (channels,)
    if isinstance(material, FeatureLockMaterial):
        h = h + jnp.asarray(material.offsets, h.dtype)
    gathered = jnp.take_along_axis(h, chosen_perm.reshape(shape), axis=-1)
    return gathered * chosen_signs.reshape(shape), use_sign.astype(jnp.int32)


def mix_with_fresh_near(
    variants: tuple[Variant, ...], owner, fresh_count: int, key: jax.Array, h: jax.Array
) -> jax.Array:
    """The first `fresh_count` rows of feature map `h` through fresh near misses of the owner's
    material (`fresh_near_feature`), the rest through one fixed variant each (`mix`)."""
    if fresh_count == 0:
        return mix(variants, h, key)[0]
    mix_key, near_key = jax.random.split(key)
    near, _ = fresh_near_feature(owner, h[:fresh_count], near_key)
    if fresh_count >= h.shape[0] or not variants:
        return near[: h.shape[0]]
    return jnp.concatenate([near, mix(variants, h[fresh_count:], mix_key)[0]])
