"""The offline SR photo set's extended training split (`data_paired.SR_EXTRA_PHOTOS`)."""

import numpy as np

from egan_jax import data_paired as dp


def test_train_extended_adds_real_photos_disjoint_from_the_test_photos():
    assert not set(dp.SR_EXTRA_PHOTOS) & (set(dp.SR_TRAIN_PHOTOS) | set(dp.SR_TEST_PHOTOS))
    extended = dp.load_sr_photos("photos", split="train_extended", scale=4)
    train = dp.load_sr_photos("photos", split="train", scale=4, limit=2)
    test = dp.load_sr_photos("photos", split="test", scale=4)
    assert len(extended.hr) == len(dp.SR_TRAIN_PHOTOS) + len(dp.SR_EXTRA_PHOTOS)
    for hr, lr in zip(extended.hr, extended.lr, strict=True):
        assert hr.dtype == lr.dtype == np.uint8 and hr.shape[-1] == 3
        assert hr.shape[:2] == (4 * lr.shape[0], 4 * lr.shape[1]) and min(hr.shape[:2]) >= 160
    for a, b in zip(train.hr, extended.hr, strict=False):  # the plain split comes first
        np.testing.assert_array_equal(a, b)
    test_means = {round(float(hr.mean()), 3) for hr in test.hr}
    assert not test_means & {round(float(hr.mean()), 3) for hr in extended.hr}


def test_grey_photos_are_replicated_to_rgb_and_the_right_stereo_view_differs():
    camera = dp._bundled_photo("camera")
    assert camera.shape == (512, 512, 3)
    np.testing.assert_array_equal(camera[..., 0], camera[..., 2])
    left, right = (
        dp._bundled_photo("stereo_motorcycle"),
        dp._bundled_photo("stereo_motorcycle:right"),
    )
    assert left.shape == right.shape and not np.array_equal(left, right)
