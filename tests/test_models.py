"""Tests for egan_jax/models/layers.py, egan_jax/models/resample.py and egan_jax/models/dcgan.py."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax.errors import ConfigError
from egan_jax.models import Discriminator, Generator, SpectralNormConv, SpectralNormLinear
from egan_jax.models.resample import (
    Stride2Conv,
    Upsample2x,
    conv_transpose2x,
    stride2_conv,
    upsample2x,
    upsample2x_reference,
)

LATENT, WIDTH = 16, 8


def test_upsample2x_matches_autodiff_of_plain_formulation():
    kx, kk, kc = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (2, 4, 5, 6))
    kernel = jax.random.normal(kk, (4, 4, 3, 6))
    cotangent = jax.random.normal(kc, (2, 8, 10, 3))

    def loss(fn):
        return lambda a, b: jnp.sum(fn(a, b) * cotangent)

    np.testing.assert_allclose(upsample2x(x, kernel), upsample2x_reference(x, kernel), atol=1e-5)
    custom = jax.jit(jax.grad(loss(upsample2x), argnums=(0, 1)))(x, kernel)
    plain = jax.jit(jax.grad(loss(upsample2x_reference), argnums=(0, 1)))(x, kernel)
    for got, want in zip(custom, plain, strict=True):
        assert float(jnp.max(jnp.abs(want))) > 1.0  # a non-trivial gradient to compare
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(2, 1, 1, 3), (3, 4, 5, 6), (1, 6, 2, 4)])
def test_conv_transpose2x_equals_the_vjp_of_the_strided_conv(shape):
    kx, kk = jax.random.split(jax.random.key(3))
    x = jax.random.normal(kx, shape)
    kernel = jax.random.normal(kk, (4, 4, 5, shape[-1]))
    got = jax.jit(conv_transpose2x)(x, kernel)
    chex.assert_shape(got, (shape[0], 2 * shape[1], 2 * shape[2], 5))
    np.testing.assert_allclose(got, upsample2x_reference(x, kernel), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("hw", "kernel_size", "padding"),
    [
        ((8, 6), 4, ((1, 1), (1, 1))),  # DCGAN / PatchGAN down-sampling
        ((9, 7), 3, ((1, 1), (1, 1))),  # SRGAN / CycleGAN, odd sizes
        ((8, 8), 3, ((0, 1), (2, 0))),  # asymmetric padding
        ((5, 6), 1, ((0, 0), (0, 0))),  # kernel 1: odd phases receive nothing
        ((7, 9), 5, ((2, 2), (2, 2))),
    ],
)
def test_stride2_conv_gradients_match_autodiff_of_the_strided_conv(hw, kernel_size, padding):
    kx, kk, kc = jax.random.split(jax.random.key(4), 3)
    x = jax.random.normal(kx, (2, *hw, 3))
    kernel = jax.random.normal(kk, (kernel_size, kernel_size, 3, 5))

    def strided(a, b):
        return jax.lax.conv_general_dilated(
            a, b, (2, 2), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    cotangent = jax.random.normal(kc, strided(x, kernel).shape)

    def loss(fn):
        return lambda a, b: jnp.sum(fn(a, b) * cotangent)

    ours = lambda a, b: stride2_conv(a, b, padding)
    np.testing.assert_allclose(ours(x, kernel), strided(x, kernel), atol=1e-5)
    custom = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(x, kernel)
    plain = jax.jit(jax.grad(loss(strided), argnums=(0, 1)))(x, kernel)
    for got, want in zip(custom, plain, strict=True):
        assert float(jnp.max(jnp.abs(want))) > 1.0
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)


def test_stride2_conv_module_has_nnx_conv_state_and_values():
    stock = nnx.Conv(3, 4, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), rngs=nnx.Rngs(0))
    ours = Stride2Conv(3, 4, 3, padding=1, rngs=nnx.Rngs(0))
    # same state paths and the same initial values from the same seed (a drop-in for nnx.Conv)
    assert jax.tree.structure(nnx.state(ours)) == jax.tree.structure(nnx.state(stock))
    leaves = zip(jax.tree.leaves(nnx.state(ours)), jax.tree.leaves(nnx.state(stock)), strict=True)
    for a, b in leaves:
        np.testing.assert_array_equal(a, b)
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 3))
    np.testing.assert_allclose(ours(x), stock(x), atol=1e-5)


def test_spectral_norm_conv_stride2_path_equals_the_generic_conv():
    layer = SpectralNormConv(
        3,
        4,
        (4, 4),
        strides=(2, 2),
        padding=((1, 1), (1, 1)),
        use_running_average=True,  # `u` fixed, so both calls use the same normalised kernel
        rngs=nnx.Rngs(0),
    )
    for size in (8, 7):
        x = jax.random.normal(jax.random.key(size), (2, size, size, 3))
        want = (
            jax.lax.conv_general_dilated(
                x,
                layer.normalized_kernel(),
                (2, 2),
                ((1, 1), (1, 1)),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )
            + layer.bias[...]
        )
        np.testing.assert_allclose(layer(x), want, atol=1e-5)


def test_upsample2x_shape_matches_stride2_same_conv_transpose():
    x = jnp.ones((2, 4, 4, 6))
    ours = Upsample2x(6, 3, rngs=nnx.Rngs(0))(x)
    stock = nnx.ConvTranspose(6, 3, (4, 4), strides=(2, 2), padding="SAME", rngs=nnx.Rngs(0))(x)
    chex.assert_shape(ours, (2, 8, 8, 3))
    chex.assert_equal_shape([ours, stock])


def test_spectral_norm_layers_have_unit_spectral_norm_after_iterations():
    conv = SpectralNormConv(3, 5, (3, 3), n_power_iterations=30, rngs=nnx.Rngs(0))
    linear = SpectralNormLinear(7, 4, n_power_iterations=30, rngs=nnx.Rngs(1))
    for layer in (conv, linear):
        w = layer.normalized_kernel()
        sigma = np.linalg.norm(np.asarray(w).reshape(-1, w.shape[-1]), 2)
        np.testing.assert_allclose(sigma, 1.0, rtol=1e-3)


def test_spectral_norm_updates_u_in_train_mode_only():
    layer = SpectralNormLinear(6, 4, rngs=nnx.Rngs(0))
    x = jnp.ones((2, 6))

    @nnx.jit
    def forward(layer, x):
        return layer(x)

    before = np.asarray(layer.u[...])
    forward(layer, x)
    after_train = np.asarray(layer.u[...])
    assert not np.allclose(before, after_train)
    layer.eval()
    forward(layer, x)
    np.testing.assert_array_equal(np.asarray(layer.u[...]), after_train)
    # The trained parameter is the raw kernel, never overwritten by W / sigma.
    raw = np.asarray(layer.kernel[...])
    forward(layer, x)
    np.testing.assert_array_equal(np.asarray(layer.kernel[...]), raw)


@pytest.fixture(scope="module")
def models():
    generator = Generator(
        latent_dim=LATENT, image_size=16, channels=1, width=WIDTH, rngs=nnx.Rngs(0)
    )
    discriminator = Discriminator(image_size=16, channels=1, width=WIDTH, rngs=nnx.Rngs(1))
    return generator, discriminator


@nnx.jit(static_argnames="return_features")
def _forward(generator, discriminator, z, return_features=False):
    images, g_features = generator(z, return_features=True)
    logits, d_features = discriminator(images, return_features=True)
    if return_features:
        return images, logits, g_features, d_features
    return images, logits


def test_generator_and_discriminator_shapes_range_and_features(models):
    generator, discriminator = models
    z = 3.0 * jax.random.normal(jax.random.key(0), (4, LATENT))
    images, logits, g_features, d_features = _forward(generator, discriminator, z, True)
    chex.assert_shape(images, (4, 16, 16, 1))
    chex.assert_shape(logits, (4,))
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    assert float(images.std()) > 0.0
    expected_g = {
        "linear": (4, 2, 2, 8 * WIDTH),
        "block1": (4, 4, 4, 4 * WIDTH),
        "block2": (4, 8, 8, 2 * WIDTH),
        "block3": (4, 16, 16, WIDTH),
    }
    expected_d = {
        "block1": (4, 8, 8, WIDTH),
        "block2": (4, 4, 4, 2 * WIDTH),
        "block3": (4, 2, 2, 4 * WIDTH),
        "final": (4, 2, 2, 8 * WIDTH),
    }
    assert {k: v.shape for k, v in g_features.items()} == expected_g
    assert {k: v.shape for k, v in d_features.items()} == expected_d


def test_batchnorm_train_vs_eval(models):
    generator, discriminator = models
    z = jax.random.normal(jax.random.key(1), (4, LATENT))
    generator.train()
    stats_before = np.asarray(generator.norms[0].mean[...])
    train_images, _ = _forward(generator, discriminator, z)
    stats_after = np.asarray(generator.norms[0].mean[...])
    assert not np.allclose(stats_before, stats_after)  # running stats updated in train mode
    generator.eval()
    eval_images, _ = _forward(generator, discriminator, z)
    np.testing.assert_array_equal(np.asarray(generator.norms[0].mean[...]), stats_after)
    assert not np.allclose(train_images, eval_images)
    generator.train()


def test_feature_transform_hook_is_applied():
    def negate(h):
        return -h

    kwargs = dict(latent_dim=LATENT, image_size=8, channels=1, width=WIDTH)
    plain = Generator(**kwargs, rngs=nnx.Rngs(0))
    hooked = Generator(**kwargs, feature_transform=negate, rngs=nnx.Rngs(0))
    z = jax.random.normal(jax.random.key(2), (2, LATENT))
    _, f_plain = plain(z, return_features=True)
    _, f_hooked = hooked(z, return_features=True)
    np.testing.assert_allclose(f_hooked["linear"], -f_plain["linear"], atol=1e-6)
    assert not np.allclose(f_hooked["block1"], f_plain["block1"])


@pytest.mark.parametrize("image_size", [0, 12, 30])
def test_bad_image_size_raises_config_error(image_size):
    with pytest.raises(ConfigError, match="multiple of 8"):
        Generator(image_size=image_size, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="multiple of 8"):
        Discriminator(image_size=image_size, rngs=nnx.Rngs(0))


def test_unknown_upsampler_raises_config_error():
    with pytest.raises(ConfigError, match="upsample"):
        Generator(upsample="nearest", rngs=nnx.Rngs(0))


def test_conv_transpose_variant_has_same_shapes():
    generator = Generator(
        latent_dim=LATENT,
        image_size=8,
        channels=3,
        width=WIDTH,
        upsample="conv_transpose",
        rngs=nnx.Rngs(0),
    )
    images = nnx.jit(lambda g, z: g(z))(generator, jnp.zeros((2, LATENT)))
    chex.assert_shape(images, (2, 8, 8, 3))
