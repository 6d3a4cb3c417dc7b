"""Building blocks shared by the model families: a stride-1 conv with a fast kernel gradient for few
outputs (`NarrowOutputConv`) and spectral-norm layers. The ×2 resampling convs (`Upsample2x`,
`Stride2Conv`) live in `egan_jax.models.resample`.

`SpectralNormConv` / `SpectralNormLinear` keep the raw weight as the trained `nnx.Param` and the
power-iteration vector `u` as an `nnx.BatchStat`, updated in train mode only (Miyato et al., ICLR 2018).
flax 0.12.8's `nnx.SpectralNorm` is not used: it writes W/σ back into the wrapped layer's kernel on
every forward pass, so the optimiser would then update the normalised weight rather than W.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from egan_jax.errors import ConfigError
from egan_jax.models.resample import Padding, stride2_conv

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def check_channels_and_width(channels: int, width: int) -> None:
    """A discriminator's boundary check: image channels and base width must be positive."""
    if channels < 1 or width < 1:
        raise ConfigError(
            f"channels={channels} and width={width} must be positive; use e.g. 3 and 64."
        )


# --- a stride-1 conv whose kernel gradient stays fast for few output channels ----------------


def _plain_conv(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), padding, dimension_numbers=_DIMENSION_NUMBERS
    )


def _kernel_grad(x: jax.Array, grad_out: jax.Array, kernel_shape, padding: Padding) -> jax.Array:
    """dL/dK of a stride-1 conv, computed as the kernel gradient of the mirrored problem.

    dK[a, b, i, o] = Σ x_pad[n, h + a, w + b, i] · dy[n, h, w, o]. With dy padded by k − 1 on
    every side, G[c, d, o, i] = Σ dy_pad[n, h + c, w + d, o] · x_pad[n, h, w, i] is the kernel
    gradient of a conv from o to i channels, and dK[a, b] = G[k − 1 − a, k − 1 − b]ᵀ.
    """
    kh, kw, cin, cout = kernel_shape
    (top, bottom), (left, right) = padding
    x_pad = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    dy_pad = jnp.pad(grad_out, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    zeros = jnp.zeros((kh, kw, cout, cin), x.dtype)
    mirrored = jax.vjp(lambda k: _plain_conv(dy_pad, k, "VALID"), zeros)[1](x_pad)[0]
    return jnp.transpose(mirrored[::-1, ::-1], (0, 1, 3, 2))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def narrow_output_conv(x: jax.Array, kernel: jax.Array, padding: Padding) -> jax.Array:
    """A stride-1 conv (NHWC, HWIO kernel) whose kernel gradient stays fast for few outputs.

    XLA:CPU computes the kernel gradient of a large-kernel conv to few channels (SRResNet's 9×9
    64 -> 3 output conv at 96 px, CycleGAN's 7×7 64 -> 3) ~20× slower than its forward pass; the
    mirrored form in `_kernel_grad` is the fast many-outputs case (measured: 9×9 64 -> 3 at
    2×96×96, gradients 464 ms -> 126 ms). Same values as `lax.conv_general_dilated`.
    """
    return _plain_conv(x, kernel, padding)


def _narrow_fwd(x, kernel, padding):
    return _plain_conv(x, kernel, padding), (x, kernel)


def _narrow_bwd(padding, residuals, grad_out):
    x, kernel = residuals
    grad_x = jax.vjp(lambda v: _plain_conv(v, kernel, padding), x)[1](grad_out)[0]
    return grad_x, _kernel_grad(x, grad_out, kernel.shape, padding)


narrow_output_conv.defvjp(_narrow_fwd, _narrow_bwd)


class NarrowOutputConv(nnx.Module):
    """Stride-1 conv layer (same `kernel`/`bias` parameters as `nnx.Conv`) on `narrow_output_conv`."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        *,
        padding: int = 0,
        kernel_init: nnx.Initializer | None = None,
        rngs: nnx.Rngs,
    ):
        init = kernel_init or nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (kernel, kernel, cin, cout)))
        self.bias = nnx.Param(jnp.zeros((cout,)))
        self.padding = ((padding, padding), (padding, padding))

    def __call__(self, x: jax.Array) -> jax.Array:
        return narrow_output_conv(x, self.kernel[...], self.padding) + self.bias[...]


def _l2_normalize(v: jax.Array, eps: float = 1e-12) -> jax.Array:
    return v * lax.rsqrt(jnp.maximum(jnp.sum(v * v), eps * eps))


class _SpectralNormMixin:
    """Power iteration on the kernel viewed as a matrix [prod(kernel.shape[:-1]), out]."""

    n_power_iterations: int
    use_running_average: bool
    kernel: nnx.Param
    u: nnx.BatchStat

    def _init_u(self, out_features: int, rngs: nnx.Rngs) -> None:
        self.u = nnx.BatchStat(_l2_normalize(jax.random.normal(rngs.params(), (out_features,))))

    def normalized_kernel(self) -> jax.Array:
        """W / σ(W), σ estimated by power iteration from the stored `u` (updated in train mode)."""
        kernel = self.kernel[...]
        matrix = kernel.reshape(-1, kernel.shape[-1])
        u = self.u[...]
        v = None
        for _ in range(self.n_power_iterations):
            v = _l2_normalize(matrix @ u)
            u = _l2_normalize(matrix.T @ v)
        u = lax.stop_gradient(u)
        v = lax.stop_gradient(v)
        sigma = v @ (matrix @ u)
        if not self.use_running_average:
            self.u[...] = u
        return kernel / sigma


class SpectralNormConv(_SpectralNormMixin, nnx.Module):
    """2-D convolution (NHWC) with a spectrally normalised kernel.

    `use_running_average` follows nnx's convention (False after `model.train()`, True after
    `model.eval()`): in train mode each call runs `n_power_iterations` and stores the new `u`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: Sequence[int],
        *,
        strides: Sequence[int] = (1, 1),
        padding: str | Sequence[tuple[int, int]] = "SAME",
        use_bias: bool = True,
        n_power_iterations: int = 1,
        use_running_average: bool = False,
        rngs: nnx.Rngs,
    ):
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (*kernel_size, in_features, out_features)))
        self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
        self.strides = tuple(strides)
        self.padding = padding if isinstance(padding, str) else tuple(map(tuple, padding))
        self.n_power_iterations = n_power_iterations
        self.use_running_average = use_running_average
        self._init_u(out_features, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.normalized_kernel()
        if self.strides == (2, 2) and not isinstance(self.padding, str):
            y = stride2_conv(x, kernel, self.padding)
        else:
            y = lax.conv_general_dilated(
                x, kernel, self.strides, self.padding, dimension_numbers=_DIMENSION_NUMBERS
            )
        if self.bias is not None:
            y = y + self.bias[...]
        return y


class SpectralNormLinear(_SpectralNormMixin, nnx.Module):
    """Dense layer with a spectrally normalised kernel; same train/eval convention as the conv."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = True,
        n_power_iterations: int = 1,
        use_running_average: bool = False,
        rngs: nnx.Rngs,
    ):
        init = nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (in_features, out_features)))
        self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
        self.n_power_iterations = n_power_iterations
        self.use_running_average = use_running_average
        self._init_u(out_features, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = x @ self.normalized_kernel()
        if self.bias is not None:
            y = y + self.bias[...]
        return y
