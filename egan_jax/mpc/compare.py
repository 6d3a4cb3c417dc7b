"""Comparison on additive shares by most-significant-bit extraction, and ReLU built on it.

The parties' arithmetic shares x0, x1 are two addends known to one party each, so the bits of
x = x0 + x1 come out of a binary adder evaluated on XOR shares with boolean Beaver (AND) triples.
The MSB (the sign of a fixed-point value) needs only the carry into bit 63: a carry tree on
bit-sliced shares, 64 elements to a word (generate bits, then 6 merge levels: 7 rounds, ~39 bytes
per element per party). Full A2B
(every bit) is a Kogge-Stone parallel-prefix adder on 64-bit words (7 rounds); `low_bits` runs the
same adder bit-sliced on the low bits only (what `nonlinear.normalize` needs). B2A of a bit uses a daBit (a random bit shared both ways): open c = b XOR r (one round,
one bit), then b = c + r - 2·c·r locally.

This is the standard construction (ABY / CrypTen / SPU style), used in place of LP-GAN's bit-by-bit
prefix chain (L rounds) on float shares. Comparison bits are integer shares (0/1, not fixed-point),
so multiplying them into a fixed-point share needs no truncation. ReLU folds the B2A into the product
(`b2a_mul`): 7 + 1 = 8 rounds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from egan_jax.mpc import arith, ring
from egan_jax.mpc.channel import ChannelError
from egan_jax.mpc.protocols import Party

_LEVELS = (1, 2, 4, 8, 16, 32)
_ONE = np.uint64(1)


def open_xor(party: Party, *shares: np.ndarray) -> tuple[np.ndarray, ...]:
    """Reveal XOR-shared uint64 words (one round)."""
    received = party.channel.exchange(*shares)
    return tuple(s ^ r for s, r in zip(shares, received, strict=True))


def and_words(party: Party, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Bitwise AND of XOR-shared uint64 words, all pairs in one round (boolean Beaver triples)."""
    triples = [party.dealer.and_triple(x.shape) for x, _ in pairs]
    masked = []
    for (x, y), (a, b, _) in zip(pairs, triples, strict=True):
        masked += [x ^ a, y ^ b]
    opened = open_xor(party, *masked)
    out = []
    for i, (a, b, c) in enumerate(triples):
        d, e = opened[2 * i], opened[2 * i + 1]
        z = c ^ (d & b) ^ (e & a)
        out.append(z ^ (d & e) if party.id == 0 else z)
    return out


def and_private(party: Party, own: np.ndarray) -> np.ndarray:
    """XOR shares of u & v where party 0 holds u and party 1 holds v (``own``), in one round with
    one opened word per gate each (a general AND opens two): party 0 sends d = u ^ a, party 1 sends
    e = v ^ b, and u & v = (a & e) ^ (d & e) ^ (d & b) ^ (a & b)."""
    mask, r = party.dealer.and_private(own.shape)
    (peer,) = party.channel.exchange(own ^ mask)
    if party.id == 0:  # mask = a, peer = e
        return (mask & peer) ^ r
    d, e = peer, own ^ mask  # mask = b
    return (d & e) ^ (d & mask) ^ r


def _carries(party: Party, x: np.ndarray) -> np.ndarray:
    """XOR shares of the carry-out word G of x0 + x1 (bit i = carry out of position i)."""
    propagate = x  # U ^ V, locally: each party's own share
    generate = and_private(party, x)  # U & V
    for k in _LEVELS:
        shift = np.uint64(k)
        if k == _LEVELS[-1]:  # the last level needs no group propagate
            (t,) = and_words(party, [(propagate, generate << shift)])
        else:
            t, propagate = and_words(
                party, [(propagate, generate << shift), (propagate, propagate << shift)]
            )
        generate = generate ^ t
    return generate


def a2b(party: Party, x: np.ndarray) -> np.ndarray:
    """XOR shares (uint64 words) of the ring value x0 + x1. 7 rounds."""
    return x ^ (_carries(party, x) << _ONE)


_TRANSPOSE8 = (  # (shift, mask): Hacker's Delight 8x8 bit-matrix transpose within a uint64
    (np.uint64(7), np.uint64(0x00AA00AA00AA00AA)),
    (np.uint64(14), np.uint64(0x0000CCCC0000CCCC)),
    (np.uint64(28), np.uint64(0x00000000F0F0F0F0)),
)


# Bit slicing of 65,536 words or more runs as one jitted JAX function (uint64 under x64). Side by
# side with numpy, numpy in and out (`bench.bench_ring_ops`, bench/results/mpc_ring_ops.json, 2
# cores at load 3-10, 7 runs): 0.69-1.19x numpy's time at 65,536 words (median 0.89) and 0.27-1.0x
# at 98,304-131,072 (the discriminator's LeakyReLUs, tanh's pieces); 0.9-1.1x at 32,768 and 1.3-5.7x
# at 16,384 and below (JAX's dispatch cost), where numpy stays. Both give the same words (tested);
# the whole secure step is at par either way (median 1.01x, bit-identical).
JAX_SLICING_MIN_WORDS = 65536


def _bit_slices(words: np.ndarray) -> np.ndarray:
    """Bit-sliced layout: row j holds bit j of every element, 64 elements to a uint64 word.

    (n,) uint64 -> (64, ceil(n / 64)) uint64 (padding elements are 0). Works on 8x8 bit blocks:
    for byte position b, the b-th bytes of 8 consecutive elements form an 8x8 bit matrix in one
    uint64; its transpose holds, in byte k, bit 8b + k of those 8 elements."""
    n = words.size
    padded = np.zeros(-(-n // 64) * 64, dtype="<u8")
    padded[:n] = words
    if padded.size >= JAX_SLICING_MIN_WORDS:
        with jax.enable_x64(True):
            return np.array(_bit_slices_jax(jnp.asarray(padded)))
    return _bit_slices_numpy(padded)


def _bit_slices_numpy(padded: np.ndarray) -> np.ndarray:
    """`_bit_slices` of words already padded to a multiple of 64, in numpy."""
    groups = padded.size // 8
    by = padded.view(np.uint8).reshape(groups, 8, 8)  # [group, element, byte]
    blocks = np.ascontiguousarray(by.transpose(2, 0, 1)).view("<u8")[..., 0]  # [byte, group]
    for shift, mask in _TRANSPOSE8:
        t = (blocks ^ (blocks >> shift)) & mask
        blocks = blocks ^ t ^ (t << shift)
    planes = blocks.view(np.uint8).reshape(8, groups, 8)  # [byte b, group, bit k]
    rows = np.ascontiguousarray(planes.transpose(0, 2, 1)).reshape(64, groups)  # row 8b + k
    return rows.view("<u8")


@jax.jit
def _bit_slices_jax(padded):
    """`_bit_slices_numpy` as one jitted function (uint64 in and out; call under x64)."""
    groups = padded.shape[0] // 8
    by = lax.bitcast_convert_type(padded, jnp.uint8).reshape(groups, 8, 8)
    blocks = lax.bitcast_convert_type(by.transpose(2, 0, 1), jnp.uint64)
    for shift, mask in _TRANSPOSE8:
        s, m = jnp.uint64(int(shift)), jnp.uint64(int(mask))
        t = (blocks ^ (blocks >> s)) & m
        blocks = blocks ^ t ^ (t << s)
    planes = lax.bitcast_convert_type(blocks, jnp.uint8).reshape(8, groups, 8)
    rows = planes.transpose(0, 2, 1).reshape(64, groups // 8, 8)
    return lax.bitcast_convert_type(rows, jnp.uint64)


def _unslice(row: np.ndarray, n: int) -> np.ndarray:
    """One bit-sliced row -> n bits (uint8)."""
    return np.unpackbits(np.ascontiguousarray(row).view(np.uint8), bitorder="little")[:n]


def msb_bits(party: Party, x: np.ndarray) -> np.ndarray:
    """XOR shares (uint8) of the most significant bit of x (1 for negative fixed-point values).

    msb(x0 + x1) = x0[63] ^ x1[63] ^ carry into bit 63. The carry comes from a binary tree over the
    low 63 bit positions, on bit-sliced shares (bit j of 64 elements in one word, so each AND gate
    opens one bit): generate bits g = u & v, then 6 levels that merge neighbouring groups,
    g = g_hi ^ (p_hi & g_lo), p = p_hi & p_lo. The generate bits are an AND of private inputs (one
    opened bit each); then only surviving groups are opened: 63 + 4·62 + 2 bits, about 39 bytes per
    element per party (a word-level Kogge-Stone adder sends 192)."""
    n = x.size
    slices = _bit_slices(x.reshape(-1))
    # position 63 joins as the neutral group (g = 0, p = 1): the tree then has 64 leaves
    neutral = np.full_like(slices[:1], np.uint64(2**64 - 1) if party.id == 0 else 0)
    propagate = np.concatenate([slices[:63], neutral])
    generate = and_private(party, slices[:63])
    generate = np.concatenate([generate, np.zeros_like(neutral)])
    while generate.shape[0] > 1:
        g_lo, g_hi = generate[0::2], generate[1::2]
        p_lo, p_hi = propagate[0::2], propagate[1::2]
        if generate.shape[0] == 2:
            (t,) = and_words(party, [(p_hi, g_lo)])
        else:
            t, propagate = and_words(party, [(p_hi, g_lo), (p_hi, p_lo)])
        generate = g_hi ^ t
    return _unslice(slices[63] ^ generate[0], n).reshape(x.shape)


def b2a(party: Party, bits: np.ndarray) -> np.ndarray:
    """XOR-shared bits (uint8) -> additive integer shares of the same 0/1 values. One round."""
    r_bool, r_arith = party.dealer.dabit(bits.shape)
    flat = (bits ^ r_bool).reshape(-1)
    (peer,) = party.channel.exchange(np.packbits(flat))
    c = (flat ^ np.unpackbits(peer, count=flat.size)).reshape(bits.shape)
    c64 = c.astype(np.uint64)
    out = r_arith - ((r_arith * c64) << _ONE)
    return out + c64 if party.id == 0 else out


def b2a_mul(party: Party, bits: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x·b, b): integer shares of the product of a shared ring value x and XOR-shared bits b
    (uint8; x broadcasts to b's shape), and of b itself, in ONE round (B2A and the product folded
    together).

    With a daBit r: b = c + r - 2·c·r for the opened c = b XOR r, so x·b = c·x + (1 - 2c)·(x·r).
    The product x·r needs no b: its Beaver openings go in the same message as c. Same bytes as
    `b2a` then `arith.mul` (one bit plus two ring elements per element), one round fewer."""
    r_bool, r_arith = party.dealer.dabit(bits.shape)
    a, b, c = party.dealer.beaver(arith.MUL, x.shape, r_arith.shape)
    flat = (bits ^ r_bool).reshape(-1)
    mine = (np.packbits(flat), ring.as_ring(x - a), ring.as_ring(r_arith - b))
    peer = party.channel.exchange(*mine)
    if len(peer) != 3 or peer[1].shape != np.shape(x) or peer[2].shape != r_arith.shape:
        raise ChannelError("the peer's B2A-and-multiply message does not match: out of step")
    opened = (flat ^ np.unpackbits(peer[0], count=flat.size)).reshape(bits.shape)
    d, e = mine[1] + peer[1], mine[2] + peer[2]
    xr = c + d * r_arith + a * e  # shares of x·r
    c64 = opened.astype(np.uint64)
    bit = r_arith - ((r_arith * c64) << _ONE)
    product = x * c64 + xr - ((xr * c64) << _ONE)
    return product, (bit + c64 if party.id == 0 else bit)


def msb(party: Party, x: np.ndarray) -> np.ndarray:
    """Integer shares of msb(x) = [x < 0] for fixed-point x. 8 rounds."""
    return b2a(party, msb_bits(party, x))


def drelu(party: Party, x: np.ndarray) -> np.ndarray:
    """Integer shares of [x >= 0], the ReLU derivative (taken as 1 at 0). 8 rounds."""
    return b2a(party, msb_bits(party, x) ^ np.uint8(party.id == 0))


def less_than(party: Party, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer shares of [x < y] (valid while |x - y| < 2^63 in the ring). 8 rounds."""
    return msb(party, x - y)


def relu(party: Party, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ReLU(x), [x >= 0]) shares; keep the bit for the backward pass. 8 rounds: MSB (7), then
    B2A and the product together (`b2a_mul`, 1)."""
    return b2a_mul(party, msb_bits(party, x) ^ np.uint8(party.id == 0), x)


def relu_backward(party: Party, grad: np.ndarray, bit: np.ndarray) -> np.ndarray:
    """Gradient through ReLU: grad · [x >= 0] (the bit from `relu`). One round."""
    return arith.mul(party, grad, bit, rescale=False)


def leaky_relu(party: Party, x: np.ndarray, slope: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(LeakyReLU(x) = slope·x + (1 - slope)·ReLU(x), [x >= 0]) shares. 8 rounds."""
    positive, bit = relu(party, x)
    scaled = arith.mul_public(party, x, slope) + arith.mul_public(party, positive, 1.0 - slope)
    return scaled, bit


def leaky_relu_backward(
    party: Party, grad: np.ndarray, bit: np.ndarray, slope: float = 0.2
) -> np.ndarray:
    """Gradient through LeakyReLU: grad · (slope + (1 - slope)·bit). One round."""
    through = arith.mul(party, grad, bit, rescale=False)
    return arith.mul_public(party, grad, slope) + arith.mul_public(party, through, 1.0 - slope)


def low_bits(party: Party, x: np.ndarray, width: int) -> np.ndarray:
    """Bit-sliced XOR shares (width, ceil(n/64)) of bits 0..width-1 of x (x flattened, n elements).

    A Kogge-Stone adder on the low ``width`` bit rows only (the carry into bit i depends on bits
    below i alone): 1 + ceil(log2(width)) rounds, about (width + 4·Σ(width - k)) / 8 bytes per
    element per party (65 for width 32, against 192 for a full 64-bit word adder)."""
    slices = _bit_slices(x.reshape(-1))[:width]
    generate = and_private(party, slices)
    propagate, k = slices, 1
    while k < width:
        last = 2 * k >= width
        pairs = [(propagate[k:], generate[:-k])] + (
            [] if last else [(propagate[k:], propagate[:-k])]
        )
        out = and_words(party, pairs)
        generate = np.concatenate([generate[:k], generate[k:] ^ out[0]])
        if not last:
            propagate = np.concatenate([propagate[:k], out[1]])
        k *= 2
    carry_in = np.concatenate([np.zeros_like(generate[:1]), generate[:-1]])
    return slices ^ carry_in


def leading_one(party: Party, x: np.ndarray, width: int) -> np.ndarray:
    """Integer shares (..., width) of the one-hot position of x's highest set bit, for
    0 < x < 2^width: `leading_one_bits`, then B2A (1 round)."""
    return b2a(party, leading_one_bits(party, x, width))


def leading_one_bits(party: Party, x: np.ndarray, width: int) -> np.ndarray:
    """XOR shares (uint8, (..., width)) of the one-hot position of x's highest set bit, for
    0 < x < 2^width: low bits, a prefix OR from the top (ceil(log2(width)) rounds) and the one-hot
    difference (local)."""
    y, k = low_bits(party, x, width), 1
    while k < width:
        (both,) = and_words(party, [(y[:-k], y[k:])])
        y = np.concatenate([y[:-k] ^ y[k:] ^ both, y[-k:]])  # y_i |= y_{i+k}
        k *= 2
    onehot = y ^ np.concatenate([y[1:], np.zeros_like(y[:1])])
    bits = np.stack([_unslice(row, x.size) for row in onehot], axis=-1)
    return bits.reshape(x.shape + (width,))


def _all_bits(words: np.ndarray) -> np.ndarray:
    """The 64 bits of uint64 words as uint8 on a new last axis, least significant first."""
    as_bytes = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    return np.unpackbits(as_bytes.reshape(words.shape + (8,)), axis=-1, bitorder="little")
