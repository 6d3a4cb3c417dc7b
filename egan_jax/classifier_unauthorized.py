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

With ``loss.unauthorized_material = "fresh"`` the transformed half draws new material for every
example at every step instead of cycling through a few training keys: a uniform permutation of the
block's M·M·C values, fair negative/positive and FFX selection bits, and a uniform injection of the
256 pixel values into the FFX codes — the distribution another key's HKDF-derived material has
(`fresh_transform`), so the model is taught the owner's material against all others, not against 16.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.keys import SecretKey
from egan_jax.transforms import block as block_ops
from egan_jax.transforms.compose import Pipeline

TRAINING_KEYS_TAG = 0x7EA1  # folded into the seed: training keys differ from evaluation's
MATERIALS = ("keys", "fresh")
FRESH_STEPS = ("shuffle", "np", "ffx")


def check(config: Config) -> None:
    loss = config.loss
    if loss.unauthorized_weight < 0:
        raise ConfigError(f"loss.unauthorized_weight={loss.unauthorized_weight} must be ≥ 0")
    if loss.unauthorized_weight and not config.model.transform.steps:
        raise ConfigError(
            "loss.unauthorized_weight > 0 needs a keyed transform (model.transform.steps); an "
            "unprotected model has no unauthorized inputs"
        )
    material = getattr(loss, "unauthorized_material", "keys")
    if material not in MATERIALS:
        raise ConfigError(f"loss.unauthorized_material={material!r}; valid: {list(MATERIALS)}")
    if loss.unauthorized_weight and material == "keys" and loss.unauthorized_keys < 1:
        raise ConfigError(f"loss.unauthorized_keys={loss.unauthorized_keys} must be ≥ 1")
    other = sorted(set(config.model.transform.steps) - set(FRESH_STEPS))
    if loss.unauthorized_weight and material == "fresh" and other:
        raise ConfigError(
            f"loss.unauthorized_material='fresh' draws {list(FRESH_STEPS)} material only; the "
            f"transform also has {other}: use loss.unauthorized_material='keys'"
        )


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


def random_material(key: jax.Array, count: int, size: int, variant: str) -> dict[str, jax.Array]:
    """``count`` draws of block material for ``size = M·M·C`` values: ``permutation`` int ``[count,
    size]`` (output q takes input ``permutation[q]``), ``flip`` and ``ffx_mask`` bool ``[count,
    size]``, ``table`` int ``[count, 256]`` (distinct codes of ``variant``)."""
    shuffle_key, flip_key, mask_key, table_key = jax.random.split(key, 4)
    codes = block_ops.FFX_CODES[variant]
    return {
        "permutation": jax.vmap(lambda k: jax.random.permutation(k, size))(
            jax.random.split(shuffle_key, count)
        ),
        "flip": jax.random.bernoulli(flip_key, 0.5, (count, size)),
        "ffx_mask": jax.random.bernoulli(mask_key, 0.5, (count, size)),
        "table": jax.vmap(lambda k: jax.random.permutation(k, codes)[:256])(
            jax.random.split(table_key, count)
        ),
    }


def apply_material(
    x: jax.Array, steps, material: dict[str, jax.Array], *, block: int, variant: str
) -> jax.Array:
    """``x`` (NHWC float in [-1, 1]) through the block ``steps``, example i with the i-th draw of
    ``material`` (`random_material`); the same function as a `Pipeline` with that material."""
    n = x.shape[0]
    blocks = block_ops.to_blocks(x, block)
    for name in steps:
        if name == "shuffle":
            blocks = jnp.take_along_axis(blocks, material["permutation"][:, None, None], axis=3)
        elif name == "np":
            blocks = jnp.where(material["flip"][:, None, None], -blocks, blocks)
        elif name == "ffx":
            codes = block_ops.FFX_CODES[variant]
            grid = block_ops.decimal_grid() if codes == 1000 else block_ops.pixel_grid()
            levels = jnp.clip(jnp.round((blocks + 1.0) * 127.5), 0, 255).astype(jnp.int32)
            coded = jnp.asarray(grid)[
                jnp.take_along_axis(material["table"], levels.reshape(n, -1), axis=1)
            ]
            selected = material["ffx_mask"][:, None, None]
            blocks = jnp.where(selected, coded.reshape(blocks.shape), blocks)
        else:
            raise ConfigError(f"fresh material for step {name!r}; valid: {list(FRESH_STEPS)}")
    return block_ops.from_blocks(blocks, block)


def fresh_inputs(plain: jax.Array, transform: dict, key: jax.Array) -> jax.Array:
    """First half of ``plain`` as it is, second half with fresh random material per example."""
    half = plain.shape[0] // 2
    block, variant = transform["block"], transform.get("ffx_variant", "decimal")
    size = block * block * plain.shape[-1]
    material = random_material(key, plain.shape[0] - half, size, variant)
    other = apply_material(plain[half:], transform["steps"], material, block=block, variant=variant)
    return jnp.concatenate([plain[:half], other])


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
