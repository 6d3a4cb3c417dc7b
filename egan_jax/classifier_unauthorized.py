"""A self-adversarial term for the key-protected classifier (ours; EGAN's idea on a classifier).

AprilPyone & Kiya's scheme trains only on the owner's transformed images; what the model does on
plain images or other keys' images is whatever it learned by accident, and some of it leaks (a
shuffle keeps every block's mean, so a shuffle-trained model stays well above chance on plain
images). With ``loss.unauthorized_weight = λ > 0`` the protected model also sees unauthorized
inputs each step — half the batch plain, half transformed with one of ``loss.unauthorized_keys``
random training keys (drawn from the run's seed; never the owner's, and not the evaluation's
random keys) — and is pushed to predict nothing on them:

    L = mean CE(f(a_k(x)), y) + λ · mean KL(uniform ‖ softmax f(u(x)))

The KL to the uniform distribution is bounded below by 0 (reached by equal logits), so the term
cannot grow without bound the way a maximised cross-entropy does. The plain twin is not affected.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.keys import SecretKey
from egan_jax.transforms.compose import Pipeline

TRAINING_KEYS_TAG = 0x7EA1  # folded into the seed: training keys differ from evaluation's


def check(config: Config) -> None:
    loss = config.loss
    if loss.unauthorized_weight < 0:
        raise ConfigError(f"loss.unauthorized_weight={loss.unauthorized_weight} must be ≥ 0")
    if loss.unauthorized_weight and not config.model.transform.steps:
        raise ConfigError(
            "loss.unauthorized_weight > 0 needs a keyed transform (model.transform.steps); an "
            "unprotected model has no unauthorized inputs"
        )
    if loss.unauthorized_weight and loss.unauthorized_keys < 1:
        raise ConfigError(f"loss.unauthorized_keys={loss.unauthorized_keys} must be ≥ 1")


def training_pipelines(config: Config, transform_config: dict) -> list[Pipeline]:
    """The ``loss.unauthorized_keys`` random-key pipelines training shows the model."""
    from egan_jax.classifier_eval import random_keys

    base = jax.random.fold_in(jax.random.key(config.seed), TRAINING_KEYS_TAG)
    keys: list[SecretKey] = random_keys(base, config.loss.unauthorized_keys)
    return [Pipeline.from_config(transform_config, key) for key in keys]


def unauthorized_inputs(plain: jax.Array, pipelines: list[Pipeline], key: jax.Array) -> jax.Array:
    """First half of ``plain`` as it is, second half through one random training pipeline."""
    half = plain.shape[0] // 2
    index = jax.random.randint(key, (), 0, len(pipelines))
    branches = [pipeline.forward for pipeline in pipelines]
    return jnp.concatenate([plain[:half], jax.lax.switch(index, branches, plain[half:])])


def uniform_kl(logits: jax.Array) -> jax.Array:
    """Per-example KL(uniform ‖ softmax(logits)) ``[N]``: 0 exactly when all logits are equal."""
    classes = logits.shape[-1]
    return -jnp.mean(jax.nn.log_softmax(logits), axis=-1) - jnp.log(classes)


def protected_update(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    images: jax.Array,
    labels: jax.Array,
    unauthorized: jax.Array,
    *,
    cross_entropy,
    weight: float,
) -> dict[str, jax.Array]:
    """One step of ``cross_entropy(logits, labels)`` + ``weight`` · uniform KL on ``unauthorized``."""

    def loss_fn(model: nnx.Module):
        logits = model(jnp.concatenate([images, unauthorized]))
        keyed, other = logits[: images.shape[0]], logits[images.shape[0] :]
        task = jnp.mean(cross_entropy(keyed, labels))
        spread = jnp.mean(uniform_kl(other))
        accuracy = jnp.mean(jnp.argmax(keyed, axis=-1) == labels)
        return task + weight * spread, (task, spread, accuracy)

    (_, (task, spread, accuracy)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    return {"loss": task, "unauthorized_kl": spread, "accuracy": accuracy}
