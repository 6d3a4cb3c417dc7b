"""The secure small DCGAN: generator and discriminator as lists of secure layers, weights as shares.

Generator (the engine's DCGAN generator, `egan_jax.models.dcgan.Generator`, narrow):
  dense z -> s·s·8w, reshape, 3× [×2 up-sampler, batch norm, ReLU] 8w->4w->2w->w, conv 3×3 -> C, tanh.
Discriminator (DCGAN-style; the engine's spectral norm is left out, see below):
  3× [conv 4×4 stride 2, LeakyReLU] C->w->2w->4w, flatten, dense -> 1 logit.

Spectral normalisation needs a power iteration and a norm (a secure square root and reciprocal per
layer and step); LP-GAN's discriminator does without it, and so does this one. Batch norm in the
generator runs in training mode (batch statistics) both in training and in synthesis, the same in the
plaintext twin.

Parameters are a flat dict "layer_index.name" -> array, plaintext (float) or shares (uint64), with a
fixed order (`param_names`) for messages and checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from egan_jax.errors import ConfigError
from egan_jax.lpgan.layers import (
    BatchNorm,
    Conv,
    Dense,
    Layer,
    LeakyReLU,
    ReLU,
    Reshape,
    Tanh,
    Upsample,
)
from egan_jax.mpc.protocols import Party


@dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = 16
    width: int = 8
    image_size: int = 32
    channels: int = 1
    negative_slope: float = 0.2

    def __post_init__(self):
        if self.image_size < 8 or self.image_size % 8:
            raise ConfigError(f"image_size must be a multiple of 8, got {self.image_size}")
        if min(self.latent_dim, self.width, self.channels) < 1:
            raise ConfigError("latent_dim, width and channels must be positive")


def generator_layers(config: ModelConfig) -> list[Layer]:
    w, s = config.width, config.image_size // 8
    widths = [8 * w, 4 * w, 2 * w, w]
    layers: list[Layer] = [Dense(config.latent_dim, s * s * 8 * w), Reshape((s, s, 8 * w))]
    for i in range(3):
        layers += [Upsample(widths[i], widths[i + 1]), BatchNorm(widths[i + 1]), ReLU()]
    return layers + [Conv(w, config.channels, 3, 1, ((1, 1), (1, 1))), Tanh()]


def discriminator_layers(config: ModelConfig) -> list[Layer]:
    w, s = config.width, config.image_size // 8
    widths = [config.channels, w, 2 * w, 4 * w]
    layers: list[Layer] = []
    for i in range(3):
        layers += [
            Conv(widths[i], widths[i + 1], 4, 2, ((1, 1), (1, 1))),
            LeakyReLU(config.negative_slope),
        ]
    return layers + [Reshape((s * s * 4 * w,)), Dense(s * s * 4 * w, 1)]


def param_names(layers: list[Layer]) -> list[str]:
    return [f"{i}.{name}" for i, layer in enumerate(layers) for name in layer.param_shapes()]


def _layer_params(params: dict, i: int, layer: Layer) -> dict:
    return {name: params[f"{i}.{name}"] for name in layer.param_shapes()}


def init_params(layers: list[Layer], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Plaintext initial weights (the data owner draws them): kernels N(0, 1/fan_in) (LeCun), biases
    and batch-norm offsets 0, batch-norm scales 1."""
    params = {}
    for i, layer in enumerate(layers):
        for name, shape in layer.param_shapes().items():
            if name in ("b", "beta"):
                value = np.zeros(shape)
            elif name == "gamma":
                value = np.ones(shape)
            else:
                if isinstance(layer, Upsample):  # each output sees 2×2 taps per input channel
                    fan_in = 4 * shape[3]
                else:
                    fan_in = int(np.prod(shape[:-1]))
                value = rng.normal(size=shape) / np.sqrt(fan_in)
            params[f"{i}.{name}"] = value
    return params


def secure_forward(
    party: Party, layers: list[Layer], params: dict, x: np.ndarray, *, outputs: list | None = None
):
    """Shares of the output and the per-layer caches for `secure_backward`; ``outputs`` (a list)
    also receives every layer's output shares (for `egan_jax.lpgan.trace`)."""
    caches = []
    for i, layer in enumerate(layers):
        x, cache = layer.forward(party, _layer_params(params, i, layer), x)
        caches.append(cache)
        if outputs is not None:
            outputs.append(x)
    return x, caches


def secure_backward(
    party: Party,
    layers: list[Layer],
    params: dict,
    caches: list,
    dy: np.ndarray,
    *,
    input_grad: bool = False,
    param_grads: bool = True,
):
    """(dx or None, gradient shares by parameter name), from the output gradient's shares."""
    grads: dict[str, np.ndarray] = {}
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        need_dx = i > 0 or input_grad
        dy, layer_grads = layer.backward(
            party,
            _layer_params(params, i, layer),
            caches[i],
            dy,
            input_grad=need_dx,
            param_grads=param_grads,
        )
        grads.update({f"{i}.{k}": v for k, v in layer_grads.items()})
    return dy, grads


def plain_forward(layers: list[Layer], params: dict, x, *, collect: bool = False):
    """The plaintext twin in JAX (differentiable); ``collect=True`` also returns every layer's
    output."""
    outputs = []
    for i, layer in enumerate(layers):
        x = layer.plain(_layer_params(params, i, layer), x)
        outputs.append(x)
    return (x, outputs) if collect else x


def as_jax(params: dict, dtype=jnp.float32) -> dict:
    return {k: jnp.asarray(v, dtype) for k, v in params.items()}
