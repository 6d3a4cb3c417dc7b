"""Fixed-point numbers in the ring Z_2^64, additive secret shares, and local share arithmetic.

A real value v is stored as the integer round(v · 2^f) mod 2^64 (f = ``frac_bits``, default 16) in a
numpy ``uint64`` array; uint64 arithmetic wraps, which is exactly arithmetic mod 2^64. Negative values
are the two's complement (decode reads the word as int64). A secret x is split into x0 (uniform) and
x1 = x - x0; each share alone is a uniform ring element and says nothing about x.

The bilinear ring ops (matmul, conv, transposed conv, conv kernel gradient) are jitted JAX run inside
``jax.enable_x64(True)``, a thread-local context: the rest of the process keeps JAX's default 32-bit
types. Element-wise ring arithmetic (add, sub, neg, products, public scaling, truncation) runs in numpy
by default, because jitted JAX is measurably slower at the secure DCGAN's sizes (32 to 65,536
elements; `python -m bench.bench_ring_ops`, bench/results/mpc_ring_ops.json, 2 cores at load 3-10):
numpy takes 0.5-120 µs per op; the jitted op with numpy in and out (shares come from and go to the
channel as bytes) is 1.4-80x slower at every op and size; even with its inputs already JAX arrays it
is up to 50x slower, and wins (0.6-0.9x) only for truncation and a fused Beaver product plus
truncation at 32,768-65,536 elements. ``set_local_backend("jax")`` (or ``with local_backend("jax")``;
`elementwise` module) runs every element-wise op here as a jitted uint64 JAX function instead,
bit-identical; the whole secure step (width 8, 32 px, batch 16) then runs 1.29-1.46x slower (two
runs, load 2.7-4.3; the default path's dispatch costs ~0.1 µs per op, ~2,000 ops a step).
The comparison's bit slicing is the exception: as one jitted function it is at par or faster from
65,536 words on, so `compare._bit_slices` uses it there. A py-spy profile of the step
(`python -m bench.profile_mpc_step`) puts the element-wise code and its Python glue at 6-20% of the
parties' busy time (bilinear ops 46-53%, channel 30-44%).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from jax import lax

from egan_jax.errors import ConfigError, ShapeError
from egan_jax.mpc import elementwise as _local
from egan_jax.mpc.elementwise import (  # noqa: F401  (re-exported: ring.set_local_backend)
    get_local_backend,
    local_backend,
    set_local_backend,
)

FRAC_BITS = 16
RING_BITS = 64
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")

Padding = str | tuple[tuple[int, int], tuple[int, int]]


class Prg:
    """AES-256-CTR keystream as a deterministic cryptographic generator of ring elements and bits.

    The key is SHA-256 of ``domain`` and the seed (bytes or int), so one seed gives independent streams
    for different domains (dealer, data owner); ``seed=None`` draws a fresh 32-byte seed from the OS.
    The seed is never stored or printed.
    """

    def __init__(self, seed: bytes | int | None = None, *, domain: bytes = b""):
        if seed is None:
            seed = os.urandom(32)
        if isinstance(seed, int):
            if seed < 0:
                raise ConfigError(f"a PRG seed must be a non-negative int, got {seed}; pass >= 0")
            seed = seed.to_bytes((seed.bit_length() + 8) // 8, "big")
        if not isinstance(seed, bytes | bytearray):
            raise ConfigError(f"a PRG seed must be bytes, int or None, got {type(seed).__name__}")
        material = b"egan-mpc-prg-v1|" + len(domain).to_bytes(2, "big") + domain + bytes(seed)
        key = hashlib.sha256(material).digest()
        self._stream = Cipher(algorithms.AES(key), modes.CTR(b"\x00" * 16)).encryptor()

    def __repr__(self) -> str:
        return "Prg(<secret seed>)"

    def random_bytes(self, n: int) -> bytes:
        return self._stream.update(b"\x00" * n)

    def ring(self, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform elements of Z_2^64 (uint64)."""
        n = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self.random_bytes(8 * n), dtype=np.uint64).reshape(shape).copy()

    def bits(self, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform bits as uint8 in {0, 1}."""
        n = int(np.prod(shape, dtype=np.int64))
        return (np.frombuffer(self.random_bytes(n), dtype=np.uint8) & 1).reshape(shape)  # a copy


def encode(x, frac_bits: int = FRAC_BITS) -> np.ndarray:
    """Real values -> fixed-point ring elements round(x · 2^frac_bits) mod 2^64 (uint64).

    Raises ShapeError for non-finite values or |x| >= 2^(62 - frac_bits): beyond that, sums and
    differences of two values leave the signed range of the ring and comparisons fail.
    """
    x = np.asarray(x, dtype=np.float64)
    limit = 2.0 ** (62 - frac_bits)
    if not np.all(np.isfinite(x)) or np.any(np.abs(x) >= limit):
        raise ShapeError(
            f"fixed-point encode needs finite values with |x| < 2^{62 - frac_bits} = {limit:g}; "
            "scale the data down or use fewer fractional bits"
        )
    return np.round(x * 2.0**frac_bits).astype(np.int64).view(np.uint64)


def decode(x: np.ndarray, frac_bits: int = FRAC_BITS) -> np.ndarray:
    """Fixed-point ring elements -> float64 (two's complement, divided by 2^frac_bits)."""
    return np.asarray(x, dtype=np.uint64).view(np.int64).astype(np.float64) / 2.0**frac_bits


def as_ring(x) -> np.ndarray:
    """Integers (any int dtype, possibly negative) -> uint64 ring elements, wrapping mod 2^64."""
    x = np.asarray(x)
    if x.dtype == np.uint64:
        return x
    if not np.issubdtype(x.dtype, np.integer) and x.dtype != np.bool_:
        raise ShapeError(f"ring elements must be integers, got dtype {x.dtype}; use encode() first")
    return x.astype(np.int64).view(np.uint64)


def share(x: np.ndarray, prg: Prg) -> tuple[np.ndarray, np.ndarray]:
    """Split ring elements x into (x0, x1) with x0 uniform and x0 + x1 = x mod 2^64."""
    x = as_ring(x)
    x0 = prg.ring(x.shape)
    return x0, sub(x, x0)


def reconstruct(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    return add(as_ring(x0), as_ring(x1))


# Element-wise ops: numpy, or the jitted drop-ins of `elementwise` under set_local_backend("jax")


def add(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _local.add(x, y) if _local.use_jax() else x + y


def sub(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _local.sub(x, y) if _local.use_jax() else x - y


def neg(x: np.ndarray) -> np.ndarray:
    return _local.neg(x) if _local.use_jax() else np.zeros_like(x) - x


def mul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Element-wise ring product (numpy broadcasting), mod 2^64; no rescaling."""
    return _local.mul(x, y) if _local.use_jax() else x * y


def mul_int(x: np.ndarray, k) -> np.ndarray:
    """Share times a public integer (array or scalar), mod 2^64; no rescaling."""
    return mul(x, as_ring(k))


def add_public(x: np.ndarray, c: np.ndarray, party_id: int) -> np.ndarray:
    """Add a public ring value to a shared one: only party 0 adds it."""
    return add(x, as_ring(c)) if party_id == 0 else add(x, np.zeros_like(as_ring(c)))


def beaver_mul_combine(c, d, y, a, e) -> np.ndarray:
    """c + d·y + a·e mod 2^64: the last step of an element-wise Beaver product (one fused JAX call
    under the "jax" backend)."""
    if _local.use_jax():
        return _local.beaver_mul_combine(c, d, y, a, e)
    return c + d * y + a * e


def truncate(x: np.ndarray, party_id: int, bits: int = FRAC_BITS) -> np.ndarray:
    """SecureML local truncation of a share by ``bits`` (divide by 2^bits), no communication.

    Party 0 shifts its share arithmetically; party 1 shifts the negation and negates back. The
    reconstructed result is floor(x / 2^bits) or one more, except with probability |x| / 2^64 (over
    the share's randomness), when the two signed shares overflow and the result is off by ±2^(64-bits).
    For a product of two values with real magnitudes below 2^8 at 16 fractional bits (|x| < 2^48) that
    is below 2^-16 per element; for magnitudes near 1 it is about 2^-32 (Mohassel & Zhang, SecureML,
    S&P 2017, Thm. 1).
    """
    if _local.use_jax():
        return _local.truncate(x, party_id, bits)
    if party_id == 0:
        return (x.view(np.int64) >> np.int64(bits)).view(np.uint64)
    minus = (np.zeros_like(x) - x).view(np.int64) >> np.int64(bits)
    return np.zeros_like(x) - minus.view(np.uint64)


# ---- bilinear ring ops: jitted JAX under x64 -------------------------------------------------
#
# XLA:CPU's uint64 convolution is slow (no vectorised integer kernels), so conv2d splits each
# operand into four 16-bit limbs held exactly in float64: the product mod 2^64 is
# sum_{i+j<4} op(x_i, y_j)·2^(16(i+j)), and limbs with the same i+j share one float64 op by
# concatenating them along the contraction axis. Every partial sum stays below 2^53 (exact) while
# 4·K·(2^16-1)^2 < 2^53, K the number of terms per output; larger K uses uint64. Measured here
# (2 busy cores, min of 12 interleaved runs; 64x16x16x32 -> 64, kernel 4, stride 2): conv2d 54 ms
# with limbs vs 96 ms uint64; its kernel gradient 105 ms both ways, so it stays uint64; the
# transposed conv (lhs-dilated) is far slower in float64 (1.3 s vs 0.06 s) and matmul with large K
# is slower too, so they stay uint64. Every op is exact either way (tested).
_LIMB_KINDS = frozenset({"conv2d"})
_LIMB_BITS = 16
_LIMBS = 64 // _LIMB_BITS
_F64_EXACT = 2**53
# (x axis, y axis) summed over by each op: where limbs are concatenated
_CONTRACTION_AXES = {
    "matmul": (-1, -2),
    "conv2d": (3, 2),
    "conv_transpose2d": (3, 3),
    "conv2d_kernel_grad": (0, 0),
}


def _conv2d_op(x, w, stride, padding):
    return lax.conv_general_dilated(x, w, stride, padding, dimension_numbers=_DIMENSION_NUMBERS)


def _conv2d_kernel_grad_op(x, dy, stride, padding, kernel_hw):
    # dW[kh, kw, c, o] = sum_{n,i,j} x_pad[n, i*s + kh, j*s + kw, c] · dy[n, i, j, o]: a convolution
    # with the batch axis as features, channels as batch, and dy as a kernel dilated by the stride
    out = lax.conv_general_dilated(
        x, dy, (1, 1), padding, rhs_dilation=stride, dimension_numbers=("CHWN", "IHWO", "HWNC")
    )
    return out[: kernel_hw[0], : kernel_hw[1]]


def _conv_transpose2d_op(x, w, stride, padding, out_hw):
    kh, kw = w.shape[0], w.shape[1]
    pads = []
    for axis, (k, s, (lo, hi)) in enumerate(zip((kh, kw), stride, padding, strict=True)):
        extra = out_hw[axis] - ((x.shape[1 + axis] - 1) * s + k - lo - hi)
        pads.append((k - 1 - lo, k - 1 - hi + extra))
    flipped = jnp.swapaxes(w[::-1, ::-1], 2, 3)
    return lax.conv_general_dilated(
        x, flipped, (1, 1), pads, lhs_dilation=stride, dimension_numbers=_DIMENSION_NUMBERS
    )


_OPS = {
    "matmul": lambda x, y: jnp.matmul(x, y),
    "conv2d": _conv2d_op,
    "conv_transpose2d": _conv_transpose2d_op,
    "conv2d_kernel_grad": _conv2d_kernel_grad_op,
}


@partial(jax.jit, static_argnames=("kind", "params", "limbs"))
def _bilinear_jax(x, y, kind, params, limbs):
    op = partial(_OPS[kind], **dict(params))
    if not limbs:
        return op(x, y)
    x_axis, y_axis = _CONTRACTION_AXES[kind]
    mask, width = jnp.uint64(2**_LIMB_BITS - 1), _LIMB_BITS
    xs = [((x >> jnp.uint64(width * i)) & mask).astype(jnp.float64) for i in range(_LIMBS)]
    ys = [((y >> jnp.uint64(width * i)) & mask).astype(jnp.float64) for i in range(_LIMBS)]
    out = None
    for s in range(_LIMBS):
        lhs = jnp.concatenate(xs[: s + 1], axis=x_axis)
        rhs = jnp.concatenate(ys[s::-1], axis=y_axis)
        part = op(lhs, rhs).astype(jnp.uint64) << jnp.uint64(width * s)
        out = part if out is None else out + part
    return out


def _bilinear(kind: str, x, y, terms: int, *, limbs: bool | None = None, **params) -> np.ndarray:
    """Run op ``kind`` mod 2^64. ``terms``: products summed per output; ``limbs``: force the float64
    limb path on or off (default: on for `_LIMB_KINDS` where exact)."""
    exact = _LIMBS * terms * (2**_LIMB_BITS - 1) ** 2 < _F64_EXACT
    if limbs is None:
        limbs = exact and kind in _LIMB_KINDS
    elif limbs and not exact:
        raise ShapeError(f"{kind} sums {terms} products per output: too many for exact limbs")
    with jax.enable_x64(True):
        out = _bilinear_jax(
            jnp.asarray(x, dtype=jnp.uint64),
            jnp.asarray(y, dtype=jnp.uint64),
            kind=kind,
            params=tuple(sorted(params.items())),
            limbs=limbs,
        )
        return np.array(out)  # a writable numpy copy, like every other share


def matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ring matrix product (last axis of x with second-to-last of y), mod 2^64."""
    if x.ndim < 1 or y.ndim < 2 or x.shape[-1] != y.shape[-2]:
        raise ShapeError(f"matmul needs x [..., K] and y [..., K, M], got {x.shape} and {y.shape}")
    return _bilinear("matmul", x, y, terms=x.shape[-1])


def pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def padding_spec(padding) -> Padding:
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ConfigError(
                f"padding must be 'SAME', 'VALID' or ((lo, hi), (lo, hi)), got {padding!r}"
            )
        return padding
    return tuple(pair(p) for p in padding)


def conv2d(x: np.ndarray, w: np.ndarray, *, stride=(1, 1), padding: Padding = "SAME") -> np.ndarray:
    """Ring convolution, NHWC input, HWIO kernel (same semantics as lax.conv_general_dilated)."""
    if x.ndim != 4 or w.ndim != 4 or x.shape[3] != w.shape[2]:
        raise ShapeError(
            f"conv2d needs x [N,H,W,C] and w [KH,KW,C,O] with matching C, got {x.shape} and {w.shape}"
        )
    terms = w.shape[0] * w.shape[1] * w.shape[2]
    return _bilinear("conv2d", x, w, terms, stride=pair(stride), padding=padding_spec(padding))


def explicit_padding(x_hw, kernel_hw, stride, padding) -> tuple[tuple[int, int], tuple[int, int]]:
    """'SAME' / 'VALID' / explicit pairs -> explicit ((lo, hi), (lo, hi)) as lax computes them."""
    padding = padding_spec(padding)
    if isinstance(padding, str):
        pads = lax.padtype_to_pads(tuple(x_hw), tuple(kernel_hw), pair(stride), padding)
        return tuple((int(lo), int(hi)) for lo, hi in pads)
    return padding


def conv2d_kernel_grad(
    x: np.ndarray, dy: np.ndarray, *, kernel_hw, stride=(1, 1), padding: Padding = "SAME"
) -> np.ndarray:
    """Ring gradient of ``conv2d(x, w, stride, padding)`` in w for output gradient dy: [KH,KW,C,O].

    Bilinear in (x, dy). The gradient of the transposed conv (the up-sampler) in its kernel is the
    same op with the roles swapped: ``conv2d_kernel_grad(dy, x, ...)``."""
    if x.ndim != 4 or dy.ndim != 4 or x.shape[0] != dy.shape[0]:
        raise ShapeError(
            f"conv2d_kernel_grad needs x [N,H,W,C], dy [N,H',W',O]; got {x.shape}, {dy.shape}"
        )
    pads = explicit_padding(x.shape[1:3], kernel_hw, stride, padding)
    terms = dy.shape[0] * dy.shape[1] * dy.shape[2]
    return _bilinear(
        "conv2d_kernel_grad",
        x,
        dy,
        terms,
        stride=pair(stride),
        padding=pads,
        kernel_hw=pair(kernel_hw),
    )


def conv_transpose_output_hw(x_hw, kernel_hw, stride, padding) -> tuple[int, int]:
    """Default output size of `conv_transpose2d`: the input size of the conv it transposes, minimal."""
    return tuple(
        (h - 1) * s + k - lo - hi
        for h, k, s, (lo, hi) in zip(x_hw, kernel_hw, pair(stride), padding, strict=True)
    )


def conv_transpose2d(
    x: np.ndarray, w: np.ndarray, *, stride=(2, 2), padding=((1, 1), (1, 1)), out_hw=None
) -> np.ndarray:
    """Ring transposed convolution: the adjoint of ``conv2d(u, w, stride, padding)`` in u.

    x: [N, H, W, I]; w: [KH, KW, O, I] (the HWIO kernel of the strided conv whose output has I
    channels); result [N, H', W', O] with (H', W') = ``out_hw`` or the minimal size ((H-1)·s + k - lo
    - hi; 2H for kernel 4, stride 2, padding 1). This is the engine's learned ×2 up-sampler (the VJP
    of a strided conv). Padding must be explicit ((lo, hi), (lo, hi)).
    """
    if x.ndim != 4 or w.ndim != 4 or x.shape[3] != w.shape[3]:
        raise ShapeError(
            f"conv_transpose2d needs x [N,H,W,I] and w [KH,KW,O,I], got {x.shape} and {w.shape}"
        )
    if isinstance(padding, str):
        raise ConfigError(
            "conv_transpose2d needs explicit padding ((lo, hi), (lo, hi)), not a string"
        )
    padding = padding_spec(padding)
    if out_hw is None:
        out_hw = conv_transpose_output_hw(x.shape[1:3], w.shape[:2], stride, padding)
    return _bilinear(
        "conv_transpose2d",
        x,
        w,
        w.shape[0] * w.shape[1] * w.shape[3],
        stride=pair(stride),
        padding=padding,
        out_hw=tuple(int(v) for v in out_hw),
    )


@dataclass(frozen=True)
class Bilinear:
    """A bilinear ring op op(x, y): the shape of a Beaver triple (a, b, op(a, b)).

    kind: "mul" (element-wise, numpy broadcasting), "matmul", "conv2d", "conv_transpose2d" or
    "conv2d_kernel_grad"; stride, padding, out_hw (transposed conv) and kernel_hw (kernel gradient)
    apply to the convolutions.
    """

    kind: str
    stride: tuple[int, int] = (1, 1)
    padding: Padding = "SAME"
    out_hw: tuple[int, int] | None = None
    kernel_hw: tuple[int, int] | None = None

    def __post_init__(self):
        if self.kind not in _BILINEAR:
            raise ConfigError(f"unknown bilinear op {self.kind!r}; use one of {sorted(_BILINEAR)}")

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _BILINEAR[self.kind](self, x, y)


_BILINEAR = {
    "mul": lambda op, x, y: mul(x, y),
    "matmul": lambda op, x, y: matmul(x, y),
    "conv2d": lambda op, x, y: conv2d(x, y, stride=op.stride, padding=op.padding),
    "conv_transpose2d": lambda op, x, y: conv_transpose2d(
        x, y, stride=op.stride, padding=op.padding, out_hw=op.out_hw
    ),
    "conv2d_kernel_grad": lambda op, x, y: conv2d_kernel_grad(
        x, y, kernel_hw=op.kernel_hw, stride=op.stride, padding=op.padding
    ),
}
