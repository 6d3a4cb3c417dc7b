"""Grain input pipelines for tfds datasets: lazy reads, shuffled per epoch, sharded per process.

The bundled datasets are small in-memory arrays and use `data.batch_at`. A tfds split can be far
larger than memory, so `"tfds:<name>"` training data goes through grain instead: a
`grain.MapDataset` over the record indices, shuffled with a fresh permutation every epoch
(`.seed(seed).shuffle().repeat()`), mapped through a decoder that reads one record from the
`tfds.data_source` and converts it (a random decoder — a crop — gets grain's per-element
generator, seeded by the pipeline seed and the element's position in the global stream), sharded
by taking every `process_count`-th element of that stream from `process_index` on, and batched.
Each dataset is random access, so a batch is a pure function of (seed, step, process): a resumed
run reads exactly the batches an uninterrupted run reads, with no iterator state to checkpoint,
and only the records of this process's batch are read from disk. A global element (its record and
its crop) does not depend on the process count.

Readers: `tfds_image_batches` (DCGAN / EGAN-DCGAN), `tfds_labeled_batches` (classifiers, EncryIP),
`tfds_sr_batches` (SRGAN: random aligned HR/LR crops, e.g. div2k/bicubic_x4) and
`tfds_unpaired_batches` (CycleGAN: two independent streams over trainA and trainB).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image

from egan_jax.data import process_share, resize_and_convert, tfds_records, to_float
from egan_jax.errors import DataError

Decode = Callable[[Mapping[str, Any]], Any]
RandomDecode = Callable[[Mapping[str, Any], np.random.Generator], Any]
BatchFn = Callable[[int, int, int], dict[str, np.ndarray]]


def _grain():
    try:
        import grain
    except ImportError as error:
        raise DataError(
            "tfds training data is read through grain: pip install -e '.[tfds]' (grain>=0.2.18)."
        ) from error
    return grain


def record_stream(count: int, seed: int):
    """The endless stream of record indices: epoch e is a grain permutation of range(count)."""
    if count < 1 or seed < 0:
        raise DataError(f"need count >= 1 and seed >= 0, got count={count}, seed={seed}.")
    return _grain().MapDataset.range(count).seed(seed).shuffle().repeat(None)


def sharded_batches(
    source,
    *,
    count: int,
    decode: Decode | RandomDecode,
    batch_size: int,
    seed: int,
    random: bool = False,
) -> Callable[[int, int, int], Any]:
    """``batches(step, process_index, process_count)``: this process's decoded batch ``step``.

    Process p's batches are consecutive groups of `batch_size // process_count` elements of the
    shard ``stream[p::process_count]`` of the decoded global stream over
    ``record_stream(count, seed)``, so the processes' batches of one step together are
    `batch_size` consecutive elements of the global stream (a partition: no record read twice,
    none skipped). ``random=True``: ``decode(record, rng)`` with grain's per-element generator.
    """
    stream = record_stream(count, seed)
    if random:
        stream = stream.random_map(lambda index, rng: decode(source[int(index)], rng))
    else:
        stream = stream.map(lambda index: decode(source[int(index)]))
    cache: dict[tuple[int, int], Any] = {}

    def batches(step: int, process_index: int, process_count: int):
        per_process = process_share(batch_size, process_index, process_count)
        if step < 0:
            raise DataError(f"step={step} must be >= 0.")
        key = (process_index, process_count)
        if key not in cache:
            cache[key] = stream[process_index::process_count].batch(per_process)
        return cache[key][step]

    return batches


def _uint8_image(record: Mapping[str, Any], key: str, name: str) -> np.ndarray:
    image = np.asarray(record[key])
    image = image[..., None] if image.ndim == 2 else image
    if image.dtype != np.uint8 or image.ndim != 3:
        raise DataError(
            f"tfds feature {key!r} of {name!r} is {image.dtype} {image.shape}; "
            "expected uint8 images [H, W, C]."
        )
    return image


def tfds_image_batches(
    name: str,
    *,
    split: str,
    image_size: int,
    channels: int,
    data_dir: str | None,
    batch_size: int,
    seed: int,
    image_key: str = "image",
    limit: int | None = None,
) -> BatchFn:
    """``batches(step, process_index, process_count) -> {"images": float32 [B/P, S, S, C]}`` over
    a prepared tfds split (the grain twin of `data.batch_at`, values in [-1, 1])."""
    source, count = tfds_records(name, split, data_dir, {"image_key": image_key}, limit)

    def decode(record: Mapping[str, Any]) -> np.ndarray:
        image = _uint8_image(record, image_key, name)
        return to_float(resize_and_convert(image[None], image_size, channels)[0])

    stream = sharded_batches(source, count=count, decode=decode, batch_size=batch_size, seed=seed)
    return lambda step, process_index, process_count: {
        "images": stream(step, process_index, process_count)
    }


def tfds_labeled_batches(
    name: str,
    *,
    split: str,
    image_size: int,
    channels: int,
    data_dir: str | None,
    batch_size: int,
    seed: int,
    image_key: str = "image",
    label_key: str = "label",
    limit: int | None = None,
) -> BatchFn:
    """``{"images": float32 [B/P, S, S, C] in [-1, 1], "labels": int32 [B/P]}`` per step over a
    prepared tfds split (the grain twin of `data_labeled.labeled_batch_at`)."""
    features = {"image_key": image_key, "label_key": label_key}
    source, count = tfds_records(name, split, data_dir, features, limit)

    def decode(record: Mapping[str, Any]) -> dict[str, np.ndarray]:
        image = _uint8_image(record, image_key, name)
        return {
            "images": to_float(resize_and_convert(image[None], image_size, channels)[0]),
            "labels": np.int32(record[label_key]),
        }

    return sharded_batches(source, count=count, decode=decode, batch_size=batch_size, seed=seed)


def tfds_sr_batches(
    name: str,
    *,
    split: str,
    scale: int,
    hr_size: int,
    data_dir: str | None,
    batch_size: int,
    seed: int,
    limit: int | None = None,
) -> BatchFn:
    """``{"lr": [B/P, h, h, C], "hr": [B/P, hr_size, hr_size, C]}`` float32 in [-1, 1] per step:
    one random aligned crop (h = hr_size / scale) of each record of the epoch-shuffled stream over
    a prepared tfds SR split with features ``hr`` and ``lr`` (e.g. div2k/bicubic_x4)."""
    if scale < 2 or hr_size < scale or hr_size % scale:
        raise DataError(f"hr_size={hr_size} must be a positive multiple of scale={scale} >= 2.")
    source, count = tfds_records(name, split, data_dir, {"hr": "hr", "lr": "lr"}, limit)
    lr_size = hr_size // scale

    def decode(record: Mapping[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
        hr, lr = _uint8_image(record, "hr", name), _uint8_image(record, "lr", name)
        height, width = lr.shape[:2]
        if hr.shape[:2] != (height * scale, width * scale):
            raise DataError(
                f"{name!r}: hr {hr.shape} is not lr {lr.shape} × scale={scale}; set scale to "
                "the dataset's factor (4 for div2k/bicubic_x4)."
            )
        if height < lr_size or width < lr_size:
            raise DataError(
                f"{name!r}: a record's LR size {height}×{width} is smaller than the crop "
                f"{lr_size} (hr_size={hr_size} / scale={scale}); use a smaller data.image_size."
            )
        top = int(rng.integers(0, height - lr_size + 1))
        left = int(rng.integers(0, width - lr_size + 1))
        return {
            "lr": to_float(lr[top : top + lr_size, left : left + lr_size]),
            "hr": to_float(
                hr[top * scale : (top + lr_size) * scale, left * scale : (left + lr_size) * scale]
            ),
        }

    return sharded_batches(
        source, count=count, decode=decode, batch_size=batch_size, seed=seed, random=True
    )


UNPAIRED_SPLITS = {"train": ("trainA", "trainB"), "test": ("testA", "testB")}


def resize_unpaired(image: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """One uint8 image [H, W, c] converted to ``channels`` then resized (PIL bilinear) to
    image_size² — the cycle_gan/* preprocessing, the same as `data_paired.load_unpaired`'s."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    pil = pil.convert("L" if channels == 1 else "RGB")
    pil = pil.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(pil).reshape(image_size, image_size, channels)


def tfds_unpaired_batches(
    name: str,
    *,
    split: str,
    image_size: int,
    channels: int,
    data_dir: str | None,
    batch_size: int,
    seed: int,
    limit: int | None = None,
) -> BatchFn:
    """``{"a": [B/P, S, S, C], "b": [B/P, S, S, C]}`` float32 in [-1, 1] per step over a prepared
    cycle_gan/* dataset: domain A from ``trainA`` (``testA``) with `seed`, domain B from
    ``trainB`` (``testB``) with an independent stream seed, so the pairing is random."""
    if split not in UNPAIRED_SPLITS:
        raise DataError(f"{name!r}: split {split!r} is unknown; use 'train' or 'test'.")
    if channels not in (1, 3):
        raise DataError(f"channels={channels} must be 1 or 3.")

    def decode(record: Mapping[str, Any]) -> np.ndarray:
        return to_float(resize_unpaired(_uint8_image(record, "image", name), image_size, channels))

    streams = []
    for part, part_seed in zip(UNPAIRED_SPLITS[split], (seed, (seed + 2**31) % 2**32), strict=True):
        source, count = tfds_records(name, part, data_dir, {"image_key": "image"}, limit)
        streams.append(
            sharded_batches(
                source, count=count, decode=decode, batch_size=batch_size, seed=part_seed
            )
        )
    a, b = streams
    return lambda step, process_index, process_count: {
        "a": a(step, process_index, process_count),
        "b": b(step, process_index, process_count),
    }
