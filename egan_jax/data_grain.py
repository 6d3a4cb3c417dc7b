"""Grain input pipelines for tfds datasets: lazy reads, shuffled per epoch, sharded per process.

The bundled datasets are small in-memory arrays and use `data.batch_at`. A tfds split can be far
larger than memory, so `"tfds:<name>"` training data goes through grain instead: a
`grain.MapDataset` over the record indices, shuffled with a fresh permutation every epoch
(`.seed(seed).shuffle().repeat()`), sharded by taking every `process_count`-th element of that
stream from `process_index` on, mapped through a decoder that reads one record from the
`tfds.data_source` and converts it, and batched. Each dataset is random access, so a batch is a
pure function of (seed, step, process): a resumed run reads exactly the batches an uninterrupted
run reads, with no iterator state to checkpoint, and only the records of this process's batch are
read from disk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from egan_jax.data import process_share, resize_and_convert, tfds_records, to_float
from egan_jax.errors import DataError

Decode = Callable[[Mapping[str, Any]], Any]
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
    source, *, count: int, decode: Decode, batch_size: int, seed: int
) -> Callable[[int, int, int], Any]:
    """``batches(step, process_index, process_count)``: this process's decoded batch ``step``.

    Process p's batches are consecutive groups of `batch_size // process_count` elements of the
    shard ``record_stream(count, seed)[p::process_count]``, so the processes' batches of one step
    together are `batch_size` consecutive elements of the global stream (a partition: no record
    read twice, none skipped).
    """
    cache: dict[tuple[int, int], Any] = {}

    def batches(step: int, process_index: int, process_count: int):
        per_process = process_share(batch_size, process_index, process_count)
        if step < 0:
            raise DataError(f"step={step} must be >= 0.")
        key = (process_index, process_count)
        if key not in cache:
            shard = record_stream(count, seed)[process_index::process_count]
            cache[key] = shard.map(lambda index: decode(source[int(index)])).batch(per_process)
        return cache[key][step]

    return batches


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
        image = np.asarray(record[image_key])
        image = image[..., None] if image.ndim == 2 else image
        if image.dtype != np.uint8 or image.ndim != 3:
            raise DataError(
                f"tfds feature {image_key!r} of {name!r} is {image.dtype} {image.shape}; "
                "expected uint8 images [H, W, C]."
            )
        return to_float(resize_and_convert(image[None], image_size, channels)[0])

    stream = sharded_batches(source, count=count, decode=decode, batch_size=batch_size, seed=seed)
    return lambda step, process_index, process_count: {
        "images": stream(step, process_index, process_count)
    }
