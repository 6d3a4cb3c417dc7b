"""Key estimation: a learned adapter with the frozen stolen generator (issue 6's attack).

* `LatentAdapter`: a residual MLP on the latent, in front of the generator;
* `BlockAdapter`: for images, a per-block linear map (a conv with kernel = stride = M), in front;
* `SiteAdapter`: a learned C×C channel map at every lock site inside the generator (the white-box
  thief who reads where the feature lock and the deep lock sit);

trained by `estimate_key` on unkeyed inputs to maximise the stolen discriminator's score
("discriminator") or to match the real images' pixel statistics by MMD ("pixels").
`egan_jax.attacks` re-exports every name.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from egan_jax import deep_lock, losses
from egan_jax.errors import ConfigError
from egan_jax.transforms.block import from_blocks


# --- key estimation: input adapters -------------------------------------------------------------
class LatentAdapter(nnx.Module):
    """z [N, D] -> z + MLP(z) (hidden width `hidden`, last layer zero-initialised: starts as identity)."""

    def __init__(self, dim: int, *, hidden: int = 256, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(dim, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, dim, kernel_init=nnx.initializers.zeros, rngs=rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        return z + self.out(jax.nn.relu(self.hidden(z)))


class BlockAdapter(nnx.Module):
    """Images [N, H, W, C] -> the same shape, one learned linear map per M×M block.

    A conv with kernel = stride = M to M·M·C channels, then depth-to-space back to the block:
    exactly the family of maps a Kiya block transform (shuffle, negative/positive) lives in.
    Initialised to the identity.
    """

    def __init__(self, block_size: int, channels: int, *, rngs: nnx.Rngs):
        m, c = block_size, channels
        n = m * m * c
        identity = np.eye(n, dtype=np.float32).reshape(m, m, c, n)
        self.block_size, self.channels = m, c
        self.conv = nnx.Conv(
            c,
            n,
            (m, m),
            strides=(m, m),
            padding="VALID",
            rngs=rngs,
            kernel_init=lambda *_: jnp.asarray(identity),
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        return from_blocks(self.conv(x), self.block_size)  # conv: [N, H/M, W/M, M·M·C]


class SiteAdapter(nnx.Module):
    """One learned C×C channel map (+ bias) per generator site, identity at init.

    Called as the generator's `deep_lock` (`site, h -> h`): the family of maps a deep lock, and the
    feature lock's permutation + signs, live in — a white-box thief who knows where the locks sit
    tries to learn them back (`egan attack estimate --adapter sites`).
    """

    def __init__(self, sites: dict[str, int], *, rngs: nnx.Rngs):
        self.maps = nnx.Dict(
            {
                site: nnx.Linear(
                    c,
                    c,
                    kernel_init=lambda _, shape, dtype: jnp.eye(*shape, dtype=dtype),
                    rngs=rngs,
                )
                for site, c in sites.items()
            }
        )

    def __call__(self, site: str, h: jax.Array) -> jax.Array:
        return self.maps[site](h) if site in self.maps else h


def through_latent(generator: nnx.Module, adapter: nnx.Module, z: jax.Array) -> jax.Array:
    """G(adapter(z)): a latent adapter in front of the generator."""
    return generator(adapter(z))


def through_sites(generator: nnx.Module, adapter: SiteAdapter, z: jax.Array) -> jax.Array:
    """G(z) with `adapter` at the generator's lock sites."""
    # a closure: a module may not sit in the generator's static `deep_lock` attribute
    with deep_lock.attached(generator, lambda site, h: adapter(site, h)):
        return generator(z)


def _pixel_mmd(fake: jax.Array, real: jax.Array) -> jax.Array:
    from egan_jax.protection import mmd_divergence

    return jnp.mean(mmd_divergence(fake, real))


ESTIMATION_OBJECTIVES = ("discriminator", "pixels")


def estimate_key(
    generator: nnx.Module,
    adapter: nnx.Module,
    *,
    real_batches: Callable[[int], jax.Array],
    latent_dim: int,
    steps: int,
    batch_size: int,
    objective: str = "discriminator",
    discriminator: nnx.Module | None = None,
    learning_rate: float = 1e-3,
    seed: int = 0,
    run: Callable[[nnx.Module, nnx.Module, jax.Array], jax.Array] = through_latent,
) -> list[float]:
    """Train `adapter` (in place) with the frozen `generator`; returns the loss per step.

    `run(generator, adapter, z)` makes the images: `through_latent` (default) or `through_sites`.

    "discriminator" maximises the frozen stolen discriminator's hinge score of G(adapter(z));
    "pixels" minimises the Gaussian MMD between G(adapter(z)) and real images.
    """
    if objective not in ESTIMATION_OBJECTIVES:
        raise ConfigError(
            f"unknown estimation objective {objective!r}; valid: {list(ESTIMATION_OBJECTIVES)}"
        )
    if objective == "discriminator" and discriminator is None:
        raise ConfigError("the 'discriminator' objective needs the stolen discriminator")
    generator.eval()
    if discriminator is not None:
        discriminator.eval()
    optimizer = nnx.Optimizer(adapter, optax.adam(learning_rate), wrt=nnx.Param)

    @nnx.jit
    def step(adapter, optimizer, generator, discriminator, real, key):
        z = jax.random.normal(key, (batch_size, latent_dim))

        def loss_fn(adapter, generator):  # generator an argument: `run` may set its hook
            fake = run(generator, adapter, z)
            if objective == "discriminator":
                return jnp.mean(losses.hinge_generator(discriminator(fake)))
            return _pixel_mmd(fake, real)

        loss, grads = nnx.value_and_grad(loss_fn)(adapter, generator)
        optimizer.update(adapter, grads)
        return loss

    history = []
    key = jax.random.key(seed)
    for i in range(steps):
        history.append(
            float(
                step(
                    adapter,
                    optimizer,
                    generator,
                    discriminator,
                    real_batches(i),
                    jax.random.fold_in(key, i),
                )
            )
        )
    return history
