"""IPR-GAN watermarks: logo, triggers, differentiable SSIM, sign signature and its bit error rate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax import watermark
from egan_jax.errors import ConfigError


class Normed(nnx.Module):
    """Two normalisation layers (11 and 5 scales): cheap to build, unlike a whole generator."""

    def __init__(self):
        rngs = nnx.Rngs(0)
        self.norm = nnx.BatchNorm(11, rngs=rngs)
        self.ln = nnx.LayerNorm(5, rngs=rngs)


def test_logo_is_drawn_in_range_and_pasted_top_left():
    logo = watermark.make_logo(8, 3)
    assert logo.shape == (8, 8, 3) and logo.min() >= -1 and logo.max() <= 1
    assert logo.std() > 0.2  # a visible shape, not a flat patch
    images = jnp.zeros((2, 16, 16, 3))
    pasted = watermark.paste_logo(images, jnp.asarray(logo))
    np.testing.assert_array_equal(pasted[:, :8, :8], np.broadcast_to(logo, (2, 8, 8, 3)))
    np.testing.assert_array_equal(pasted[:, 8:], 0.0)


def test_dcgan_trigger_maps_into_the_positive_box():
    z = jax.random.normal(jax.random.key(0), (64, 16)) * 3
    t = watermark.dcgan_trigger(z)
    assert float(t.min()) >= 0 and float(t.max()) <= np.sqrt(2 * np.pi) + 1e-6
    with pytest.raises(ConfigError, match="valid triggers"):
        watermark.get_trigger("nope")


def test_ssim_is_one_on_equal_images_and_lower_apart_with_a_gradient():
    a = jax.random.uniform(jax.random.key(1), (3, 8, 8, 1), minval=-1, maxval=1)
    b = jax.random.uniform(jax.random.key(2), (3, 8, 8, 1), minval=-1, maxval=1)

    @jax.jit  # one compile instead of one per primitive
    def check(a, b):
        grad = jax.grad(lambda x: jnp.mean(watermark.trigger_loss(x, a)))(b)
        stepped = b - 5.0 * grad
        return watermark.ssim(a, a), watermark.ssim(a, b), watermark.ssim(stepped, a)

    same, apart, stepped = check(a, b)
    np.testing.assert_allclose(same, 1.0, rtol=1e-5)
    assert float(jnp.max(apart)) < 0.5
    assert float(jnp.mean(stepped)) > float(jnp.mean(apart))


def test_logo_ssim_verifies_the_region():
    logo = jnp.asarray(watermark.make_logo(4, 1))
    images = jax.random.uniform(jax.random.key(3), (2, 8, 8, 1), minval=-1, maxval=1)
    assert float(jnp.max(watermark.logo_ssim(images, logo))) < 0.9
    np.testing.assert_allclose(
        watermark.logo_ssim(watermark.paste_logo(images, logo), logo), 1.0, rtol=1e-5
    )


def test_signature_bits_of_ascii():
    np.testing.assert_array_equal(watermark.signature_bits("A"), [-1, 1, -1, -1, -1, -1, -1, 1])
    with pytest.raises(ConfigError, match="ASCII"):
        watermark.signature_bits("é")
    with pytest.raises(ConfigError, match="no normalisation"):
        watermark.norm_scales(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))


def test_sign_signature_embeds_with_zero_bit_errors():
    generator = Normed()
    bits = watermark.signature_bits("EG")
    assert len(watermark.norm_scales(generator)) == 2
    assert watermark.signature_ber(generator, bits) > 0.2  # init scales are all +1
    assert float(watermark.signature_loss(generator, bits)) > 0
    watermark.embed_signature_init(generator, bits)
    assert watermark.signature_ber(generator, bits) == 0.0
    assert float(watermark.signature_loss(generator, bits)) == 0.0


def test_sign_loss_gradient_moves_scales_towards_their_bits():
    model = Normed()
    bits = watermark.signature_bits("Z")
    before = watermark.signature_ber(model, bits)
    grads = nnx.grad(lambda m: watermark.signature_loss(m, bits))(model)
    params = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree_util.tree_map(lambda p, g: p - 50.0 * g, params, grads))
    assert watermark.signature_ber(model, bits) < before


def test_black_box_loss_adds_the_logo_region_term():
    logo = jnp.asarray(watermark.make_logo(4, 1))
    clean = jax.random.uniform(jax.random.key(0), (2, 16, 16, 1), minval=-1.0, maxval=1.0)
    marked = watermark.paste_logo(clean, logo)
    base = watermark.black_box_loss(clean, clean, logo)
    np.testing.assert_allclose(base, watermark.trigger_loss(clean, marked), atol=1e-6)
    weighted = watermark.black_box_loss(clean, clean, logo, logo_weight=2.0)
    np.testing.assert_allclose(
        weighted, base + 2.0 * (1.0 - watermark.logo_ssim(clean, logo)), atol=1e-6
    )
    assert np.all(np.asarray(watermark.black_box_loss(marked, clean, logo, logo_weight=2.0)) < 1e-5)


def test_verification_thresholds():
    assert watermark.verified({"logo_ssim": 0.8, "bit_error_rate": 0.0}) == {
        "logo_ssim": True,
        "bit_error_rate": True,
    }
    assert watermark.verified({"logo_ssim": 0.5, "bit_error_rate": 0.2}) == {
        "logo_ssim": False,
        "bit_error_rate": False,
    }
