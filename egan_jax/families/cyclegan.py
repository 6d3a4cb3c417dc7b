"""The CycleGAN family: two ResNet generators, two 70×70 PatchGANs (Zhu et al., ICCV 2017).

Losses as the reference code (junyanz/pytorch-CycleGAN-and-pix2pix): LSGAN — generators minimise
(D(G(x)) − 1)² (= 2 × `losses.least_squares_generator`), discriminators ½[(D(y) − 1)² + D(ŷ)²]
(`losses.least_squares_discriminator`), averaged over patches; cycle L1 weighted λ = 10
(`loss.cycle_weight`) per direction; identity L1 weighted `loss.identity_weight` × λ (0.5 × 10).
Discriminators see fakes drawn from a history pool of 50 generated images per domain
(`ImagePool`, Shrivastava et al. 2017): its buffers are variables of the run's state, so they are
checkpointed and a resumed run continues bit-identically; its random choices come from the step key.
Adam 2e-4, β = (0.5, 0.999), learning rate constant for the first half, then linearly to zero
(`optim.schedule = "linear_decay"`, `decay_start = 0.5`).

Roles: generator_ab (A -> B), generator_ba, discriminator_a (real A vs B -> A fakes),
discriminator_b, and "pools" (no optimizer). Data: `data_paired.load_unpaired` ("grass2gravel"
bundled, or "tfds:cycle_gan/<name>"). Evaluation: cycle-reconstruction PSNR per direction on the
test split, and the Fréchet distance of fakes to real test images in the bundled feature space
when `model.fid_weights` names the FID InceptionV3 .npz (see `egan_jax.models.inception`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax import losses
from egan_jax.config import Config, DataConfig, EvalConfig, OptimConfig, TrainConfig
from egan_jax.errors import ConfigError
from egan_jax.families import Family, Models, Optimizers, adam_optimizers

GENERATORS = ("generator_ab", "generator_ba")
DISCRIMINATORS = ("discriminator_a", "discriminator_b")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    width: int = 64
    num_blocks: int = 9
    discriminator_width: int = 64
    upsample: str = "vjp"  # or "resize_conv"
    fid_weights: str | None = None  # FID InceptionV3 .npz for evaluation (optional)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    cycle_weight: float = 10.0
    identity_weight: float = 0.5  # times cycle_weight, as the reference code
    pool_size: int = 50


def default_config() -> Config:
    return Config(
        family="cyclegan",
        model=ModelConfig(),
        loss=LossConfig(),
        data=DataConfig(name="grass2gravel", split="train", image_size=32, channels=3),
        train=TrainConfig(steps=2000, batch_size=1),
        optim=OptimConfig(learning_rate=2e-4, b1=0.5, b2=0.999, schedule="linear_decay"),
        eval=EvalConfig(every=0),
    )


class PoolBuffer(nnx.Variable):
    """State of an image pool: saved with checkpoints, never trained."""


class ImagePool(nnx.Module):
    """History of up to `size` generated images [size, H, W, C] and how many are stored."""

    def __init__(self, size: int, image_shape: tuple[int, int, int]):
        self.size = size
        self.images = PoolBuffer(jnp.zeros((max(size, 1), *image_shape), jnp.float32))
        self.count = PoolBuffer(jnp.zeros((), jnp.int32))

    def query(self, fakes: jax.Array, key: jax.Array) -> jax.Array:
        """Images for the discriminator, one per fake, as the reference `ImagePool.query`.

        While the pool is not full a fake is stored and returned; afterwards, with probability ½,
        a random stored image is returned and replaced by the fake, else the fake itself.
        """
        if self.size == 0:
            return fakes

        def one(carry, inputs):
            images, count = carry
            fake, key = inputs
            coin_key, index_key = jax.random.split(key)
            swap = jax.random.uniform(coin_key) < 0.5
            index = jax.random.randint(index_key, (), 0, self.size)
            filling = count < self.size
            slot = jnp.where(filling, count, index)
            stored = images[slot]
            write = filling | swap
            images = images.at[slot].set(jnp.where(write, fake, stored))
            out = jnp.where(~filling & swap, stored, fake)
            return (images, count + filling.astype(jnp.int32)), out

        keys = jax.random.split(key, fakes.shape[0])
        (images, count), outs = jax.lax.scan(
            one, (self.images[...], self.count[...]), (jax.lax.stop_gradient(fakes), keys)
        )
        self.images[...] = images
        self.count[...] = count
        return outs


def _check(config: Config) -> None:
    if config.data.image_size % 4 or config.data.image_size < 32:
        raise ConfigError(
            f"data.image_size={config.data.image_size} must be a multiple of 4 and at least 32 "
            "(two ×2 down-samplings; the PatchGAN needs 32 px); use e.g. 32, 128 or 256"
        )
    if config.loss.pool_size < 0:
        raise ConfigError(f"loss.pool_size must be >= 0, got {config.loss.pool_size}")


def build_models(config: Config, rngs: nnx.Rngs) -> Models:
    _check(config)
    from egan_jax.models.cyclegan import Generator, PatchDiscriminator

    model, channels = config.model, config.data.channels
    shape = (config.data.image_size, config.data.image_size, channels)
    models: Models = {}
    for role in GENERATORS:
        models[role] = Generator(
            channels=channels,
            width=model.width,
            num_blocks=model.num_blocks,
            upsample=model.upsample,
            rngs=rngs,
        )
    for role in DISCRIMINATORS:
        models[role] = PatchDiscriminator(
            channels=channels, width=model.discriminator_width, rngs=rngs
        )
    models["pools"] = nnx.Dict(
        a=ImagePool(config.loss.pool_size, shape), b=ImagePool(config.loss.pool_size, shape)
    )
    return models


def build_optimizers(config: Config, models: Models) -> Optimizers:
    return adam_optimizers(config, models, (*GENERATORS, *DISCRIMINATORS))  # not the image pools


def make_batches(config: Config):
    """Bundled domains: `unpaired_batch_at` over in-memory images; a tfds cycle_gan/* split: grain
    (`data_grain.tfds_unpaired_batches`, two independent streams). Both pure in step."""
    _check(config)
    from egan_jax.data_paired import load_unpaired, unpaired_batch_at

    if config.data.name.startswith("tfds:"):
        from egan_jax.data_grain import tfds_unpaired_batches

        return tfds_unpaired_batches(
            config.data.name.removeprefix("tfds:"), split=config.data.split,
            image_size=config.data.image_size, channels=config.data.channels,
            data_dir=config.data.data_dir, batch_size=config.train.batch_size, seed=config.seed,
        )  # fmt: skip

    domain_a, domain_b = load_unpaired(
        config.data.name, split=config.data.split, image_size=config.data.image_size,
        channels=config.data.channels, data_dir=config.data.data_dir,
    )  # fmt: skip

    def batches(step: int, process_index: int, process_count: int) -> dict[str, np.ndarray]:
        a, b = unpaired_batch_at(
            domain_a,
            domain_b,
            step,
            batch_size=config.train.batch_size,
            seed=config.seed,
            process_index=process_index,
            process_count=process_count,
        )
        return {"a": a, "b": b}

    return batches


def _patch_losses(per_value_loss, *logits: jax.Array) -> jax.Array:
    """Apply a rank-1 per-example GAN loss to patch logits [N, h, w]; mean over patches: [N]."""
    count = logits[0].shape[0]
    values = per_value_loss(*(x.reshape(-1) for x in logits))
    return jnp.mean(values.reshape(count, -1), axis=1)


def update_discriminators(
    models: Models,
    optimizers: Optimizers,
    reals: tuple[jax.Array, jax.Array],
    fakes: tuple[jax.Array, jax.Array],
    keys: tuple[jax.Array, jax.Array],
) -> dict[str, jax.Array]:
    """One LSGAN update of D_A and D_B on (real, image-pool sample of the fakes); their losses.

    `reals`, `fakes` and `keys` are (domain A, domain B) pairs; fakes go through the history pools.
    """
    pooled = [models["pools"][d].query(f, k) for d, f, k in zip("ab", fakes, keys, strict=True)]

    def d_loss(discriminator, real, fake):
        return jnp.mean(
            _patch_losses(losses.least_squares_discriminator, discriminator(real),
                          discriminator(fake))
        )  # fmt: skip

    metrics = {}
    for role, real, fake in zip(DISCRIMINATORS, reals, pooled, strict=True):
        loss, grad = nnx.value_and_grad(d_loss)(models[role], real, fake)
        optimizers[role].update(models[role], grad)
        metrics[f"d_loss_{role[-1]}"] = loss
    return metrics


def make_train_step(config: Config):
    _check(config)
    cycle_weight = config.loss.cycle_weight
    identity_weight = config.loss.identity_weight * cycle_weight

    def generator_loss(logits: jax.Array) -> jax.Array:
        return 2.0 * _patch_losses(losses.least_squares_generator, logits)

    def train_step(
        models: Models, optimizers: Optimizers, batch: Mapping[str, jax.Array], key: jax.Array
    ) -> dict[str, jax.Array]:
        real_a, real_b = batch["a"], batch["b"]

        def g_loss(g_ab, g_ba, d_a, d_b):
            fake_b, fake_a = g_ab(real_a), g_ba(real_b)
            adv = jnp.mean(generator_loss(d_b(fake_b))) + jnp.mean(generator_loss(d_a(fake_a)))
            cycle = jnp.mean(losses.l1(g_ba(fake_b), real_a)) + jnp.mean(
                losses.l1(g_ab(fake_a), real_b)
            )
            identity = jnp.mean(losses.l1(g_ab(real_b), real_b)) + jnp.mean(
                losses.l1(g_ba(real_a), real_a)
            )
            total = adv + cycle_weight * cycle + identity_weight * identity
            return total, (fake_a, fake_b, adv, cycle, identity)

        generators = tuple(models[role] for role in GENERATORS)
        discriminators = tuple(models[role] for role in DISCRIMINATORS)
        grad_fn = nnx.value_and_grad(g_loss, argnums=(0, 1), has_aux=True)
        (loss_g, (fake_a, fake_b, adv, cycle, identity)), grads = grad_fn(
            *generators, *discriminators
        )
        for role, model, grad in zip(GENERATORS, generators, grads, strict=True):
            optimizers[role].update(model, grad)

        key_a, key_b = jax.random.split(key)
        metrics = {"g_loss": loss_g, "g_adv": adv, "cycle_l1": cycle, "identity_l1": identity}
        metrics.update(
            update_discriminators(
                models, optimizers, (real_a, real_b), (fake_a, fake_b), (key_a, key_b)
            )
        )
        return metrics

    return train_step


def _test_domains(config: Config) -> tuple[np.ndarray, np.ndarray]:
    from egan_jax.data_paired import load_unpaired

    return load_unpaired(
        config.data.name, split="test", image_size=config.data.image_size,
        channels=config.data.channels, data_dir=config.data.data_dir,
    )  # fmt: skip


def make_sample(config: Config):
    from egan_jax.data import to_float

    test_a = to_float(_test_domains(config)[0])

    def sample(models: Models, key: jax.Array, n: int) -> jax.Array:
        del key  # A -> B translations of the first n test images of domain A
        return models["generator_ab"](jnp.asarray(test_a[np.arange(n) % len(test_a)]))

    return sample


def make_evaluate(config: Config):
    from egan_jax.data import to_float
    from egan_jax.image_quality import cycle_psnr

    test_a, test_b = (to_float(images) for images in _test_domains(config))
    network = None
    if config.model.fid_weights:
        from egan_jax.models.inception import InceptionFeatures

        network = InceptionFeatures(config.model.fid_weights)

    def evaluate(models: Models, key: jax.Array) -> dict[str, float]:
        del key
        forward = nnx.jit(lambda g, x: g(x))

        def translate(role: str, images: np.ndarray) -> np.ndarray:
            return np.concatenate(
                [np.asarray(forward(models[role], images[i : i + 8])) for i in range(0, len(images), 8)]
            )  # fmt: skip

        fake_b, fake_a = translate("generator_ab", test_a), translate("generator_ba", test_b)
        results = {
            "cycle_psnr_a": float(np.mean(cycle_psnr(test_a, translate("generator_ba", fake_b)))),
            "cycle_psnr_b": float(np.mean(cycle_psnr(test_b, translate("generator_ab", fake_a)))),
        }
        if network is not None:
            from egan_jax.metrics import compute_fid

            results["fid_a_to_b"] = compute_fid(fake_b, test_b, network)
            results["fid_b_to_a"] = compute_fid(fake_a, test_a, network)
        return results

    return evaluate


FAMILY = Family(
    name="cyclegan",
    default_config=default_config,
    build_models=build_models,
    build_optimizers=build_optimizers,
    make_batches=make_batches,
    make_train_step=make_train_step,
    make_sample=make_sample,
    make_evaluate=make_evaluate,
)
