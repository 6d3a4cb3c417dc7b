"""Labeled datasets: digits/lfw registry, stratified deterministic splits, tfds on mock data."""

from __future__ import annotations

import numpy as np
import pytest

from egan_jax import data
from egan_jax.data_labeled import (
    labeled_batch_at,
    load_labeled,
    num_classes,
)
from egan_jax.errors import DataError, ShapeError


def test_digits_matches_unlabeled_loader_and_labels():
    images, labels = load_labeled("digits", "test", image_size=32, channels=1)
    assert images.shape == (180, 32, 32, 1) and images.dtype == np.uint8
    assert labels.shape == (180,) and labels.dtype == np.int32
    same = data.load_images("digits", split="test", image_size=32, channels=1)
    np.testing.assert_array_equal(images, same)
    np.testing.assert_array_equal(labels, data.load_digits_labels("test"))
    assert set(np.unique(labels)) == set(range(10))


def test_digits_labels_follow_images():
    # the label of each 32×32 image is the label of the sklearn 8×8 digit it came from
    from sklearn.datasets import load_digits

    raw = load_digits()
    images, labels = load_labeled("digits", "all", image_size=8, channels=1)
    expected = np.rint(raw.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(labels, raw.target)


@pytest.mark.parametrize("size", [32, 24])
def test_lfw_split_is_stratified_disjoint_and_deterministic(size):
    train_x, train_y = load_labeled("lfw", "train", image_size=size, channels=1)
    test_x, test_y = load_labeled("lfw", "test", image_size=size, channels=1)
    assert train_x.shape == (160, size, size, 1) and test_x.shape == (40, size, size, 1)
    assert np.bincount(train_y).tolist() == [80, 80]
    assert np.bincount(test_y).tolist() == [20, 20]
    again_x, again_y = load_labeled("lfw", "test", image_size=size, channels=1)
    np.testing.assert_array_equal(again_x, test_x)
    np.testing.assert_array_equal(again_y, test_y)
    # no test image is also a train image
    flat_train = {img.tobytes() for img in train_x}
    assert not any(img.tobytes() in flat_train for img in test_x)


def test_lfw_labels_match_the_source_order():
    from skimage.data import lfw_subset

    images, labels = load_labeled("lfw", "all", image_size=25, channels=3)
    assert images.shape == (200, 25, 25, 3)
    np.testing.assert_array_equal(labels[:100], 1)  # faces first
    np.testing.assert_array_equal(labels[100:], 0)
    source = np.rint(lfw_subset() * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(images[..., 0], source)
    np.testing.assert_array_equal(images[..., 1], source)


def test_unknown_names_and_splits_raise_data_error():
    with pytest.raises(DataError, match="unknown labeled dataset"):
        load_labeled("cifar", image_size=32, channels=3)
    with pytest.raises(DataError, match="no split 'valid'"):
        load_labeled("lfw", "valid", image_size=32, channels=1)
    with pytest.raises(DataError, match="no split"):
        load_labeled("digits", "valid", image_size=32, channels=1)
    with pytest.raises(DataError, match="positive"):
        load_labeled("lfw", image_size=0, channels=1)


def test_num_classes():
    assert num_classes("digits") == 10
    assert num_classes("lfw") == 2
    assert num_classes("tfds:cifar10") == 10
    with pytest.raises(DataError):
        num_classes("nothing")


def test_labeled_batch_at_matches_batch_at_and_labels():
    images, labels = load_labeled("lfw", "train", image_size=24, channels=1)
    x, y = labeled_batch_at(images, labels, 7, batch_size=16, seed=3)
    np.testing.assert_array_equal(x, data.batch_at(images, 7, batch_size=16, seed=3))
    index = data.batch_indices(len(images), 7, batch_size=16, seed=3)
    np.testing.assert_array_equal(y, labels[index])
    assert x.dtype == np.float32 and y.dtype == np.int32
    with pytest.raises(ShapeError):
        labeled_batch_at(images, labels[:-1], 0, batch_size=4, seed=0)


@pytest.mark.parametrize("name", ["tfds:mnist", "tfds:cifar10", "tfds:fashion_mnist"])
def test_tfds_mock_data(name):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        images, labels = load_labeled(name, "train", image_size=16, channels=3)
        classes = num_classes(name)  # fashion_mnist: read from the tfds metadata
    assert classes == 10
    assert images.shape == (6, 16, 16, 3) and images.dtype == np.uint8
    assert labels.shape == (6,) and labels.dtype == np.int32
    assert np.all((labels >= 0) & (labels < classes))


def test_tfds_unprepared_dataset_gives_a_clear_error(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match="not prepared"):
        load_labeled("tfds:mnist", "train", image_size=32, channels=1, data_dir=str(tmp_path))


def test_tfds_missing_label_feature():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=2), pytest.raises(DataError, match="no feature"):
        load_labeled("tfds:mnist", "train", image_size=8, channels=1, label_key="target")
