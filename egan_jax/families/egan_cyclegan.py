"""The EGAN-protected CycleGAN: the A -> B direction works only on key-transformed images (issue 6).

Models, data, pool, schedule and losses are the CycleGAN family's (`families.cyclegan`). The
protected direction's generator `generator_ab` is a `KeyedGenerator` (`families.egan_image`) and
always sees a_k(·), the owner's block transform of its input: the source image real_a, the
reconstruction of the B cycle (G_ab(a_k(G_ba(b))) ≈ b) and the identity term (G_ab(a_k(b)) ≈ b).
G_ba is the plain, unprotected direction. The generator loss adds the self-adversarial term on
unauthorized versions u(real_a) (raw, random keys, near misses):

    L_G = L_cycleGAN + λ · mean_u[−min(d(φ(G_ab(a_k a)), φ(G_ab(u a))), m)]

with φ the last feature map of the B discriminator by default (`loss.self_adversarial`).

Where the key enters (`ModelConfig`): with the input transform alone, wrong keys and near misses
still give gravel (a block-shuffled grass crop is still grass). `model.input_lock` and
`model.feature_lock` add DCGAN-style locks (a secret offset before the keyed signed permutation,
the model subtracting γ = a_k(0)) on the input image and on G_ab's head features: every input but
the owner's leaves a large residual. `model.deep_lock` adds the owner's key permutation + sign flip
of G_ab's channels at the listed sites (down-samplers, residual branches, up-samplers;
`egan_image_deep`), never stored, and `model.adapter="key_inverse"` replaces the learned input
map by the exact inverse of the key transform (also from the key, never stored).
`loss.wrapper_deleted` (`egan_image_bypass`) also pushes the mean colour or grey level of the
wrapper-deleted build's output away from the keyed output's, and optionally its coarse grey
contrast (`structure`). `experiments/egan_cyclegan_grass2gravel.py` (both
locks, exact inverse, deep lock at every site, that term) has the measured comparison; `_deep` is
the learned map + deep lock.

Evaluation: `egan evaluate` (`egan_jax.evaluate_i2i`): a Fréchet distance per direction and the
A -> B -> A cycle PSNR per input kind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax import losses, protection
from egan_jax.config import Config
from egan_jax.families import Family, Models, Optimizers
from egan_jax.families import cyclegan as plain
from egan_jax.families import egan_image as protect
from egan_jax.families import egan_image_bypass as bypass

PROTECTED = "generator_ab"


@dataclasses.dataclass(frozen=True)
class ModelConfig(protect.KeyConfig, plain.ModelConfig):
    """CycleGAN's model fields plus the key transform's (`egan_image.KeyConfig`).

    `feature_key`: the key also permutes and sign-flips G_ab's head feature map (after the 7×7
    conv + norm + ReLU, the generator's `feature_transform` hook): a keyed lock inside G, as
    DCGAN's `feature_lock`. Without it the key lives only in the input transform, which a
    translation network largely tolerates on texture domains (a block-shuffled grass crop is
    still grass). `feature_near`: also train against near misses of that feature material.
    `feature_lock` (implies the feature key): DCGAN's lock — the permutation + sign flip after a
    secret per-channel offset β_k, G_ab storing γ = a_k(0) and subtracting it, so no key, other
    keys and near misses of the feature material all leave a large residual (`egan_jax.feature_lock`).
    """

    feature_key: bool = False
    feature_near: bool = False
    feature_lock: bool = False
    # the same lock on the input image: T_k(x + β_k), G_ab subtracting γ = T_k(β_k) before its
    # input map (`egan_image_lock`), so near misses of the input transform leave a residual too
    input_lock: bool = False


@dataclasses.dataclass(frozen=True)
class LossConfig(plain.LossConfig):
    # on D_b's last feature map: measured better than output pixels (README notes)
    self_adversarial: protect.SelfAdversarialConfig = protect.SelfAdversarialConfig(
        weight=1.0,
        margin=1.0,
        features="discriminator",
        generator_feature="trunk",
        discriminator_feature="conv4",
    )
    unauthorized: protect.UnauthorizedConfig = protect.UnauthorizedConfig(fraction=1.0)
    # the colour-mean term on the wrapper-deleted pair (`egan_image_bypass`; weight 0: off)
    wrapper_deleted: bypass.WrapperDeletedConfig = bypass.WrapperDeletedConfig()


def default_config() -> Config:
    """The plain family's defaults (data, schedule, optimiser) with the protected model and losses."""
    return dataclasses.replace(
        plain.default_config(), family="egan_cyclegan", model=ModelConfig(), loss=LossConfig()
    )


def _check(config: Config) -> None:
    plain._check(config)
    protect.check_protection(config, (config.data.image_size,))


def build_models(config: Config, rngs: nnx.Rngs) -> Models:
    _check(config)
    models = plain.build_models(config, rngs)
    models[PROTECTED] = protect.keyed(config, models[PROTECTED], rngs)
    return models


def build_optimizers(config: Config, models: Models) -> Optimizers:
    others = ("generator_ba", *plain.DISCRIMINATORS)
    return protect.protected_optimizers(config, models, (PROTECTED,), others)


def make_batches(config: Config):
    return plain.make_batches(config)


def make_train_step(config: Config):
    _check(config)
    cycle_weight = config.loss.cycle_weight
    identity_weight = config.loss.identity_weight * cycle_weight
    authorized = protect.authorize(config)
    objective = protection.compose(protect.objective_config(config))

    def generator_loss(logits: jax.Array) -> jax.Array:
        return 2.0 * plain._patch_losses(losses.least_squares_generator, logits)

    def train_step(
        models: Models, optimizers: Optimizers, batch: Mapping[str, jax.Array], key: jax.Array
    ) -> dict[str, jax.Array]:
        real_a, real_b = batch["a"], batch["b"]
        sa_key, key_a, key_b = jax.random.split(key, 3)

        def g_loss(g_ab, g_ba, d_a, d_b):
            fake_b, features = g_ab(authorized(real_a), return_features=True)
            fake_a = g_ba(real_b)
            adv = generator_loss(d_b(fake_b)) + generator_loss(d_a(fake_a))
            cycle = losses.l1(g_ba(fake_b), real_a) + losses.l1(g_ab(authorized(fake_a)), real_b)
            identity = losses.l1(g_ab(authorized(real_b)), real_b) + losses.l1(g_ba(real_a), real_a)
            task = adv + cycle_weight * cycle + identity_weight * identity
            unauthorized = protect.unauthorized_features(
                config, g_ab, real_a, fake_b, features, sa_key, discriminator=d_b
            )
            total, parts = objective({"task": task, "features": unauthorized})
            deleted = bypass.wrapper_deleted_term(config, unauthorized)
            if deleted is not None:
                total = total + config.loss.wrapper_deleted.weight * deleted
                parts = parts | {"wrapper_deleted": deleted}
            means = (jnp.mean(adv), jnp.mean(cycle), jnp.mean(identity))
            return total, (fake_a, fake_b, parts, means)

        generators = tuple(models[role] for role in plain.GENERATORS)
        discriminators = tuple(models[role] for role in plain.DISCRIMINATORS)
        grad_fn = nnx.value_and_grad(g_loss, argnums=(0, 1), has_aux=True)
        (loss_g, (fake_a, fake_b, parts, (adv, cycle, identity))), grads = grad_fn(
            *generators, *discriminators
        )
        for role, model, grad in zip(plain.GENERATORS, generators, grads, strict=True):
            optimizers[role].update(model, grad)

        metrics = {"g_loss": loss_g, "g_adv": adv, "cycle_l1": cycle, "identity_l1": identity}
        metrics.update({f"g_{name}": value for name, value in parts.items()})
        metrics.update(
            plain.update_discriminators(
                models, optimizers, (real_a, real_b), (fake_a, fake_b), (key_a, key_b)
            )
        )
        return metrics

    return train_step


def make_sample(config: Config):
    from egan_jax.data import to_float

    test_a = to_float(plain._test_domains(config)[0])
    authorized = protect.authorize(config)

    def sample(models: Models, key: jax.Array, n: int) -> jax.Array:
        del key  # A -> B translations of the first n test images of A, with the owner's key
        images = jnp.asarray(test_a[np.arange(n) % len(test_a)])
        return models[PROTECTED](authorized(images))

    return sample


def make_evaluate(config: Config):
    from egan_jax.evaluate_i2i import cycle_family_scores

    return lambda models, key: cycle_family_scores(config, models)


FAMILY = Family(
    name="egan_cyclegan",
    default_config=default_config,
    build_models=build_models,
    build_optimizers=build_optimizers,
    make_batches=make_batches,
    make_train_step=make_train_step,
    make_sample=make_sample,
    make_evaluate=make_evaluate,
    key_fingerprint=protect.key_fingerprint,
)
