"""The EGAN-protected DCGAN: the DCGAN step plus the self-adversarial term (issue 6).

The models are the plain DCGAN generator and discriminator; the key never enters them. The family's
functions apply it: the train step, the sampler and the evaluation run the generator through the
authorized transform a_k, and the self-adversarial term pushes the outputs for unauthorized
transforms (no key, other keys, near misses; `egan_jax.unauthorized`) away from the authorized ones:

    L_G = w_adv · L_adv(D(G(a_k z))) + λ · mean_u[−min(d(φ(G(a_k z)), φ(G(u z))), m)]   (+ watermark)

Designs (`model.design`, registry `DESIGNS`) — where the key acts:
* ``latent_offset`` / ``latent_halfspace``: authorized latents are moved into a key region
  (`transforms.latent`), which a generator *can* tell apart from prior samples;
* ``feature_perm``: a key permutation + sign flip of the first feature map (the generator's
  `feature_transform` hook); unauthorized = identity or another key's permutation;
* ``feature_lock``: the same after a key offset, the generator storing γ = a_k(0) (`KeyLock`) and
  subtracting it, so any near miss leaves a large residual (`egan_jax.feature_lock`);
* ``latent_perm``: permutation + sign flip of z — a control that cannot work (an isotropic Gaussian
  is invariant under it; see `transforms/latent.py`).

The unauthorized pass runs on the first `unauthorized.fraction` of the batch, one variant per
example (`unauthorized.mix`; a `fresh_near` share gets near misses drawn fresh each step), with
batch norm in running-average mode (what a thief's eval-mode generator sees; it also leaves the
running statistics to the authorized passes).

The key comes from `model.key_file` (None: the public demo key — never for real models); the
checkpoints store only its fingerprint, so resuming or evaluating with another key is a
`KeyMismatchError`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from egan_jax import deep_lock, protection, watermark
from egan_jax.config import Config, DataConfig, OptimConfig, TrainConfig
from egan_jax.errors import ConfigError
from egan_jax.families import Family, Models, adam_optimizers
from egan_jax.families import dcgan as plain
from egan_jax.families.egan_dcgan_config import (  # re-exported: configs import them from here
    BATCH_NORM_MODES,
    DESIGNS,
    FEATURE_KINDS,
    Design,
    LossConfig,
    ModelConfig,
    SelfAdversarialConfig,
    UnauthorizedConfig,
    WatermarkConfig,
)
from egan_jax.families.egan_dcgan_keys import (  # re-exported
    DEMO_PASSPHRASE,
    KeyLock,
    attach_key,
    deep_sites,
    key_fingerprint,
    load_key,
)
from egan_jax.keys import SecretKey
from egan_jax.models import dcgan as dcgan_models
from egan_jax.unauthorized import (
    UnauthorizedSpec,
    Variant,
    Variants,
    make_variants,
    mix,
    mix_with_fresh_near,
    training_spec,
)

__all__ = [
    "BATCH_NORM_MODES",
    "DESIGNS",
    "FAMILY",
    "FEATURE_KINDS",
    "Design",
    "DEMO_PASSPHRASE",
    "KeyLock",
    "attach_key",
    "deep_sites",
    "key_fingerprint",
    "load_key",
    "LossConfig",
    "ModelConfig",
    "SelfAdversarialConfig",
    "UnauthorizedConfig",
    "WatermarkConfig",
]


def default_config() -> Config:
    return Config(
        family="egan_dcgan",
        model=ModelConfig(),
        loss=LossConfig(),
        data=DataConfig(name="digits", image_size=32, channels=1),
        train=TrainConfig(steps=2000, batch_size=64),
        optim=OptimConfig(learning_rate=2e-4, b1=0.5, b2=0.999),
    )


def _check(config: Config) -> None:
    plain._check(config)
    m, loss = config.model, config.loss
    if m.design not in DESIGNS:
        raise ConfigError(f"model.design={m.design!r} is unknown; valid: {sorted(DESIGNS)}")
    if not 0 < loss.unauthorized.fraction <= 1:
        raise ConfigError(
            f"loss.unauthorized.fraction must be in (0, 1], got {loss.unauthorized.fraction}"
        )
    if loss.unauthorized.batch_norm not in BATCH_NORM_MODES:
        raise ConfigError(
            f"loss.unauthorized.batch_norm={loss.unauthorized.batch_norm!r}; valid: "
            f"{list(BATCH_NORM_MODES)}"
        )
    if loss.watermark.batch_norm not in BATCH_NORM_MODES:
        raise ConfigError(
            f"loss.watermark.batch_norm={loss.watermark.batch_norm!r}; valid: "
            f"{list(BATCH_NORM_MODES)}"
        )
    if not 0 <= loss.unauthorized.fresh_near <= 1:
        raise ConfigError(
            f"loss.unauthorized.fresh_near must be in [0, 1], got {loss.unauthorized.fresh_near}"
        )
    if loss.unauthorized.fresh_near > 0 and DESIGNS[m.design].kind not in FEATURE_KINDS:
        raise ConfigError(
            f"loss.unauthorized.fresh_near needs a feature design (feature_perm, feature_lock), "
            f"not {m.design!r}; set fresh_near=0 for latent designs"
        )
    deep_lock.check_sites(m.deep_lock, dcgan_models.GENERATOR_SITES, field="model.deep_lock")
    protection.compose(objective_config(config))  # validates names, raises ConfigError


def design(config: Config) -> Design:
    return DESIGNS[config.model.design]


def variants(
    config: Config, key: SecretKey | None = None, spec: UnauthorizedSpec | None = None
) -> Variants:
    """The authorized and unauthorized transforms of this config (training's spec by default)."""
    spec = spec or training_spec(config)
    d = design(config)
    return make_variants(d.kind, d.transform(config.model), key or load_key(config), spec)


def objective_config(config: Config) -> dict:
    sa = config.loss.self_adversarial
    terms = {
        "task": 1.0,
        "self_adversarial": {
            "weight": sa.weight,
            "divergence": sa.divergence,
            "margin": sa.margin,
            "features": sa.features,
        },
    }
    if sa.ntl_weight > 0:
        terms["ntl"] = {
            "weight": sa.ntl_weight,
            "divergence": sa.divergence,
            "features": sa.features,
        }
    return terms


# --- running the generator through a transform ------------------------------------------------
@contextlib.contextmanager
def feature_hook(generator: nnx.Module, transform: Callable | None) -> Iterator[None]:
    """Temporarily set the generator's `feature_transform` (None: leave it as is)."""
    if transform is None:
        yield
        return
    previous = generator.feature_transform
    generator.feature_transform = transform
    try:
        yield
    finally:
        generator.feature_transform = previous


def locked(generator: nnx.Module, transform: Callable, kind: str) -> Callable:
    """The feature hook of a feature design: `transform`, minus the stored γ for `feature_lock`."""
    if kind != "feature_lock":
        return transform
    return lambda h: transform(h) - generator.key_lock[...].astype(h.dtype)


def generate(generator: nnx.Module, z: jax.Array, transform: Callable, kind: str, **kwargs):
    """G through `transform`: applied to z (latent designs) or the first feature map (feature)."""
    if kind == "latent":
        return generator(transform(z), **kwargs)
    with feature_hook(generator, locked(generator, transform, kind)):
        return generator(z, **kwargs)


def generate_variant(generator: nnx.Module, z: jax.Array, variant: Variant, config: Config):
    return generate(generator, z, variant.apply, design(config).kind)


@contextlib.contextmanager
def batch_norm_mode(generator: nnx.Module, mode: str) -> Iterator[None]:
    """'running': eval-mode statistics; 'batch': batch statistics, running averages restored."""
    if mode == "running":
        generator.eval()
        try:
            yield
        finally:
            generator.train()
    else:
        saved = nnx.state(generator, nnx.BatchStat)
        try:
            yield
        finally:
            nnx.update(generator, saved)


def build_models(config: Config, rngs: nnx.Rngs) -> Models:
    _check(config)
    models = plain.build_models(config, rngs)
    wm = config.loss.watermark
    if wm.signature_weight > 0:  # IPR-GAN's initialisation γ ← |γ|·b, then the sign loss keeps it
        watermark.embed_signature_init(models["generator"], watermark.signature_bits(wm.signature))
    if design(config).kind == "feature_lock":
        models["generator"].key_lock = KeyLock(jnp.asarray(_lock_value(config)))
    models["generator"].deep_lock = deep_lock.owner_lock(
        config.model.key_file, deep_sites(config), lambda: load_key(config)
    )
    return models


def _lock_value(config: Config):
    """γ from the owner's key; zeros when the key file is absent (a model restored without the
    key, e.g. by an attack: the checkpoint then supplies γ)."""
    path = config.model.key_file
    if path is not None and not Path(path).exists():
        return jnp.zeros((8 * config.model.width,), jnp.float32)
    return variants(
        config, spec=UnauthorizedSpec(no_key=False, random_keys=0, near_keys=0, near_materials=0)
    ).authorized.material.lock_value()


def build_optimizers(config: Config, models: Models):
    return adam_optimizers(config, models)


def make_batches(config: Config):
    return plain.make_batches(config)


def make_train_step(config: Config):
    _check(config)
    discriminator_loss, generator_loss = plain.ADVERSARIAL_LOSSES[config.loss.kind]
    latent_dim, weight = config.model.latent_dim, config.loss.adversarial_weight
    d_steps = config.loss.discriminator_steps
    kind = design(config).kind
    vs = variants(config)
    authorized, unauthorized, owner = vs.authorized.apply, vs.unauthorized, vs.authorized.material
    if not unauthorized and config.loss.unauthorized.fresh_near < 1:
        raise ConfigError("loss.unauthorized enables no variant; enable no_key or some keys")
    objective = protection.compose(objective_config(config))
    needed = protection.required_features(objective_config(config))
    sa, u, wm = config.loss.self_adversarial, config.loss.unauthorized, config.loss.watermark
    logo = jnp.asarray(watermark_logo(config))
    trigger = watermark.get_trigger(wm.trigger)
    signature_bits = watermark.signature_bits(wm.signature)

    def train_step(models, optimizers, batch: Mapping[str, jax.Array], key: jax.Array):
        generator, discriminator = models["generator"], models["discriminator"]
        real = batch["images"]
        count = real.shape[0]
        unauth_count = max(1, int(round(count * u.fraction)))
        fresh_count = int(round(unauth_count * u.fresh_near))
        keys = jax.random.split(key, d_steps + 2)

        loss_d, real_mean, fake_mean = plain.update_discriminator(
            discriminator,
            optimizers["discriminator"],
            discriminator_loss,
            real,
            lambda z_d: generate(generator, z_d, authorized, kind),
            [jax.random.normal(d_key, (count, latent_dim)) for d_key in keys[:d_steps]],
        )
        z = jax.random.normal(keys[d_steps], (count, latent_dim))
        mix_key = keys[d_steps + 1]

        def g_loss(generator, discriminator):
            fake, g_feats = generate(generator, z, authorized, kind, return_features=True)
            z_u = z[:unauth_count]
            with batch_norm_mode(generator, u.batch_norm):
                if kind == "latent":
                    z_mixed, _ = mix(unauthorized, z_u, mix_key)
                    fake_u, g_feats_u = generator(z_mixed, return_features=True)
                else:
                    hook = functools.partial(
                        mix_with_fresh_near, unauthorized, owner, fresh_count, mix_key
                    )
                    hook = locked(generator, hook, kind)
                    with feature_hook(generator, hook):
                        fake_u, g_feats_u = generator(z_u, return_features=True)
            need_d = "discriminator" in needed or sa.ntl_weight > 0
            if need_d:
                logits_all, d_feats = discriminator(
                    jnp.concatenate([fake, fake_u]), return_features=True
                )
                logits, logits_u = logits_all[:count], logits_all[count:]
            else:
                logits = discriminator(fake)
            features = {}
            if "output" in needed:
                features["output"] = (fake[:unauth_count], fake_u)
            if "generator" in needed:
                name = sa.generator_feature
                features["generator"] = (g_feats[name][:unauth_count], g_feats_u[name])
            if "discriminator" in needed:
                d = d_feats[sa.discriminator_feature]
                features["discriminator"] = (d[:unauth_count], d[count:])
            inputs = {"task": weight * generator_loss(logits), "features": features}
            if sa.ntl_weight > 0:
                inputs["unauthorized_task"] = generator_loss(logits_u)
            total, parts = objective(inputs)
            if wm.trigger_weight > 0:
                clean = jax.lax.stop_gradient(fake[:unauth_count])
                with batch_norm_mode(generator, wm.batch_norm):
                    marked = generate(generator, trigger(z[:unauth_count]), authorized, kind)
                wm_loss = jnp.mean(
                    watermark.black_box_loss(marked, clean, logo, logo_weight=wm.logo_weight)
                )
                total = total + wm.trigger_weight * wm_loss
                parts["watermark"] = wm_loss
            if wm.signature_weight > 0:
                sign_loss = watermark.signature_loss(generator, signature_bits)
                total = total + wm.signature_weight * sign_loss
                parts["signature"] = sign_loss
            return total, parts

        (loss_g, parts), grads = nnx.value_and_grad(g_loss, has_aux=True)(generator, discriminator)
        optimizers["generator"].update(generator, grads)
        return {
            "d_loss": loss_d,
            "g_loss": loss_g,
            "d_real_logit": real_mean,
            "d_fake_logit": fake_mean,
            **{f"g_{name}": value for name, value in parts.items()},
        }

    return train_step


def watermark_logo(config: Config):
    """The black-box watermark's logo for this config's image size and channels."""
    size = config.loss.watermark.logo_size or watermark.default_logo_size(config.data.image_size)
    return watermark.make_logo(size, config.data.channels)


def variants_cache(config: Config) -> Variants:
    return _variants_cached(config)


@functools.lru_cache(maxsize=8)
def _variants_cached(config: Config) -> Variants:
    return variants(config)


def make_sample(config: Config):
    latent_dim, kind = config.model.latent_dim, design(config).kind
    authorized = variants_cache(config).authorized.apply

    def sample(models: Models, key: jax.Array, n: int) -> jax.Array:
        generator = models["generator"]
        generator.eval()
        return generate(generator, jax.random.normal(key, (n, latent_dim)), authorized, kind)

    return sample


FAMILY = Family(
    name="egan_dcgan",
    default_config=default_config,
    build_models=build_models,
    build_optimizers=build_optimizers,
    make_batches=make_batches,
    make_train_step=make_train_step,
    make_sample=make_sample,
    key_fingerprint=key_fingerprint,
)
