"""What the EGAN-protected image-to-image families (SRGAN, CycleGAN) share (issue 6).

The protected generator sees the key-transformed input a_k(x): a Kiya block transform of the image
(`transforms.compose.Pipeline`, block size `model.block`, steps `model.steps`, shuffle + negative/
positive by default). A convolutional generator is translation-equivariant, so it cannot undo a
per-block permutation by itself (the right inverse depends on a pixel's position inside its block);
`KeyedGenerator` therefore puts a learned per-block linear map in front of the family's generator
(`attacks.BlockAdapter`, kernel = stride = M, initialised to the identity) — the family of maps a
shuffle + NP transform lives in. It trains with `model.adapter_lr_scale` × the learning rate, since
from the identity it has to travel to a signed permutation (entries move by ~1; Adam at 1e-4 moves a
weight ~1e-4 per step). A separable front layer invites a trivial attack — delete it and feed raw
images — so with `model.adapter_bypass` the raw image through the generator *without* the adapter
is one more unauthorized input (on `fraction / (variants + 1)` of the batch): the adapter must then
map a_k(x) to something other than x, and the key is no longer only in a removable layer.
`model.adapter="key_inverse"` replaces the learned map by the exact a_k⁻¹, derived from the key when
the owner builds the model and never stored (`egan_image_deep`); the bypass input is then the
keyless build (raw x, no inverse, no deep lock).

Unauthorized inputs u(x) (no key = the raw image, seeded random keys, near-miss secrets and near-miss
material; `egan_jax.unauthorized`) run through the same generator on the first
`loss.unauthorized.fraction` of the batch, one variant per example (`unauthorized.mix`), and the
self-adversarial term of `egan_jax.protection` pushes their outputs (or generator features) away
from the authorized ones. Key handling is egan_dcgan's: `model.key_file` (None: the public demo
key), checkpoints store only the fingerprint (`key_fingerprint`), another key is a
`KeyMismatchError`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from egan_jax import deep_lock, protection
from egan_jax.attacks import BlockAdapter
from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.families.egan_dcgan import (
    BATCH_NORM_MODES,
    KeyLock,
    SelfAdversarialConfig,
    UnauthorizedConfig,
    batch_norm_mode,
    feature_hook,
    key_fingerprint,
    load_key,
    objective_config,
)
from egan_jax.families.egan_image_bypass import WRAPPER_DELETED, check_wrapper_deleted
from egan_jax.families.egan_image_deep import (
    deep_sites,
    holder_locks,
    input_map,
    key_inverse,
    owner_deep_lock,
    uses_key_inverse,
    uses_learned_map,
    without_deep_lock,
)
from egan_jax.families.egan_image_optim import keyed_optimizer, protected_optimizers
from egan_jax.transforms.compose import validate_config
from egan_jax.unauthorized import UnauthorizedSpec, Variants, make_variants, mix, training_spec

__all__ = [
    "KeyConfig",
    "KeyedGenerator",
    "SelfAdversarialConfig",
    "UnauthorizedConfig",
    "check_protection",
    "deep_sites",
    "input_map",
    "key_inverse",
    "uses_key_inverse",
    "uses_learned_map",
    "key_fingerprint",
    "keyed_optimizer",
    "paired_variants",
    "protected_optimizers",
    "load_key",
    "objective_config",
    "owner_deep_lock",
    "transform_config",
    "unauthorized_features",
    "variants",
    "without_deep_lock",
]

FEATURE_KINDS = ("output", "generator", "discriminator")


@dataclasses.dataclass(frozen=True)
class KeyConfig:
    """The key fields of a protected image model (mixed into each family's ModelConfig)."""

    key_file: str | None = None  # None: the public demo key (never for real models)
    block: int = 4  # block size M of the key transform
    steps: tuple[str, ...] = ("shuffle", "np")  # transforms.compose.STEPS, in order ("ffx" too)
    ffx_variant: str = "decimal"
    # the input map: True / "learned" (a learned per-block map, see the module doc), False /
    # "none", or "key_inverse" (the exact a_k⁻¹, from the key at build time; `egan_image_deep`)
    adapter: bool | str = True
    adapter_lr_scale: float = 100.0
    # also push G without its input map and deep lock (raw input; a thief's build) away, so
    # that deleting the wrapper is no bypass
    adapter_bypass: bool = True
    # with "key_inverse": also the builds of training's other keys (random, near), whose own
    # inverse hands the network x and whose own deep lock runs it (`egan_image_deep.holder_locks`)
    holder_bypass: bool = False
    # generator sites (`deep_sites`) with a deep lock: key permutations + signs derived when the
    # owner builds the model, never stored (`egan_jax.deep_lock`); () = none
    deep_lock: tuple[str, ...] = ()


def transform_config(config: Config) -> dict:
    """The `Pipeline` config of the key transform (no key material)."""
    m = config.model
    return {
        "block": m.block,
        "steps": list(m.steps),
        "channels": config.data.channels,
        "ffx_variant": m.ffx_variant,
    }


def check_protection(config: Config, image_sizes: tuple[int, ...]) -> None:
    """Validate the key transform, the self-adversarial terms and the unauthorized spec."""
    validate_config(transform_config(config))
    m, u = config.model, config.loss.unauthorized
    for size in image_sizes:
        if size % m.block:
            raise ConfigError(
                f"the generator's input is {size} px, not a multiple of model.block={m.block}; "
                "pick a block size that divides it (e.g. 4) or change data.image_size"
            )
    deep_sites(config)  # unknown or repeated site names: a ConfigError naming the valid ones
    input_map(config)  # a bad model.adapter value, or key_inverse with FFX: a ConfigError
    if not m.adapter_lr_scale > 0:
        raise ConfigError(f"model.adapter_lr_scale must be positive, got {m.adapter_lr_scale}")
    if not 0 < u.fraction <= 1:
        raise ConfigError(f"loss.unauthorized.fraction must be in (0, 1], got {u.fraction}")
    if u.batch_norm not in BATCH_NORM_MODES:
        raise ConfigError(
            f"loss.unauthorized.batch_norm={u.batch_norm!r}; valid: {list(BATCH_NORM_MODES)}"
        )
    if config.loss.self_adversarial.features not in FEATURE_KINDS:
        raise ConfigError(
            f"loss.self_adversarial.features={config.loss.self_adversarial.features!r}: the image "
            f"families support {list(FEATURE_KINDS)}"
        )
    if config.loss.self_adversarial.ntl_weight > 0:
        raise ConfigError("loss.self_adversarial.ntl_weight is DCGAN-only; set it to 0")
    protection.compose(objective_config(config))  # names and hyperparameters
    has_bypass = input_map(config) != "none" and m.adapter_bypass
    check_wrapper_deleted(config, has_bypass)  # `loss.wrapper_deleted` (`egan_image_bypass`)


def variants(config: Config, key=None, spec: UnauthorizedSpec | None = None) -> Variants:
    """The authorized block transform and the unauthorized ones (training's spec by default)."""
    from egan_jax.families import egan_image_lock as lock

    spec, key = spec or training_spec(config), key or load_key(config)
    out = make_variants("image", transform_config(config), key, spec)
    if lock.uses_input_lock(config):  # T(x + β_k), the model subtracting γ (`egan_image_lock`)
        return lock.lock_variants(out, lock.offsets(key, config.model.block, config.data.channels))
    return out


@functools.lru_cache(maxsize=8)
def cached_variants(config: Config) -> Variants:
    return variants(config)


# --- the feature key (`model.feature_key`, SRGAN): the key also acts inside the generator -------
@dataclasses.dataclass(frozen=True)
class Pair:
    """One input kind of a feature-keyed model: a block transform of the image and a feature map
    transform (`FeatureMaterial` permutation + sign flip of SRResNet's head, or identity)."""

    name: str
    kind: str
    image: Callable[[jax.Array], jax.Array]
    feature: Callable[[jax.Array], jax.Array]
    material: object = None  # the feature material (None: identity)


def feature_config(config: Config) -> dict:
    tag = "cyclegan/head" if config.family.endswith("cyclegan") else "srgan/head"
    return {"channels": config.model.width, "tag": tag, "flip_signs": True}


def uses_feature_lock(config: Config) -> bool:
    """`model.feature_lock`: the feature key after a secret offset, the generator subtracting
    γ = a_k(0) (DCGAN's `feature_lock`, `egan_jax.feature_lock`): any other key leaves a residual."""
    return bool(getattr(config.model, "feature_lock", False))


def feature_kind(config: Config) -> str:
    return "feature_lock" if uses_feature_lock(config) else "feature"


def paired_variants(
    config: Config, key=None, spec: UnauthorizedSpec | None = None, feature_near: bool = True
):
    """(correct key, unauthorized...) as `Pair`s: each other key acts on both the image and the
    feature map (no key: identity on both); the near materials change one of the two only (one
    transposition / flipped bit of the image transform, then — with `feature_near` — of the
    feature permutation/signs)."""
    key = key or load_key(config)
    images = variants(config, key, spec)
    spec = spec or training_spec(config)
    features = make_variants(feature_kind(config), feature_config(config), key, spec)
    by_name = {v.name: v for v in features.unauthorized}
    owner = features.authorized
    out = [Pair("correct key", "authorized", images.authorized.apply, owner.apply, owner.material)]
    near = []
    for v in images.unauthorized:
        if v.kind == "near_material":
            out.append(Pair(f"{v.name} (image)", v.kind, v.apply, owner.apply, owner.material))
            f = by_name[v.name]
            near += (
                []
                if not feature_near
                else [
                    Pair(
                        f"{v.name} (feature)", v.kind, images.authorized.apply, f.apply, f.material
                    )
                ]
            )
        else:
            f = by_name[v.name]
            out.append(Pair(v.name, v.kind, v.apply, f.apply, f.material))
    return tuple(out + near)


@functools.lru_cache(maxsize=8)
def cached_pairs(config: Config) -> tuple[Pair, ...]:
    """Training's pairs (feature near misses only with `model.feature_near`)."""
    return paired_variants(config, feature_near=bool(getattr(config.model, "feature_near", True)))


def mix_pairs(pairs, x: jax.Array, key: jax.Array):
    """One unauthorized pair per example: (its image transform of x, a feature hook that applies
    each example's feature transform). Every transform runs on the whole batch, rows selected."""
    choice = jax.random.randint(key, (x.shape[0],), 0, len(pairs))
    rows = jnp.arange(x.shape[0])
    x_u = jnp.stack([p.image(x) for p in pairs])[choice, rows]

    def hook(h: jax.Array) -> jax.Array:
        return jnp.stack([p.feature(h) for p in pairs])[choice, rows]

    return x_u, hook


class KeyedGenerator(nnx.Module):
    """`generator(adapter(x))`: the family's generator behind its input map — a learned per-block
    map (`adapter`) or the exact inverse of the owner's key transform (`key_inverse`, a function
    set by `keyed` from the key: never part of a checkpoint)."""

    def __init__(self, generator: nnx.Module, *, block: int, channels: int, use_adapter: bool,
                 rngs: nnx.Rngs, feature: Callable | None = None):  # fmt: skip
        self.adapter = BlockAdapter(block, channels, rngs=rngs) if use_adapter else None
        self.generator = generator
        # the owner's feature key (`feature_variants`), applied through the generator's
        # `feature_transform` hook on each call; a function, so never part of a checkpoint
        self.feature_key = feature
        self.key_inverse: Callable | None = None
        # `keyed` adds `key_lock`, γ of `model.feature_lock` (a `KeyLock`: public, checkpointed)

    def __call__(
        self, x: jax.Array, *, return_features: bool = False, feature: Callable | None = None
    ):
        """`feature` overrides the stored feature key (an unauthorized variant's, or identity)."""
        input_lock = getattr(self, "input_lock", None)  # γ of `model.input_lock`
        if input_lock is not None:
            x = x - jnp.tile(input_lock[...], (x.shape[1] // input_lock.shape[0],
                                                x.shape[2] // input_lock.shape[1], 1))  # fmt: skip
        if self.key_inverse is not None:
            x = self.key_inverse(x)
        if self.adapter is not None:
            x = self.adapter(x)
        hook = feature or self.feature_key
        lock = getattr(self, "key_lock", None)
        if lock is not None:  # the lock is the model's: every caller gets a(h) − γ
            base = hook or (lambda h: h)
            hook = lambda h: base(h) - lock[...].astype(h.dtype)  # noqa: E731
        with feature_hook(self.generator, hook):
            return self.generator(x, return_features=return_features)


def uses_feature_key(config: Config) -> bool:
    return bool(getattr(config.model, "feature_key", False)) or uses_feature_lock(config)


def keyed(config: Config, generator: nnx.Module, rngs: nnx.Rngs) -> KeyedGenerator:
    m = config.model
    feature = cached_pairs(config)[0].feature if uses_feature_key(config) else None
    model = KeyedGenerator(
        generator,
        block=m.block,
        channels=config.data.channels,
        use_adapter=uses_learned_map(config),
        rngs=rngs,
        feature=feature,
    )
    model.key_inverse = key_inverse(config)  # from the key at build time; never stored
    if uses_feature_lock(config):
        model.key_lock = KeyLock(jnp.asarray(cached_pairs(config)[0].material.lock_value()))
    from egan_jax.families import egan_image_lock as lock

    if lock.uses_input_lock(config):
        plain = make_variants(
            "image", transform_config(config), load_key(config), training_spec(config)
        )
        beta = lock.offsets(load_key(config), m.block, config.data.channels)
        model.input_lock = KeyLock(jnp.asarray(lock.lock_value(plain, beta)))
    generator.deep_lock = owner_deep_lock(config)  # from the key at build time; never stored
    return model


def unauthorized_features(
    config: Config,
    generator: nnx.Module,
    x: jax.Array,
    authorized_output: jax.Array,
    authorized_features: Mapping[str, jax.Array],
    key: jax.Array,
    discriminator: nnx.Module | None = None,
) -> dict[str, tuple[jax.Array, jax.Array]]:
    """`{kind: (authorized, unauthorized)}` features of the first `fraction` of the raw batch `x`.

    Each of those examples goes through one unauthorized variant (chosen from `key`) and the
    generator, with batch norm as `loss.unauthorized.batch_norm` says. "discriminator" features
    are `discriminator`'s `loss.self_adversarial.discriminator_feature` map of both outputs.
    """
    u, sa = config.loss.unauthorized, config.loss.self_adversarial
    unauthorized = cached_variants(config).unauthorized
    if not unauthorized:
        raise ConfigError("loss.unauthorized enables no variant; enable no_key or some keys")
    count = max(1, int(round(x.shape[0] * u.fraction)))
    if uses_feature_key(config):
        x_u, hook = mix_pairs(cached_pairs(config)[1:], x[:count], key)
        pairs = [(slice(0, count), functools.partial(generator, feature=hook), x_u)]
    else:
        x_u, _ = mix(unauthorized, x[:count], key)
        pairs = [(slice(0, count), generator, x_u)]
    wrapper_deleted = None
    if input_map(config) != "none" and config.model.adapter_bypass:
        # a thief who deletes the wrapper: no input map, no feature key (identity hook) and, as
        # anyone who builds the model without the key, no deep lock
        bypass = max(1, count // (len(unauthorized) + 1))

        def wrapper_deleted(inputs, return_features):
            with without_deep_lock(generator.generator):
                return generator.generator(inputs, return_features=return_features)

        pairs.append((slice(0, bypass), wrapper_deleted, x[:bypass]))
        for lock in holder_locks(config):  # () without `model.holder_bypass`

            def holder_build(inputs, return_features, lock=lock):
                with deep_lock.attached(generator.generator, lock):
                    return generator.generator(inputs, return_features=return_features)

            pairs.append((slice(0, bypass), holder_build, x[:bypass]))
    needed = protection.required_features(objective_config(config))
    name = sa.generator_feature
    auth, unauth = {kind: [] for kind in needed}, {kind: [] for kind in needed}
    deleted = {}  # (authorized, wrapper-deleted) outputs, for `loss.wrapper_deleted`
    with batch_norm_mode(generator, u.batch_norm):
        for rows, network, inputs in pairs:
            output_u, features_u = network(inputs, return_features=True)
            if network is wrapper_deleted:
                deleted[WRAPPER_DELETED] = (authorized_output[rows], output_u)
            if "generator" in needed and name not in features_u:
                raise ConfigError(
                    f"loss.self_adversarial.generator_feature={name!r}; valid: {sorted(features_u)}"
                )
            for kind, a, b in (
                ("output", authorized_output, output_u),
                ("discriminator", authorized_output, output_u),  # images: D runs on them below
                ("generator", authorized_features.get(name), features_u.get(name)),
            ):
                if kind in needed:
                    auth[kind].append(a[rows])
                    unauth[kind].append(b)
    if "discriminator" in needed:
        first, second = (
            jnp.concatenate(auth["discriminator"]),
            jnp.concatenate(unauth["discriminator"]),
        )
        _, d_features = discriminator(jnp.concatenate([first, second]), return_features=True)
        name = sa.discriminator_feature
        if name not in d_features:
            raise ConfigError(
                f"loss.self_adversarial.discriminator_feature={name!r}; valid: {sorted(d_features)}"
            )
        d = d_features[name]
        auth["discriminator"], unauth["discriminator"] = [d[: len(first)]], [d[len(first) :]]
    out = {k: (jnp.concatenate(auth[k]), jnp.concatenate(unauth[k])) for k in needed}
    return out | deleted


def authorize(config: Config):
    """a_k as a jittable function of an NHWC float batch."""
    return cached_variants(config).authorized.apply
