"""The family registry: one dict lookup from a config's `family` string to a `Family`.

A family is what one kind of model needs from the generic loop in `egan_jax.train`: how to build
its models and optimizers from a config, where its batches come from, a train step composed from
`egan_jax.losses`, a sample function and an optional evaluate function. Adding a family is a module
with a `FAMILY` object and one line in `FAMILIES`; the loop does not change.

Conventions every family follows:
- models and optimizers are dicts of `nnx.Module` / `nnx.Optimizer` keyed by role
  ("generator", "discriminator", ...); optimizers are `nnx.Optimizer(model, tx, wrt=nnx.Param)`;
- a batch is a dict of arrays whose leading axis is the batch axis (it is sharded over devices);
- `train_step(models, optimizers, batch, key)` updates the modules in place (it runs inside
  `jax.jit` on merged copies) and returns a dict of scalar metrics;
- `sample(models, key, n)` returns `n` images NHWC in [-1, 1] for the PNG grids (eval mode);
- `evaluate(models, key)` returns a dict of floats, written to `workdir/eval.json`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx

from egan_jax.config import Config
from egan_jax.errors import ConfigError

Models = dict[str, nnx.Module]
Optimizers = dict[str, nnx.Optimizer]
Batch = dict[str, np.ndarray]
Metrics = dict[str, jax.Array]
BatchFn = Callable[[int, int, int], Batch]  # (step, process_index, process_count) -> local batch
TrainStep = Callable[[Models, Optimizers, Mapping[str, jax.Array], jax.Array], Metrics]
SampleFn = Callable[[Models, jax.Array, int], jax.Array]
EvaluateFn = Callable[[Models, jax.Array], dict[str, float]]


@dataclasses.dataclass(frozen=True)
class Family:
    """What the generic loop needs from one model family. Every callable takes the config."""

    name: str
    default_config: Callable[[], Config]
    build_models: Callable[[Config, nnx.Rngs], Models]
    build_optimizers: Callable[[Config, Models], Optimizers]
    make_batches: Callable[[Config], BatchFn]
    make_train_step: Callable[[Config], TrainStep]
    make_sample: Callable[[Config], SampleFn]
    make_evaluate: Callable[[Config], EvaluateFn] | None = None
    # For key-protected families: the fingerprint (never the key) stored with checkpoints.
    key_fingerprint: Callable[[Config], str | None] | None = None


# Config string -> "module:attribute" of its Family, imported on first use so that a run only
# imports the models it trains.
FAMILIES: dict[str, str] = {
    "dcgan": "egan_jax.families.dcgan:FAMILY",
    "srgan": "egan_jax.families.srgan:FAMILY",
    "cyclegan": "egan_jax.families.cyclegan:FAMILY",
    "egan_dcgan": "egan_jax.families.egan_dcgan:FAMILY",
    "egan_srgan": "egan_jax.families.egan_srgan:FAMILY",
    "egan_cyclegan": "egan_jax.families.egan_cyclegan:FAMILY",
    "classifier": "egan_jax.families.classifier:FAMILY",
    "encryip": "egan_jax.families.encryip:FAMILY",
    "egan_attack_dcgan": "egan_jax.attacks:FAMILY",
    "egan_attack_srgan": "egan_jax.attacks_i2i:SRGAN_FAMILY",
    "egan_attack_cyclegan": "egan_jax.attacks_i2i:CYCLEGAN_FAMILY",
}


def get_family(name: str) -> Family:
    """The `Family` registered under `name`; `ConfigError` listing close names if there is none."""
    try:
        target = FAMILIES[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), FAMILIES, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        known = ", ".join(sorted(FAMILIES))
        raise ConfigError(f"unknown family {name!r}{hint} (known: {known})") from None
    module_name, _, attribute = target.partition(":")
    family = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(family, Family):
        raise TypeError(f"{target} is not a Family")
    return family


def learning_rate_schedule(config: Config) -> Any:
    """The learning rate of ``config.optim``: a float (``constant``) or an optax schedule
    (``linear_decay``: flat until ``decay_start`` of the steps, then linearly to 0)."""
    import optax

    optim = config.optim
    if optim.schedule == "constant":
        return optim.learning_rate
    if optim.schedule == "linear_decay":
        flat_steps = int(config.train.steps * optim.decay_start)
        return optax.join_schedules(
            [
                optax.constant_schedule(optim.learning_rate),
                optax.linear_schedule(
                    optim.learning_rate, 0.0, max(1, config.train.steps - flat_steps)
                ),
            ],
            [flat_steps],
        )
    raise ConfigError(
        f"optim.schedule must be 'constant' or 'linear_decay', got {optim.schedule!r}"
    )


def adam(config: Config) -> Any:
    """The optax Adam every family shares, with the config's learning-rate schedule."""
    import optax

    optim = config.optim
    return optax.adam(learning_rate_schedule(config), b1=optim.b1, b2=optim.b2)


def adam_optimizers(
    config: Config, models: Models, roles: Sequence[str] | None = None
) -> Optimizers:
    """One :func:`adam` optimizer per trained model: the roles named (default: every model)."""
    roles = tuple(models) if roles is None else roles
    return {role: nnx.Optimizer(models[role], adam(config), wrt=nnx.Param) for role in roles}
