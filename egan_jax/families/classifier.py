"""The key-protected classifier family (AprilPyone & Kiya, APSIPA Trans. 2021; REFERENCE.md §6).

A classifier (``model.arch``: resnet18, cnn, convmixer, vit) is trained on images transformed with a
secret key (``model.transform``: block size, steps from ``egan_jax.transforms.compose.STEPS``, key
file). With ``model.baseline`` an unprotected twin is trained on plain images from the same batches,
for the accuracy table. Only the key's fingerprint is stored with checkpoints; the config holds the
key file's path, never key bytes.

Sections: ``model`` — the network and its keyed input transform; ``loss`` — the objective, the
optimizer (the generic ``optim`` section holds the learning rate, schedule and Adam's betas) and
what the evaluation measures. The evaluation (``egan_jax.classifier_eval``) reports test accuracy
for: the plain baseline; the protected model with the correct key, with plain images, with random
keys (mean ± sd, worst), near-miss keys and near-miss material; and for patch-embedding models with
linear steps, the unlocked / locked-without-retraining models.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from egan_jax import classifier_deep_lock
from egan_jax.config import (
    CheckpointConfig,
    Config,
    DataConfig,
    EvalConfig,
    LogConfig,
    OptimConfig,
    TrainConfig,
)
from egan_jax.errors import ConfigError
from egan_jax.families import Family, Models, Optimizers, adam, learning_rate_schedule
from egan_jax.families.classifier_config import LossConfig, ModelConfig, TransformConfig
from egan_jax.families.classifier_keys import refuse_identity_steps, transform_config
from egan_jax.keys import SecretKey
from egan_jax.transforms.compose import Pipeline

__all__ = ["FAMILY", "LossConfig", "ModelConfig", "TransformConfig", "transform_config"]


def default_config() -> Config:
    return Config(
        family="classifier",
        model=ModelConfig(),
        loss=LossConfig(),
        data=DataConfig(name="digits", image_size=32, channels=1),
        train=TrainConfig(steps=1000, batch_size=64),
        optim=OptimConfig(learning_rate=1e-3, b1=0.9, b2=0.999),
        log=LogConfig(every=50, sample_every=0, num_samples=16),
        checkpoint=CheckpointConfig(every=500),
        eval=EvalConfig(every=0),
    )


def cross_entropy(
    logits: jax.Array, labels: jax.Array, *, label_smoothing: float = 0.0
) -> jax.Array:
    """Per-example softmax cross-entropy ``[N]`` of logits ``[N, K]`` and integer labels ``[N]``,
    with the one-hot targets smoothed toward uniform by ``label_smoothing`` (Szegedy et al. 2016).
    """
    targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), label_smoothing)
    return optax.softmax_cross_entropy(logits, targets)


# --- the key ----------------------------------------------------------------------------------
def _check(config: Config) -> None:
    transform = config.model.transform
    if config.loss.optimizer not in OPTIMIZERS:
        raise ConfigError(
            f"loss.optimizer={config.loss.optimizer!r} is unknown; use one of {sorted(OPTIMIZERS)}"
        )
    if transform.steps and not transform.key_file:
        raise ConfigError(
            f"model.transform.steps={list(transform.steps)} needs a key: set "
            "model.transform.key_file=PATH (make one with `egan keygen --out PATH`), or "
            "model.transform.steps=() for an unprotected model"
        )
    classifier_deep_lock.sites(config)  # validates model.deep_lock
    if config.loss.augment_shift < 0:
        raise ConfigError(f"loss.augment_shift={config.loss.augment_shift} must be ≥ 0 pixels")
    if not 0.0 <= config.loss.label_smoothing < 1.0:
        raise ConfigError(f"loss.label_smoothing={config.loss.label_smoothing} must be in [0, 1)")


def load_pipeline(config: Config, key: SecretKey | None = None) -> Pipeline | None:
    """The keyed transform of ``config`` (None when ``model.transform.steps`` is empty).

    ``key`` overrides the key file (evaluation with other keys); otherwise it is read from
    ``model.transform.key_file``, whose permissions must be private (``SecretKey.load``).
    """
    _check(config)
    if not config.model.transform.steps:
        return None
    if key is not None:
        return Pipeline.from_config(transform_config(config), key)
    pipeline = Pipeline.from_config(
        transform_config(config), SecretKey.load(config.model.transform.key_file)
    )
    refuse_identity_steps(pipeline)
    return pipeline


def key_fingerprint(config: Config) -> str | None:
    pipeline = load_pipeline(config)
    return None if pipeline is None else pipeline.fingerprint


# --- models and optimizers --------------------------------------------------------------------
def num_classes(config: Config) -> int:
    from egan_jax.data_labeled import num_classes as dataset_classes

    return dataset_classes(config.data.name, data_dir=config.data.data_dir)


def make_classifier(config: Config, rngs: nnx.Rngs, outputs: int) -> nnx.Module:
    """The ``config.model`` classifier for ``config.data``'s images with ``outputs`` logits."""
    from egan_jax.models.classifiers import build_classifier

    m = config.model
    return build_classifier(
        m.arch,
        num_classes=outputs,
        image_size=config.data.image_size,
        channels=config.data.channels,
        width=m.width,
        depth=m.depth or None,
        patch_size=m.patch_size,
        heads=m.heads or None,
        # models of other families (encryip) reuse this builder without these fields
        input_codes=getattr(m, "input_codes", 0),
        input_block=m.transform.block if hasattr(m, "transform") else 4,
        input_raw=getattr(m, "input_raw", False),
        input_mlp=getattr(m, "input_mlp", 0),
        rngs=rngs,
    )


def build_models(config: Config, rngs: nnx.Rngs) -> Models:
    _check(config)
    m = config.model

    def make() -> nnx.Module:
        return make_classifier(config, rngs, num_classes(config))

    if m.matched_init:
        if not (m.baseline and lockable(config)):
            raise ConfigError(
                "model.matched_init needs model.baseline=true and a lockable model: arch "
                "convmixer/vit with model.patch_size == model.transform.block and only linear "
                "transform steps (shuffle, np, channel)"
            )
        from egan_jax.classifier_lock import lock_model

        baseline = make()
        return {"classifier": lock_model(baseline, load_pipeline(config)), "baseline": baseline}
    models = {"classifier": make()}
    classifier_deep_lock.attach_owner(models["classifier"], config)
    if m.baseline:
        models["baseline"] = make()
    return models


def _sgd(config: Config, learning_rate) -> optax.GradientTransformation:
    return optax.sgd(learning_rate, momentum=config.loss.momentum or None)


def _adam(config: Config, learning_rate) -> optax.GradientTransformation:
    del learning_rate  # the shared Adam builds the schedule itself
    return adam(config)


OPTIMIZERS = {"adam": _adam, "sgd": _sgd}


def build_optimizers(config: Config, models: Models) -> Optimizers:
    _check(config)

    def make() -> optax.GradientTransformation:
        base = OPTIMIZERS[config.loss.optimizer](config, learning_rate_schedule(config))
        if config.loss.weight_decay:
            return optax.chain(optax.add_decayed_weights(config.loss.weight_decay), base)
        return base

    return {name: nnx.Optimizer(model, make(), wrt=nnx.Param) for name, model in models.items()}


# --- data, step, sample -----------------------------------------------------------------------
def _load(config: Config, split: str):
    from egan_jax.data_labeled import load_labeled

    return load_labeled(
        config.data.name,
        split,
        image_size=config.data.image_size,
        channels=config.data.channels,
        data_dir=config.data.data_dir,
    )


def make_batches(config: Config):
    """Bundled data: `labeled_batch_at` over the in-memory split; a tfds split: grain, reading only
    each step's records (`data_grain.tfds_labeled_batches`, also pure in step)."""
    if config.data.name.startswith("tfds:"):
        from egan_jax.data_grain import tfds_labeled_batches

        return tfds_labeled_batches(
            config.data.name.removeprefix("tfds:"),
            split=config.data.split,
            image_size=config.data.image_size,
            channels=config.data.channels,
            data_dir=config.data.data_dir,
            batch_size=config.train.batch_size,
            seed=config.seed,
        )
    from egan_jax.data_labeled import labeled_batch_at

    images, labels = _load(config, config.data.split)

    def batches(step: int, process_index: int, process_count: int) -> dict:
        x, y = labeled_batch_at(
            images,
            labels,
            step,
            batch_size=config.train.batch_size,
            seed=config.seed,
            process_index=process_index,
            process_count=process_count,
        )
        return {"images": x, "labels": y}

    return batches


def _update(model, optimizer, images, labels, smoothing: float) -> dict[str, jax.Array]:
    def loss_fn(model: nnx.Module):
        logits = model(images)
        loss = jnp.mean(cross_entropy(logits, labels, label_smoothing=smoothing))
        return loss, jnp.mean(jnp.argmax(logits, axis=-1) == labels)

    (loss, accuracy), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    return {"loss": loss, "accuracy": accuracy}


def random_shift(images: jax.Array, key: jax.Array, shift: int) -> jax.Array:
    """Each image ``[N, H, W, C]`` translated by its own random (dy, dx) in ``[-shift, shift]``²,
    the uncovered border repeating the edge."""
    n, height, width, channels = images.shape
    padded = jnp.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
    offsets = jax.random.randint(key, (n, 2), 0, 2 * shift + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (height, width, channels))

    return jax.vmap(crop)(padded, offsets)


def make_train_step(config: Config):
    from egan_jax import classifier_unauthorized as unauthorized

    unauthorized.check(config)
    pipeline = load_pipeline(config)
    smoothing = config.loss.label_smoothing
    shift = config.loss.augment_shift
    weight = config.loss.unauthorized_weight
    fresh = bool(weight) and config.loss.unauthorized_material == "fresh"
    transform = transform_config(config)
    others = unauthorized.training_pipelines(config, transform) if weight and not fresh else []

    def train_step(
        models: Models, optimizers: Optimizers, batch: Mapping[str, jax.Array], key: jax.Array
    ) -> dict[str, jax.Array]:
        plain = batch["images"]
        if shift:  # with the training keys' choice, the only randomness beyond the batch order
            plain = random_shift(plain, key, shift)
        protected = plain if pipeline is None else pipeline.forward(plain)
        if others or fresh:
            u_key = jax.random.fold_in(key, 1)
            metrics = unauthorized.protected_update(
                models["classifier"],
                optimizers["classifier"],
                protected,
                batch["labels"],
                unauthorized.fresh_inputs(plain, transform, u_key)
                if fresh
                else unauthorized.unauthorized_inputs(plain, others, u_key),
                cross_entropy=functools.partial(cross_entropy, label_smoothing=smoothing),
                weight=weight,
            )
        else:
            metrics = _update(
                models["classifier"],
                optimizers["classifier"],
                protected,
                batch["labels"],
                smoothing,
            )
        if "baseline" in models:
            base = _update(
                models["baseline"], optimizers["baseline"], plain, batch["labels"], smoothing
            )
            metrics.update({f"baseline_{k}": v for k, v in base.items()})
        return metrics

    return train_step


def make_sample(config: Config):
    """The first training images as the protected model sees them (what an attacker can see)."""
    from egan_jax.data import to_float

    pipeline = load_pipeline(config)
    images = to_float(_load(config, config.data.split)[0][: config.log.num_samples])

    def sample(models: Models, key: jax.Array, n: int) -> jax.Array:
        x = jnp.asarray(images[:n])
        return x if pipeline is None else pipeline.forward(x)

    return sample


# --- evaluation -------------------------------------------------------------------------------
@nnx.jit
def _predict(model: nnx.Module, images: jax.Array) -> jax.Array:
    return jnp.argmax(model(images), axis=-1)


def accuracy(model: nnx.Module, images, labels, *, batch_size: int = 250) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on float images in [-1, 1]."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        chunk = jnp.asarray(images[start : start + batch_size])
        correct += int(
            jnp.sum(_predict(model, chunk) == jnp.asarray(labels[start : start + batch_size]))
        )
    return correct / len(images)


def make_evaluate(config: Config):
    """``evaluate(models, key) -> {name: float}``: the protection table's summary
    (``egan_jax.classifier_eval``, which also writes the ``egan evaluate`` report)."""
    from egan_jax.classifier_eval import make_evaluate as make

    return make(config)


def lockable(config: Config) -> bool:
    """Whether ``classifier_lock`` applies: a patch model, patch = block, linear steps only."""
    from egan_jax.classifier_lock import LINEAR_STEPS
    from egan_jax.models.classifiers import PATCH_ARCHITECTURES

    m = config.model
    return (
        m.arch in PATCH_ARCHITECTURES
        and m.patch_size == m.transform.block
        and bool(m.transform.steps)
        and all(step in LINEAR_STEPS for step in m.transform.steps)
    )


FAMILY = Family(
    name="classifier",
    default_config=default_config,
    build_models=build_models,
    build_optimizers=build_optimizers,
    make_batches=make_batches,
    make_train_step=make_train_step,
    make_sample=make_sample,
    make_evaluate=make_evaluate,
    key_fingerprint=key_fingerprint,
)
