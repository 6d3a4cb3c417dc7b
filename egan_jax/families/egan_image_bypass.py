"""The wrapper-deleted term of the protected image families (`loss.wrapper_deleted`, issue 6).

A white-box thief who deletes the wrapper runs the stolen generator on raw input with no input map,
no locks and no deep lock. `model.adapter_bypass` trains that build as one more unauthorized input
of the self-adversarial term. The CycleGAN default measures that term on the B discriminator's last
feature map, which is instance-normalised: each channel's spatial mean and scale are divided out,
so the term cannot see a whole image's colour or brightness.

Session 7 measured, on seeds 0 / 1 / 2:
* the wrapper-deleted Fréchet distance (digits features, which read the grey image at 16 px) was
  114.64 / 79.73 / 22.64;
* it fell to 20.53 / 19.06 / 24.22 once each output's per-channel mean was set to the keyed
  output's, so it was almost all brightness;
* whether the thief got a useless model therefore depended on the seed.

This term pushes a statistic s of the wrapper-deleted output away from that of the authorized
output of the same image, bounded like the self-adversarial term:

    λ_wd · mean[−min(mean |s(G_owner(a_k x)) − s(G_deleted(x))|, m_wd)]

`statistics` chooses s:
* "mean": each channel's spatial mean. It can be met by a chroma-only shift, which a grey metric
  does not see (measured: seed 2, margin 0.2).
* "mean_std": also each channel's spatial standard deviation.
* "grey_mean": the mean over channels as well, i.e. the grey level (the CycleGAN experiment's
  default).

Session 8: read with a grey metric at 16 px, that margin was mostly a brightness shift. A thief who
moved the deleted outputs' mean colour to the target domain's training mean got 41.66 / 22.26 /
34.16 (3.1× / 1.4× / 2.2× the keyed FD): the deleted output's coarse grey structure was as
gravel-like as the keyed one's (its grey contrast after 2×2 pooling 0.19 / 0.15 / 0.14 against the
keyed 0.18 / 0.17 / 0.17). `structure="grey_contrast"` adds a second bounded term on a statistic no
global colour shift changes — the spatial standard deviation of the grey image after
`structure_pool`×`structure_pool` average pooling (the image's coarse grey contrast):

    λ_wd · mean[−min(|c(G_owner(a_k x)) − c(G_deleted(x))|, m_structure)]

`"grey_contrast_raise"` is one-sided, −min(c(G_deleted(x)) − c(G_owner(a_k x)), m_structure): a
flatter deleted output earns nothing. Measured (CycleGAN, margin 0.15, seeds 0 / 1 / 2): either
way, seeds 0 and 2 went flat and a thief's mean shift left 5.9× / 39.8× / 6.3×; raised, every seed
went to large grey blobs, 33× / 38× / 40× (the CycleGAN experiment's default).

Weight 0 (the family default) adds nothing; `structure="none"` (the default) adds no second term.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp

from egan_jax import protection
from egan_jax.config import Config
from egan_jax.errors import ConfigError

# the key of `unauthorized_features`' result holding (authorized, wrapper-deleted) outputs
WRAPPER_DELETED = "wrapper_deleted"


@dataclasses.dataclass(frozen=True)
class WrapperDeletedConfig:
    """`loss.wrapper_deleted`: the bounded colour (and structure) terms on the wrapper-deleted pair."""

    weight: float = 0.0  # λ_wd; 0: off
    margin: float = 0.3  # m_wd, in image units ([-1, 1]): the mean colour shift it asks for
    # "mean": each channel's spatial mean; "mean_std": also its spatial standard deviation
    # (contrast), the two compared as one vector; "grey_mean": the mean over channels and
    # positions (the image's grey level: a shift that cannot hide in the chroma)
    statistics: str = "mean"
    # a second bounded term (same weight) on a statistic that no global colour shift changes:
    # "none" (off), "grey_contrast" (the grey image's spatial std after average pooling, either
    # way) or "grey_contrast_raise" (that std pushed up only: −min(c_deleted − c_owner, margin))
    structure: str = "none"
    structure_margin: float = 0.15  # its bound, in image units
    structure_pool: int = 2  # the pooling window (2: the contrast a 16-px view of 32 px sees)


STATISTICS = ("mean", "mean_std", "grey_mean")
STRUCTURES = ("none", "grey_contrast", "grey_contrast_raise")


def wrapper_deleted_config(config: Config) -> WrapperDeletedConfig:
    return getattr(config.loss, "wrapper_deleted", None) or WrapperDeletedConfig()


def check_wrapper_deleted(config: Config, has_bypass: bool) -> None:
    """A clear error for a negative weight, a non-positive margin, an unknown statistic, a pooling
    window that does not divide the image, or a term with no bypass pass."""
    c = wrapper_deleted_config(config)
    if not c.weight >= 0:
        raise ConfigError(f"loss.wrapper_deleted.weight must be ≥ 0 (0: off), got {c.weight}")
    if not c.margin > 0:
        raise ConfigError(f"loss.wrapper_deleted.margin must be positive, got {c.margin}")
    if c.statistics not in STATISTICS:
        raise ConfigError(
            f"loss.wrapper_deleted.statistics={c.statistics!r}; valid: {list(STATISTICS)}"
        )
    if c.structure not in STRUCTURES:
        raise ConfigError(
            f"loss.wrapper_deleted.structure={c.structure!r}; valid: {list(STRUCTURES)}"
        )
    if not c.structure_margin > 0:
        raise ConfigError(
            f"loss.wrapper_deleted.structure_margin must be positive, got {c.structure_margin}"
        )
    size = config.data.image_size
    if not (isinstance(c.structure_pool, int) and c.structure_pool >= 1) or size % c.structure_pool:
        raise ConfigError(
            f"loss.wrapper_deleted.structure_pool={c.structure_pool!r} must be a positive integer "
            f"that divides data.image_size={size} (e.g. 2)"
        )
    if c.weight > 0 and not has_bypass:
        raise ConfigError(
            "loss.wrapper_deleted needs the wrapper-deleted pass: set model.adapter_bypass=true "
            "with an input map (model.adapter), or loss.wrapper_deleted.weight=0"
        )


def colour_statistics(images: jax.Array, statistics: str = "mean") -> jax.Array:
    """[N, H, W, C] -> [N, C] (each channel's spatial mean), "mean_std": [N, 2C] (and its
    spatial standard deviation), "grey_mean": [N, 1] (the mean over channels too)."""
    mean = jnp.mean(images, axis=(1, 2))
    if statistics == "mean":
        return mean
    if statistics == "grey_mean":
        return jnp.mean(mean, axis=-1, keepdims=True)
    return jnp.concatenate([mean, jnp.std(images, axis=(1, 2))], axis=-1)


def coarse_grey_contrast(images: jax.Array, pool: int = 2) -> jax.Array:
    """[N, H, W, C] -> [N, 1]: the spatial standard deviation of the grey image (the channels'
    mean) after `pool`×`pool` average pooling. Adding a constant to any channel leaves it alone.
    (sqrt(var + 1e-8): a flat image has a finite gradient, so the bounded term never gives NaN.)"""
    n, h, w, _ = images.shape
    grey = jnp.mean(images, axis=-1).reshape(n, h // pool, pool, w // pool, pool)
    return jnp.sqrt(jnp.var(jnp.mean(grey, axis=(2, 4)), axis=(1, 2)) + 1e-8)[:, None]


def wrapper_deleted_loss(
    authorized: jax.Array,
    deleted: jax.Array,
    *,
    margin: float = 0.3,
    statistics: str = "mean",
    structure: str = "none",
    structure_margin: float = 0.15,
    structure_pool: int = 2,
) -> jax.Array:
    """Per example −min(mean |s(authorized) − s(deleted)|, margin), s = `colour_statistics`.

    Args:
      authorized: [N, H, W, C] outputs of the owner's build.
      deleted: [N, H, W, C] outputs of the wrapper-deleted build for the same inputs.
      margin: the bound, in image units.
      statistics: "mean", "mean_std" or "grey_mean" (`colour_statistics`).
      structure: "grey_contrast" adds −min(|c(authorized) − c(deleted)|, structure_margin),
        c = `coarse_grey_contrast` with `structure_pool`; "grey_contrast_raise" adds
        −min(c(deleted) − c(authorized), structure_margin) (positive while the deleted output
        is flatter); "none" adds nothing.

    Returns:
      [N], ≥ −margin − structure_margin (in [−margin, 0] without `structure`).
    """
    loss = protection.self_adversarial(
        colour_statistics(authorized, statistics),
        colour_statistics(deleted, statistics),
        divergence="l1",
        margin=margin,
    )
    if structure == "grey_contrast":
        loss = loss + protection.self_adversarial(
            coarse_grey_contrast(authorized, structure_pool),
            coarse_grey_contrast(deleted, structure_pool),
            divergence="l1",
            margin=structure_margin,
        )
    elif structure == "grey_contrast_raise":  # one-sided: a flatter output earns nothing
        rise = coarse_grey_contrast(deleted, structure_pool) - coarse_grey_contrast(
            authorized, structure_pool
        )
        loss = loss - jnp.minimum(rise[:, 0], structure_margin)
    return loss


def wrapper_deleted_term(config: Config, features: Mapping[str, tuple]) -> jax.Array | None:
    """The term's mean over the wrapper-deleted rows (unweighted), or None when it is off."""
    c = wrapper_deleted_config(config)
    if c.weight == 0:
        return None
    authorized, deleted = features[WRAPPER_DELETED]
    return jnp.mean(
        wrapper_deleted_loss(
            authorized,
            deleted,
            margin=c.margin,
            statistics=c.statistics,
            structure=c.structure,
            structure_margin=c.structure_margin,
            structure_pool=c.structure_pool,
        )  # fmt: skip
    )
