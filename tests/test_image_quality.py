"""PSNR/SSIM on the Y channel against scikit-image, input ranges, bicubic floor, cycle PSNR."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from egan_jax import image_quality as iq
from egan_jax.data import to_float
from egan_jax.errors import ShapeError


def _pair(seed=0, shape=(3, 40, 48, 3)):
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, size=(shape[0], shape[1] // 4, shape[2] // 4, 3), dtype=np.uint8)
    target = iq.bicubic_upscale(smooth, 4)
    noise = rng.normal(0, 12, size=target.shape)
    prediction = np.clip(np.rint(target + noise), 0, 255).astype(np.uint8)
    return prediction, target


def _skimage_y(images, border):
    y = iq.rgb_to_y(images)
    return y[:, border:-border, border:-border]


def test_psnr_and_ssim_match_skimage_on_cropped_y():
    prediction, target = _pair()
    p_y, t_y = _skimage_y(prediction, 4), _skimage_y(target, 4)
    want_psnr = [
        peak_signal_noise_ratio(t, p, data_range=255) for p, t in zip(p_y, t_y, strict=True)
    ]
    want_ssim = [
        structural_similarity(
            t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        for p, t in zip(p_y, t_y, strict=True)
    ]
    np.testing.assert_allclose(iq.psnr_y(prediction, target), want_psnr, rtol=1e-10)
    np.testing.assert_allclose(iq.ssim_y(prediction, target), want_ssim, rtol=1e-8)
    assert 0.1 < np.mean(want_ssim) < 0.99  # a discriminating case, not a trivial one


def test_y_channel_matches_bt601_formula():
    pixel = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]]], np.uint8)
    np.testing.assert_allclose(
        iq.rgb_to_y(pixel)[0, 0], [16 + 65.481, 16 + 128.553, 16 + 24.966, 235.0], atol=1e-9
    )


def test_float_inputs_in_minus_one_one_give_the_uint8_scores():
    prediction, target = _pair(seed=1)
    np.testing.assert_allclose(
        iq.psnr_y(to_float(prediction), to_float(target)), iq.psnr_y(prediction, target), rtol=1e-5
    )
    np.testing.assert_allclose(
        iq.ssim_y(to_float(prediction), to_float(target)), iq.ssim_y(prediction, target), rtol=1e-5
    )


def test_border_is_excluded():
    prediction, target = _pair(seed=2)
    target = target.copy()
    target[:, :4] = 255 - prediction[:, :4]  # damage only the 4-px top border
    cropped = iq.psnr_y(prediction, target, border=4)
    uncropped = iq.psnr_y(prediction, target, border=0)
    undamaged = iq.psnr_y(prediction, _pair(seed=2)[1], border=4)
    np.testing.assert_allclose(cropped, undamaged)
    assert np.all(uncropped < cropped - 3)


def test_identical_images_score_perfectly():
    _, target = _pair(seed=3)
    assert np.all(np.isinf(iq.psnr_y(target, target)))
    np.testing.assert_allclose(iq.ssim_y(target, target), 1.0)


def test_bicubic_upscale_shapes_dtypes_and_cycle_psnr():
    rng = np.random.default_rng(4)
    small = rng.integers(0, 256, size=(2, 6, 5, 3), dtype=np.uint8)
    big = iq.bicubic_upscale(small, 4)
    assert big.shape == (2, 24, 20, 3) and big.dtype == np.uint8
    big_float = iq.bicubic_upscale(to_float(small), 4)
    assert big_float.dtype == np.float32
    np.testing.assert_allclose(big_float, to_float(big), atol=1e-6)
    noisy = np.clip(big.astype(int) + 10, 0, 255).astype(np.uint8)
    mse = np.mean((noisy.astype(float) - big) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(iq.cycle_psnr(big, noisy), 10 * np.log10(255**2 / mse))


def test_bad_shapes_raise():
    with pytest.raises(ShapeError, match="equal shape"):
        iq.psnr_y(np.zeros((1, 32, 32, 3), np.uint8), np.zeros((1, 32, 31, 3), np.uint8))
    with pytest.raises(ShapeError, match="at least 11"):
        iq.ssim_y(np.zeros((1, 16, 16, 3), np.uint8), np.zeros((1, 16, 16, 3), np.uint8))
