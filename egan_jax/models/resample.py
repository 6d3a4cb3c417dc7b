"""×2 resampling convolutions that stay on XLA:CPU's fast conv-library path.

`Upsample2x` exists because XLA:CPU computes the kernel gradient of a stride-2 transposed convolution
~30× slower than other conv gradients (REFERENCE.md §2): the up-sampling is written as the VJP of a
strided convolution, with a custom VJP whose gradients are ordinary convolutions. Its forward pass,
and the input gradient of every stride-2 convolution (`stride2_conv`, `Stride2Conv`, the SN
discriminators), are transposed convolutions, which XLA:CPU runs as lhs-dilated convolutions on its
generic (Eigen) path; `stride2_conv_transpose` computes them as four stride-1 convolutions, one per
output phase, which take the library path. Same values to float rounding (tests/test_models.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
_PAD1 = ((1, 1), (1, 1))
Padding = tuple[tuple[int, int], tuple[int, int]]


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
