"""Attacks on an EGAN-protected SRGAN / CycleGAN (`egan_srgan`, `egan_cyclegan`): the mechanics.

The pieces are `egan_jax.attacks`' (global magnitude pruning `prune_model`, `key_search`, the
per-block linear input map `BlockAdapter`, the thief's data share `subset_indices`, the stolen
checkpoint `_stolen_state`); this module adds what the image families need:

* the thief's fine-tuning as two engine families, `egan_attack_srgan` and `egan_attack_cyclegan`
  (`finetune_config`): the plain family's models and losses (`families.srgan` / `families.cyclegan`)
  on *raw* (unkeyed) inputs and a `data_fraction` (10%) share of the training images, starting
  from the stolen checkpoint — the keyed generator with its input map, the other generator
  (CycleGAN's unprotected G_ba) and, with `keep_discriminator`, the discriminators — at the
  learning rate × 0.1 for half the steps. SRGAN's thief skips the pixel-MSE pre-training (the
  stolen model is past it). `from_scratch=True` is the comparison attacker: the plain generator,
  random init, the original learning rate, the same data and steps (pre-training scaled by half).
* `estimate_adapter`: key estimation — a `BlockAdapter` in front of the frozen stolen generator,
  trained on the thief's raw images with the family's task loss (`sr_task_loss`: pixel MSE to HR;
  `cycle_task_loss`: the stolen D_B's least-squares score + the cycle L1 through the stolen G_ba).

`egan_jax.attack_runs_i2i` runs these on a workdir, scores them and stores the report rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from egan_jax import losses
from egan_jax.attacks import _stolen_state, subset_indices
from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.families import Family, Models, adam_optimizers, egan_cyclegan, egan_srgan
from egan_jax.families import cyclegan as plain_cyclegan
from egan_jax.families import srgan as plain_srgan
from egan_jax.families.egan_dcgan import KeyLock
from egan_jax.families.egan_image import KeyedGenerator, uses_feature_lock, uses_learned_map
from egan_jax.families.egan_image_lock import uses_input_lock


@dataclasses.dataclass(frozen=True)
class ThiefConfig:
    """The attack fields added to the protected family's model section."""

    source_workdir: str | None = None  # the stolen run; None: train the plain model from scratch
    keep_discriminator: bool = True
    data_fraction: float = 0.1


@dataclasses.dataclass(frozen=True)
class SRModelConfig(ThiefConfig, egan_srgan.ModelConfig):
    pass


@dataclasses.dataclass(frozen=True)
class CycleModelConfig(ThiefConfig, egan_cyclegan.ModelConfig):
    pass


@dataclasses.dataclass(frozen=True)
class Task:
    """What differs between the two image families."""

    protected: str  # the protected family's name
    attack: str  # the attack family's name
    plain: Any  # the plain family module
    model_config: type
    keyed_role: str  # the protected generator
    generators: tuple[str, ...]
    discriminators: tuple[str, ...]


TASKS = {
    "egan_srgan": Task("egan_srgan", "egan_attack_srgan", plain_srgan, SRModelConfig,
                       "generator", ("generator",), ("discriminator",)),
    "egan_cyclegan": Task("egan_cyclegan", "egan_attack_cyclegan", plain_cyclegan,
                          CycleModelConfig, "generator_ab", plain_cyclegan.GENERATORS,
                          plain_cyclegan.DISCRIMINATORS),
}  # fmt: skip
BY_ATTACK = {task.attack: task for task in TASKS.values()}


def task_of(config: Config) -> Task:
    """The `Task` of a protected or attack config; a clear error for any other family."""
    task = TASKS.get(config.family) or BY_ATTACK.get(config.family)
    if task is None:
        raise ConfigError(
            f"family {config.family!r} is not an EGAN image family; these attacks need an "
            f"egan_srgan or egan_cyclegan workdir ({list(TASKS)})"
        )
    return task


def _subset(cls, section, **extra):
    return cls(**{f.name: getattr(section, f.name) for f in dataclasses.fields(cls)
                  if hasattr(section, f.name)}, **extra)  # fmt: skip


# --- fine-tuning as an engine family ------------------------------------------------------------
def finetune_config(
    source: Config,
    source_workdir: str | Path,
    *,
    keep_discriminator: bool = True,
    from_scratch: bool = False,
    data_fraction: float = 0.1,
) -> Config:
    """The thief's run on raw inputs: lr × 0.1, half the steps, `data_fraction` of the images.

    `from_scratch=True`: the same data and step budget, random init, the original learning rate.
    """
    task = task_of(source)
    fields = {"source_workdir": None if from_scratch else str(Path(source_workdir).absolute()),
              "keep_discriminator": keep_discriminator, "data_fraction": data_fraction}  # fmt: skip
    model = _subset(task.model_config, source.model, **fields)
    loss = _subset(task.plain.LossConfig, source.loss)
    if hasattr(loss, "pretrain_steps"):  # the stolen SRGAN is past pre-training; scratch is not
        pretrain = loss.pretrain_steps // 2 if from_scratch else 0
        loss = dataclasses.replace(loss, pretrain_steps=pretrain)
    optim = source.optim
    if not from_scratch:
        optim = dataclasses.replace(optim, learning_rate=optim.learning_rate * 0.1)
    steps = max(1, source.train.steps // 2)
    return dataclasses.replace(
        source,
        family=task.attack,
        model=model,
        loss=loss,
        optim=optim,
        train=dataclasses.replace(source.train, steps=steps),
        log=dataclasses.replace(source.log, quiet=True, sample_every=0, tensorboard=False),
        checkpoint=dataclasses.replace(source.checkpoint, every=steps),
        eval=dataclasses.replace(source.eval, every=0),
    )


def build_models(config: Config, rngs: nnx.Rngs) -> Models:
    task = task_of(config)
    if not 0 < config.model.data_fraction <= 1:
        raise ConfigError(
            f"model.data_fraction must be in (0, 1], got {config.model.data_fraction}"
        )
    models = task.plain.build_models(config, rngs)
    source = config.model.source_workdir
    if source is None:
        return models
    m = config.model
    models[task.keyed_role] = KeyedGenerator(
        models[task.keyed_role],
        block=m.block,
        channels=config.data.channels,
        use_adapter=uses_learned_map(config),
        rngs=rngs,
    )  # fmt: skip  (no feature key, no key inverse: the thief runs the stolen weights on raw inputs)
    if uses_feature_lock(config):  # γ is public: it comes with the stolen state below
        models[task.keyed_role].key_lock = KeyLock(jnp.zeros(m.width, jnp.float32))
    if uses_input_lock(config):
        shape = (m.block, m.block, config.data.channels)
        models[task.keyed_role].input_lock = KeyLock(jnp.zeros(shape, jnp.float32))
    stolen = _stolen_state(source)
    roles = task.generators + (task.discriminators if m.keep_discriminator else ())
    for role in roles:
        nnx.update(models[role], jax.tree_util.tree_map(jnp.asarray, stolen[role]))
    return models


def build_optimizers(config: Config, models: Models):
    task = task_of(config)
    return adam_optimizers(config, models, task.generators + task.discriminators)


def make_batches(config: Config):
    """The plain family's batches, drawn from the thief's `data_fraction` share of the images."""
    from egan_jax import data_paired

    task, fraction, seed = task_of(config), config.model.data_fraction, config.seed
    if task.protected == "egan_srgan":
        photos = data_paired.load_sr_photos(
            config.data.name, split=config.data.split, scale=config.model.scale,
            data_dir=config.data.data_dir,
        )  # fmt: skip
        keep = subset_indices(len(photos.hr), fraction, seed)
        share = data_paired.SRPhotos(
            hr=[photos.hr[i] for i in keep], lr=[photos.lr[i] for i in keep], scale=photos.scale
        )

        def batches(step: int, process_index: int, process_count: int):
            lr, hr = data_paired.sr_batch_at(
                share, step, batch_size=config.train.batch_size, seed=seed,
                hr_size=config.data.image_size, process_index=process_index,
                process_count=process_count,
            )  # fmt: skip
            batch = {"lr": lr, "hr": hr}
            if step >= config.loss.pretrain_steps:
                batch["adversarial"] = np.ones(len(lr), np.float32)
            return batch

        return batches
    domain_a, domain_b = data_paired.load_unpaired(
        config.data.name, split=config.data.split, image_size=config.data.image_size,
        channels=config.data.channels, data_dir=config.data.data_dir,
    )  # fmt: skip
    domain_a = domain_a[subset_indices(len(domain_a), fraction, seed)]
    domain_b = domain_b[subset_indices(len(domain_b), fraction, seed + 1)]

    def batches(step: int, process_index: int, process_count: int):
        a, b = data_paired.unpaired_batch_at(
            domain_a, domain_b, step, batch_size=config.train.batch_size, seed=seed,
            process_index=process_index, process_count=process_count,
        )  # fmt: skip
        return {"a": a, "b": b}

    return batches


def make_train_step(config: Config):
    return task_of(config).plain.make_train_step(config)


def make_sample(config: Config):
    return task_of(config).plain.make_sample(config)


def _default(name: str) -> Callable[[], Config]:
    def default_config() -> Config:
        task = TASKS[name]
        source = (egan_srgan if name == "egan_srgan" else egan_cyclegan).default_config()
        return dataclasses.replace(
            source,
            family=task.attack,
            model=_subset(task.model_config, source.model),
            loss=_subset(task.plain.LossConfig, source.loss),
        )

    return default_config


def _family(name: str) -> Family:
    return Family(
        name=TASKS[name].attack,
        default_config=_default(name),
        build_models=build_models,
        build_optimizers=build_optimizers,
        make_batches=make_batches,
        make_train_step=make_train_step,
        make_sample=make_sample,
    )


SRGAN_FAMILY = _family("egan_srgan")
CYCLEGAN_FAMILY = _family("egan_cyclegan")


# --- key estimation -----------------------------------------------------------------------------
def sr_task_loss(config: Config) -> Callable:
    """SRGAN's thief objective: pixel MSE between G(adapter(lr)) and HR."""
    del config

    def loss(adapter, frozen, batch):
        return jnp.mean(losses.l2(frozen["generator"](adapter(batch["lr"])), batch["hr"]))

    return loss


def cycle_task_loss(config: Config) -> Callable:
    """CycleGAN's thief objective: the stolen D_B's least-squares generator score of
    G_ab(adapter(a)) + cycle_weight × L1(G_ba(G_ab(adapter(a))), a)."""
    cycle_weight = config.loss.cycle_weight

    def loss(adapter, frozen, batch):
        fake_b = frozen["generator_ab"](adapter(batch["a"]))
        score = plain_cyclegan._patch_losses(
            losses.least_squares_generator, frozen["discriminator_b"](fake_b)
        )
        cycle = losses.l1(frozen["generator_ba"](fake_b), batch["a"])
        return jnp.mean(score + cycle_weight * cycle)

    return loss


TASK_LOSSES = {"egan_srgan": sr_task_loss, "egan_cyclegan": cycle_task_loss}


def estimate_adapter(
    adapter: nnx.Module,
    frozen: Models,
    loss_fn: Callable,
    batches: Iterator[dict[str, np.ndarray]],
    *,
    steps: int,
    learning_rate: float,
) -> list[float]:
    """Train `adapter` (in place) with Adam on `loss_fn(adapter, frozen, batch)`, the `frozen`
    stolen models in eval mode and never updated; returns the loss per step."""
    if steps < 1:
        raise ConfigError(f"estimation steps must be >= 1, got {steps}")
    for model in frozen.values():
        model.eval()
    optimizer = nnx.Optimizer(adapter, optax.adam(learning_rate), wrt=nnx.Param)

    @nnx.jit
    def step(adapter, optimizer, frozen, batch):
        # frozen goes through grad (not differentiated) so a locked generator may set its hook
        loss, grads = nnx.value_and_grad(lambda a, f: loss_fn(a, f, batch))(adapter, frozen)
        optimizer.update(adapter, grads)
        return loss

    history = []
    for _, batch in zip(range(steps), batches, strict=False):
        arrays = {k: jnp.asarray(v) for k, v in batch.items() if k in ("lr", "hr", "a", "b")}
        history.append(float(step(adapter, optimizer, frozen, arrays)))
    return history
