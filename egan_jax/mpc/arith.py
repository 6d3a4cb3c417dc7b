"""Arithmetic protocols on additive shares: Beaver products (element-wise, matmul, conv, transposed
conv), squares, public scaling, truncation, sums and means.

Every product of two fixed-point shares has 2f fractional bits and is truncated back to f (SecureML
local truncation, `ring.truncate`, error at most one unit in the last place except with probability
|x|/2^64). One Beaver product = one round; each party sends the two masked inputs (d = x - a,
e = y - b), uniform ring elements that reveal nothing about x or y.
"""

from __future__ import annotations

import numpy as np

from egan_jax.mpc import ring
from egan_jax.mpc.protocols import Party, open_shares
from egan_jax.mpc.ring import Bilinear, Padding

MUL = Bilinear("mul")
MATMUL = Bilinear("matmul")


def truncate(party: Party, x: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Divide a share by 2^bits (default frac_bits) locally (SecureML)."""
    return ring.truncate(x, party.id, party.frac_bits if bits is None else bits)


def beaver(party: Party, op: Bilinear, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Shares of op(x, y) for a bilinear ring op, exact in the ring (no truncation). One round.

    With a triple (a, b, c = op(a, b)) and opened d = x - a, e = y - b:
    op(x, y) = c + op(d, y) + op(a, e), so each party computes c_i + op(d, y_i) + op(a_i, e).
    """
    a, b, c = party.dealer.beaver(op, x.shape, y.shape)
    d, e = open_shares(party, ring.sub(x, a), ring.sub(y, b))
    return _combine(op, c, d, y, a, e)


def _combine(op: Bilinear, c, d, y, a, e) -> np.ndarray:
    """c + op(d, y) + op(a, e); element-wise products fused (one jitted call under "jax")."""
    if op.kind == "mul":
        return ring.beaver_mul_combine(c, d, y, a, e)
    return ring.add(ring.add(c, op(d, y)), op(a, e))


def beaver_many(
    party: Party, items: list[tuple[Bilinear, np.ndarray, np.ndarray]]
) -> list[np.ndarray]:
    """Several independent Beaver products in one round (their openings share one message)."""
    triples = [party.dealer.beaver(op, x.shape, y.shape) for op, x, y in items]
    masked = []
    for (_, x, y), (a, b, _) in zip(items, triples, strict=True):
        masked += [ring.sub(x, a), ring.sub(y, b)]
    opened = open_shares(party, *masked)
    out = []
    for i, ((op, _, y), (a, _, c)) in enumerate(zip(items, triples, strict=True)):
        d, e = opened[2 * i], opened[2 * i + 1]
        out.append(_combine(op, c, d, y, a, e))
    return out


def mul(party: Party, x: np.ndarray, y: np.ndarray, *, rescale: bool = True) -> np.ndarray:
    """Element-wise product (numpy broadcasting). ``rescale=False`` when one factor is an integer
    share (e.g. a comparison bit): then no truncation is needed."""
    z = beaver(party, MUL, x, y)
    return truncate(party, z) if rescale else z


def square(party: Party, x: np.ndarray, *, rescale: bool = True) -> np.ndarray:
    """x^2 with a square pair (a, a^2): opens only d = x - a; x^2 = a^2 + 2·d·a + d^2. One round."""
    a, c = party.dealer.square(x.shape)
    (d,) = open_shares(party, x - a)
    z = c + ring.mul_int(d * a, 2)
    if party.id == 0:
        z = z + d * d
    return truncate(party, z) if rescale else z


def matmul(party: Party, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fixed-point matrix product x @ y. One round."""
    return truncate(party, beaver(party, MATMUL, x, y))


def conv2d(
    party: Party,
    x: np.ndarray,
    w: np.ndarray,
    *,
    stride=(1, 1),
    padding: Padding = "SAME",
) -> np.ndarray:
    """Fixed-point convolution of shared x [N,H,W,C] with shared kernel w [KH,KW,C,O]. One round."""
    op = Bilinear("conv2d", ring.pair(stride), ring.padding_spec(padding))
    return truncate(party, beaver(party, op, x, w))


def conv_transpose2d(
    party: Party,
    x: np.ndarray,
    w: np.ndarray,
    *,
    stride=(2, 2),
    padding=((1, 1), (1, 1)),
    out_hw: tuple[int, int] | None = None,
) -> np.ndarray:
    """Fixed-point transposed convolution (see `ring.conv_transpose2d`; w [KH,KW,O,I]). One round."""
    padding = ring.padding_spec(padding)
    if out_hw is None:
        out_hw = ring.conv_transpose_output_hw(x.shape[1:3], w.shape[:2], stride, padding)
    op = Bilinear("conv_transpose2d", ring.pair(stride), padding, tuple(out_hw))
    return truncate(party, beaver(party, op, x, w))


def conv2d_kernel_grad(
    party: Party,
    x: np.ndarray,
    dy: np.ndarray,
    *,
    kernel_hw: tuple[int, int],
    stride=(1, 1),
    padding: Padding = "SAME",
) -> np.ndarray:
    """Fixed-point gradient of ``conv2d(x, w)`` in w, from shared x and output gradient dy
    (see `ring.conv2d_kernel_grad`). The input gradient is `conv_transpose2d(dy, w)`. One round."""
    pads = ring.explicit_padding(x.shape[1:3], kernel_hw, stride, padding)
    op = Bilinear("conv2d_kernel_grad", ring.pair(stride), pads, kernel_hw=ring.pair(kernel_hw))
    return truncate(party, beaver(party, op, x, dy))


def mul_public(party: Party, x: np.ndarray, value) -> np.ndarray:
    """Shared x times a public real constant or array (local: multiply by its encoding, truncate)."""
    return truncate(party, x * party.public(value))


def sum_(x: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
    """Local sum of shares (mod 2^64)."""
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=np.uint64)


def mean(party: Party, x: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
    """Local mean: sum, then multiply by the public 1/n."""
    total = sum_(x, axis=axis, keepdims=keepdims)
    n = x.size // max(total.size, 1)
    return mul_public(party, total, 1.0 / n)
