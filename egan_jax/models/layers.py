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
Padding = tuple[tuple[int, int], tuple[int, int]]


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


def _phase_plan(kernel_size: int, pad_lo: int, a: int, dy_len: int, rows: int):
    """One axis of `stride2_conv_transpose` for output parity `a`: (taps, pad_lo, pad_hi).

    dx[2i + a] = Σ_s dy[i + c − s] · w[r + 2s] with r = (a + pad_lo) mod 2 and
    c = (a + pad_lo − r) / 2; as a correlation with the reversed taps over dy padded by
    (S − 1 − c, ·) it yields `rows` outputs. Negative padding crops.
    """
    r = (a + pad_lo) % 2
    taps = list(range(r, kernel_size, 2))[::-1]
    c = (a + pad_lo - r) // 2
    lo = len(taps) - 1 - c
    return taps, lo, rows + len(taps) - 1 - dy_len - lo


def stride2_conv_transpose(
    dy: jax.Array, kernel: jax.Array, padding: Padding, in_hw: tuple[int, int]
) -> jax.Array:
    """The input gradient (transpose) of a stride-2 conv, as four stride-1 convs, one per phase.

    Args:
      dy: [N, h, w, O], the strided conv's output (or its cotangent).
      kernel: [kh, kw, I, O], the strided conv's HWIO kernel.
      padding: the strided conv's ((top, bottom), (left, right)) padding.
      in_hw: the strided conv's input height and width.

    Returns:
      [N, *in_hw, I]: the VJP of `conv(x, kernel, stride 2, padding)` with respect to x.

    Each output parity (a, b) reads a sub-kernel of every other tap, so it is a plain stride-1
    convolution of dy; the four phases interleave into the result. XLA:CPU runs the transposed
    conv itself as an lhs-dilated convolution on its generic (Eigen) path, ~4× the work; these
    stride-1 convs take its conv-library path (measured forward: 2.3× faster at 64×16×16×128 ->
    64 and 2.6× at 128×16×16×64 -> 64, kernel 4). Same values to float rounding.
    """
    n = dy.shape[0]
    rows, cols = (in_hw[0] + 1) // 2, (in_hw[1] + 1) // 2
    flipped = jnp.swapaxes(kernel, 2, 3)  # [kh, kw, O, I]
    phase_rows = []
    for a in range(2):
        taps_h, top, bottom = _phase_plan(kernel.shape[0], padding[0][0], a, dy.shape[1], rows)
        phases = []
        for b in range(2):
            taps_w, left, right = _phase_plan(kernel.shape[1], padding[1][0], b, dy.shape[2], cols)
            if not taps_h or not taps_w:  # kernel 1: this parity receives nothing
                phases.append(jnp.zeros((n, rows, cols, kernel.shape[2]), dy.dtype))
                continue
            padded = lax.pad(
                dy,
                jnp.zeros((), dy.dtype),
                ((0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)),
            )
            sub = flipped[np.array(taps_h)][:, np.array(taps_w)]
            phases.append(
                lax.conv_general_dilated(
                    padded, sub, (1, 1), "VALID", dimension_numbers=_DIMENSION_NUMBERS
                )
            )
        phase_rows.append(jnp.stack(phases, axis=3))  # [N, rows, cols, b, I]
    out = jnp.stack(phase_rows, axis=2).reshape(n, 2 * rows, 2 * cols, kernel.shape[2])
    return out[:, : in_hw[0], : in_hw[1]]


def conv_transpose2x(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`upsample2x_reference` (kernel 4, the transpose of `_strided_conv`) by output phases."""
    return stride2_conv_transpose(x, kernel, _PAD1, (2 * x.shape[1], 2 * x.shape[2]))


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


def _stride2(x: jax.Array, kernel: jax.Array, padding: Padding) -> jax.Array:
    return lax.conv_general_dilated(
        x, kernel, (2, 2), padding, dimension_numbers=_DIMENSION_NUMBERS
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def stride2_conv(x: jax.Array, kernel: jax.Array, padding: Padding = _PAD1) -> jax.Array:
    """A stride-2 convolution (NHWC, HWIO kernel, explicit padding) whose input gradient runs as
    `stride2_conv_transpose` rather than XLA:CPU's dilated-conv path. Same values and gradients
    as `lax.conv_general_dilated` to float rounding."""
    return _stride2(x, kernel, padding)


def _stride2_fwd(x, kernel, padding):
    return _stride2(x, kernel, padding), (x, kernel)


def _stride2_bwd(padding, residuals, grad_out):
    x, kernel = residuals
    grad_kernel = jax.vjp(lambda k: _stride2(x, k, padding), kernel)[1](grad_out)[0]
    grad_x = stride2_conv_transpose(grad_out, kernel, padding, x.shape[1:3])
    return grad_x, grad_kernel


stride2_conv.defvjp(_stride2_fwd, _stride2_bwd)


class Stride2Conv(nnx.Module):
    """`nnx.Conv` with strides 2 and explicit padding (same `kernel`/`bias` parameters and state
    paths, so checkpoints are interchangeable) on `stride2_conv`."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        *,
        padding: int,
        use_bias: bool = True,
        kernel_init: nnx.Initializer | None = None,
        rngs: nnx.Rngs,
    ):
        init = kernel_init or nnx.initializers.lecun_normal()
        self.kernel = nnx.Param(init(rngs.params(), (kernel_size, kernel_size, cin, cout)))
        self.bias = nnx.Param(jnp.zeros((cout,))) if use_bias else None
        self.padding = ((padding, padding), (padding, padding))

    def __call__(self, x: jax.Array) -> jax.Array:
        y = stride2_conv(x, self.kernel[...], self.padding)
        return y if self.bias is None else y + self.bias[...]


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
