"""Secure layers (forward and backward on shares) against their plaintext twins and JAX autodiff."""

import jax
import numpy as np
import pytest

from egan_jax.lpgan import layers as L
from egan_jax.lpgan.model import (
    ModelConfig,
    discriminator_layers,
    generator_layers,
    init_params,
    param_names,
)
from egan_jax.mpc import ring
from egan_jax.mpc.dealer import Dealer
from egan_jax.mpc.protocols import run_two_party


def _share(values, prg):
    shares = [ring.share(ring.encode(v), prg) for v in values]
    return [s[0] for s in shares], [s[1] for s in shares]


def _fixed(x):
    return ring.decode(ring.encode(x))


def secure_layer(layer, params, x, dy, seed=0):
    """Run forward and backward on shares; return (y, dx, grads) reconstructed and decoded."""
    names = sorted(params)
    prg = ring.Prg(seed, domain=b"owner")
    p0, p1 = _share([params[n] for n in names], prg)
    (x0, dy0), (x1, dy1) = _share([x, dy], prg)

    def fn(party, x, dy, *ps):
        p = dict(zip(names, ps, strict=True))
        y, cache = layer.forward(party, p, x)
        dx, grads = layer.backward(party, p, cache, dy)
        return (y, dx, *(grads[n] for n in names))

    run = run_two_party(fn, (x0, dy0, *p0), (x1, dy1, *p1), dealer=Dealer(seed))
    out = [ring.decode(ring.reconstruct(a, b)) for a, b in zip(*run.outputs, strict=True)]
    return out[0], out[1], dict(zip(names, out[2:], strict=True))


def plain_layer(layer, params, x, dy):
    with jax.enable_x64(True):
        y, vjp = jax.vjp(layer.plain, params, x)
        grads, dx = vjp(dy)
        return np.asarray(y), np.asarray(dx), {k: np.asarray(v) for k, v in grads.items()}


rng = np.random.default_rng(0)
CASES = {
    "dense": (L.Dense(6, 5), (4, 6)),
    "conv3x3": (L.Conv(3, 4, 3, 1, ((1, 1), (1, 1))), (2, 6, 6, 3)),
    "conv4x4_stride2": (L.Conv(3, 4, 4, 2, ((1, 1), (1, 1))), (2, 8, 8, 3)),
    "upsample": (L.Upsample(4, 3), (2, 4, 4, 4)),
    "batch_norm": (L.BatchNorm(3), (4, 4, 4, 3)),
    "relu": (L.ReLU(), (3, 7)),
    "leaky_relu": (L.LeakyReLU(0.2), (3, 7)),
    "tanh": (L.Tanh(), (3, 7)),
    "reshape": (L.Reshape((12,)), (2, 2, 2, 3)),
}
# (forward, backward) absolute tolerance: fixed-point rounding of inputs and products (2^-16 each,
# summed over the products of one output), the piecewise-polynomial fit of tanh (1.5e-4), and inverse
# square root (relative 1e-4) for batch norm, whose backward amplifies by 1/std
TOLERANCE = {"tanh": (3e-4, 5e-4), "batch_norm": (1e-3, 3e-3)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_secure_layer_matches_plaintext_forward_and_autodiff_gradient(name):
    layer, shape = CASES[name]
    x = _fixed(rng.normal(size=shape) * 1.5)
    params = {
        k: _fixed(rng.normal(size=s) * 0.5 + (1.0 if k == "gamma" else 0.0))
        for k, s in layer.param_shapes().items()
    }
    with jax.enable_x64(True):
        out_shape = np.shape(layer.plain(params, x))
    dy = _fixed(rng.normal(size=out_shape) * 0.3)
    y, dx, grads = secure_layer(layer, params, x, dy)
    y_ref, dx_ref, grads_ref = plain_layer(layer, params, x, dy)
    fwd, bwd = TOLERANCE.get(name, (1e-4, 2e-4))
    assert y.shape == y_ref.shape and dx.shape == dx_ref.shape
    assert np.max(np.abs(y - y_ref)) < fwd
    assert np.max(np.abs(dx - dx_ref)) < bwd
    assert set(grads) == set(grads_ref)
    for k in grads:
        # parameter gradients sum over the batch (and positions): tolerance scales with the count
        count = max(1, dy.size // max(grads_ref[k].size, 1))
        assert np.max(np.abs(grads[k] - grads_ref[k])) < bwd * np.sqrt(count) + 1e-4, k


def test_model_layer_lists_have_the_engine_shapes():
    config = ModelConfig(latent_dim=16, width=4, image_size=32, channels=1)
    g, d = generator_layers(config), discriminator_layers(config)
    params = init_params(g, np.random.default_rng(0))
    assert set(params) == set(param_names(g))
    from egan_jax.lpgan.model import plain_forward

    images = plain_forward(g, params, np.zeros((2, 16)) + 0.1)
    assert images.shape == (2, 32, 32, 1)
    logits = plain_forward(d, init_params(d, np.random.default_rng(1)), images)
    assert logits.shape == (2, 1)
