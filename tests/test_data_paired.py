"""Paired SR data (bundled photos, tfds div2k) and unpaired domains (grass2gravel, tfds cycle_gan)."""

import sys

import numpy as np
import pytest

from egan_jax import data_paired as dp
from egan_jax.data import to_float
from egan_jax.errors import DataError


@pytest.fixture(scope="module")
def photos():
    return dp.load_sr_photos("photos", split="train", scale=4)


def test_photos_train_and_test_are_whole_aligned_distinct_photos(photos):
    test = dp.load_sr_photos("photos", split="test", scale=4)
    assert len(photos.hr) == len(dp.SR_TRAIN_PHOTOS) and len(test.hr) == len(dp.SR_TEST_PHOTOS)
    for hr, lr in zip([*photos.hr, *test.hr], [*photos.lr, *test.lr], strict=True):
        assert hr.dtype == lr.dtype == np.uint8 and hr.shape[-1] == lr.shape[-1] == 3
        assert hr.shape[:2] == (4 * lr.shape[0], 4 * lr.shape[1])
        assert min(hr.shape[:2]) >= 256  # whole photos, not crops
    train_means = {round(float(hr.mean()), 3) for hr in photos.hr}
    assert not train_means & {round(float(hr.mean()), 3) for hr in test.hr}


def test_lr_is_bicubic_downscale_of_hr(photos):
    hr, lr = photos.hr[0], photos.lr[0]
    # An independent check of the LR: a 4×4 box average is close to PIL's antialiased bicubic.
    box = hr.reshape(hr.shape[0] // 4, 4, hr.shape[1] // 4, 4, 3).mean(axis=(1, 3))
    assert np.mean(np.abs(box - lr.astype(float))) < 6.0
    np.testing.assert_array_equal(lr, dp.bicubic_downscale(hr, 4))


def test_sr_pairs_tile_the_held_out_photos_aligned():
    lr, hr = dp.load_sr_pairs("photos", split="test", hr_size=96, scale=4)
    test = dp.load_sr_photos("photos", split="test", scale=4)
    want = sum((h.shape[0] // 96) * (h.shape[1] // 96) for h in test.hr)
    assert hr.shape == (want, 96, 96, 3) and lr.shape == (want, 24, 24, 3)
    np.testing.assert_array_equal(hr[0], test.hr[0][:96, :96])
    np.testing.assert_array_equal(lr[1], test.lr[0][:24, 24:48])


def test_sr_batch_at_is_a_pure_function_of_seed_and_step(photos):
    kw = dict(batch_size=4, seed=7, hr_size=32)
    lr, hr = dp.sr_batch_at(photos, 3, **kw)
    again = dp.sr_batch_at(photos, 3, **kw)
    other_step = dp.sr_batch_at(photos, 4, **kw)
    other_seed = dp.sr_batch_at(photos, 3, **{**kw, "seed": 8})
    assert lr.shape == (4, 8, 8, 3) and hr.shape == (4, 32, 32, 3) and hr.dtype == np.float32
    assert hr.min() >= -1 and hr.max() <= 1
    np.testing.assert_array_equal(hr, again[1])
    np.testing.assert_array_equal(lr, again[0])
    assert not np.array_equal(hr, other_step[1]) and not np.array_equal(hr, other_seed[1])
    # each LR crop is the bicubic LR of its HR crop's window of the whole photo (aligned)
    for i in range(4):
        box = hr[i].reshape(8, 4, 8, 4, 3).mean(axis=(1, 3))
        assert np.mean(np.abs(box - lr[i])) < 0.06


def test_sr_process_slices_partition_the_global_batch(photos):
    kw = dict(batch_size=4, seed=1, hr_size=16)
    whole = dp.sr_batch_at(photos, 5, **kw)
    parts = [dp.sr_batch_at(photos, 5, process_index=p, process_count=2, **kw) for p in (0, 1)]
    np.testing.assert_array_equal(whole[1], np.concatenate([p[1] for p in parts]))
    with pytest.raises(DataError, match="split evenly"):
        dp.sr_batch_at(photos, 0, batch_size=3, seed=0, process_count=2)


def test_sr_bad_arguments_raise(photos):
    with pytest.raises(DataError, match="multiple of scale"):
        dp.sr_batch_at(photos, 0, batch_size=2, seed=0, hr_size=30)
    with pytest.raises(DataError, match="unknown SR dataset"):
        dp.load_sr_photos("nope")
    with pytest.raises(DataError, match="no split"):
        dp.load_sr_photos("photos", split="validation")


def test_grass2gravel_domains_and_disjoint_splits():
    a, b = dp.load_unpaired("grass2gravel", split="train", image_size=32)
    ta, tb = dp.load_unpaired("grass2gravel", split="test", image_size=32, channels=1)
    assert a.dtype == np.uint8 and a.shape[1:] == (32, 32, 3) and b.shape == a.shape
    assert ta.shape[1:] == (32, 32, 1) and len(ta) == len(tb) > 0
    np.testing.assert_array_equal(a[..., 0], a[..., 2])  # grey replicated
    # the two textures differ in local statistics: mean absolute horizontal gradient
    grad = lambda x: np.mean(np.abs(np.diff(x.astype(float), axis=2)))
    assert abs(grad(a) - grad(b)) > 0.1 * min(grad(a), grad(b))
    # test crops come from columns the train crops never touch
    train_pixels = {tuple(c[0, :8, 0]) for c in a}
    assert not train_pixels & {tuple(c[0, :8, 0]) for c in ta}


def test_unpaired_batch_at_is_deterministic_and_domains_independent():
    a, b = dp.load_unpaired("grass2gravel", split="test", image_size=32)
    kw = dict(batch_size=4, seed=3)
    first = dp.unpaired_batch_at(a, b, 2, **kw)
    again = dp.unpaired_batch_at(a, b, 2, **kw)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    same = dp.unpaired_batch_at(a, a, 2, **kw)  # same images in both slots: orders must differ
    assert not np.array_equal(same[0], same[1])
    assert first[0].dtype == np.float32 and first[0].shape == (4, 32, 32, 3)
    parts = [dp.unpaired_batch_at(a, b, 2, process_index=p, process_count=2, **kw) for p in (0, 1)]
    np.testing.assert_array_equal(first[1], np.concatenate([p[1] for p in parts]))


def test_unpaired_errors():
    with pytest.raises(DataError, match="unknown unpaired dataset"):
        dp.load_unpaired("horse2zebra")
    with pytest.raises(DataError, match="image_size <= 64"):
        dp.load_unpaired("grass2gravel", split="test", image_size=96)


class _FakeSource:
    """Stands in for tfds.data_source: consistent hr/lr pairs (tfds mock data draws them apart)."""

    def __init__(self, count, scale):
        rng = np.random.default_rng(0)
        self.items = []
        for i in range(count):
            lr = rng.integers(0, 256, size=(10 + i, 12, 3), dtype=np.uint8)
            hr = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
            self.items.append({"hr": hr, "lr": lr})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_tfds_sr_reads_hr_lr_lazily(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(tfds, "data_source", lambda *a, **k: _FakeSource(3, 4))
    photos = dp.load_sr_photos("tfds:div2k/bicubic_x4", split="train", scale=4, limit=2)
    assert len(photos.hr) == 2 and photos.hr[1].shape == (44, 48, 3)
    lr, hr = dp.sr_batch_at(photos, 0, batch_size=2, seed=0, hr_size=32)
    np.testing.assert_array_equal(hr[:, ::4, ::4], lr)  # nearest-upsampled fake: aligned crops
    tiles = dp.load_sr_pairs("tfds:div2k/bicubic_x4", split="train", hr_size=16, scale=4)
    assert tiles[1].shape[1:] == (16, 16, 3)
    np.testing.assert_array_equal(to_float(tiles[1][:, ::4, ::4]), to_float(tiles[0]))


def test_tfds_mock_div2k_scale_mismatch_and_cycle_gan_splits():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=3):
        # tfds mock data draws hr and lr shapes independently: the consistency check must catch it
        with pytest.raises(DataError, match="scale"):
            dp.load_sr_photos("tfds:div2k/bicubic_x4", split="train", scale=4)
        a, b = dp.load_unpaired("tfds:cycle_gan/horse2zebra", split="test", image_size=32)
    assert a.shape == (3, 32, 32, 3) and b.shape == (3, 32, 32, 3)


def test_tfds_missing_or_unprepared(monkeypatch, tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match="tfds build div2k/bicubic_x4 --file_format=array_record"):
        dp.load_sr_photos("tfds:div2k/bicubic_x4", data_dir=str(tmp_path))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(DataError, match="pip install"):
        dp.load_sr_photos("tfds:div2k/bicubic_x4")
