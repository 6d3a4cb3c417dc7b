"""Privacy in the sense that can be tested: a server's view does not depend on the secret.

A server's view is its input share, its half of the dealer's material and the messages it receives.
Everything it can compute from the view includes, per message, what it sent (s), what it received
(r), and the opened values s + r (arithmetic) and s ^ r (boolean). For every protocol and both
servers we check, for two different secrets, that each bit of each of these values is uniform
(z-test per bit position), that each byte is uniform (chi-square), that the two secrets give the same
per-bit frequencies (two-sample z-test), and that differences between opened values of the same
shape are uniform too (this catches a reused mask). The same checks flag deliberately leaky protocols
(a short mask; a mask used twice), so they can fail.
"""

import itertools

import numpy as np
import pytest
from scipy import stats

from egan_jax.mpc import arith, compare, nonlinear, ring
from egan_jax.mpc.protocols import open_shares, run_shared

N = 4096  # elements per run, all holding the same secret: the view's entries are i.i.d. samples
Z_LIMIT = 6.0
P_LIMIT = 1e-7


_BIT_TABLE = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)  # [value, bit]


def _byte_counts(a: np.ndarray) -> np.ndarray:
    """[byte position, value] histogram: 8 positions for uint64 words, 1 for packed bits (uint8)."""
    v = a.reshape(-1, 1).view(np.uint8)
    k = v.shape[1]
    index = (v + np.arange(0, 256 * k, 256, dtype=np.uint16)).reshape(-1)
    return np.bincount(index, minlength=256 * k).reshape(k, 256)


def _bit_frequencies(a: np.ndarray) -> tuple[np.ndarray, int]:
    """(frequency of ones per bit position, samples per position)."""
    counts = _byte_counts(a)
    n = int(counts[0].sum())
    return (counts @ _BIT_TABLE).reshape(-1) / n, n


def _views(fn, secret, party, seed, **kwargs):
    """Arrays derived from one party's view, for secret ``secret`` in every element."""
    values = [np.full(N, v) for v in np.atleast_1d(secret)]
    _, run = run_shared(fn, *values, seed=seed, record=True, **kwargs)
    derived, opened = [], []
    for sent, received in zip(run.sent[party], run.transcripts[party], strict=True):
        for s, r in zip(sent, received, strict=True):
            derived += [r, s ^ r]
            if s.dtype == np.uint64:
                derived.append(s + r)
                opened.append(s + r)
    pairs = [
        a - b
        for a, b in itertools.combinations(opened[:24], 2)
        if a.shape == b.shape and a.size >= N
    ]
    return [d for d in derived + pairs if d.size >= N // 8]


def _uniformity(arrays) -> tuple[float, float]:
    """(largest per-bit z score, smallest per-byte chi-square p-value) against uniform."""
    z_max, p_min = 0.0, 1.0
    for a in arrays:
        freq, n = _bit_frequencies(a)
        z_max = max(z_max, float(np.max(np.abs(freq - 0.5) * 2 * np.sqrt(n))))
        if a.dtype == np.uint64:
            counts = np.stack(
                [np.bincount(col, minlength=256) for col in a.reshape(-1, 1).view(np.uint8).T]
            )
            p_min = min(p_min, float(stats.chisquare(counts, axis=1).pvalue.min()))
    return z_max, p_min


def _two_sample(arrays_a, arrays_b) -> float:
    """Largest two-sample z score between per-bit frequencies of the two secrets' views."""
    z_max = 0.0
    for a, b in zip(arrays_a, arrays_b, strict=True):
        (pa, n), (pb, _) = _bit_frequencies(a), _bit_frequencies(b)
        pooled = (pa + pb) / 2
        se = np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * 2 / n)
        z_max = max(z_max, float(np.max(np.abs(pa - pb) / se)))
    return z_max


PROTOCOLS = {
    "mul": (arith.mul, (1.5, -2.0), (-300.25, 7.0)),
    "square": (arith.square, 3.0, -0.5),
    "relu": (compare.relu, 2.5, -2.5),
    "sigmoid": (nonlinear.sigmoid, -0.7, 6.0),
    "inv_sqrt": (nonlinear.inv_sqrt, 0.01, 900.0),
    # one opening of the centred values serves the square and the final product; the input is the
    # secret times a public ramp, so the centred values and the variance depend on the secret
    "batch_norm": (
        lambda p, x: nonlinear.batch_norm_normalize(
            p, arith.mul_public(p, x, np.linspace(-1, 1, N)).reshape(64, 8, 8, 1)
        ),
        0.5,
        -3.0,
    ),
}


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@pytest.mark.parametrize("party", [0, 1])
def test_view_is_uniform_and_independent_of_the_secret(name, party):
    fn, secret_a, secret_b = PROTOCOLS[name]
    view_a = _views(fn, secret_a, party, seed=100)
    view_b = _views(fn, secret_b, party, seed=200)
    assert len(view_a) == len(view_b) > 0
    for view in (view_a, view_b):
        z, p = _uniformity(view)
        assert z < Z_LIMIT and p > P_LIMIT, (name, party, z, p)
    assert _two_sample(view_a, view_b) < Z_LIMIT


def test_input_shares_are_uniform_whatever_the_secret():
    prg = ring.Prg(5, domain=b"owner")
    shares = [ring.share(ring.encode(np.full(N, s)), prg)[i] for s in (0.0, 1e5) for i in (0, 1)]
    z, p = _uniformity(shares)
    assert z < Z_LIMIT and p > P_LIMIT


# ---- negative controls: the same checks must flag leaky protocols ---------------------------


def _short_mask_open(party, x):
    weak = ring.Prg(100 + party.id).ring(x.shape) >> np.uint64(40)  # 24-bit masks
    (opened,) = open_shares(party, x - weak)
    return opened


def _reused_mask_open(party, x, y):
    a, _, _ = party.dealer.beaver(arith.MUL, x.shape, y.shape)
    return open_shares(party, x - a, y - a)  # one mask for two values: x - y leaks


def test_checks_flag_a_protocol_with_short_masks():
    view_a = _views(_short_mask_open, 1.0, 1, seed=300)
    view_b = _views(_short_mask_open, 1000.0, 1, seed=400)
    z, p = _uniformity(view_a)
    assert z > 20 and p < 1e-20
    assert _two_sample(view_a, view_b) > 20


def test_checks_flag_a_protocol_that_reuses_a_mask():
    view = _views(_reused_mask_open, (3.0, 1.0), 1, seed=500)
    z, p = _uniformity(view)
    assert z > 20 and p < 1e-20
