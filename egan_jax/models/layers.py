"""Building blocks shared by the model families: a fast ×2 up-sampling conv, a stride-1 conv with a
fast kernel gradient for few outputs (`NarrowOutputConv`) and spectral-norm layers.

`Upsample2x` exists because XLA:CPU computes the kernel gradient of a stride-2 transposed convolution
~30× slower than other conv gradients (REFERENCE.md §2). Writing the up-sampling as the VJP of a
strided convolution, with its own custom VJP whose two gradients are ordinary convolutions, gives the
same function at the speed of a plain conv.

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
import numpy as np
from flax import nnx
from jax import lax

from egan_jax.errors import ConfigError

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
_PAD1 = ((1, 1), (1, 1))


def check_channels_and_width(channels: int, width: int) -> None:
    """A discriminator's boundary check: image channels and base width must be positive."""
    if channels < 1 or width < 1:
        raise ConfigError(
            f"channels={channels} and width={width} must be positive; use e.g. 3 and 64."
        )


def _strided_conv(inputs: jax.Array, kernel: jax.Array) -> jax.Array:
    """Kernel-4, stride-2, padding-1 convolution: [N, 2H, 2W, O] -> [N, H, W, I] for kernel [4,4,O,I]."""
    return lax.conv_general_dilated(
        inputs, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DIMENSION_NUMBERS
    )


def upsample2x_reference(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """×2 up-sampling as the VJP of `_strided_conv`, differentiated by plain autodiff.

    Args:
      x: [N, H, W, I].
      kernel: [4, 4, O, I] (the strided conv's HWIO kernel, whose "output" is our input).

    Returns:
      [N, 2H, 2W, O], the same shape as a stride-2 'SAME' transposed convolution with kernel 4.
    """
    zeros = jnp.zeros((x.shape[0], 2 * x.shape[1], 2 * x.shape[2], kernel.shape[2]), x.dtype)
    return jax.vjp(lambda u: _strided_conv(u, kernel), zeros)[1](x)[0]


# Output phase a (row or column parity) of the transposed conv reads input taps t = 0, 1 of a
# 2-wide window through kernel tap 3 − a − 2t: _PHASE_TAPS[t, a].
_PHASE_TAPS = np.array([[3, 2], [1, 0]])


def conv_transpose2x(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`upsample2x_reference` computed as four stride-1 2×2 convolutions, one per output phase.

    Output pixel (2i + a, 2j + b) depends on a 2×2 input window only; for each of the four phases
    (a, b) that is a plain 2×2 conv of `x` (padded on the side the phase reaches), and the phases
    interleave into the ×2 image. XLA:CPU runs the transposed conv as a 4×-dilated convolution on
    its generic (Eigen) path; these stride-1 convs take its fast library path instead (measured:
    forward 2.3× faster at 64×16×16×128 -> 64, 2.6× at 128×16×16×64 -> 64). Same values to float
    rounding.
    """
    n, h, w, _ = x.shape
    taps = jnp.swapaxes(kernel, 2, 3)[_PHASE_TAPS][:, :, _PHASE_TAPS]  # [t_h, a, t_w, b, I, O]
    rows = []
    for a in range(2):
        phases = [
            lax.conv_general_dilated(
                x,
                taps[:, a, :, b],
                (1, 1),
                ((1 - a, a), (1 - b, b)),
                dimension_numbers=_DIMENSION_NUMBERS,
            )
            for b in range(2)
        ]
        rows.append(jnp.stack(phases, axis=3))  # [N, H, W, b, O]
    return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, kernel.shape[2])


@jax.custom_vjp
def upsample2x(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Same function as `upsample2x_reference`, with a custom VJP made of plain convolutions."""
    return conv_transpose2x(x, kernel)


def _upsample2x_fwd(x, kernel):
    return conv_transpose2x(x, kernel), (x, kernel)


def _upsample2x_bwd(residuals, grad_out):
    x, kernel = residuals
    # y = A_k^T x with A_k the strided conv, linear in both x and k:
    # dL/dx = A_k dy, and dL/dk = d/dk <A_k dy, x>.
    grad_x = _strided_conv(grad_out, kernel)
    grad_kernel = jax.grad(lambda k: jnp.sum(_strided_conv(grad_out, k) * x))(kernel)
    return grad_x, grad_kernel


upsample2x.defvjp(_upsample2x_fwd, _upsample2x_bwd)


@jax.custom_vjp
def downsample2x(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The kernel-4, stride-2, padding-1 conv `_strided_conv`, whose input gradient (a transposed
    conv) runs as `conv_transpose2x` rather than XLA:CPU's dilated-conv path."""
    return _strided_conv(x, kernel)


def _downsample2x_fwd(x, kernel):
    return _strided_conv(x, kernel), (x, kernel)


def _downsample2x_bwd(residuals, grad_out):
    x, kernel = residuals
    grad_kernel = jax.vjp(lambda k: _strided_conv(x, k), kernel)[1](grad_out)[0]
    return conv_transpose2x(grad_out, kernel), grad_kernel


downsample2x.defvjp(_downsample2x_fwd, _downsample2x_bwd)


class Upsample2x(nnx.Module):
    """Learned ×2 up-sampling (kernel 4), a drop-in for a stride-2 'SAME' `nnx.ConvTranspose`.

    `__call__(x: [N, H, W, in_features]) -> [N, 2H, 2W, out_features]`. The kernel is stored as
    [4, 4, out_features, in_features] (the HWIO kernel of the strided conv it transposes).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = True,
        kernel_init: nnx.Initializer | None = None,
        rngs: nnx.Rngs,
    ):
        # Each output pixel sees 2×2 kernel taps of every input channel: fan-in 4·in_features.
        init = kernel_init or nnx.initializers.variance_scaling(
            4.0, "fan_in", "truncated_normal", in_axis=-1, out_axis=-2
        )
        self.kernel = nnx.Param(init(rngs.params(), (4, 4, out_features, in_features)))
        self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = upsample2x(x, self.kernel[...])
        if self.bias is not None:
            y = y + self.bias[...]
        return y


class ConvTransposeUpsample2x(nnx.Module):
    """The same layer from stock `nnx.ConvTranspose` (slow kernel gradient on XLA:CPU).

    Kept for the side-by-side benchmark and for users who want the stock op on accelerators.
    """

    def __init__(self, in_features: int, out_features: int, *, use_bias: bool = True, rngs):
        self.conv = nnx.ConvTranspose(
            in_features,
            out_features,
            kernel_size=(4, 4),
            strides=(2, 2),
            padding="SAME",
            use_bias=use_bias,
            rngs=rngs,
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(x)


UPSAMPLERS = {"vjp": Upsample2x, "conv_transpose": ConvTransposeUpsample2x}


# --- a stride-1 conv whose kernel gradient stays fast for few output channels ----------------
Padding = tuple[tuple[int, int], tuple[int, int]]


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
        even = x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0
        if even and kernel.shape[:2] == (4, 4) and self.strides == (2, 2) and self.padding == _PAD1:
            y = downsample2x(x, kernel)
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
