"""The input kinds of `egan evaluate` for the protected image families (`evaluate_i2i`): for each,
the image transform, feature transform, deep lock and input map its holder builds."""

from __future__ import annotations

import numpy as np
from flax import nnx

from egan_jax.config import Config
from egan_jax.deep_lock import NO_LOCK, make_lock
from egan_jax.keys import SecretKey
from egan_jax.unauthorized import UnauthorizedSpec

OWN = "own"  # `evaluate_i2i.forward_fn(key_inverse=OWN)`: the generator's own input map


def _inputs(config: Config, key: SecretKey, spec: UnauthorizedSpec):
    from egan_jax.families.egan_image import variants

    vs = variants(config, key, spec)
    return (vs.authorized, *vs.unauthorized)


def _sr_inputs(config: Config, key: SecretKey, spec: UnauthorizedSpec):
    """(name, kind, image transform, feature transform or None, deep lock, key-inverse input map
    or `OWN`) of every input kind (SRGAN and CycleGAN: with `model.feature_key` each key also acts
    on the generator's head features). The deep lock (`model.deep_lock`) is the one each input's
    holder builds: the owner's for the correct key and his near-miss materials, a random or
    near-miss key's own, none without a key.

    With the `key_inverse` input map (`egan_image_deep`) the inverse is the holder's too: a random
    or near-miss key's holder builds a_r⁻¹, so his input arrives as x and only the deep lock is
    wrong; "no key" is raw input to the owner's model (inverse and lock: a scrambled image), since
    the keyless build (neither) is the report's wrapper-deleted row."""
    from egan_jax.families.egan_image import (
        deep_sites,
        paired_variants,
        uses_feature_key,
        uses_key_inverse,
    )

    sites = deep_sites(config)
    inputs = _inputs(config, key, spec)
    keys = {v.name: v.key for v in inputs}
    inverse = uses_key_inverse(config)
    inverses = {v.name: v.material.inverse for v in inputs if v.key is not None}
    owner = make_lock(key, sites)  # one object, so callers may share a compiled forward
    owners = (
        ("authorized", "near_material", "no_key") if inverse else ("authorized", "near_material")
    )

    def lock_of(name: str, kind: str):
        if kind in owners or not sites:
            return owner
        return make_lock(keys.get(name), sites)  # None (no key): NO_LOCK

    def inverse_of(name: str, kind: str):
        if not inverse or kind in owners:
            return OWN
        return inverses[name]

    if uses_feature_key(config):
        return [(p.name, p.kind, p.image, p.feature, lock_of(p.name, p.kind),
                 inverse_of(p.name.removesuffix(" (image)"), p.kind))
                for p in paired_variants(config, key, spec)]  # fmt: skip
    return [(v.name, v.kind, v.apply, None, lock_of(v.name, v.kind), inverse_of(v.name, v.kind))
            for v in inputs]  # fmt: skip


def has_input_map(generator: nnx.Module) -> bool:
    """Whether a keyed generator has an input map a white-box thief could delete."""
    return (
        getattr(generator, "adapter", None) is not None
        or getattr(generator, "key_inverse", None) is not None
    )


def no_key_lock(config: Config):
    """The deep lock of the "no key" input: none (the thief's build) — but with the
    `key_inverse` input map, raw input to the owner's model (its own lock; see `_sr_inputs`)."""
    from egan_jax.families.egan_image import uses_key_inverse

    return None if uses_key_inverse(config) else NO_LOCK


def colour_corrected(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """A thief's global colour correction of the wrapper-deleted outputs: the set's per-channel
    mean moved to `reference`'s (the target domain's training images), clipped to [-1, 1].

    One shift per channel for the whole set, so it changes brightness and colour cast, never an
    image's structure; the CycleGAN report's "adapter removed, colour-corrected" row."""
    shift = np.mean(reference, axis=(0, 1, 2)) - np.mean(images, axis=(0, 1, 2))
    return np.clip(images + shift, -1.0, 1.0).astype(images.dtype)


def target_training_images(config: Config) -> np.ndarray:
    """The B (target) domain's training images in [-1, 1]: what a thief has to correct toward."""
    from egan_jax.data import to_float
    from egan_jax.data_paired import load_unpaired

    return to_float(
        load_unpaired(
            config.data.name, split="train", image_size=config.data.image_size,
            channels=config.data.channels, data_dir=config.data.data_dir,
        )[1]
    )  # fmt: skip
