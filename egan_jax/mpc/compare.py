"""Comparison on additive shares by most-significant-bit extraction, and ReLU built on it.

A2B: the parties' arithmetic shares x0, x1 are two addends known to one party each; a Kogge-Stone
parallel-prefix adder on XOR-shared 64-bit words (one boolean Beaver AND triple per gate, all 64 bit
positions of an element in one word) gives XOR shares of the carries, hence of every bit of x0 + x1.
The MSB (the sign of a fixed-point value) costs 7 rounds: the generate bits, then 6 prefix levels.
B2A of a bit uses a daBit (a random bit shared both ways): open c = b XOR r (one round, one bit),
then b = c + r - 2·c·r locally. So ReLU = x · [x >= 0] costs 7 + 1 + 1 = 9 rounds.

This is the standard construction (ABY / CrypTen / SPU style), used in place of LP-GAN's bit-by-bit
prefix chain (L rounds) on float shares. Comparison bits are integer shares (0/1, not fixed-point),
so multiplying them into a fixed-point share needs no truncation.
"""

from __future__ import annotations

import numpy as np

from egan_jax.mpc import arith
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


def _addends(party: Party, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """XOR shares of the two addends U = x0 (party 0's share) and V = x1 (party 1's)."""
    zero = np.zeros_like(x)
    return (x, zero) if party.id == 0 else (zero, x)


def _carries(party: Party, x: np.ndarray, *, last_bit_only: bool) -> np.ndarray:
    """XOR shares of the carry-out word G of x0 + x1 (bit i = carry out of position i)."""
    u, v = _addends(party, x)
    propagate = x  # U ^ V, locally: each party's own share
    (generate,) = and_words(party, [(u, v)])
    for k in _LEVELS:
        shift = np.uint64(k)
        if last_bit_only and k == _LEVELS[-1]:
            (t,) = and_words(party, [(propagate, generate << shift)])
            generate = generate ^ t
        else:
            t, propagate = and_words(
                party, [(propagate, generate << shift), (propagate, propagate << shift)]
            )
            generate = generate ^ t
    return generate


def a2b(party: Party, x: np.ndarray) -> np.ndarray:
    """XOR shares (uint64 words) of the ring value x0 + x1. 7 rounds."""
    return x ^ (_carries(party, x, last_bit_only=False) << _ONE)


def msb_bits(party: Party, x: np.ndarray) -> np.ndarray:
    """XOR shares (uint8) of the most significant bit of x (1 for negative fixed-point values)."""
    carry = _carries(party, x, last_bit_only=True)
    return (((x >> np.uint64(63)) ^ (carry >> np.uint64(62))) & _ONE).astype(np.uint8)


def b2a(party: Party, bits: np.ndarray) -> np.ndarray:
    """XOR-shared bits (uint8) -> additive integer shares of the same 0/1 values. One round."""
    r_bool, r_arith = party.dealer.dabit(bits.shape)
    flat = (bits ^ r_bool).reshape(-1)
    (peer,) = party.channel.exchange(np.packbits(flat))
    c = (flat ^ np.unpackbits(peer, count=flat.size)).reshape(bits.shape)
    c64 = c.astype(np.uint64)
    out = r_arith - ((r_arith * c64) << _ONE)
    return out + c64 if party.id == 0 else out


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
    """(ReLU(x), [x >= 0]) shares; keep the bit for the backward pass. 9 rounds."""
    bit = drelu(party, x)
    return arith.mul(party, x, bit, rescale=False), bit


def relu_backward(party: Party, grad: np.ndarray, bit: np.ndarray) -> np.ndarray:
    """Gradient through ReLU: grad · [x >= 0] (the bit from `relu`). One round."""
    return arith.mul(party, grad, bit, rescale=False)


def leaky_relu(party: Party, x: np.ndarray, slope: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(LeakyReLU(x) = slope·x + (1 - slope)·ReLU(x), [x >= 0]) shares. 9 rounds."""
    positive, bit = relu(party, x)
    scaled = arith.mul_public(party, x, slope) + arith.mul_public(party, positive, 1.0 - slope)
    return scaled, bit


def leaky_relu_backward(
    party: Party, grad: np.ndarray, bit: np.ndarray, slope: float = 0.2
) -> np.ndarray:
    """Gradient through LeakyReLU: grad · (slope + (1 - slope)·bit). One round."""
    through = arith.mul(party, grad, bit, rescale=False)
    return arith.mul_public(party, grad, slope) + arith.mul_public(party, through, 1.0 - slope)


def prefix_or_down(party: Party, words: np.ndarray) -> np.ndarray:
    """XOR shares of y with y_i = OR of bits i..63 of the shared word (6 rounds; OR = a^b^(a&b))."""
    y = words
    for k in _LEVELS:
        shifted = y >> np.uint64(k)
        (both,) = and_words(party, [(y, shifted)])
        y = y ^ shifted ^ both
    return y


def word_bits(words: np.ndarray, positions: range) -> np.ndarray:
    """Bits at ``positions`` of uint64 words as uint8, stacked on a new last axis (local)."""
    shifts = np.asarray(list(positions), dtype=np.uint64)
    return ((words[..., None] >> shifts) & _ONE).astype(np.uint8)
