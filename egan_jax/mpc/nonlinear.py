"""Smooth non-linear functions on shares: sigmoid and tanh (piecewise polynomials), reciprocal and
inverse square root (Newton / Goldschmidt from a secure initial guess), batch-norm normalisation.

Nothing is revealed: range reduction uses the shared bit decomposition, not an opened value.

- `piecewise_polynomial`: segment indicators from comparisons against all breakpoints (one batched
  MSB extraction, 8 rounds), each segment's polynomial in its own local variable t ∈ [-1, 1] (powers up
  to 5 in 3 rounds, one opened element per round: `powers5`), and the indicator-weighted sum (1 round). Outside the outer breakpoints the value
  is the function's limit. Public coefficients are rounded to the fixed-point grid. LP-GAN's
  sigmoid (e^{-x} as the product of e^{-x_i} of float shares) has no analogue on ring shares (a
  ring share is uniform over 2^64 values), so sigmoid and tanh use this construction instead.
- `normalize`: x > 0 (real value below 2^max_log2) -> m = x / 2^(k+1-f) in [1/2, 1) and the one-hot
  position k of x's leading bit, via the low f + max_log2 bits (6 rounds), a prefix OR (5 rounds),
  B2A of the one-hot bits (1 round) and one product (1 round).
- `inv_sqrt`: LP-GAN's linear initial guess y0 = -0.8099868542·m + 1.787727479 (these constants fit
  1/sqrt on [1/2, 1), where we normalise), two Goldschmidt iterations (LP-GAN runs five), the public
  factor 2^{-(k+1-f)/2} selected by the one-hot bits folded into the last one. `reciprocal`: y0 = 48/17 - 32/17·m, Newton.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from egan_jax.errors import ConfigError
from egan_jax.mpc import arith, compare, ring
from egan_jax.mpc.arith import MUL
from egan_jax.mpc.protocols import Party


@dataclass(frozen=True)
class PiecewisePolynomial:
    """Public description: breakpoints b_1 < ... < b_m, the constant values below b_1 and above b_m,
    and for each inner segment [b_j, b_{j+1}] the center, the scale q (t = (x - center)·q) and the
    coefficients of p_j(t) = Σ_k c_k t^k (lowest degree first)."""

    breakpoints: tuple[float, ...]
    left: float
    right: float
    centers: tuple[float, ...]
    scales: tuple[float, ...]
    coefficients: tuple[tuple[float, ...], ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Plaintext evaluation (the reference the secure version is tested against)."""
        x = np.asarray(x, dtype=np.float64)
        out = np.where(x < self.breakpoints[0], self.left, self.right)
        for j, (c, q, coef) in enumerate(
            zip(self.centers, self.scales, self.coefficients, strict=True)
        ):
            inside = (x >= self.breakpoints[j]) & (x < self.breakpoints[j + 1])
            out = np.where(inside, np.polynomial.polynomial.polyval((x - c) * q, coef), out)
        return out


def fit_piecewise(
    fn, breakpoints, *, degree: int, left: float, right: float, frac_bits: int = ring.FRAC_BITS
) -> PiecewisePolynomial:
    """Least-squares fit of ``fn`` on Chebyshev nodes of every inner segment, in the segment's own
    variable t = (x - center)·q, with q rounded to the fixed-point grid exactly as the protocol uses it."""
    if degree < 1 or degree > 5:
        raise ConfigError(f"piecewise degree must be in [1, 5], got {degree}")
    bps = tuple(float(b) for b in breakpoints)
    if len(bps) < 2 or any(a >= b for a, b in zip(bps[:-1], bps[1:], strict=True)):
        raise ConfigError(f"breakpoints must be increasing, at least two; got {bps}")
    nodes = np.cos(np.linspace(0.0, np.pi, 1025))
    centers, scales, coefs = [], [], []
    for a, b in zip(bps[:-1], bps[1:], strict=True):
        center = (a + b) / 2
        q = float(ring.decode(ring.encode(2.0 / (b - a), frac_bits), frac_bits))
        x = center + (b - a) / 2 * nodes
        coef = np.polynomial.polynomial.polyfit((x - center) * q, fn(x), degree)
        centers.append(center)
        scales.append(q)
        coefs.append(tuple(float(c) for c in coef))
    return PiecewisePolynomial(bps, left, right, tuple(centers), tuple(scales), tuple(coefs))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@lru_cache(maxsize=4)
def sigmoid_spec(frac_bits: int = ring.FRAC_BITS) -> PiecewisePolynomial:
    """Degree-5 pieces on [-10,-3.75,0,3.75,10], 0 and 1 outside: max fit error 8.2e-5. Four
    pieces, not five: one comparison and one piece fewer (about 55 bytes per element per party)
    for a fit error still below 1e-4."""
    return fit_piecewise(
        _sigmoid,
        (-10.0, -3.75, 0.0, 3.75, 10.0),
        degree=5,
        left=0.0,
        right=1.0,
        frac_bits=frac_bits,
    )


@lru_cache(maxsize=4)
def tanh_spec(frac_bits: int = ring.FRAC_BITS) -> PiecewisePolynomial:
    """Degree-5 pieces on [-5,-2,-0.75,0.75,2,5], -1 and 1 outside: max error 9.1e-5 (at |x| = 5)."""
    return fit_piecewise(
        np.tanh,
        (-5.0, -2.0, -0.75, 0.75, 2.0, 5.0),
        degree=5,
        left=-1.0,
        right=1.0,
        frac_bits=frac_bits,
    )


def powers5(party: Party, t: np.ndarray) -> list[np.ndarray]:
    """[t, t^2, t^3, t^4, t^5] in 3 rounds with ONE opened ring element per round (24 bytes per
    element per party; separate squares and products open 7).

    With the dealer's masks (a, a^2, b, b·a, b^2, c, c·a): open e1 = t - a, then t^2 = a^2 +
    2·e1·a + e1^2; open e2 = t^2 - b, then t^3 = (e2 + b)(e1 + a) = b·a + e2·a + e1·b + e2·e1 and
    t^4 = b^2 + 2·e2·b + e2^2; open e4 = t^4 - c, then t^5 = c·a + e4·a + e1·c + e4·e1. Each power
    is truncated once. The masks a, b, c are independent and uniform, so every opened value is."""
    a, a2, b, ba, b2, c, ca = party.dealer.powers(t.shape)
    first = party.id == 0
    (e1,) = arith.open_shares(party, t - a)
    t2 = arith.truncate(party, a2 + ring.mul_int(e1 * a, 2) + (e1 * e1 if first else 0))
    (e2,) = arith.open_shares(party, t2 - b)
    t3 = arith.truncate(party, ba + e2 * a + e1 * b + (e2 * e1 if first else 0))
    t4 = arith.truncate(party, b2 + ring.mul_int(e2 * b, 2) + (e2 * e2 if first else 0))
    (e4,) = arith.open_shares(party, t4 - c)
    t5 = arith.truncate(party, ca + e4 * a + e1 * c + (e4 * e1 if first else 0))
    return [t, t2, t3, t4, t5]


def _powers(party: Party, t: np.ndarray, degree: int) -> list[np.ndarray]:
    """[t, t^2, ..., t^degree] with depth ceil(log2(degree)) + (degree == 5)."""
    if degree == 5:
        return powers5(party, t)
    powers = [t]
    if degree >= 2:
        powers.append(arith.square(party, t))
    if degree >= 3:
        items = [(MUL, powers[1], t)] + ([(MUL, powers[1], powers[1])] if degree >= 4 else [])
        powers += [arith.truncate(party, z) for z in arith.beaver_many(party, items)]
    return powers


def piecewise_polynomial(party: Party, x: np.ndarray, spec: PiecewisePolynomial) -> np.ndarray:
    """Shares of spec(x). Rounds: 8 (comparisons) + powers (3 for degree 5) + 1."""
    f = party.frac_bits
    expand = (slice(None),) + (None,) * x.ndim
    bps = np.asarray(spec.breakpoints)
    shifted = x[None] - ring.encode(bps, f)[expand] * np.uint64(party.id == 0)
    ge = compare.drelu(party, shifted)  # [x >= b_j], integer shares, shape (m, *x.shape)
    inside = ge[:-1] - ge[1:]  # [b_j <= x < b_{j+1}]
    t = arith.mul_public(
        party,
        x[None] - ring.encode(np.asarray(spec.centers), f)[expand] * np.uint64(party.id == 0),
        np.asarray(spec.scales)[expand],
    )
    degree = max(len(c) for c in spec.coefficients) - 1
    powers = _powers(party, t, degree)
    coef = np.zeros((degree + 1, len(spec.coefficients)))
    for j, c in enumerate(spec.coefficients):
        coef[: len(c), j] = c
    value = np.zeros_like(t)
    for k in range(1, degree + 1):
        value = value + powers[k - 1] * ring.encode(coef[k], f)[expand]
    value = ring.add_public(arith.truncate(party, value), ring.encode(coef[0], f)[expand], party.id)
    selected = arith.mul(party, inside, value, rescale=False)
    out = arith.sum_(selected, axis=0)
    below = ring.add_public(ring.neg(ge[0]), np.uint64(1), party.id)  # [x < b_1]
    return out + below * ring.encode(spec.left, f) + ge[-1] * ring.encode(spec.right, f)


def sigmoid(party: Party, x: np.ndarray) -> np.ndarray:
    """Shares of sigmoid(x), absolute error below 1.5e-4 at 16 fractional bits (fit 8.2e-5 plus
    fixed-point evaluation). 12 rounds, about 360 bytes per element per party."""
    return piecewise_polynomial(party, x, sigmoid_spec(party.frac_bits))


def tanh(party: Party, x: np.ndarray) -> np.ndarray:
    """Shares of tanh(x) (the generator's output), absolute error below 1.5e-4 (fit 9.1e-5 plus
    fixed-point evaluation). 12 rounds."""
    return piecewise_polynomial(party, x, tanh_spec(party.frac_bits))


def normalize(
    party: Party, x: np.ndarray, *, max_log2: int = 16, fold_b2a: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """For shared x with 2^-f <= x < 2^max_log2: (m, onehot) with m = x·2^(f-k-1) in [1/2, 1) and
    onehot[..., j] = integer shares of [k == j], k the position of x's leading bit (j < f + max_log2).
    Rounds: 3 + 2·ceil(log2(f + max_log2)) (13 by default), one fewer with ``fold_b2a``.

    m comes from x·S truncated by T = max_log2 bits, S = Σ_j onehot_j·2^(T+f-j-1); that product is
    below 2^(T+f), so truncation fails with probability below 2^(T+f-64) (2^-32 by default).
    ``fold_b2a=True`` runs the B2A of the one-hot bits and the product x·S in one round
    (`compare.b2a_mul`: x times every daBit), at 8·(f + max_log2) more bytes per element of x: worth
    it where x is small (batch norm's per-channel variance), not for element-wise use."""
    f = party.frac_bits
    width = f + max_log2
    if width > 62 or max_log2 < 0:
        raise ConfigError(f"normalize needs 0 <= max_log2 <= {62 - f}, got {max_log2}")
    weights = np.uint64(1) << (max_log2 + f - np.arange(width) - 1).astype(np.uint64)
    if fold_b2a:
        bits = compare.leading_one_bits(party, x, width)
        products, onehot = compare.b2a_mul(party, bits, x[..., None])
        scaled = arith.sum_(products * weights, axis=-1)
    else:
        onehot = compare.leading_one(party, x, width)
        factor = arith.sum_(onehot * weights, axis=-1)
        scaled = arith.mul(party, x, factor, rescale=False)
    return arith.truncate(party, scaled, max_log2), onehot


def _select_public(party: Party, onehot: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Σ_j onehot_j · encode(values_j): a shared fixed-point value picked by a one-hot index."""
    return arith.sum_(onehot * ring.encode(values, party.frac_bits), axis=-1)


def inv_sqrt(
    party: Party,
    x: np.ndarray,
    *,
    iterations: int = 2,
    max_log2: int = 16,
    fold_b2a: bool = False,
) -> np.ndarray:
    """Shares of 1/sqrt(x) for 2^-f <= x < 2^max_log2. normalize + 1 + 2·iterations rounds (18 by
    default: f = 16, max_log2 = 16, 2 iterations; 17 with ``fold_b2a``).

    Goldschmidt from the linear guess converges quadratically: relative error 2.2e-2, 7.5e-4,
    8.4e-7 after 0, 1, 2 iterations (in exact arithmetic), so two iterations reach the fixed-point
    floor. The public factor 2^{-(k+1-f)/2} (selected by the one-hot bits) multiplies h in the
    last iteration's first round, beside g·h, so it costs no round of its own.

    Error (f = 16): within 1e-4·|result| + 2·2^-f of 1/sqrt of the fixed-point input."""
    if iterations < 1:
        raise ConfigError(f"inv_sqrt needs at least one iteration, got {iterations}")
    m, onehot = normalize(party, x, max_log2=max_log2, fold_b2a=fold_b2a)
    y = party.add_public(arith.mul_public(party, m, -0.8099868542), 1.787727479)
    g = arith.mul(party, m, y)
    h = arith.mul_public(party, y, 0.5)
    k = np.arange(onehot.shape[-1])
    scale = _select_public(party, onehot, 2.0 ** (-(k + 1 - party.frac_bits) / 2))
    for i in range(iterations):
        last = i == iterations - 1
        items = [(MUL, g, h)] + ([(MUL, ring.mul_int(h, 2), scale)] if last else [])
        gh, *scaled = (arith.truncate(party, z) for z in arith.beaver_many(party, items))
        r = party.add_public(ring.neg(gh), 1.5)
        if last:
            return arith.mul(party, scaled[0], r)
        g, h = (
            arith.truncate(party, z) for z in arith.beaver_many(party, [(MUL, g, r), (MUL, h, r)])
        )
    raise AssertionError("unreachable")


def reciprocal(
    party: Party, x: np.ndarray, *, iterations: int = 3, max_log2: int = 16
) -> np.ndarray:
    """Shares of 1/x for 2^-f <= x < 2^max_log2 (positive x only). normalize + 1 + 2·iterations
    rounds (20 by default).

    Error (3 iterations, f = 16): within 1e-4·|result| + 2^-f of 1/x for the fixed-point input."""
    m, onehot = normalize(party, x, max_log2=max_log2)
    y = party.add_public(arith.mul_public(party, m, -32.0 / 17.0), 48.0 / 17.0)
    for _ in range(iterations):
        e = party.add_public(ring.neg(arith.mul(party, m, y)), 2.0)
        y = arith.mul(party, y, e)
    k = np.arange(onehot.shape[-1])
    scale = _select_public(party, onehot, 2.0 ** (-(k + 1 - party.frac_bits)))
    return arith.mul(party, y, scale)


def batch_norm_normalize(
    party: Party, x: np.ndarray, *, eps: float = 1e-5, axes=(0, 1, 2), max_log2: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """(x_hat, inv_std): (x - mean)·(var + eps)^(-1/2) over ``axes`` (batch statistics, NHWC), with
    the shared inverse standard deviation kept for the backward pass.

    The centred values are opened once, masked (d = c - a): the square for the variance and the
    final product c·inv_std both use that opening (dealer ``square_mul``), so the layer sends about
    8 bytes per element per party plus the per-channel inverse square root. 19 rounds."""
    mean = arith.mean(party, x, axis=axes, keepdims=True)
    centered = x - mean
    stat_shape = mean.shape
    a, a2, b, ab = party.dealer.square_mul(centered.shape, stat_shape)
    (d,) = arith.open_shares(party, centered - a)
    squares = arith.truncate(
        party, a2 + ring.mul_int(d * a, 2) + (d * d if party.id == 0 else np.uint64(0))
    )
    var = arith.mean(party, squares, axis=axes, keepdims=True)
    # the variance is one value per channel: folding B2A into normalize's product saves a round
    # for a few hundred bytes per channel
    inv_std = inv_sqrt(party, party.add_public(var, eps), max_log2=max_log2, fold_b2a=True)
    (e,) = arith.open_shares(party, inv_std - b)
    x_hat = arith.truncate(party, ab + d * inv_std + a * e)  # Beaver: c·y = a·b + d·y + a·e
    return x_hat, inv_std
