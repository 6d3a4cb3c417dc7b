"""The optimizers of the protected image families: Adam, with a learned input map
(`model.adapter` "learned" / "key_inverse_learned", `egan_image.KeyedGenerator.adapter`) at
`model.adapter_lr_scale` × the learning rate."""

from __future__ import annotations

import jax
import optax
from flax import nnx

from egan_jax.config import Config
from egan_jax.families import Models, Optimizers, adam, learning_rate_schedule


def _adapter_label(path, _) -> str:
    return "adapter" if getattr(path[0], "key", None) == "adapter" else "network"


def keyed_optimizer(config: Config, model: nnx.Module) -> nnx.Optimizer:
    """Adam for a keyed generator: the adapter at `adapter_lr_scale` × the learning rate."""
    schedule = learning_rate_schedule(config)
    scale = config.model.adapter_lr_scale
    scaled = (lambda step: scale * schedule(step)) if callable(schedule) else scale * schedule
    optim = config.optim
    tx = optax.multi_transform(
        {"adapter": optax.adam(scaled, b1=optim.b1, b2=optim.b2), "network": adam(config)},
        lambda params: jax.tree_util.tree_map_with_path(_adapter_label, params),
    )
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


def protected_optimizers(config: Config, models: Models, keyed_roles, other_roles) -> Optimizers:
    """The keyed generators' optimizers (adapter scaled) and plain Adam for the other roles."""
    from egan_jax.families import adam_optimizers

    optimizers = adam_optimizers(config, models, tuple(other_roles))
    for role in keyed_roles:
        optimizers[role] = keyed_optimizer(config, models[role])
    return optimizers
