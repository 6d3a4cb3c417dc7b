"""The EGAN-protected SRGAN: ×4 super-resolution of key-transformed LR images (issue 6).

The models, data, phases and task losses are the SRGAN family's (`families.srgan`): pixel-loss
(`loss.pixel_loss`, MSE or L1) pre-training for `loss.pretrain_steps`, then one discriminator
update and content + 1e-3 × adversarial for the generator. What changes (`families.egan_image`):

* the generator is `KeyedGenerator(SRResNet)`: an input map in front of SRResNet — a learned
  per-block map, or (`model.adapter="key_inverse"`) the exact inverse of the owner's key transform,
  derived from the key at build time and never stored;
* it is trained on a_k(lr), the block transform of the LR image under the owner's key;
* its loss adds the self-adversarial term on unauthorized LR inputs (raw, random keys, near misses):

      L_G = L_task(G(a_k lr), hr) + λ · mean_u[−min(d(φ(G(a_k lr)), φ(G(u lr))), m)]

with φ the output pixels by default (`loss.self_adversarial`). `model.deep_lock` lists SRResNet sites
(residual branches, up-samplers) that get the owner's key permutation + sign flip when the model is
built with the key (`egan_image_deep`); every build without the key runs the weights scrambled. Evaluation: `egan evaluate`
(`egan_jax.evaluate_i2i`), Y-PSNR/SSIM per input kind against bicubic up-sampling.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax import losses, protection
from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.families import Family, Models, Optimizers
from egan_jax.families import egan_image as protect
from egan_jax.families import srgan as plain


@dataclasses.dataclass(frozen=True)
class ModelConfig(protect.KeyConfig, plain.ModelConfig):
    """SRGAN's model fields plus the key transform's (`egan_image.KeyConfig`).

    `feature_key`: the key also permutes and sign-flips SRResNet's head feature map (the
    `feature_transform` hook), so deleting the input map leaves a thief without it.
    """

    feature_key: bool = False
    # also train against near misses of the feature material (one transposition / sign flip)
    feature_near: bool = False


@dataclasses.dataclass(frozen=True)
class LossConfig(plain.LossConfig):
    self_adversarial: protect.SelfAdversarialConfig = protect.SelfAdversarialConfig(
        weight=0.1, margin=0.5, generator_feature="head"
    )
    unauthorized: protect.UnauthorizedConfig = protect.UnauthorizedConfig()


def default_config() -> Config:
    """The plain family's defaults (data, schedule, optimiser) with the protected model and losses."""
    return dataclasses.replace(
        plain.default_config(), family="egan_srgan", model=ModelConfig(), loss=LossConfig()
    )


def _check(config: Config) -> None:
    plain._check(config)
    protect.check_protection(config, (config.data.image_size // config.model.scale,))
    if config.loss.self_adversarial.features == "discriminator":
        raise ConfigError(
            "egan_srgan: loss.self_adversarial.features='discriminator' is not supported (the "
            "discriminator is untrained during pre-training); use 'output' or 'generator'"
        )


def build_models(config: Config, rngs: nnx.Rngs) -> Models:
    _check(config)
    models = plain.build_models(config, rngs)
    models["generator"] = protect.keyed(config, models["generator"], rngs)
    return models


def build_optimizers(config: Config, models: Models) -> Optimizers:
    return protect.protected_optimizers(config, models, ("generator",), ("discriminator",))


def make_batches(config: Config):
    return plain.make_batches(config)


def make_train_step(config: Config):
    _check(config)
    from egan_jax.models.vgg import content_loss

    use_vgg = bool(config.loss.vgg_weights)
    if not use_vgg:
        warnings.warn(
            "egan_srgan: no loss.vgg_weights configured, so the content loss falls back to the "
            "pixel MSE (+ adversarial); see egan_jax.models.vgg to convert VGG19 weights.",
            stacklevel=2,
        )
    weight, feature_scale = config.loss.adversarial_weight, config.loss.feature_scale
    authorized = protect.authorize(config)
    objective = protection.compose(protect.objective_config(config))
    pixel = plain.pixel_loss(config)

    def content(network, sr, hr):
        if network is not None:
            return content_loss(network, sr, hr, feature_scale=feature_scale)
        return pixel(sr, hr)

    def protected_loss(generator, lr, hr, key, task_of):
        sr, features = generator(authorized(lr), return_features=True)
        task, extras = task_of(sr)
        unauthorized = protect.unauthorized_features(config, generator, lr, sr, features, key)
        total, parts = objective({"task": task, "features": unauthorized})
        return total, (parts, extras, jnp.mean(losses.l2(sr, hr)))

    def pretrain(models, optimizers, lr, hr, key):
        grad_fn = nnx.value_and_grad(
            lambda g: protected_loss(g, lr, hr, key, lambda sr: (pixel(sr, hr), {})),
            has_aux=True,
        )
        (_, (parts, _, mse)), grads = grad_fn(models["generator"])
        optimizers["generator"].update(models["generator"], grads)
        zero = jnp.zeros((), jnp.float32)
        return {"pixel_mse": mse, "content": mse, "g_adv": zero, "d_loss": zero, **_named(parts)}

    def adversarial(models, optimizers, lr, hr, key):
        generator, discriminator = models["generator"], models["discriminator"]
        count = lr.shape[0]
        fake = jax.lax.stop_gradient(generator(authorized(lr)))

        def d_loss(discriminator):
            logits = discriminator(jnp.concatenate([hr, fake]))
            return jnp.mean(losses.nonsaturating_discriminator(logits[:count], logits[count:]))

        loss_d, grads = nnx.value_and_grad(d_loss)(discriminator)
        optimizers["discriminator"].update(discriminator, grads)

        def g_loss(generator, discriminator, network):
            def task_of(sr):
                adv = losses.nonsaturating_generator(discriminator(sr))
                cont = content(network, sr, hr)
                return cont + weight * adv, {"content": jnp.mean(cont), "g_adv": jnp.mean(adv)}

            return protected_loss(generator, lr, hr, key, task_of)

        (_, (parts, extras, mse)), grads = nnx.value_and_grad(g_loss, has_aux=True)(
            generator, discriminator, models.get("content")
        )
        optimizers["generator"].update(generator, grads)
        return {"pixel_mse": mse, **extras, "d_loss": loss_d, **_named(parts)}

    def train_step(
        models: Models, optimizers: Optimizers, batch: Mapping[str, jax.Array], key: jax.Array
    ) -> dict[str, jax.Array]:
        in_pretraining = "adversarial" not in batch  # static: each phase compiles separately
        phase = pretrain if in_pretraining else adversarial
        metrics = phase(models, optimizers, batch["lr"], batch["hr"], key)
        metrics["pretraining"] = jnp.float32(in_pretraining)
        metrics["content_vgg"] = jnp.float32(use_vgg)
        return metrics

    return train_step


def _named(parts: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    return {f"g_{name}": value for name, value in parts.items()}


def make_sample(config: Config):
    from egan_jax.data import to_float

    lr_tiles = to_float(plain._test_tiles(config)[0])
    authorized = protect.authorize(config)

    def sample(models: Models, key: jax.Array, n: int) -> jax.Array:
        del key  # SR of the first n held-out tiles, with the owner's key
        generator = models["generator"]
        generator.eval()
        picks = np.arange(n) % len(lr_tiles)
        return generator(authorized(jnp.asarray(lr_tiles[picks])))

    return sample


def make_evaluate(config: Config):
    from egan_jax.evaluate_i2i import sr_family_scores

    return lambda models, key: sr_family_scores(config, models)


FAMILY = Family(
    name="egan_srgan",
    default_config=default_config,
    build_models=build_models,
    build_optimizers=build_optimizers,
    make_batches=make_batches,
    make_train_step=make_train_step,
    make_sample=make_sample,
    make_evaluate=make_evaluate,
    key_fingerprint=protect.key_fingerprint,
)
