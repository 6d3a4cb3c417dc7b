"""Tests for egan_jax/data.py."""

import sys

import numpy as np
import pytest

from egan_jax import data
from egan_jax.errors import DataError, ShapeError


@pytest.fixture(scope="module")
def digits():
    return data.load_images("digits", image_size=16, channels=1)


def test_digits_splits_shapes_and_disjointness():
    train = data.load_images("digits", split="train", image_size=8, channels=1)
    test = data.load_images("digits", split="test", image_size=8, channels=1)
    everything = data.load_images("digits", split="all", image_size=8, channels=1)
    assert train.shape == (1617, 8, 8, 1) and test.shape == (180, 8, 8, 1)
    assert train.dtype == np.uint8 and everything.shape == (1797, 8, 8, 1)
    assert train.max() == 255 and train.min() == 0
    # At native size the images are the originals ×255/16: the splits partition "all".
    rows = lambda a: {r.tobytes() for r in a.reshape(len(a), -1)}
    assert rows(train) | rows(test) == rows(everything)
    labels = data.load_digits_labels("test")
    assert labels.shape == (180,) and set(labels) == set(range(10))


def test_digits_resize_and_channels(digits):
    rgb = data.load_images("digits", image_size=32, channels=3)
    assert digits.shape == (1617, 16, 16, 1) and rgb.shape == (1617, 32, 32, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    assert rgb.std() > 20  # real content, not a constant


def test_unknown_dataset_and_split_raise_data_error():
    with pytest.raises(DataError, match="unknown dataset"):
        data.load_images("mnist", image_size=8, channels=1)
    with pytest.raises(DataError, match="no split"):
        data.load_images("digits", split="validation", image_size=8, channels=1)


def test_to_float_to_uint8_roundtrip():
    values = np.arange(256, dtype=np.uint8)
    floats = data.to_float(values)
    assert floats.dtype == np.float32 and floats.min() == -1.0 and floats.max() == 1.0
    np.testing.assert_array_equal(data.to_uint8(floats), values)
    np.testing.assert_array_equal(data.to_uint8(np.array([-3.0, 3.0])), [0, 255])
    with pytest.raises(ShapeError):
        data.to_float(floats)


def test_batch_at_is_deterministic_and_seed_dependent(digits):
    a = data.batch_at(digits, 7, batch_size=16, seed=3)
    b = data.batch_at(digits, 7, batch_size=16, seed=3)
    c = data.batch_at(digits, 7, batch_size=16, seed=4)
    d = data.batch_at(digits, 8, batch_size=16, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert a.shape == (16, 16, 16, 1) and a.dtype == np.float32
    assert a.min() >= -1.0 and a.max() <= 1.0


@pytest.mark.parametrize("n, batch_size", [(50, 10), (37, 8), (5, 16)])
def test_every_index_once_per_epoch(n, batch_size):
    steps = 3 * n // batch_size + 2
    stream = np.concatenate(
        [data.batch_indices(n, s, batch_size=batch_size, seed=11) for s in range(steps)]
    )
    for epoch in range(len(stream) // n):
        assert sorted(stream[epoch * n : (epoch + 1) * n]) == list(range(n))
    assert not np.array_equal(stream[:n], stream[n : 2 * n])  # epochs are reshuffled


def test_process_slices_partition_the_global_batch(digits):
    whole = data.batch_at(digits, 4, batch_size=16, seed=1)
    parts = [
        data.batch_at(digits, 4, batch_size=16, seed=1, process_index=p, process_count=4)
        for p in range(4)
    ]
    assert all(p.shape == (4, 16, 16, 1) for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_batch_at_rejects_bad_arguments(digits):
    with pytest.raises(DataError, match="split evenly"):
        data.batch_at(digits, 0, batch_size=10, seed=0, process_count=4)
    with pytest.raises(DataError, match="process_index"):
        data.batch_at(digits, 0, batch_size=8, seed=0, process_index=2, process_count=2)
    with pytest.raises(ShapeError):
        data.batch_at(data.to_float(digits), 0, batch_size=8, seed=0)


def test_tfds_missing_package_raises_data_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(DataError, match=r"pip install -e '\.\[tfds\]'"):
        data.load_images("tfds:mnist", image_size=8, channels=1)


def test_tfds_mock_mnist_and_cifar10():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        mnist = data.load_images("tfds:mnist", image_size=32, channels=3)
        cifar = data.load_images("tfds:cifar10", split="test", image_size=16, channels=1)
        limited = data.load_images("tfds:cifar10", image_size=32, channels=3, limit=4)
    assert mnist.shape == (6, 32, 32, 3) and mnist.dtype == np.uint8
    np.testing.assert_array_equal(mnist[..., 0], mnist[..., 1])
    assert cifar.shape == (6, 16, 16, 1)
    assert limited.shape == (4, 32, 32, 3)


def test_tfds_wrong_image_key_lists_features():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(DataError, match="label"):
            data.load_images("tfds:mnist", image_size=8, channels=1, image_key="picture")


def test_tfds_not_prepared_says_how_to_prepare(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match="tfds build mnist --file_format=array_record") as info:
        data.load_images("tfds:mnist", image_size=8, channels=1, data_dir=str(tmp_path))
    assert str(tmp_path) in str(info.value)
    with pytest.raises(DataError, match="no dataset named"):
        data.load_images("tfds:no_such_dataset_xyz", image_size=8, channels=1)


def test_tfds_variable_size_images_are_resized_one_by_one():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=3):
        hr = data.load_images("tfds:div2k/bicubic_x4", image_size=24, channels=3, image_key="hr")
    assert hr.shape == (3, 24, 24, 3) and hr.dtype == np.uint8
