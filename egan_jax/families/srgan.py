"""The SRGAN family: ×4 super-resolution, SRResNet + VGG-style discriminator (REFERENCE.md §4).

Two phases, chosen by the batch: `make_batches` adds the key "adversarial" (a per-example marker)
to the batches of steps ≥ `loss.pretrain_steps`, so each phase is its own compiled program. (A
run-time `lax.cond` on the step would be simpler, but XLA:CPU runs convolutions inside a conditional
~30× slower — measured: a 3×3 64->256 conv kernel gradient at 4×48×48, 0.15 s plain vs 4.5 s in
`lax.cond`.)
- steps < `loss.pretrain_steps`: SRResNet pre-training on the pixel MSE only (the discriminator is
  not touched);
- afterwards: one discriminator update (binary cross-entropy, `losses.nonsaturating_discriminator`)
  and one generator update on content + `loss.adversarial_weight` (1e-3) × non-saturating
  adversarial loss.
The content loss is the MSE of VGG19 features (`loss.vgg_layer`, relu5_4 by default, scaled by
`loss.feature_scale` = 1/12.75 as Ledig et al.) when `loss.vgg_weights` names a converted weights
file (see `egan_jax.models.vgg`); without one it falls back to the pixel MSE, says so with a warning
when the step is built, and logs `content_vgg = 0` with every step's metrics (1 with VGG).
The VGG network is a model of the run (role "content", no optimizer, never updated): its weights
are saved with the checkpoints; the weights file must still exist when a run resumes, since the
models are rebuilt from the config before the checkpoint is restored into them.

Data: `data.name` "photos" (bundled) or "tfds:div2k/bicubic_x4"; `data.image_size` is the HR crop
(96), LR crops are image_size / model.scale. Evaluation: Y-channel PSNR/SSIM (4-px border) of the
held-out tiles (`data_paired.load_sr_pairs(split="test")`) against bicubic up-sampling.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax import losses
from egan_jax.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig
from egan_jax.errors import ConfigError
from egan_jax.families import Family, Models, Optimizers, adam_optimizers


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    scale: int = 4
    width: int = 64
    num_blocks: int = 16
    output: str = "tanh"  # or "identity"
    skip: str = "none"  # "bicubic"/"bicubic_detail": residual over bicubic up-sampling (models)
    discriminator_width: int = 64
    norm: str = "batch"  # SRResNet's batch norm; "none": EDSR's BN-free generator
    residual_scale: float = 1.0  # each residual block's branch × this (EDSR: 0.1)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    pretrain_steps: int = 1000  # pixel-loss steps before the GAN phase
    pixel_loss: str = "l2"  # pre-training and pixel-content loss: "l2" (MSE, Ledig et al.) or "l1"
    adversarial_weight: float = 1e-3
    vgg_weights: str | None = None  # a converted VGG19 .npz; None: pixel content loss
    vgg_layer: str = "relu5_4"
    feature_scale: float = 1.0 / 12.75


def default_config() -> Config:
    return Config(
        family="srgan",
        model=ModelConfig(),
        loss=LossConfig(),
        data=DataConfig(name="photos", split="train", image_size=96, channels=3),
        train=TrainConfig(steps=2000, batch_size=16),
        optim=OptimConfig(learning_rate=1e-4, b1=0.9, b2=0.999),
        eval=EvalConfig(every=0),
    )


def _check(config: Config) -> None:
    scale, size = config.model.scale, config.data.image_size
    if config.data.channels != 3:
        raise ConfigError(f"srgan needs RGB: data.channels must be 3, got {config.data.channels}")
    if size % scale or size // scale < 4 or size < 16:
        raise ConfigError(
            f"data.image_size={size} (the HR crop) must be a multiple of model.scale={scale}, "
            "at least 16 px; use e.g. 96"
        )
    if config.loss.pretrain_steps < 0:
        raise ConfigError(f"loss.pretrain_steps must be >= 0, got {config.loss.pretrain_steps}")
    if config.loss.pixel_loss not in PIXEL_LOSSES:
        raise ConfigError(
            f"loss.pixel_loss={config.loss.pixel_loss!r} is unknown; use one of {PIXEL_LOSSES}"
        )


PIXEL_LOSSES = ("l2", "l1")


def pixel_loss(config: Config):
    """The per-example pixel loss `loss.pixel_loss` names (`losses.l2` or `losses.l1`)."""
    return {"l2": losses.l2, "l1": losses.l1}[config.loss.pixel_loss]


def build_models(config: Config, rngs: nnx.Rngs) -> Models:
    _check(config)
    from egan_jax.models.srgan import Discriminator, Generator

    model = config.model
    models: Models = {
        "generator": Generator(
            scale=model.scale,
            width=model.width,
            num_blocks=model.num_blocks,
            output=model.output,
            skip=model.skip,
            norm=model.norm,
            residual_scale=model.residual_scale,
            rngs=rngs,
        ),
        "discriminator": Discriminator(width=model.discriminator_width, rngs=rngs),
    }
    if config.loss.vgg_weights:
        from egan_jax.models.vgg import load_vgg19

        models["content"] = load_vgg19(config.loss.vgg_weights, layer=config.loss.vgg_layer)
    return models


def build_optimizers(config: Config, models: Models) -> Optimizers:
    return adam_optimizers(config, models, ("generator", "discriminator"))  # not the VGG content


def make_batches(config: Config):
    """Bundled photos: `sr_batch_at` (Philox crops of in-memory photos); a tfds split: grain
    (`data_grain.tfds_sr_batches`, epoch-shuffled records, one random crop each). Both pure in step."""
    _check(config)
    from egan_jax.data_paired import load_sr_photos, sr_batch_at

    if config.data.name.startswith("tfds:"):
        from egan_jax.data_grain import tfds_sr_batches

        read = tfds_sr_batches(
            config.data.name.removeprefix("tfds:"), split=config.data.split,
            scale=config.model.scale, hr_size=config.data.image_size,
            data_dir=config.data.data_dir, batch_size=config.train.batch_size, seed=config.seed,
        )  # fmt: skip
    else:
        photos = load_sr_photos(
            config.data.name, split=config.data.split, scale=config.model.scale,
            data_dir=config.data.data_dir,
        )  # fmt: skip

        def read(step: int, process_index: int, process_count: int) -> dict[str, np.ndarray]:
            lr, hr = sr_batch_at(
                photos,
                step,
                batch_size=config.train.batch_size,
                seed=config.seed,
                hr_size=config.data.image_size,
                process_index=process_index,
                process_count=process_count,
            )
            return {"lr": lr, "hr": hr}

    def batches(step: int, process_index: int, process_count: int) -> dict[str, np.ndarray]:
        batch = dict(read(step, process_index, process_count))
        if step >= config.loss.pretrain_steps:
            batch["adversarial"] = np.ones(len(batch["lr"]), np.float32)
        return batch

    return batches


def make_train_step(config: Config):
    _check(config)
    from egan_jax.models.vgg import content_loss

    use_vgg = bool(config.loss.vgg_weights)
    if not use_vgg:
        warnings.warn(
            "srgan: no loss.vgg_weights configured, so the content loss falls back to the pixel "
            "MSE (+ adversarial); convert VGG19 weights as egan_jax.models.vgg explains and set "
            "loss.vgg_weights for the perceptual loss.",
            stacklevel=2,
        )
    weight = config.loss.adversarial_weight
    feature_scale = config.loss.feature_scale
    pixel = pixel_loss(config)

    def content(network: nnx.Module | None, sr: jax.Array, hr: jax.Array) -> jax.Array:
        if network is not None:
            return jnp.mean(content_loss(network, sr, hr, feature_scale=feature_scale))
        return jnp.mean(pixel(sr, hr))

    def pretrain(models: Models, optimizers: Optimizers, lr: jax.Array, hr: jax.Array):
        def g_loss(generator):
            sr = generator(lr)
            return jnp.mean(pixel(sr, hr)), jnp.mean(losses.l2(sr, hr))

        (loss, mse), grads = nnx.value_and_grad(g_loss, has_aux=True)(models["generator"])
        optimizers["generator"].update(models["generator"], grads)
        zero = jnp.zeros((), jnp.float32)
        return {"pixel_mse": mse, "content": loss, "g_adv": zero, "d_loss": zero}

    def adversarial(models: Models, optimizers: Optimizers, lr: jax.Array, hr: jax.Array):
        generator, discriminator = models["generator"], models["discriminator"]
        count = lr.shape[0]
        fake = jax.lax.stop_gradient(generator(lr))

        def d_loss(discriminator):
            logits = discriminator(jnp.concatenate([hr, fake]))
            return jnp.mean(losses.nonsaturating_discriminator(logits[:count], logits[count:]))

        loss_d, grads = nnx.value_and_grad(d_loss)(discriminator)
        optimizers["discriminator"].update(discriminator, grads)

        def g_loss(generator, discriminator, network):
            sr = generator(lr)
            adv = jnp.mean(losses.nonsaturating_generator(discriminator(sr)))
            cont = content(network, sr, hr)
            return cont + weight * adv, (cont, adv, jnp.mean(losses.l2(sr, hr)))

        (_, (cont, adv, mse)), grads = nnx.value_and_grad(g_loss, has_aux=True)(
            generator, discriminator, models.get("content")
        )
        optimizers["generator"].update(generator, grads)
        return {"pixel_mse": mse, "content": cont, "g_adv": adv, "d_loss": loss_d}

    def train_step(
        models: Models, optimizers: Optimizers, batch: Mapping[str, jax.Array], key: jax.Array
    ) -> dict[str, jax.Array]:
        del key  # the step is deterministic given the batch
        in_pretraining = "adversarial" not in batch  # static: each phase compiles separately
        phase = pretrain if in_pretraining else adversarial
        metrics = phase(models, optimizers, batch["lr"], batch["hr"])
        metrics["pretraining"] = jnp.float32(in_pretraining)
        metrics["content_vgg"] = jnp.float32(use_vgg)
        return metrics

    return train_step


def _test_tiles(config: Config) -> tuple[np.ndarray, np.ndarray]:
    from egan_jax.data_paired import load_sr_pairs

    split = "test" if config.data.name == "photos" else "validation"
    return load_sr_pairs(
        config.data.name, split=split, hr_size=config.data.image_size, scale=config.model.scale,
        data_dir=config.data.data_dir, limit=None if config.data.name == "photos" else 10,
    )  # fmt: skip


def make_sample(config: Config):
    from egan_jax.data import to_float

    lr_tiles = to_float(_test_tiles(config)[0])

    def sample(models: Models, key: jax.Array, n: int) -> jax.Array:
        del key  # SR of the first n held-out tiles (repeated if n exceeds them)
        generator = models["generator"]
        generator.eval()
        picks = np.arange(n) % len(lr_tiles)
        return generator(jnp.asarray(lr_tiles[picks]))

    return sample


def _whole_photo_scores(generator, forward, photos, scale: int) -> dict[str, float]:
    """Y PSNR/SSIM per whole held-out photo (the SR literature's per-image convention), averaged."""
    from egan_jax.data import to_float, to_uint8
    from egan_jax.image_quality import bicubic_upscale, sr_scores

    rows = []
    for lr, hr in zip(photos.lr, photos.hr, strict=True):
        sr = to_uint8(forward(generator, to_float(lr[None])))
        ours = sr_scores(sr, hr[None], border=scale)
        bicubic = sr_scores(bicubic_upscale(lr[None], scale), hr[None], border=scale)
        rows.append([ours["psnr_y"], ours["ssim_y"], bicubic["psnr_y"], bicubic["ssim_y"]])
    names = ("photo_psnr_y", "photo_ssim_y", "bicubic_photo_psnr_y", "bicubic_photo_ssim_y")
    return dict(zip(names, map(float, np.mean(rows, axis=0)), strict=True))


def make_evaluate(config: Config):
    """Y PSNR/SSIM of the held-out tiles (`psnr_y`, `ssim_y`) and, for the bundled photos, of the
    whole held-out photos (`photo_psnr_y`, `photo_ssim_y`), each with its bicubic floor.

    The tile mean weights every tile equally, so flat tiles (sky), where bicubic is already
    ≥ 45 dB, move it by several dB for errors below one grey level; the whole-photo score is the
    per-image PSNR of the SR benchmarks (Set5/Set14/DIV2K).
    """
    from egan_jax.data import to_float, to_uint8
    from egan_jax.data_paired import load_sr_photos
    from egan_jax.image_quality import bicubic_upscale, sr_scores

    lr, hr = _test_tiles(config)
    scale = config.model.scale
    bicubic = sr_scores(bicubic_upscale(lr, scale), hr, border=scale)
    photos = None
    if config.data.name == "photos":
        photos = load_sr_photos("photos", split="test", scale=scale)

    def evaluate(models: Models, key: jax.Array) -> dict[str, float]:
        del key
        generator = models["generator"]
        generator.eval()
        forward = nnx.jit(lambda g, x: g(x))
        sr = np.concatenate(
            [to_uint8(forward(generator, to_float(lr[i : i + 16]))) for i in range(0, len(lr), 16)]
        )
        scores = sr_scores(sr, hr, border=scale)
        if photos is not None:
            scores.update(_whole_photo_scores(generator, forward, photos, scale))
        generator.train()
        return {**scores, **{f"bicubic_{name}": value for name, value in bicubic.items()}}

    return evaluate


FAMILY = Family(
    name="srgan",
    default_config=default_config,
    build_models=build_models,
    build_optimizers=build_optimizers,
    make_batches=make_batches,
    make_train_step=make_train_step,
    make_sample=make_sample,
    make_evaluate=make_evaluate,
)
