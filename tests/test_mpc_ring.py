"""Ring Z_2^64 fixed point: encoding, shares, local ops, truncation, bilinear ring ops, x64 isolation."""

import subprocess
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from egan_jax.errors import ShapeError
from egan_jax.mpc import ring

F = ring.FRAC_BITS
LSB = 2.0**-F

reals = hnp.arrays(
    np.float64,
    hnp.array_shapes(max_dims=3, max_side=6),
    elements=st.floats(-1e6, 1e6, allow_nan=False),
)
words = hnp.arrays(
    np.uint64, hnp.array_shapes(max_dims=2, max_side=8), elements=st.integers(0, 2**64 - 1)
)


@settings(max_examples=60, deadline=None)
@given(reals)
def test_encode_decode_round_trip_within_half_lsb(x):
    assert np.max(np.abs(ring.decode(ring.encode(x)) - x), initial=0.0) <= LSB / 2


@settings(max_examples=60, deadline=None)
@given(words, st.integers(0, 2**32))
def test_share_reconstruct_is_exact(x, seed):
    x0, x1 = ring.share(x, ring.Prg(seed))
    assert x0.dtype == x1.dtype == np.uint64
    np.testing.assert_array_equal(ring.reconstruct(x0, x1), x)


@settings(max_examples=40, deadline=None)
@given(words, words, st.integers(-(2**40), 2**40))
def test_local_linear_ops_commute_with_reconstruct(x, y, k):
    y = np.resize(y, x.shape)
    prg = ring.Prg(7)
    (x0, x1), (y0, y1) = ring.share(x, prg), ring.share(y, prg)
    np.testing.assert_array_equal(ring.add(x0, y0) + ring.add(x1, y1), x + y)
    np.testing.assert_array_equal(ring.sub(x0, y0) + ring.sub(x1, y1), x - y)
    np.testing.assert_array_equal(ring.neg(x0) + ring.neg(x1), ring.neg(x))
    kk = ring.as_ring(np.int64(k))
    np.testing.assert_array_equal(ring.mul_int(x0, k) + ring.mul_int(x1, k), x * kk)
    c = ring.encode(3.25)
    np.testing.assert_array_equal(ring.add_public(x0, c, 0) + ring.add_public(x1, c, 1), x + c)


def test_prg_is_deterministic_domain_separated_and_hides_its_seed():
    a = ring.Prg(b"seed").ring((1000,))
    np.testing.assert_array_equal(a, ring.Prg(b"seed").ring((1000,)))
    assert not np.array_equal(a, ring.Prg(b"seed", domain=b"dealer").ring((1000,)))
    assert not np.array_equal(a, ring.Prg(b"seeD").ring((1000,)))
    assert "seed" not in repr(ring.Prg(b"seed")).replace("<secret seed>", "")
    bits = np.unpackbits(a.view(np.uint8))
    assert abs(bits.mean() - 0.5) < 5 * 0.5 / np.sqrt(bits.size)


def test_shares_are_uniform_whatever_the_secret():
    prg = ring.Prg(3)
    for secret in (0.0, 1.0, -12345.5):
        x0, x1 = ring.share(ring.encode(np.full(20000, secret)), prg)
        for s in (x0, x1):
            per_bit = np.unpackbits(s.view(np.uint8).reshape(-1, 8), axis=1).mean(axis=0)
            assert np.all(np.abs(per_bit - 0.5) < 5 * 0.5 / np.sqrt(s.size)), secret


@pytest.mark.parametrize("bad", [np.nan, np.inf, 2.0 ** (62 - F), -(2.0 ** (62 - F))])
def test_encode_rejects_unrepresentable_values(bad):
    with pytest.raises(ShapeError, match="fixed-point"):
        ring.encode(np.array([0.0, bad]))


def test_truncation_of_moderate_products_is_within_one_lsb():
    rng = np.random.default_rng(0)
    x = rng.integers(-(2**40), 2**40, size=100_000)
    x0, x1 = ring.share(ring.as_ring(x), ring.Prg(1))
    t = ring.reconstruct(ring.truncate(x0, 0), ring.truncate(x1, 1)).view(np.int64)
    floor = x >> F
    assert np.all((t == floor) | (t == floor + 1))


def test_truncation_failure_rate_matches_the_documented_bound():
    # P(fail) = |x| / 2^64: at |x| = 2^61 that is 1/8; failures are off by about 2^(64-F)
    n = 40_000
    x = np.full(n, 2**61, dtype=np.int64)
    x0, x1 = ring.share(ring.as_ring(x), ring.Prg(2))
    t = ring.reconstruct(ring.truncate(x0, 0), ring.truncate(x1, 1)).view(np.int64)
    err = t - (x >> F)
    failed = np.abs(err) > 1
    rate, sd = failed.mean(), np.sqrt(0.125 * 0.875 / n)
    assert abs(rate - 0.125) < 5 * sd
    assert np.all(np.abs(np.abs(err[failed]) - 2 ** (64 - F)) <= 1)


def _conv_reference_u64(x, w, stride, pad):
    """Direct ring convolution with numpy loops (wraps mod 2^64)."""
    (plo_h, phi_h), (plo_w, phi_w) = pad
    xp = np.pad(x, ((0, 0), (plo_h, phi_h), (plo_w, phi_w), (0, 0)))
    kh, kw = w.shape[:2]
    ho = (xp.shape[1] - kh) // stride + 1
    wo = (xp.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], ho, wo, w.shape[3]), np.uint64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i : i + stride * ho : stride, j : j + stride * wo : stride, :]
            for c in range(w.shape[2]):
                out = out + patch[..., c : c + 1] * w[i, j, c][None, None, None, :]
    return out


@pytest.mark.parametrize(
    "stride,pad", [(1, ((1, 1), (1, 1))), (2, ((1, 1), (1, 1))), (2, ((0, 1), (2, 0)))]
)
def test_ring_conv2d_is_exact_mod_2_64(stride, pad):
    prg = ring.Prg(4)
    x, w = prg.ring((2, 6, 6, 3)), prg.ring((4, 4, 3, 5))
    got = ring.conv2d(x, w, stride=(stride, stride), padding=pad)
    np.testing.assert_array_equal(got, _conv_reference_u64(x, w, stride, pad))


def test_ring_matmul_is_exact_mod_2_64():
    prg = ring.Prg(5)
    a, b = prg.ring((7, 9)), prg.ring((9, 4))
    ref = np.zeros((7, 4), np.uint64)
    for k in range(9):
        ref = ref + a[:, k : k + 1] * b[k][None, :]
    np.testing.assert_array_equal(ring.matmul(a, b), ref)


@pytest.mark.parametrize("pad", [((1, 1), (1, 1)), ((2, 1), (1, 2))])
def test_ring_conv_transpose_is_the_adjoint_of_conv(pad):
    # <conv2d(u, w), x> == <u, conv_transpose2d(x, w)> exactly in the ring, for full-range values
    prg = ring.Prg(6)
    w = prg.ring((4, 4, 3, 5))
    u = prg.ring((2, 8, 8, 3))
    y = ring.conv2d(u, w, stride=(2, 2), padding=pad)
    x = prg.ring(y.shape)
    back = ring.conv_transpose2d(x, w, stride=(2, 2), padding=pad, out_hw=u.shape[1:3])
    assert back.shape == u.shape
    assert np.sum(y * x, dtype=np.uint64) == np.sum(u * back, dtype=np.uint64)


def test_ring_conv_transpose_matches_the_engines_upsampler_on_integers():
    rng = np.random.default_rng(8)
    x = rng.integers(-4, 5, (2, 4, 4, 3))
    w = rng.integers(-4, 5, (4, 4, 5, 3))

    def strided(u):
        return jax.lax.conv_general_dilated(
            u,
            jnp.asarray(w, jnp.float32),
            (2, 2),
            ((1, 1), (1, 1)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )

    ref = jax.vjp(strided, jnp.zeros((2, 8, 8, 5)))[1](jnp.asarray(x, jnp.float32))[0]
    got = ring.conv_transpose2d(ring.as_ring(x), ring.as_ring(w)).view(np.int64)
    np.testing.assert_array_equal(got, np.asarray(ref).astype(np.int64))


_ISOLATION_SCRIPT = """
import threading, jax, jax.numpy as jnp, numpy as np
from egan_jax.mpc import arith, compare, ring
from egan_jax.mpc.protocols import run_shared
run_shared(compare.relu, np.linspace(-1, 1, 8), seed=1)
run_shared(arith.conv2d, np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 2)), seed=2)
seen = []
t = threading.Thread(target=lambda: seen.append(str(jnp.asarray(1.0).dtype)))
t.start(); t.join()
f32 = jax.jit(lambda v: v * 2.0)(np.ones(3, np.float32)).dtype
print(jnp.asarray(1.0).dtype, jnp.asarray(1).dtype, seen[0], f32, jax.config.jax_enable_x64)
"""


def test_protocols_leave_jax_default_32_bit_types_alone():
    # a fresh process, so that nothing else has touched JAX's configuration
    out = subprocess.run(
        [sys.executable, "-c", _ISOLATION_SCRIPT], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["float32", "int32", "float32", "float32", "False"]


def test_ring_ops_do_not_change_the_x64_flag_of_any_thread():
    before = jax.config.jax_enable_x64
    prg = ring.Prg(9)
    seen = {}

    def other_thread():
        ring.conv2d(prg.ring((1, 4, 4, 2)), prg.ring((3, 3, 2, 2)))
        seen["thread"] = jax.config.jax_enable_x64

    ring.matmul(prg.ring((3, 3)), prg.ring((3, 3)))
    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert jax.config.jax_enable_x64 == seen["thread"] == before


@pytest.mark.parametrize(
    "size,kernel,stride,padding",
    [
        (8, 3, 1, "SAME"),
        (8, 4, 2, ((1, 1), (1, 1))),
        (9, 3, 2, "VALID"),
        (8, 3, 2, ((0, 1), (2, 0))),
    ],
)
def test_ring_conv_kernel_grad_matches_autodiff_on_integers(size, kernel, stride, padding):
    rng = np.random.default_rng(10)
    x, w = rng.integers(-3, 4, (2, size, size, 3)), rng.integers(-3, 4, (kernel, kernel, 3, 5))

    def conv(w_):
        return jax.lax.conv_general_dilated(
            jnp.asarray(x, jnp.float32),
            w_,
            (stride, stride),
            padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )

    y, vjp = jax.vjp(conv, jnp.asarray(w, jnp.float32))
    dy = rng.integers(-3, 4, y.shape)
    ref = np.asarray(vjp(jnp.asarray(dy, jnp.float32))[0]).astype(np.int64)
    got = ring.conv2d_kernel_grad(
        ring.as_ring(x),
        ring.as_ring(dy),
        kernel_hw=(kernel, kernel),
        stride=stride,
        padding=padding,
    )
    np.testing.assert_array_equal(got.view(np.int64), ref)


def test_ring_conv_kernel_grad_is_exact_for_full_range_values():
    # <conv2d(x, w), dy> == <w, kernel_grad(x, dy)> in the ring
    prg = ring.Prg(11)
    x, w = prg.ring((3, 9, 9, 2)), prg.ring((3, 3, 2, 4))
    y = ring.conv2d(x, w, stride=(2, 2), padding="SAME")
    dy = prg.ring(y.shape)
    grad = ring.conv2d_kernel_grad(x, dy, kernel_hw=(3, 3), stride=(2, 2), padding="SAME")
    assert np.sum(y * dy, dtype=np.uint64) == np.sum(w * grad, dtype=np.uint64)


@pytest.mark.parametrize("kind", ["matmul", "conv2d", "conv_transpose2d", "conv2d_kernel_grad"])
def test_float64_limb_path_equals_the_uint64_path(kind):
    prg = ring.Prg(12)
    if kind == "matmul":
        x, y, params = prg.ring((5, 7)), prg.ring((7, 3)), {}
    elif kind == "conv2d":
        x, y = prg.ring((2, 6, 6, 3)), prg.ring((3, 3, 3, 4))
        params = {"stride": (2, 2), "padding": ((1, 1), (1, 1))}
    elif kind == "conv_transpose2d":
        x, y = prg.ring((2, 3, 3, 4)), prg.ring((4, 4, 3, 4))
        params = {"stride": (2, 2), "padding": ((1, 1), (1, 1)), "out_hw": (6, 6)}
    else:
        x, y = prg.ring((2, 6, 6, 3)), prg.ring((2, 3, 3, 4))
        params = {"stride": (2, 2), "padding": ((1, 1), (1, 1)), "kernel_hw": (3, 3)}
    with_limbs = ring._bilinear(kind, x, y, 64, limbs=True, **params)
    np.testing.assert_array_equal(with_limbs, ring._bilinear(kind, x, y, 64, limbs=False, **params))
    with pytest.raises(ShapeError, match="too many"):
        ring._bilinear(kind, x, y, 2**40, limbs=True, **params)
