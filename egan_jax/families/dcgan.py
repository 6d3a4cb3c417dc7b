"""The DCGAN family: the IPR-GAN baseline generator and SNGAN discriminator (REFERENCE.md §4).

One step = `loss.discriminator_steps` discriminator updates, then one generator update; the losses
are `egan_jax.losses` functions picked by `loss.kind`, weighted by the config. Defaults follow
IPR-GAN: hinge loss, Adam 2e-4 with β = (0.5, 0.999), batch 64, latent 128.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax import losses
from egan_jax.config import Config, DataConfig, OptimConfig, TrainConfig
from egan_jax.errors import ConfigError
from egan_jax.families import Family, Models, Optimizers, adam_optimizers


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = 128
    width: int = 64
    upsample: str = "vjp"  # "vjp" (fast custom-VJP ×2 layer) or "conv_transpose"


@dataclasses.dataclass(frozen=True)
class LossConfig:
    kind: str = "hinge"  # a key of ADVERSARIAL_LOSSES
    discriminator_steps: int = 1
    adversarial_weight: float = 1.0


# loss.kind -> (discriminator loss, generator loss), both per-example.
ADVERSARIAL_LOSSES = {
    "hinge": (losses.hinge_discriminator, losses.hinge_generator),
    "nonsaturating": (losses.nonsaturating_discriminator, losses.nonsaturating_generator),
    "least_squares": (losses.least_squares_discriminator, losses.least_squares_generator),
}


def default_config() -> Config:
    return Config(
        family="dcgan",
        model=ModelConfig(),
        loss=LossConfig(),
        data=DataConfig(name="digits", image_size=32, channels=1),
        train=TrainConfig(steps=2000, batch_size=64),
        optim=OptimConfig(learning_rate=2e-4, b1=0.5, b2=0.999),
    )


def _check(config: Config) -> None:
    if config.loss.kind not in ADVERSARIAL_LOSSES:
        raise ConfigError(
            f"loss.kind={config.loss.kind!r} is unknown; use one of {sorted(ADVERSARIAL_LOSSES)}"
        )
    if config.loss.discriminator_steps < 1:
        raise ConfigError(
            f"loss.discriminator_steps must be at least 1, got {config.loss.discriminator_steps}"
        )


def build_models(config: Config, rngs: nnx.Rngs) -> Models:
    _check(config)
    from egan_jax.models.dcgan import Discriminator, Generator

    sizes = dict(image_size=config.data.image_size, channels=config.data.channels)
    return {
        "generator": Generator(
            latent_dim=config.model.latent_dim,
            width=config.model.width,
            upsample=config.model.upsample,
            rngs=rngs,
            **sizes,
        ),
        "discriminator": Discriminator(width=config.model.width, rngs=rngs, **sizes),
    }


def build_optimizers(config: Config, models: Models) -> Optimizers:
    return adam_optimizers(config, models)


def load_training_images(config: Config) -> np.ndarray:
    """The images of ``config.data`` (uint8 ``[N, H, W, C]``)."""
    from egan_jax.data import load_images

    return load_images(
        config.data.name,
        split=config.data.split,
        image_size=config.data.image_size,
        channels=config.data.channels,
        data_dir=config.data.data_dir,
    )


def image_batches(config: Config, images: np.ndarray):
    """The batch function over ``images``: ``{"images": ...}`` of ``data.batch_at`` (pure in step)."""
    from egan_jax.data import batch_at

    def batches(step: int, process_index: int, process_count: int) -> dict[str, jax.Array]:
        local = batch_at(
            images,
            step,
            batch_size=config.train.batch_size,
            seed=config.seed,
            process_index=process_index,
            process_count=process_count,
        )
        return {"images": local}

    return batches


def make_batches(config: Config):
    """Bundled data: `image_batches` over the in-memory images; a tfds split: grain, reading only
    each step's records (`data_grain.tfds_image_batches`, also pure in step)."""
    if config.data.name.startswith("tfds:"):
        from egan_jax.data_grain import tfds_image_batches

        return tfds_image_batches(
            config.data.name.removeprefix("tfds:"),
            split=config.data.split,
            image_size=config.data.image_size,
            channels=config.data.channels,
            data_dir=config.data.data_dir,
            batch_size=config.train.batch_size,
            seed=config.seed,
        )
    return image_batches(config, load_training_images(config))


def update_discriminator(
    discriminator: nnx.Module,
    optimizer: nnx.Optimizer,
    discriminator_loss: Callable[[jax.Array, jax.Array], jax.Array],
    real: jax.Array,
    generate: Callable[[jax.Array], jax.Array],
    latents: Sequence[jax.Array],
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One discriminator update per latent batch, on ``real`` and stop-gradient ``generate(z)``;
    returns the last update's loss and mean real and fake logits."""
    count = real.shape[0]
    for z in latents:
        fake = jax.lax.stop_gradient(generate(z))

        def d_loss(discriminator: nnx.Module, fake: jax.Array = fake):
            # One pass over real and fake together: one spectral-norm power iteration.
            logits = discriminator(jnp.concatenate([real, fake]))
            real_logits, fake_logits = logits[:count], logits[count:]
            loss = jnp.mean(discriminator_loss(real_logits, fake_logits))
            return loss, (jnp.mean(real_logits), jnp.mean(fake_logits))

        (loss_d, (real_mean, fake_mean)), grads = nnx.value_and_grad(d_loss, has_aux=True)(
            discriminator
        )
        optimizer.update(discriminator, grads)
    return loss_d, real_mean, fake_mean


def make_train_step(config: Config):
    _check(config)
    discriminator_loss, generator_loss = ADVERSARIAL_LOSSES[config.loss.kind]
    latent_dim, weight = config.model.latent_dim, config.loss.adversarial_weight
    discriminator_steps = config.loss.discriminator_steps

    def train_step(
        models: Models, optimizers: Optimizers, batch: Mapping[str, jax.Array], key: jax.Array
    ) -> dict[str, jax.Array]:
        generator, discriminator = models["generator"], models["discriminator"]
        real = batch["images"]
        count = real.shape[0]
        keys = jax.random.split(key, discriminator_steps + 1)
        loss_d, real_mean, fake_mean = update_discriminator(
            discriminator,
            optimizers["discriminator"],
            discriminator_loss,
            real,
            generator,
            [jax.random.normal(d_key, (count, latent_dim)) for d_key in keys[:-1]],
        )
        z = jax.random.normal(keys[-1], (count, latent_dim))

        def g_loss(generator: nnx.Module, discriminator: nnx.Module) -> jax.Array:
            # The discriminator is an argument (not a closure) since its power iteration updates.
            return weight * jnp.mean(generator_loss(discriminator(generator(z))))

        loss_g, grads = nnx.value_and_grad(g_loss)(generator, discriminator)
        optimizers["generator"].update(generator, grads)
        return {
            "d_loss": loss_d,
            "g_loss": loss_g,
            "d_real_logit": real_mean,
            "d_fake_logit": fake_mean,
        }

    return train_step


def make_sample(config: Config):
    latent_dim = config.model.latent_dim

    def sample(models: Models, key: jax.Array, n: int) -> jax.Array:
        generator = models["generator"]
        generator.eval()  # a merged copy inside jit: batch norm uses its running statistics
        return generator(jax.random.normal(key, (n, latent_dim)))

    return sample


# Datasets of handwritten digits, on which the digits-classifier Fréchet distance is meaningful.
DIGIT_DATASETS = ("digits", "tfds:mnist")
SAMPLE_CHUNK = 250


def make_evaluate(config: Config):
    """Digits Fréchet distance (`egan_jax.metrics`) of `eval.num_samples` samples against the
    training images, with the same distance between the real test and train splits as its floor.
    Other datasets have no evaluation here (FID needs InceptionV3 weights: see egan_jax.metrics)."""
    if config.data.name not in DIGIT_DATASETS:
        return None
    sample = make_sample(config)

    def evaluate(models: Models, key: jax.Array) -> dict[str, float]:
        from egan_jax.data import load_images
        from egan_jax.metrics import DigitsClassifier, compute_fid
        from egan_jax.sharding import to_host

        network = DigitsClassifier.load_or_train(config.eval.feature_dir)
        graphdef, state = nnx.split(models)
        draw = jax.jit(lambda state, key: sample(nnx.merge(graphdef, state), key, SAMPLE_CHUNK))
        chunks = -(-config.eval.num_samples // SAMPLE_CHUNK)
        fake = np.concatenate(
            [to_host(draw(state, jax.random.fold_in(key, i))) for i in range(chunks)]
        )[: config.eval.num_samples]
        size = dict(image_size=config.data.image_size, channels=config.data.channels)
        real = {
            split: load_images(config.data.name, split=split, data_dir=config.data.data_dir, **size)
            for split in ("train", "test")
        }
        return {
            "digits_fd": compute_fid(fake, real["train"], network),
            "digits_fd_real_test": compute_fid(real["test"], real["train"], network),
        }

    return evaluate


FAMILY = Family(
    name="dcgan",
    default_config=default_config,
    build_models=build_models,
    build_optimizers=build_optimizers,
    make_batches=make_batches,
    make_train_step=make_train_step,
    make_sample=make_sample,
    make_evaluate=make_evaluate,
)
