"""Attacks on an EGAN-protected generator, each a pure function or a config the engine runs.

* `prune_tree` / `prune_model`: global magnitude pruning — the `fraction` of smallest-magnitude
  weights (kernels: leaves of rank ≥ 2) across the whole generator set to zero, exactly
  `round(fraction · count)` of them (ties broken by position).
* `finetune_config`: the thief's fine-tuning as a config for the generic loop — the family
  `egan_attack_dcgan` (this module's `FAMILY`): the plain DCGAN losses on *unkeyed* latents,
  starting from the stolen checkpoint (generator, and the discriminator when
  `keep_discriminator`), learning rate × 0.1, half the iterations, `data_fraction` (10%) of the
  training images. `from_scratch=True` gives the comparison attacker: same data and budget, random
  initialisation, the original learning rate. `overwrite_watermark=True` adds IPR-GAN's
  black-box loss with the thief's own trigger and logo (the watermark-overwrite attack).
* `key_search`: the best of N candidate keys under a score (lower is better).
* key estimation (`LatentAdapter`, `BlockAdapter`, `SiteAdapter`, `estimate_key`): in
  `egan_jax.key_estimation`, re-exported here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax import watermark
from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.families import Family, Models, adam_optimizers
from egan_jax.families import dcgan as plain
from egan_jax.key_estimation import (  # noqa: F401 (re-exported: public names stay here)
    ESTIMATION_OBJECTIVES,
    BlockAdapter,
    LatentAdapter,
    SiteAdapter,
    estimate_key,
    through_latent,
    through_sites,
)


# --- pruning ----------------------------------------------------------------------------------
def _prunable(leaf: Any) -> bool:
    return hasattr(leaf, "ndim") and leaf.ndim >= 2


def prune_tree(tree: Any, fraction: float, *, eligible: Callable[[Any], bool] = _prunable) -> Any:
    """`tree` with the `fraction` smallest-|w| eligible values (globally) set to zero.

    Exactly `round(fraction · n)` values are zeroed, n the number of eligible values; other leaves
    are returned unchanged. A pure function of the tree (numpy on the host).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"pruning fraction must be in [0, 1], got {fraction!r}")
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    chosen = [i for i, leaf in enumerate(leaves) if eligible(leaf)]
    if not chosen:
        raise ConfigError("nothing to prune: the tree has no eligible (rank >= 2) leaves")
    flat = np.concatenate([np.abs(np.asarray(leaves[i], np.float64)).ravel() for i in chosen])
    count = int(round(fraction * flat.size))
    mask = np.ones(flat.size, bool)
    mask[np.argsort(flat, kind="stable")[:count]] = False
    out = list(leaves)
    start = 0
    for i in chosen:
        leaf = np.asarray(leaves[i])
        keep = mask[start : start + leaf.size].reshape(leaf.shape)
        out[i] = jnp.asarray(np.where(keep, leaf, 0).astype(leaf.dtype))
        start += leaf.size
    return jax.tree_util.tree_unflatten(treedef, out)


def prune_model(model: nnx.Module, fraction: float) -> nnx.Module:
    """Prune `model`'s parameters in place (global magnitude) and return it."""
    params = nnx.state(model, nnx.Param)
    nnx.update(model, prune_tree(params, fraction))
    return model


def sparsity(tree: Any, *, eligible: Callable[[Any], bool] = _prunable) -> float:
    """The fraction of eligible values that are exactly zero."""
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(tree) if eligible(x)]
    return float(sum(int(np.sum(x == 0)) for x in leaves) / sum(x.size for x in leaves))


# --- key search -------------------------------------------------------------------------------
def key_search(candidates: Sequence[Any], score: Callable[[Any], float]) -> tuple[Any, list[float]]:
    """The candidate with the lowest score, and every score (in candidate order)."""
    if not candidates:
        raise ConfigError("key_search needs at least one candidate")
    scores = [float(score(c)) for c in candidates]
    return candidates[int(np.argmin(scores))], scores


# --- fine-tuning (and watermark overwrite) as an engine family --------------------------------
THIEF_SIGNATURE = "THIEF"


@dataclasses.dataclass(frozen=True)
class AttackModelConfig:
    latent_dim: int = 128
    width: int = 64
    upsample: str = "vjp"
    source_workdir: str | None = None  # the stolen run; None: train from scratch
    keep_discriminator: bool = True
    data_fraction: float = 0.1


@dataclasses.dataclass(frozen=True)
class AttackLossConfig:
    kind: str = "hinge"
    discriminator_steps: int = 1
    adversarial_weight: float = 1.0
    overwrite_weight: float = 0.0  # > 0: also embed the thief's own watermark
    overwrite_trigger: str = "orthant"
    overwrite_signature: str = THIEF_SIGNATURE  # "": no white-box overwrite


def finetune_config(
    source: Config,
    source_workdir: str | Path,
    *,
    data_fraction: float = 0.1,
    keep_discriminator: bool = True,
    from_scratch: bool = False,
    overwrite_watermark: bool = False,
    lr_scale: float = 0.1,
) -> Config:
    """The thief's run: unkeyed latents, lr × `lr_scale` (the issue's 0.1), half the steps, a
    `data_fraction` of the data.

    `from_scratch=True` is the comparison attacker: the same data and step budget, random init, the
    original learning rate (a fair from-scratch run; fine-tuning's small lr is for keeping a model).
    """
    m, loss = source.model, source.loss
    model = AttackModelConfig(
        latent_dim=m.latent_dim,
        width=m.width,
        upsample=m.upsample,
        source_workdir=None if from_scratch else str(Path(source_workdir).absolute()),
        keep_discriminator=keep_discriminator,
        data_fraction=data_fraction,
    )
    attack_loss = AttackLossConfig(
        kind=loss.kind,
        discriminator_steps=loss.discriminator_steps,
        adversarial_weight=loss.adversarial_weight,
        overwrite_weight=1.0 if overwrite_watermark else 0.0,
    )
    optim = (
        source.optim
        if from_scratch
        else dataclasses.replace(source.optim, learning_rate=source.optim.learning_rate * lr_scale)
    )
    return dataclasses.replace(
        source,
        family="egan_attack_dcgan",
        model=model,
        loss=attack_loss,
        optim=optim,
        train=dataclasses.replace(source.train, steps=max(1, source.train.steps // 2)),
    )


def default_config() -> Config:
    return dataclasses.replace(
        plain.default_config(),
        family="egan_attack_dcgan",
        model=AttackModelConfig(),
        loss=AttackLossConfig(),
    )


@functools.lru_cache(maxsize=4)
def _stolen_state(workdir: str) -> dict[str, Any]:
    """The stolen run's model states (numpy), loaded once per process; no key is asked for."""
    from egan_jax.train import load_trained

    _, models, _ = load_trained(workdir)
    return {name: jax.tree_util.tree_map(np.asarray, nnx.state(m)) for name, m in models.items()}


def build_models(config: Config, rngs: nnx.Rngs) -> Models:
    if not 0 < config.model.data_fraction <= 1:
        raise ConfigError(
            f"model.data_fraction must be in (0, 1], got {config.model.data_fraction}"
        )
    models = plain.build_models(config, rngs)
    source = config.model.source_workdir
    if source is not None:
        stolen = _stolen_state(source)
        roles = ["generator"] + (["discriminator"] if config.model.keep_discriminator else [])
        for role in roles:
            nnx.update(models[role], jax.tree_util.tree_map(jnp.asarray, stolen[role]))
    return models


def subset_indices(count: int, fraction: float, seed: int) -> np.ndarray:
    """The attacker's share of the data: the first ⌈fraction·count⌉ of a seeded permutation."""
    order = np.random.default_rng(np.random.SeedSequence([seed, 0xA77])).permutation(count)
    return np.sort(order[: max(1, int(np.ceil(fraction * count)))])


def make_batches(config: Config):
    images = plain.load_training_images(config)
    subset = subset_indices(len(images), config.model.data_fraction, config.seed)
    return plain.image_batches(config, images[subset])


def thief_logo(config: Config) -> np.ndarray:
    """The thief's logo for the overwrite attack: the owner's logo inverted."""
    size = watermark.default_logo_size(config.data.image_size)
    return -watermark.make_logo(size, config.data.channels)


def make_train_step(config: Config):
    base = plain.make_train_step(config)
    weight = config.loss.overwrite_weight
    if weight <= 0:
        return base
    trigger = watermark.get_trigger(config.loss.overwrite_trigger)
    logo = jnp.asarray(thief_logo(config))
    latent_dim = config.model.latent_dim
    text = config.loss.overwrite_signature
    signature = watermark.signature_bits(text) if text else None

    def train_step(models, optimizers, batch: Mapping[str, jax.Array], key: jax.Array):
        metrics = base(models, optimizers, batch, key)
        generator = models["generator"]
        z = jax.random.normal(jax.random.fold_in(key, 7), (batch["images"].shape[0], latent_dim))

        def overwrite_loss(generator):
            target = watermark.paste_logo(jax.lax.stop_gradient(generator(z)), logo)
            loss = jnp.mean(watermark.trigger_loss(generator(trigger(z)), target))
            if signature is not None:
                loss = loss + watermark.signature_loss(generator, signature)
            return weight * loss

        loss, grads = nnx.value_and_grad(overwrite_loss)(generator)
        optimizers["generator"].update(generator, grads)
        return {**metrics, "overwrite_loss": loss}

    return train_step


def build_optimizers(config: Config, models: Models):
    return adam_optimizers(config, models)


FAMILY = Family(
    name="egan_attack_dcgan",
    default_config=default_config,
    build_models=build_models,
    build_optimizers=build_optimizers,
    make_batches=make_batches,
    make_train_step=make_train_step,
    make_sample=plain.make_sample,
)
