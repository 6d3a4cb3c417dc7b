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


def test_tfds_labeled_batches_and_the_classifier_family_read_through_grain():
    tfds = pytest.importorskip("tensorflow_datasets")
    from egan_jax.data import resize_and_convert, to_float
    from egan_jax.families import classifier

    with tfds.testing.mock_data(num_examples=10):
        batches = data_grain.tfds_labeled_batches(
            "mnist", split="train", image_size=16, channels=1, data_dir=None, batch_size=4, seed=2
        )
        batch = batches(3, 0, 1)
        source = tfds.data_source("mnist", split="train")
        stream = data_grain.record_stream(10, seed=2)
        records = [source[stream[i]] for i in range(12, 16)]  # global batch 3
        config = apply_overrides(
            classifier.default_config(),
            ["data.name=tfds:mnist", "data.image_size=16", "train.batch_size=4", "seed=2"],
        )
        family_batch = classifier.make_batches(config)(3, 0, 1)
    assert batch["images"].shape == (4, 16, 16, 1) and batch["labels"].dtype == np.int32
    np.testing.assert_array_equal(batch["labels"], [int(r["label"]) for r in records])
    expected = resize_and_convert(np.stack([np.asarray(r["image"]) for r in records]), 16, 1)
    np.testing.assert_array_equal(batch["images"], to_float(expected))
    for name in ("images", "labels"):  # the family uses the same pipeline
        np.testing.assert_array_equal(family_batch[name], batch[name])


class _SRSource:
    """Stands in for tfds.data_source of div2k: hr is lr nearest-upsampled ×4 (aligned crops show)."""

    def __init__(self, count: int, scale: int = 4, mismatch: bool = False):
        rng = np.random.default_rng(0)
        self.items = []
        for i in range(count):
            lr = rng.integers(0, 256, size=(9 + i, 11, 3), dtype=np.uint8)
            hr = np.repeat(np.repeat(lr, scale, axis=0), scale + int(mismatch), axis=1)
            self.items.append({"hr": hr, "lr": lr})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def test_tfds_sr_batches_crop_aligned_pairs_independent_of_the_process_count(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(tfds, "data_source", lambda *a, **k: _SRSource(5))

    def make():
        return data_grain.tfds_sr_batches(
            "div2k/bicubic_x4", split="train", scale=4, hr_size=32, data_dir=None,
            batch_size=4, seed=1,
        )  # fmt: skip

    batches = make()
    whole = batches(2, 0, 1)
    assert whole["lr"].shape == (4, 8, 8, 3) and whole["hr"].shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(whole["hr"][:, ::4, ::4], whole["lr"])  # aligned
    # the same elements and crops over two processes: process p takes global elements p, p+2, ...
    for p in range(2):
        half = batches(2, p, 2)
        for name in ("lr", "hr"):
            np.testing.assert_array_equal(half[name], whole[name][p::2])
    np.testing.assert_array_equal(make()(2, 0, 1)["hr"], whole["hr"])  # a resumed run: same
    assert not np.array_equal(batches(3, 0, 1)["hr"], whole["hr"])
    crops = {batches(s, 0, 1)["lr"][0, 0, 0].tobytes() for s in range(10)}
    assert len(crops) > 3  # crop positions vary from element to element
    monkeypatch.setattr(tfds, "data_source", lambda *a, **k: _SRSource(2, mismatch=True))
    with pytest.raises(DataError, match="scale"):
        make()(0, 0, 1)
    monkeypatch.setattr(tfds, "data_source", lambda *a, **k: _SRSource(2))
    with pytest.raises(DataError, match="smaller than the crop"):
        data_grain.tfds_sr_batches(
            "div2k/bicubic_x4", split="train", scale=4, hr_size=64, data_dir=None,
            batch_size=2, seed=0,
        )(0, 0, 1)  # fmt: skip
    with pytest.raises(DataError, match="multiple of scale"):
        data_grain.tfds_sr_batches(
            "div2k/bicubic_x4", split="train", scale=4, hr_size=30, data_dir=None,
            batch_size=2, seed=0,
        )  # fmt: skip


def test_tfds_unpaired_batches_two_independent_domain_streams():
    tfds = pytest.importorskip("tensorflow_datasets")
    from egan_jax.data_paired import load_unpaired

    with tfds.testing.mock_data(num_examples=6):
        batches = data_grain.tfds_unpaired_batches(
            "cycle_gan/horse2zebra", split="test", image_size=16, channels=3, data_dir=None,
            batch_size=2, seed=0,
        )  # fmt: skip
        batch = batches(1, 0, 1)
        a, b = load_unpaired("tfds:cycle_gan/horse2zebra", split="test", image_size=16)
        with pytest.raises(DataError, match="split"):
            data_grain.tfds_unpaired_batches(
                "cycle_gan/horse2zebra", split="validation", image_size=16, channels=3,
                data_dir=None, batch_size=2, seed=0,
            )  # fmt: skip
    assert batch["a"].shape == (2, 16, 16, 3) and batch["b"].shape == (2, 16, 16, 3)
    stream_a = data_grain.record_stream(6, seed=0)
    stream_b = data_grain.record_stream(6, seed=2**31)
    # the same preprocessing as the in-memory loader; B's stream is independent of A's
    np.testing.assert_array_equal(batch["a"], to_float_u8(a[[stream_a[2], stream_a[3]]]))
    np.testing.assert_array_equal(batch["b"], to_float_u8(b[[stream_b[2], stream_b[3]]]))
    assert [stream_a[i] for i in range(6)] != [stream_b[i] for i in range(6)]


def to_float_u8(images):
    from egan_jax.data import to_float

    return to_float(images)


def test_the_srgan_family_reads_tfds_through_grain(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from egan_jax.families import srgan

    monkeypatch.setattr(tfds, "data_source", lambda *a, **k: _SRSource(5))
    config = apply_overrides(
        srgan.default_config(),
        ["data.name=tfds:div2k/bicubic_x4", "data.image_size=32", "train.batch_size=4",
         "loss.pretrain_steps=2", "seed=1"],
    )  # fmt: skip
    batches = srgan.make_batches(config)
    expected = data_grain.tfds_sr_batches(
        "div2k/bicubic_x4", split=config.data.split, scale=4, hr_size=32, data_dir=None,
        batch_size=4, seed=1,
    )  # fmt: skip
    for step in (1, 2):
        batch = batches(step, 0, 1)
        for name in ("lr", "hr"):
            np.testing.assert_array_equal(batch[name], expected(step, 0, 1)[name])
        assert ("adversarial" in batch) == (step >= 2)


def test_the_cyclegan_family_reads_tfds_through_grain():
    tfds = pytest.importorskip("tensorflow_datasets")
    from egan_jax.families import cyclegan

    config = apply_overrides(
        cyclegan.default_config(),
        ["data.name=tfds:cycle_gan/horse2zebra", "data.image_size=32", "train.batch_size=2"],
    )
    with tfds.testing.mock_data(num_examples=4):
        batch = cyclegan.make_batches(config)(3, 0, 1)
        expected = data_grain.tfds_unpaired_batches(
            "cycle_gan/horse2zebra", split=config.data.split, image_size=32,
            channels=config.data.channels, data_dir=None, batch_size=2, seed=config.seed,
        )(3, 0, 1)  # fmt: skip
    for name in ("a", "b"):
        assert batch[name].shape == (2, 32, 32, config.data.channels)
        np.testing.assert_array_equal(batch[name], expected[name])
