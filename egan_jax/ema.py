"""Exponential moving average (EMA) of the generator's weights, as BigGAN and StyleGAN evaluate.

With `train.ema_decay = d > 0` the run's state holds, beside `models` and `optimizers`, an `ema`
dict with a copy of the family's `"generator"`. After every train step (inside the same `jit`),

    ema ← d_t · ema + (1 − d_t) · generator,   d_t = min(d, (1 + t) / (10 + t))

for every `nnx.Param` and `nnx.BatchStat` of the generator (t = the step's index, so the average
forgets its random initialisation in the first steps: the warm-up of TensorFlow's
`ExponentialMovingAverage(num_updates=...)`). Every other variable (a protected generator's key
lock, spectral-norm vectors) is copied from the trained generator.

Batch norm: the EMA generator's running statistics are the same average of the trained generator's
running statistics (as timm's `ModelEmaV2` and torch's `AveragedModel(use_buffers=True)` do), not
recomputed by forward passes of the averaged weights (BigGAN's "standing statistics"): it costs
nothing, stays pure in (seed, step) and is checkpointed with the rest of the state.

The EMA state is part of the train state, so it is checkpointed by orbax, restored on resume
(bit-identically), replicated over the mesh like the parameters and deterministic. Sampling and
evaluation (`egan sample`, `egan evaluate`, the demo, the PNG grids, `eval.json`) use the EMA
generator when the run has one (`inference_models`). Training never reads it: with EMA on or off,
the trained generator and discriminator are bit-identical.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from egan_jax.config import Config
from egan_jax.errors import ConfigError

# The model role that is averaged.
ROLE = "generator"
# The variable types that are averaged; every other variable is copied.
AVERAGED = (nnx.Param, nnx.BatchStat)


def enabled(config: Config) -> bool:
    return config.train.ema_decay > 0


def check(config: Config) -> None:
    decay = config.train.ema_decay
    if not 0.0 <= decay < 1.0:
        raise ConfigError(
            f"config field 'train.ema_decay' must be in [0, 1) (0 = off), got {decay!r}"
        )


def build(config: Config, models: Mapping[str, nnx.Module]) -> dict[str, nnx.Module]:
    """`{"generator": copy}`: the EMA starts at the initial generator."""
    if ROLE not in models:
        raise ConfigError(
            f"train.ema_decay={config.train.ema_decay} averages the {ROLE!r} model, but family "
            f"{config.family!r} has only {sorted(models)}; set train.ema_decay=0"
        )
    return {ROLE: nnx.clone(models[ROLE])}


def decay_at(decay: float, step: jax.Array) -> jax.Array:
    """The decay used after the update of step `step` (0-based): warm-up, then `decay`."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(jnp.float32(decay), (1.0 + step) / (10.0 + step))


def update(ema_model: nnx.Module, model: nnx.Module, decay: jax.Array) -> None:
    """In place: `ema_model`'s averaged variables move towards `model`'s by `1 - decay`; its other
    variables become `model`'s."""
    live, rest = nnx.state(model, AVERAGED, ...)
    average = nnx.state(ema_model, AVERAGED)

    def mix(old: jax.Array, new: jax.Array) -> jax.Array:
        return (decay * old + (1.0 - decay) * new).astype(old.dtype)

    nnx.update(ema_model, jax.tree.map(mix, average, live), rest)


def update_all(
    ema: Mapping[str, nnx.Module], models: Mapping[str, nnx.Module], decay: float, step: Any
) -> None:
    """`update` of every averaged role, with the warm-up decay of `step`."""
    d = decay_at(decay, step)
    for role, ema_model in ema.items():
        update(ema_model, models[role], d)


def inference_models(tree: Mapping[str, Any]) -> dict[str, nnx.Module]:
    """The models to sample and evaluate from a run's merged state `{"models", ..., "ema"?}`: the
    trained ones, with the EMA generator in place of the generator when the run has one."""
    return {**tree["models"], **tree.get("ema", {})}
