"""The "jax" local ring backend (jitted uint64 element-wise share arithmetic) vs the numpy default:
bit-identical op by op, through protocols and through secure training steps."""

import dataclasses

import jax
import numpy as np
import pytest

from egan_jax.errors import ConfigError
from egan_jax.mpc import Bilinear, arith, compare, nonlinear, ring
from egan_jax.mpc import elementwise as _local
from egan_jax.mpc.elementwise import BACKENDS, get_local_backend, local_backend
from egan_jax.mpc.protocols import run_shared


def both(fn):
    """fn() under "numpy" and under "jax"; checks that only "jax" calls the jitted drop-ins and that
    the switch restores the default."""
    assert get_local_backend() == "numpy"
    out, calls = {}, {}
    original = _local._call

    def counted(*args, **kwargs):
        calls[name] += 1
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_local, "_call", counted)
        for name in BACKENDS:
            calls[name] = 0
            with local_backend(name):
                assert get_local_backend() == name
                out[name] = fn()
    assert get_local_backend() == "numpy"
    assert calls["numpy"] == 0 and calls["jax"] > 0, calls
    return out["numpy"], out["jax"]


def assert_bit_identical(a, b):
    a, b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(a) == len(b) and len(a) > 0
    for p, q in zip(a, b, strict=True):
        p, q = np.asarray(p), np.asarray(q)
        assert p.dtype == q.dtype and p.shape == q.shape
        assert np.array_equal(p, q)


def words(rng, shape):
    return rng.integers(0, 2**64, size=shape, dtype=np.uint64)


@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 4, 4, 3)])
def test_every_element_wise_op_is_bit_identical(shape):
    rng = np.random.default_rng(sum(shape) + len(shape))
    x, y, c, a, e = (words(rng, shape) for _ in range(5))
    # the extremes of the signed range are where a wrong shift or wrap would show
    if shape:
        x.flat[0], x.flat[-1] = np.uint64(2**63), np.uint64(2**63 - 1)
    row = words(rng, shape[-1:])  # broadcasts against x
    ops = {
        "add": lambda: ring.add(x, y),
        "sub": lambda: ring.sub(x, y),
        "neg": lambda: ring.neg(x),
        "mul": lambda: ring.mul(x, y),
        "mul_broadcast": lambda: ring.mul(x, row),
        "mul_int_scalar": lambda: ring.mul_int(x, -3),
        "mul_int_array": lambda: ring.mul_int(x, rng_ints),
        "add_public_0": lambda: ring.add_public(x, y, 0),
        "add_public_1": lambda: ring.add_public(x, y, 1),
        "beaver_mul_combine": lambda: ring.beaver_mul_combine(c, x, y, a, e),
        "bilinear_mul": lambda: Bilinear("mul")(x, row),
        **{
            f"truncate_{p}_{bits}": (lambda p=p, bits=bits: ring.truncate(x, p, bits))
            for p in (0, 1)
            for bits in (1, 13, ring.FRAC_BITS, 40)
        },
    }
    rng_ints = np.random.default_rng(9).integers(-(2**40), 2**40, size=shape)
    for name, op in ops.items():
        expected, got = both(op)
        assert np.array_equal(np.asarray(expected), np.asarray(got)), name
        assert np.asarray(got).dtype == np.uint64, name


def test_share_and_reconstruct_are_bit_identical():
    x = ring.encode(np.linspace(-5, 5, 12).reshape(3, 4))

    def run():
        x0, x1 = ring.share(x, ring.Prg(3))
        return x0, x1, ring.reconstruct(x0, x1)

    expected, got = both(run)
    assert_bit_identical(expected, got)
    assert np.array_equal(got[2], x)


def test_secure_mul_matmul_relu_and_sigmoid_are_bit_identical():
    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=(4, 6)), rng.normal(size=(4, 6)), rng.normal(size=(6, 3))

    def protocol(party, x, y, w):
        prod = arith.mul(party, x, y)
        dense = arith.matmul(party, prod, w)
        act, bit = compare.relu(party, dense)
        return prod, dense, act, bit, nonlinear.sigmoid(party, dense)

    def run():
        # raw: the reconstructed ring words, not decoded floats; each party's shares compared below
        out, result = run_shared(protocol, x, y, w, seed=4, raw=True)
        return out, result.outputs

    expected, got = both(run)
    assert_bit_identical(expected, got)
    plain = ring.decode(expected[0][2])
    reference = np.maximum(ring.decode(expected[0][1]), 0)
    assert np.max(np.abs(plain - reference)) <= 2.0**-ring.FRAC_BITS


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"unknown local ring backend 'torch'.*'numpy', 'jax'"):
        ring.set_local_backend("torch")
    with pytest.raises(ConfigError, match="use one of"):
        with local_backend("cupy"):
            pass
    assert get_local_backend() == "numpy"


def test_the_backend_is_restored_after_an_error():
    with pytest.raises(RuntimeError):
        with local_backend("jax"):
            raise RuntimeError("boom")
    assert get_local_backend() == "numpy"


def test_the_lpgan_config_validates_the_backend_and_keeps_the_owner_randomness():
    from egan_jax.lpgan.owner import OwnerRandomness
    from egan_jax.lpgan.train import LpganConfig

    with pytest.raises(ConfigError, match=r"unknown local ring backend 'gpu'.*'numpy', 'jax'"):
        LpganConfig(local_backend="gpu")
    # which code does the arithmetic must not change any share or triple the owner sends
    streams = [
        OwnerRandomness(LpganConfig(local_backend=name), owner_seed=7).shares("init").ring((4,))
        for name in BACKENDS
    ]
    assert np.array_equal(*streams)


@pytest.mark.slow  # ~20 s at load 6 on 2 cores, most of it compiling the jitted ops for both paths
def test_secure_training_gives_bit_identical_weights_under_either_config_backend():
    from egan_jax.lpgan.model import ModelConfig
    from egan_jax.lpgan.owner import train_local
    from egan_jax.lpgan.train import LpganConfig

    config = LpganConfig(model=ModelConfig(latent_dim=4, width=2, image_size=8), batch_size=2)
    calls = {"jax": 0}
    original = _local._call

    def counted(*args, **kwargs):
        calls["jax"] += 1
        return original(*args, **kwargs)

    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_local, "_call", counted)
        for name in BACKENDS:
            before = calls["jax"]
            config_b = dataclasses.replace(config, local_backend=name)
            generator, records = train_local(config_b, owner_seed=0, steps=5)
            used = calls["jax"] - before
            assert (used > 0) == (name == "jax"), (name, used)
            losses = [{k: v for k, v in r.items() if k != "seconds"} for r in records]
            out[name] = (generator, losses)
    assert get_local_backend() == "numpy"
    assert_bit_identical(out["numpy"][0], out["jax"][0])
    assert out["numpy"][1] == out["jax"][1]
