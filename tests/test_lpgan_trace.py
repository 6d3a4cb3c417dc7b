"""Secure vs plaintext step tensor by tensor (`egan_jax.lpgan.trace`), and the plaintext loss record."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from egan_jax.lpgan import trace
from egan_jax.lpgan import train as T
from egan_jax.lpgan.model import ModelConfig, plain_forward

TINY = ModelConfig(latent_dim=8, width=4, image_size=16, channels=1)


def _inputs(config):
    rng = np.random.default_rng(0)
    real = np.tanh(rng.normal(size=(config.batch_size, 16, 16, 1)))
    return (trace._fixed(v, config.frac_bits) for v in (real, *T.latents(config, 0)))


def test_step_losses_read_the_jitted_steps_logits_by_name():
    # the bench once read them by position: a jitted step returns its dict with sorted keys
    # (fake, generator, real), so the "plaintext D loss" it reported was softplus(-fake) +
    # softplus(generator) and looked 0.5 above the secure one
    config = T.LpganConfig(model=TINY, batch_size=4)
    params = jax.tree.map(jnp.asarray, T.initial_params(config))
    real, z_d, z_g = (jnp.asarray(v, jnp.float32) for v in _inputs(config))
    _, _, logits = jax.jit(T.make_plain_step(config))(
        params, jax.tree.map(jnp.zeros_like, params), real, z_d, z_g
    )
    assert list(logits) == ["fake", "generator", "real"]
    nets = T.networks(config)
    fake = plain_forward(nets["g"], params["g"], z_d)
    scores = np.asarray(plain_forward(nets["d"], params["d"], jnp.concatenate([real, fake]))[:, 0])
    n = config.batch_size
    d_loss = np.mean(np.logaddexp(0, -scores[:n]) + np.logaddexp(0, scores[n:]))
    losses = T.step_losses(config.loss, logits)
    assert abs(losses["d_loss"] - d_loss) < 1e-5
    assert abs(losses["g_loss"] - np.mean(np.logaddexp(0, -np.asarray(logits["generator"])))) < 1e-6


@pytest.mark.slow
def test_secure_step_is_unbiased_tensor_by_tensor():
    config = T.LpganConfig(model=TINY, batch_size=4, learning_rate=0.05, loss_scale_bits=10)
    params = T.initial_params(config)
    momenta = jax.tree.map(lambda v: np.full_like(v, 0.01), params)
    real, z_d, z_g = _inputs(config)
    plain, _ = trace.plain_trace(config, params, momenta, real, z_d, z_g)
    secure = trace.secure_trace(config, params, momenta, real, z_d, z_g)
    rows = trace.compare(secure, plain)
    assert set(rows) == set(plain) and len(rows) > 60
    for name, row in rows.items():
        if name.startswith(("act.", "logits.", "grad.d_logit", "grad.g_logit")):
            assert row["rel"] < 3e-3, (name, row)  # fixed point and the tanh/sigmoid fits
        else:  # gradients and updates: ReLU bits of values near 0 may flip (2-6% on 4 channels)
            assert row["rel"] < 0.1, (name, row)
    # no bias that makes one network's whole update larger or smaller
    for net in ("d", "g"):
        names = [k for k in plain if k.startswith(f"update.{net}.")]
        s = np.concatenate([np.ravel(secure[k]) for k in names])
        p = np.concatenate([np.ravel(plain[k]) for k in names])
        assert abs(np.dot(s, p) / np.dot(p, p) - 1) < 0.01, net


def test_stochastic_round_is_on_the_grid_and_unbiased():
    from egan_jax.lpgan.sensitivity import stochastic_round

    value = np.full(20000, 0.3 / 2**10)
    rounded = stochastic_round(value, 10, np.random.default_rng(0))
    assert set(np.unique(rounded * 2**10)) == {0.0, 1.0}
    assert abs(rounded.mean() * 2**10 - 0.3) < 0.02
