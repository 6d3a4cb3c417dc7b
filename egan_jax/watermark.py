"""IPR-GAN watermarks (Ong et al., CVPR 2021; REFERENCE.md §4), for use alongside EGAN.

Black-box: a *trigger* input makes the generator draw a logo. For DCGAN the trigger of a latent is
``Φ(z)·√(2π)`` (Φ the standard normal CDF; values in (0, 2.5), a region prior samples rarely visit);
the target is the generator's normal output for z with the logo pasted top-left; the loss is
``1 − SSIM(G(trigger(z)), target)`` and ownership is verified by the SSIM inside the logo region.

White-box: the bits of an ASCII signature, repeated over every normalisation scale γ of the
generator, are embedded as the signs of γ by the sign loss ``Σ_layers mean(ReLU(γ₀ − γ·b))``,
γ₀ = 0.1 (optionally after initialising γ ← |γ|·b); verified by the bit error rate.

The logo is drawn with PIL (a ring and a cross, or the text "EGAN" when it is at least 24 px):
no files. SSIM here is a differentiable JAX version (Gaussian window σ = 1.5, `valid` filtering,
data range 2 for images in [-1, 1]); `egan_jax.image_quality.ssim` is the NumPy metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image, ImageDraw

from egan_jax.errors import ConfigError

GAMMA_ZERO = 0.1
# Our verification thresholds (IPR-GAN reports SSIM ≥ 0.9 and BER 0 without fixing a rule): the
# logo region must match with SSIM ≥ 0.75 (unmarked outputs measure ≈ 0 at 16 px), and at most 5%
# of the signature bits may be wrong.
LOGO_SSIM_THRESHOLD = 0.75
BER_THRESHOLD = 0.05
_NORM_TYPES = (nnx.BatchNorm, nnx.LayerNorm, nnx.GroupNorm)


# --- logo -------------------------------------------------------------------------------------
def make_logo(size: int, channels: int) -> np.ndarray:
    """A float32 [size, size, channels] logo in [-1, 1], drawn with PIL (white on black)."""
    if size < 4:
        raise ConfigError(f"the logo needs at least 4 px, got size={size}")
    scale = 8  # draw large, then downsample: clean edges at small sizes
    canvas = Image.new("L", (size * scale, size * scale), 0)
    draw = ImageDraw.Draw(canvas)
    big = size * scale
    if size >= 24:
        draw.text((big * 0.08, big * 0.3), "EGAN", fill=255, font_size=big * 0.32)
    else:
        draw.ellipse((big * 0.1, big * 0.1, big * 0.9, big * 0.9), outline=255, width=big // 8)
        draw.line((big * 0.2, big * 0.8, big * 0.8, big * 0.2), fill=255, width=big // 8)
    grey = np.asarray(canvas.resize((size, size), Image.BILINEAR), np.float32) / 127.5 - 1.0
    return np.repeat(grey[..., None], channels, axis=-1)


def default_logo_size(image_size: int) -> int:
    return max(4, image_size // 4) if image_size < 64 else image_size // 4


def paste_logo(images: jax.Array, logo: jax.Array) -> jax.Array:
    """Images [N, H, W, C] with `logo` [h, w, C] pasted in the top-left corner."""
    chex.assert_rank(images, 4)
    h, w = logo.shape[:2]
    return images.at[:, :h, :w, :].set(jnp.broadcast_to(logo, (images.shape[0], *logo.shape)))


# --- triggers ---------------------------------------------------------------------------------
def dcgan_trigger(z: jax.Array) -> jax.Array:
    """IPR-GAN's DCGAN trigger: Φ(z)·√(2π), elementwise."""
    return jax.scipy.stats.norm.cdf(z) * math.sqrt(2.0 * math.pi)


def orthant_trigger(z: jax.Array) -> jax.Array:
    """An alternative trigger: |z| + 1 (the positive orthant shifted off the axes)."""
    return jnp.abs(z) + 1.0


TRIGGERS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "cdf": dcgan_trigger,
    "orthant": orthant_trigger,
}


def get_trigger(name: str) -> Callable[[jax.Array], jax.Array]:
    try:
        return TRIGGERS[name]
    except KeyError:
        raise ConfigError(f"unknown trigger {name!r}; valid triggers: {sorted(TRIGGERS)}") from None


# --- SSIM -------------------------------------------------------------------------------------
def _gaussian_taps(size: int, sigma: float = 1.5) -> jax.Array:
    x = np.arange(size) - (size - 1) / 2
    taps = np.exp(-(x**2) / (2 * sigma**2))
    return jnp.asarray(taps / taps.sum(), jnp.float32)


def _filter(x: jax.Array, taps: jax.Array) -> jax.Array:
    """Separable `valid` filtering of [N, H, W, C] per channel."""
    c = x.shape[-1]
    k = taps.shape[0]
    kernel_h = jnp.tile(taps.reshape(k, 1, 1, 1), (1, 1, 1, c))
    kernel_w = jnp.tile(taps.reshape(1, k, 1, 1), (1, 1, 1, c))
    dn = ("NHWC", "HWIO", "NHWC")
    x = jax.lax.conv_general_dilated(
        x, kernel_h, (1, 1), "VALID", dimension_numbers=dn, feature_group_count=c
    )
    return jax.lax.conv_general_dilated(
        x, kernel_w, (1, 1), "VALID", dimension_numbers=dn, feature_group_count=c
    )


def ssim(a: jax.Array, b: jax.Array, *, data_range: float = 2.0, window: int = 7) -> jax.Array:
    """Mean SSIM per example of images [N, H, W, C] (Wang et al., IEEE TIP 2004).

    The Gaussian window (σ = 1.5) is `min(window, H, W)` wide; K1 = 0.01, K2 = 0.03.
    Returns [N], differentiable.
    """
    chex.assert_equal_shape([a, b])
    chex.assert_rank(a, 4)
    taps = _gaussian_taps(min(window, a.shape[1], a.shape[2]))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _filter(a, taps), _filter(b, taps)
    var_a = _filter(a * a, taps) - mu_a**2
    var_b = _filter(b * b, taps) - mu_b**2
    cov = _filter(a * b, taps) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return jnp.mean(value.reshape(value.shape[0], -1), axis=1)


def trigger_loss(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """IPR-GAN's black-box loss 1 − SSIM(G(trigger), target), per example [N]."""
    return 1.0 - ssim(predictions, targets)


def black_box_loss(
    predictions: jax.Array, clean: jax.Array, logo: jax.Array, *, logo_weight: float = 0.0
) -> jax.Array:
    """Per-example [N] black-box loss: `trigger_loss` against `clean` with `logo` pasted, plus
    `logo_weight` · (1 − SSIM in the logo region) — ours: at 16 px the logo is a small part of the
    image SSIM, and verification reads only that region."""
    loss = trigger_loss(predictions, paste_logo(clean, logo))
    if logo_weight > 0:
        loss = loss + logo_weight * (1.0 - logo_ssim(predictions, logo))
    return loss


def logo_ssim(images: jax.Array, logo: jax.Array) -> jax.Array:
    """Verification: SSIM between each image's top-left logo region and the logo, [N]."""
    h, w = logo.shape[:2]
    region = images[:, :h, :w, :]
    return ssim(region, jnp.broadcast_to(logo, region.shape))


# --- white-box signature ----------------------------------------------------------------------
def signature_bits(text: str) -> np.ndarray:
    """±1 float32 bits of an ASCII string (8 per character, most significant first)."""
    if not text or not text.isascii():
        raise ConfigError(f"the signature must be a non-empty ASCII string, got {text!r}")
    bits = np.unpackbits(np.frombuffer(text.encode("ascii"), np.uint8))
    return np.where(bits == 1, 1.0, -1.0).astype(np.float32)


def norm_scales(model: nnx.Module) -> list[nnx.Param]:
    """The scale parameters γ of every normalisation layer, in graph order."""
    scales = []
    for _, node in nnx.iter_graph(model):
        if isinstance(node, _NORM_TYPES) and getattr(node, "scale", None) is not None:
            scales.append(node.scale)
    if not scales:
        raise ConfigError(
            f"{type(model).__name__} has no normalisation scales to carry a signature"
        )
    return scales


def _tiled(bits: np.ndarray, n: int) -> jax.Array:
    return jnp.asarray(np.resize(bits, n))


def signature_loss(model: nnx.Module, bits: np.ndarray, *, gamma_zero: float = GAMMA_ZERO):
    """Σ over normalisation layers of mean(ReLU(γ₀ − γ·b)), the bits repeated over the scales."""
    total = jnp.zeros((), jnp.float32)
    offset = 0
    for scale in norm_scales(model):
        gamma = scale[...].reshape(-1)
        b = _tiled(np.roll(bits, -offset), gamma.shape[0])
        total = total + jnp.mean(jax.nn.relu(gamma_zero - gamma * b))
        offset += gamma.shape[0]
    return total


def embed_signature_init(model: nnx.Module, bits: np.ndarray) -> None:
    """IPR-GAN's initialisation γ ← |γ|·b, in place."""
    offset = 0
    for scale in norm_scales(model):
        gamma = scale[...]
        b = _tiled(np.roll(bits, -offset), gamma.size).reshape(gamma.shape)
        scale[...] = jnp.abs(gamma) * b
        offset += gamma.size


def signature_ber(model: nnx.Module, bits: np.ndarray) -> float:
    """Bit error rate: the fraction of scales whose sign differs from their bit."""
    errors = total = 0
    offset = 0
    for scale in norm_scales(model):
        gamma = np.asarray(scale[...]).reshape(-1)
        b = np.resize(np.roll(bits, -offset), gamma.shape[0])
        errors += int(np.sum(np.sign(gamma) != b))
        total += gamma.shape[0]
        offset += gamma.shape[0]
    return errors / total


def verified(checks: dict[str, float]) -> dict[str, bool]:
    """Which of the measured watermark checks (`logo_ssim`, `bit_error_rate`) pass our thresholds."""
    out = {}
    if "logo_ssim" in checks:
        out["logo_ssim"] = checks["logo_ssim"] >= LOGO_SSIM_THRESHOLD
    if "bit_error_rate" in checks:
        out["bit_error_rate"] = checks["bit_error_rate"] <= BER_THRESHOLD
    return out
