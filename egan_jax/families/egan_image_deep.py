"""The deep lock of the protected image families (`model.deep_lock`; `egan_jax.deep_lock`).

The owner's SRResNet / CycleGAN ResNet generator gets, when the EGAN family builds it with the key,
a key permutation + sign flip of the channels at each listed site (`models.srgan` /
`models.cyclegan` `generator_site_channels`: inside each residual block's branch, after the
down-/up-sampling activations). Each is a re-labelling of the next conv's input weights, so the
owner's network trains as a plain one; the material comes from the key file and is never in the
checkpoint. Every build without the key — the thief's models in `attacks_i2i`, the "adapter
removed" row of `egan evaluate` — runs the stolen weights with the channels of every locked site in
the wrong order and sign. The same holds for the `key_inverse` input map (below): the exact
inverse of the owner's block transform, derived from the key at build time and never stored.
"""

from __future__ import annotations

import functools

from flax import nnx

from egan_jax import deep_lock
from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.families.egan_dcgan import load_key


def deep_sites(config: Config) -> dict[str, int]:
    """The config's deep-lock sites of the protected generator and their channel counts."""
    from egan_jax.models import cyclegan, srgan

    m = config.model
    if config.family.endswith("cyclegan"):
        channels = cyclegan.generator_site_channels(width=m.width, num_blocks=m.num_blocks)
    else:
        channels = srgan.generator_site_channels(
            width=m.width, num_blocks=m.num_blocks, scale=m.scale
        )
    sites = deep_lock.check_sites(
        getattr(m, "deep_lock", ()), tuple(channels), field="model.deep_lock"
    )
    return {site: channels[site] for site in sites}


def owner_deep_lock(config: Config, key=None):
    """The owner's deep lock (`NO_LOCK` without sites); `key` defaults to the run's key, and
    without it a model restored where the key file is not (a thief's) gets none."""
    sites = deep_sites(config)
    if key is not None:
        return deep_lock.make_lock(key, sites)
    return deep_lock.owner_lock(config.model.key_file, sites, lambda: load_key(config))


def without_deep_lock(model: nnx.Module):
    """A context: `model` (a `KeyedGenerator` or a bare generator) runs without its deep lock —
    what every build without the owner's key (a thief's) has."""
    inner = getattr(model, "generator", model)
    return deep_lock.attached(inner, deep_lock.NO_LOCK)


# --- the input map (`model.adapter`) ------------------------------------------------------------
# "learned": a per-block linear map in the weights (`attacks.BlockAdapter`; True in configs);
# "none": no input map (False); "key_inverse": the exact inverse a_k⁻¹ of the owner's block
# transform, derived from the key when the owner builds the model and never stored (as the deep
# lock): the owner's network sees a_k⁻¹(a_k(x)) = x exactly, every other input a scrambled image,
# and a build without the key (a thief's) has no input map at all; "key_inverse_learned": the exact
# inverse followed by a learned per-block map that starts at the identity (stored, as "learned").
INPUT_MAPS = ("learned", "none", "key_inverse", "key_inverse_learned")


def input_map(config: Config) -> str:
    """The config's input map, one of `INPUT_MAPS` (True / False are "learned" / "none")."""
    value = getattr(config.model, "adapter", True)
    if value is True or value is False:
        value = "learned" if value else "none"
    if value not in INPUT_MAPS:
        raise ConfigError(
            f"model.adapter={value!r}; valid: true (= 'learned'), false (= 'none') or one of "
            f"{list(INPUT_MAPS)}"
        )
    if value.startswith("key_inverse") and "ffx" in config.model.steps:
        raise ConfigError(
            "model.adapter='key_inverse' inverts the key transform exactly, which FFX cannot do "
            "for inputs it did not encode (no key, other keys); drop 'ffx' from model.steps or "
            "use model.adapter=true (the learned map)"
        )
    holder = getattr(config.model, "holder_bypass", False)
    if holder and not (value.startswith("key_inverse") and config.model.adapter_bypass):
        raise ConfigError(
            "model.holder_bypass needs model.adapter='key_inverse' and model.adapter_bypass=true "
            "(and deep-lock sites); set those or holder_bypass=false"
        )
    if holder and not deep_sites(config):
        raise ConfigError("model.holder_bypass needs deep-lock sites (model.deep_lock)")
    return value


def uses_key_inverse(config: Config) -> bool:
    return input_map(config).startswith("key_inverse")


def uses_learned_map(config: Config) -> bool:
    return input_map(config) in ("learned", "key_inverse_learned")


def key_inverse(config: Config, key=None):
    """a_k⁻¹ of `key`'s block transform (a jittable function of an NHWC float batch), or None
    where the config has no `key_inverse` input map. `key` defaults to the run's key, and a model
    restored where the key file is not (a thief's) gets none — the rule of `deep_lock.owner_lock`."""
    if not uses_key_inverse(config):
        return None
    if key is None:
        key = deep_lock.owner_key(config.model.key_file, lambda: load_key(config))
        if key is None:
            return None
    from egan_jax.families.egan_image import transform_config
    from egan_jax.transforms.compose import Pipeline

    return Pipeline.from_config(transform_config(config), key).inverse


@functools.lru_cache(maxsize=8)
def holder_locks(config: Config) -> tuple:
    """`model.holder_bypass`: the deep locks of training's random and near-miss keys — with the
    `key_inverse` input map, each such key's holder builds his own inverse (his input reaches the
    network as x) and his own lock, so training pushes those builds away too. () when off."""
    if not getattr(config.model, "holder_bypass", False):
        return ()
    from egan_jax.families.egan_image import cached_variants

    others = cached_variants(config).unauthorized
    return tuple(
        deep_lock.make_lock(v.key, deep_sites(config))
        for v in others
        if v.kind in ("random_key", "near_key")
    )
