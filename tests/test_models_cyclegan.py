"""CycleGAN: ResNet generator and 70×70 PatchGAN shapes, receptive field, norms, hooks, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax.errors import ConfigError
from egan_jax.models import cyclegan


@pytest.fixture(scope="module")
def images():
    return jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)), jnp.float32)


@pytest.fixture(scope="module")
def generator():
    return cyclegan.Generator(width=8, num_blocks=2, rngs=nnx.Rngs(0))


def test_generator_keeps_shape_and_range(generator, images):
    out, features = generator(images, return_features=True)
    assert out.shape == images.shape and float(jnp.max(jnp.abs(out))) <= 1.0
    assert features["head"].shape == (2, 32, 32, 8)
    assert features["down2"].shape == (2, 8, 8, 32) and features["trunk"].shape == (2, 8, 8, 32)
    assert features["up2"].shape == (2, 32, 32, 8)


def test_resize_conv_upsampler(images):
    model = cyclegan.Generator(width=8, num_blocks=0, upsample="resize_conv", rngs=nnx.Rngs(0))
    out, features = model(images, return_features=True)
    assert out.shape == images.shape and features["up1"].shape == (2, 16, 16, 16)
    with pytest.raises(ConfigError, match="divisible by 4"):
        model(jnp.zeros((1, 30, 32, 3)))


def test_feature_transform_hook_changes_the_output(generator, images):
    calls = []

    def flip(h):
        calls.append(h.shape)
        return -h

    plain = generator
    keyed = cyclegan.Generator(width=8, num_blocks=2, feature_transform=flip, rngs=nnx.Rngs(0))
    out_plain, f_plain = plain(images, return_features=True)
    out_keyed, f_keyed = keyed(images, return_features=True)
    assert calls == [(2, 32, 32, 8)]
    np.testing.assert_allclose(f_keyed["head"], -f_plain["head"])
    assert float(jnp.max(jnp.abs(out_keyed - out_plain))) > 1e-3


def test_patch_discriminator_output_and_70px_receptive_field(monkeypatch):
    model = cyclegan.PatchDiscriminator(width=4, rngs=nnx.Rngs(1))
    x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 96, 96, 3)), jnp.float32)
    logits, features = model(x, return_features=True)
    assert logits.shape == (1, 10, 10)  # H/8 − 2
    assert features["conv4"].shape == (1, 11, 11, 32)
    # Instance norm mixes the whole image; the conv stack alone decides which input pixels one
    # patch logit sees: a 70×70 square.
    monkeypatch.setattr(cyclegan, "instance_norm", lambda h: h)
    grad = jax.grad(lambda v: model(v)[0, 5, 5])(x)
    rows = np.flatnonzero(np.abs(np.asarray(grad[0])).sum(axis=(1, 2)))
    cols = np.flatnonzero(np.abs(np.asarray(grad[0])).sum(axis=(0, 2)))
    assert rows[-1] - rows[0] + 1 == 70 and cols[-1] - cols[0] + 1 == 70


def test_instance_norm_and_reflect_pad():
    x = jnp.asarray(np.random.default_rng(3).normal(3, 2, (2, 5, 6, 4)), jnp.float32)
    y = np.asarray(cyclegan.instance_norm(x))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1, atol=1e-3)
    padded = np.asarray(cyclegan.reflect_pad(x, 2))
    np.testing.assert_array_equal(padded[:, 0, 2:-2], np.asarray(x)[:, 2])
    np.testing.assert_array_equal(padded[:, 2:-2, 1], np.asarray(x)[:, :, 1])


def test_bad_inputs_raise():
    with pytest.raises(ConfigError, match="upsample"):
        cyclegan.Generator(upsample="transpose", rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="at least 32"):
        cyclegan.PatchDiscriminator(width=4, rngs=nnx.Rngs(0))(jnp.zeros((1, 16, 16, 3)))
