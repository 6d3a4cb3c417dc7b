"""Tests for egan_jax/data_grain.py (grain pipelines over tfds sources; mock data for tfds)."""

import numpy as np
import pytest

from egan_jax import data_grain
from egan_jax.config import apply_overrides
from egan_jax.errors import DataError

pytest.importorskip("grain")


def test_record_stream_is_a_fresh_permutation_every_epoch_and_pure_in_seed():
    count = 12
    stream = data_grain.record_stream(count, seed=5)
    epochs = [[stream[e * count + i] for i in range(count)] for e in range(3)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(count))
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]
    again = data_grain.record_stream(count, seed=5)
    assert [again[i] for i in range(3 * count)] == sum(epochs, [])
    other = data_grain.record_stream(count, seed=6)
    assert [other[i] for i in range(count)] != epochs[0]
    with pytest.raises(DataError, match="count >= 1"):
        data_grain.record_stream(0, seed=1)


def test_process_batches_partition_each_global_batch():
    count, batch_size = 10, 4
    source = [{"index": i} for i in range(count)]
    batches = data_grain.sharded_batches(
        source, count=count, decode=lambda record: record["index"], batch_size=batch_size, seed=3
    )
    stream = data_grain.record_stream(count, seed=3)
    read = []
    for step in range(5):  # two epochs: every record read exactly twice
        parts = [np.asarray(batches(step, p, 2)) for p in range(2)]
        assert all(part.shape == (2,) for part in parts)
        global_batch = [stream[i] for i in range(step * batch_size, (step + 1) * batch_size)]
        assert sorted(np.concatenate(parts).tolist()) == sorted(global_batch)
        read.extend(np.concatenate(parts).tolist())
    assert sorted(read) == sorted(list(range(count)) * 2)
    # pure in step: a fresh pipeline (a resumed run) reads the same batch
    fresh = data_grain.sharded_batches(
        source, count=count, decode=lambda record: record["index"], batch_size=batch_size, seed=3
    )
    np.testing.assert_array_equal(fresh(3, 1, 2), batches(3, 1, 2))
    with pytest.raises(DataError, match="split evenly"):
        batches(0, 0, 3)


def test_tfds_image_batches_and_the_dcgan_family_read_through_grain():
    tfds = pytest.importorskip("tensorflow_datasets")
    from egan_jax.families import dcgan

    with tfds.testing.mock_data(num_examples=10):
        batches = data_grain.tfds_image_batches(
            "mnist",
            split="train",
            image_size=16,
            channels=3,
            data_dir=None,
            batch_size=4,
            seed=0,
        )
        first = batches(2, 0, 1)["images"]
        again = batches(2, 0, 1)["images"]
        config = apply_overrides(
            dcgan.default_config(),
            ["data.name=tfds:mnist", "data.image_size=16", "data.channels=3", "train.batch_size=4"],
        )
        family_batch = dcgan.make_batches(config)(2, 0, 1)["images"]
    assert first.shape == (4, 16, 16, 3) and first.dtype == np.float32
    assert -1.0 <= first.min() and first.max() <= 1.0
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(family_batch, first)  # the family uses the same pipeline
