"""GAN and reconstruction losses as pure per-example functions, in the style of `optax.losses`.

Every loss takes predictions (and targets where they exist) with a leading batch axis N and returns a
per-example array of shape [N]; hyperparameters are keyword-only; the caller reduces (usually with
`jnp.mean`) and weights terms from the config. Logits are unbounded real numbers; all forms involving
logs are written with `softplus` so they stay finite for logits of any magnitude.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def _per_example_mean(values: jax.Array) -> jax.Array:
    """Mean over every axis except the leading batch axis: [N, ...] -> [N]."""
    return jnp.mean(values.reshape(values.shape[0], -1), axis=1)


def _check_logits(*logits: jax.Array) -> None:
    chex.assert_rank(logits, 1)
    chex.assert_equal_shape(logits)


def hinge_discriminator(real_logits: jax.Array, fake_logits: jax.Array, *, margin: float = 1.0):
    """Hinge loss of the discriminator: relu(margin − D(x)) + relu(margin + D(G(z))).

    Args:
      real_logits: [N] discriminator outputs on real images.
      fake_logits: [N] discriminator outputs on generated images.
      margin: the hinge margin (1 in the reference).

    Returns:
      [N] per-example loss.

    Reference: Lim & Ye, "Geometric GAN" (2017); Miyato et al., "Spectral Normalization for GANs"
    (ICLR 2018).
    """
    _check_logits(real_logits, fake_logits)
    return jax.nn.relu(margin - real_logits) + jax.nn.relu(margin + fake_logits)


def hinge_generator(fake_logits: jax.Array) -> jax.Array:
    """Hinge loss of the generator: −D(G(z)).

    Args:
      fake_logits: [N] discriminator outputs on generated images.

    Returns:
      [N] per-example loss. Reference: Lim & Ye (2017); Miyato et al. (2018).
    """
    _check_logits(fake_logits)
    return -fake_logits


def nonsaturating_discriminator(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Original GAN discriminator loss: −log σ(D(x)) − log(1 − σ(D(G(z)))).

    Written as softplus(−D(x)) + softplus(D(G(z))), finite for any logits.

    Args:
      real_logits: [N]; fake_logits: [N].

    Returns:
      [N] per-example loss. Reference: Goodfellow et al., "Generative Adversarial Nets" (2014).
    """
    _check_logits(real_logits, fake_logits)
    return jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)


def nonsaturating_generator(fake_logits: jax.Array) -> jax.Array:
    """Non-saturating generator loss: −log σ(D(G(z))) = softplus(−D(G(z))).

    Args:
      fake_logits: [N].

    Returns:
      [N] per-example loss. Reference: Goodfellow et al. (2014), §3.
    """
    _check_logits(fake_logits)
    return jax.nn.softplus(-fake_logits)


def least_squares_discriminator(
    real_logits: jax.Array,
    fake_logits: jax.Array,
    *,
    real_target: float = 1.0,
    fake_target: float = 0.0,
) -> jax.Array:
    """LSGAN discriminator loss: ½(D(x) − 1)² + ½(D(G(z)) − 0)² (targets configurable).

    Args:
      real_logits: [N]; fake_logits: [N] (raw outputs, no sigmoid).
      real_target, fake_target: the regression targets (the "a, b" of the paper; 1 and 0 here,
        as in CycleGAN).

    Returns:
      [N] per-example loss. Reference: Mao et al., "Least Squares GANs" (ICCV 2017).
    """
    _check_logits(real_logits, fake_logits)
    return 0.5 * (jnp.square(real_logits - real_target) + jnp.square(fake_logits - fake_target))


def least_squares_generator(fake_logits: jax.Array, *, target: float = 1.0) -> jax.Array:
    """LSGAN generator loss: ½(D(G(z)) − 1)².

    Args:
      fake_logits: [N]; target: the value the generator wants D to output ("c" in the paper).

    Returns:
      [N] per-example loss. Reference: Mao et al. (2017).
    """
    _check_logits(fake_logits)
    return 0.5 * jnp.square(fake_logits - target)


def l1(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean absolute error per example: mean over all non-batch axes of |p − t|.

    Args:
      predictions: [N, ...]; targets: same shape.

    Returns:
      [N]. Used for CycleGAN's cycle/identity terms (Zhu et al., ICCV 2017).
    """
    chex.assert_equal_shape([predictions, targets])
    return _per_example_mean(jnp.abs(predictions - targets))


def l2(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error per example: mean over all non-batch axes of (p − t)².

    Args:
      predictions: [N, ...]; targets: same shape.

    Returns:
      [N]. SRGAN's pixel/feature MSE (Ledig et al., CVPR 2017).
    """
    chex.assert_equal_shape([predictions, targets])
    return _per_example_mean(jnp.square(predictions - targets))


def bce_with_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Binary cross-entropy on logits per example, mean over non-batch axes.

    Computes −t·log σ(x) − (1 − t)·log(1 − σ(x)) = softplus(x) − t·x, stable for any x.

    Args:
      logits: [N, ...]; targets: same shape, values in [0, 1].

    Returns:
      [N]. Equivalent to `optax.sigmoid_binary_cross_entropy` averaged per example.
    """
    chex.assert_equal_shape([logits, targets])
    return _per_example_mean(jax.nn.softplus(logits) - targets * logits)


GENERATOR_LOSSES = {
    "hinge": hinge_generator,
    "nonsaturating": nonsaturating_generator,
    "least_squares": least_squares_generator,
}
DISCRIMINATOR_LOSSES = {
    "hinge": hinge_discriminator,
    "nonsaturating": nonsaturating_discriminator,
    "least_squares": least_squares_discriminator,
}
