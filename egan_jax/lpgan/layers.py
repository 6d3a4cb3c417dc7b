"""Secure DCGAN layers on additive shares: forward and backward passes, beside their plaintext twins.

Every layer is a small frozen dataclass with
- ``param_shapes()``: name -> shape of its parameters (empty for activations);
- ``forward(party, params, x) -> (y, cache)`` on shares (cache: what backward needs, still shares);
- ``backward(party, params, cache, dy, *, input_grad, param_grads) -> (dx, grads)`` on shares;
- ``plain(params, x)``: the same layer in JAX (float), the reference for tests and plaintext training.

Products that do not depend on each other share one round (`arith.beaver_many`), so a bilinear layer's
backward pass (input gradient and kernel gradient) costs one round. The activations reuse what the
forward pass computed: ReLU/LeakyReLU their comparison bit, tanh its output (1 − y²), batch norm its
normalised input and shared inverse standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from egan_jax.mpc import arith, compare, nonlinear, ring
from egan_jax.mpc.arith import MATMUL, MUL
from egan_jax.mpc.protocols import Party
from egan_jax.mpc.ring import Bilinear

DN = ("NHWC", "HWIO", "NHWC")
UP_PADDING = ((1, 1), (1, 1))


def _finish(party: Party, products: list[np.ndarray]) -> list[np.ndarray]:
    return [arith.truncate(party, z) for z in products]


def _sum_to(x: np.ndarray, axes) -> np.ndarray:
    return arith.sum_(x, axis=axes)


@dataclass(frozen=True)
class Dense:
    """y = x @ w + b; x [N, in]."""

    features_in: int
    features_out: int

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"w": (self.features_in, self.features_out), "b": (self.features_out,)}

    def forward(self, party: Party, params: dict, x: np.ndarray):
        return arith.matmul(party, x, params["w"]) + params["b"], x

    def backward(self, party, params, cache, dy, *, input_grad=True, param_grads=True):
        items = []
        if input_grad:
            items.append((MATMUL, dy, np.ascontiguousarray(params["w"].T)))
        if param_grads:
            items.append((MATMUL, np.ascontiguousarray(cache.T), dy))
        out = _finish(party, arith.beaver_many(party, items)) if items else []
        dx = out.pop(0) if input_grad else None
        grads = {"w": out[0], "b": _sum_to(dy, 0)} if param_grads else {}
        return dx, grads

    def plain(self, params, x):
        return x @ params["w"] + params["b"]


@dataclass(frozen=True)
class Conv:
    """Convolution with bias, HWIO kernel [k, k, in, out], stride and explicit padding."""

    channels_in: int
    channels_out: int
    kernel: int = 3
    stride: int = 1
    padding: tuple[tuple[int, int], tuple[int, int]] = ((1, 1), (1, 1))

    def param_shapes(self):
        k = self.kernel
        return {"w": (k, k, self.channels_in, self.channels_out), "b": (self.channels_out,)}

    def forward(self, party, params, x):
        y = arith.conv2d(party, x, params["w"], stride=(self.stride,) * 2, padding=self.padding)
        return y + params["b"], x

    def backward(self, party, params, cache, dy, *, input_grad=True, param_grads=True):
        stride = (self.stride,) * 2
        items = []
        if input_grad:
            op = Bilinear("conv_transpose2d", stride, self.padding, tuple(cache.shape[1:3]))
            items.append((op, dy, params["w"]))
        if param_grads:
            op = Bilinear(
                "conv2d_kernel_grad", stride, self.padding, kernel_hw=(self.kernel, self.kernel)
            )
            items.append((op, cache, dy))
        out = _finish(party, arith.beaver_many(party, items)) if items else []
        dx = out.pop(0) if input_grad else None
        grads = {"w": out[0], "b": _sum_to(dy, (0, 1, 2))} if param_grads else {}
        return dx, grads

    def plain(self, params, x):
        y = lax.conv_general_dilated(
            x, params["w"], (self.stride,) * 2, self.padding, dimension_numbers=DN
        )
        return y + params["b"]


def _strided(u, w):
    return lax.conv_general_dilated(u, w, (2, 2), UP_PADDING, dimension_numbers=DN)


def plain_upsample(x, w):
    """The engine's ×2 up-sampler (kernel [4, 4, out, in]): the VJP of a stride-2 conv."""
    x = jnp.asarray(x)
    shape = (x.shape[0], 2 * x.shape[1], 2 * x.shape[2], w.shape[2])
    return jax.vjp(lambda u: _strided(u, w), jnp.zeros(shape, x.dtype))[1](x)[0]


@dataclass(frozen=True)
class Upsample:
    """Learned ×2 up-sampling without bias (batch norm follows): transposed conv, kernel 4, stride 2,
    padding 1, kernel [4, 4, out, in] as in `egan_jax.models.resample.Upsample2x`."""

    channels_in: int
    channels_out: int

    def param_shapes(self):
        return {"w": (4, 4, self.channels_out, self.channels_in)}

    def forward(self, party, params, x):
        return arith.conv_transpose2d(party, x, params["w"], stride=(2, 2), padding=UP_PADDING), x

    def backward(self, party, params, cache, dy, *, input_grad=True, param_grads=True):
        items = []
        if input_grad:  # the adjoint of the transposed conv is the strided conv
            items.append((Bilinear("conv2d", (2, 2), UP_PADDING), dy, params["w"]))
        if param_grads:
            op = Bilinear("conv2d_kernel_grad", (2, 2), UP_PADDING, kernel_hw=(4, 4))
            items.append((op, dy, cache))
        out = _finish(party, arith.beaver_many(party, items)) if items else []
        dx = out.pop(0) if input_grad else None
        return dx, ({"w": out[0]} if param_grads else {})

    def plain(self, params, x):
        return plain_upsample(x, params["w"])


@dataclass(frozen=True)
class BatchNorm:
    """Training-mode batch norm over N, H, W (batch statistics; shared inverse std from
    `nonlinear.inv_sqrt`), scale gamma and offset beta per channel."""

    channels: int
    eps: float = 1e-5

    def param_shapes(self):
        return {"gamma": (self.channels,), "beta": (self.channels,)}

    def forward(self, party, params, x):
        x_hat, inv_std = nonlinear.batch_norm_normalize(party, x, eps=self.eps)
        y = arith.mul(party, x_hat, params["gamma"]) + params["beta"]
        return y, (x_hat, inv_std)

    def backward(self, party, params, cache, dy, *, input_grad=True, param_grads=True):
        # dx = s·(dy − mean(dy)) − x_hat·(s·mean(dy·x_hat)), s = gamma·inv_std per channel:
        # the usual formula with dx_hat = gamma·dy folded into s. Three rounds.
        x_hat, inv_std = cache
        axes = (0, 1, 2)
        count = dy.size // dy.shape[-1]
        dy_xhat, scale = (
            arith.truncate(party, z)
            for z in arith.beaver_many(
                party, [(MUL, dy, x_hat), (MUL, inv_std.reshape(-1), params["gamma"])]
            )
        )
        d_gamma = _sum_to(dy_xhat, axes)
        grads = {"gamma": d_gamma, "beta": _sum_to(dy, axes)} if param_grads else {}
        if not input_grad:
            return None, grads
        centered = dy - arith.mean(party, dy, axis=axes, keepdims=True)
        mean_dy_xhat = arith.mul_public(party, d_gamma, 1.0 / count)
        first, coefficient = _finish(
            party, arith.beaver_many(party, [(MUL, centered, scale), (MUL, scale, mean_dy_xhat)])
        )
        second = arith.mul(party, x_hat, coefficient)
        return first - second, grads

    def plain(self, params, x):
        mean = x.mean(axis=(0, 1, 2), keepdims=True)
        var = ((x - mean) ** 2).mean(axis=(0, 1, 2), keepdims=True)
        return (x - mean) * lax.rsqrt(var + self.eps) * params["gamma"] + params["beta"]


@dataclass(frozen=True)
class ReLU:
    def param_shapes(self):
        return {}

    def forward(self, party, params, x):
        return compare.relu(party, x)

    def backward(self, party, params, cache, dy, *, input_grad=True, param_grads=True):
        return compare.relu_backward(party, dy, cache), {}

    def plain(self, params, x):
        return jax.nn.relu(x)


@dataclass(frozen=True)
class LeakyReLU:
    slope: float = 0.2

    def param_shapes(self):
        return {}

    def forward(self, party, params, x):
        return compare.leaky_relu(party, x, self.slope)

    def backward(self, party, params, cache, dy, *, input_grad=True, param_grads=True):
        return compare.leaky_relu_backward(party, dy, cache, self.slope), {}

    def plain(self, params, x):
        return jax.nn.leaky_relu(x, self.slope)


@dataclass(frozen=True)
class Tanh:
    """tanh (piecewise polynomial, `nonlinear.tanh`); backward dy·(1 − y²) from the kept output."""

    def param_shapes(self):
        return {}

    def forward(self, party, params, x):
        y = nonlinear.tanh(party, x)
        return y, y

    def backward(self, party, params, cache, dy, *, input_grad=True, param_grads=True):
        one_minus = party.add_public(ring.neg(arith.square(party, cache)), 1.0)
        return arith.mul(party, dy, one_minus), {}

    def plain(self, params, x):
        return jnp.tanh(x)


@dataclass(frozen=True)
class Reshape:
    """Local reshape of the non-batch axes (no communication)."""

    shape: tuple[int, ...]

    def param_shapes(self):
        return {}

    def forward(self, party, params, x):
        return x.reshape((x.shape[0],) + self.shape), x.shape

    def backward(self, party, params, cache, dy, *, input_grad=True, param_grads=True):
        return dy.reshape(cache), {}

    def plain(self, params, x):
        return x.reshape((x.shape[0],) + self.shape)


Layer = Dense | Conv | Upsample | BatchNorm | ReLU | LeakyReLU | Tanh | Reshape
