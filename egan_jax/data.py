"""Datasets as uint8 arrays, and a stateless batch sampler.

`load_images(name, ...)` returns every image of a split as uint8 [N, H, W, C]; a registry maps the name
to a loader. `"digits"` (scikit-learn's 1,797 real 8×8 digits) is bundled and always works offline;
`"tfds:<name>"` reads a TensorFlow Datasets dataset already prepared on disk in array_record format,
through `tfds.data_source` (no TensorFlow needed to read).

`batch_at(images, step, ...)` is a pure function of (seed, step): resuming after a kill gives
bit-identical batches without saving any sampler state. It serves the in-memory arrays (the bundled
data, and every evaluation set). Unconditional GAN training on a tfds split reads through grain
instead (`egan_jax.data_grain`: lazy reads, per-epoch shuffle, per-process shards, batches), with
the same purity in (seed, step).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from PIL import Image

from egan_jax.errors import DataError, ShapeError

Loader = Callable[..., np.ndarray]

DIGITS_SPLIT_SEED = 20240513
DIGITS_TEST_FRACTION = 0.1


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [..] in 0..255 -> float32 in [-1, 1] (x / 127.5 − 1)."""
    if images.dtype != np.uint8:
        raise ShapeError(
            f"to_float expects uint8 images, got {images.dtype}; convert with to_uint8."
        )
    return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def to_uint8(images) -> np.ndarray:
    """float in [-1, 1] -> uint8 0..255, rounded to nearest and clipped (inverse of `to_float`)."""
    scaled = (np.asarray(images, dtype=np.float32) + 1.0) * 127.5
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def resize_and_convert(images: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """uint8 [N, h, w, c] -> uint8 [N, image_size, image_size, channels] (PIL bilinear, antialiased)."""
    n, height, width, have = images.shape
    if have not in (1, 3) or channels not in (1, 3):
        raise DataError(
            f"cannot convert {have}-channel images to {channels} channels; use channels=1 or 3."
        )
    if (height, width) != (image_size, image_size):
        mode = "L" if have == 1 else "RGB"
        out = np.empty((n, image_size, image_size, have), np.uint8)
        for i in range(n):
            pil = Image.fromarray(images[i, ..., 0] if have == 1 else images[i], mode)
            resized = np.asarray(pil.resize((image_size, image_size), Image.Resampling.BILINEAR))
            out[i] = resized.reshape(image_size, image_size, have)
        images = out
    if have == channels:
        return images
    if have == 1:
        return np.repeat(images, 3, axis=-1)
    # RGB -> luminance with ITU-R BT.601 weights, as PIL's convert("L").
    luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]


def _digits_split_indices(n: int, split: str) -> np.ndarray:
    order = np.random.Generator(np.random.Philox(DIGITS_SPLIT_SEED)).permutation(n)
    n_test = int(round(n * DIGITS_TEST_FRACTION))
    splits = {"train": order[n_test:], "test": order[:n_test], "all": np.arange(n)}
    if split not in splits:
        raise DataError(f"digits has no split {split!r}; use one of {sorted(splits)}.")
    return np.sort(splits[split])


def load_digits_labels(split: str = "train") -> np.ndarray:
    """The class labels (0–9, int32) of `load_images("digits", split=split, ...)`, same order."""
    from sklearn.datasets import load_digits

    target = load_digits().target
    return target[_digits_split_indices(len(target), split)].astype(np.int32)


def _load_digits(*, split: str, image_size: int, channels: int, data_dir: str | None) -> np.ndarray:
    """scikit-learn's digits: 1,797 real 8×8 images (values 0–16), scaled to 0–255 and resized.

    Splits: "test" is a fixed 10% holdout (180 images, chosen by a Philox permutation with seed
    DIGITS_SPLIT_SEED), "train" the other 90% (1,617), "all" every image. `data_dir` is unused.
    """
    from sklearn.datasets import load_digits

    raw = load_digits().images  # float64 [1797, 8, 8], 0..16
    indices = _digits_split_indices(len(raw), split)
    images = np.rint(raw[indices] * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return resize_and_convert(images, image_size, channels)


def tfds_prepare_hint(name: str, data_dir: str | None) -> str:
    where = data_dir or "~/tensorflow_datasets"
    flag = f" --data_dir={data_dir}" if data_dir else ""
    return (
        f"prepare it once on a machine with TensorFlow and a network: "
        f"`pip install tensorflow tensorflow-datasets && tfds build {name} "
        f"--file_format=array_record{flag}` (or in Python: tfds.builder({name!r}, "
        f"data_dir={data_dir!r}, file_format='array_record').download_and_prepare()), "
        f"then make {where} available here."
    )


def tfds_source(name: str, split: str, data_dir: str | None):
    """The random-access `tfds.data_source` of a prepared split; `DataError` saying how to prepare
    it when tensorflow-datasets is missing, the name is unknown or the data is not prepared."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DataError(
            f"dataset 'tfds:{name}' needs tensorflow-datasets: pip install -e '.[tfds]'"
        ) from error
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise DataError(
            f"tfds has no dataset named {name!r}; check the name with tfds.list_builders()."
        ) from error
    except Exception as error:  # tfds raises several types for "not prepared / wrong format"
        raise DataError(
            f"tfds dataset {name!r} (split {split!r}) is not prepared in array_record format "
            f"under {data_dir or '~/tensorflow_datasets'} ({type(error).__name__}: {error}); "
            + tfds_prepare_hint(name, data_dir)
        ) from error


def tfds_records(
    name: str, split: str, data_dir: str | None, features: Mapping[str, str], limit: int | None
):
    """A prepared split's source and how many records to read (at most ``limit``), checked to be
    non-empty and to have the ``features`` (argument name -> feature name, e.g. ``image_key``)."""
    source = tfds_source(name, split, data_dir)
    count = len(source) if limit is None else min(limit, len(source))
    if count == 0:
        raise DataError(f"tfds dataset {name!r} split {split!r} is empty.")
    first = source[0]
    missing = [feature for feature in features.values() if feature not in first]
    if missing:
        arguments = " / ".join(f"{argument}=" for argument in features)
        raise DataError(
            f"tfds dataset {name!r} has no feature(s) {missing}; its features are "
            f"{sorted(first)}; pass {arguments} naming them."
        )
    return source, count


def load_tfds(
    name: str,
    *,
    split: str,
    image_size: int,
    channels: int,
    data_dir: str | None,
    image_key: str = "image",
    limit: int | None = None,
) -> np.ndarray:
    """Every image of a prepared tfds split, via `tfds.data_source` (array_record, no TensorFlow)."""
    source, count = tfds_records(name, split, data_dir, {"image_key": image_key}, limit)
    images = []
    for i in range(count):
        image = np.asarray(source[i][image_key])
        image = image[..., None] if image.ndim == 2 else image
        if image.dtype != np.uint8 or image.ndim != 3:
            raise DataError(
                f"tfds feature {image_key!r} of {name!r} is {image.dtype} {image.shape}; "
                "expected uint8 images [H, W, C]."
            )
        images.append(image)
    if len({image.shape for image in images}) > 1:  # e.g. DIV2K: resize one by one
        images = [resize_and_convert(im[None], image_size, channels)[0] for im in images]
    return resize_and_convert(np.stack(images), image_size, channels)


LOADERS: dict[str, Loader] = {"digits": _load_digits}


def load_by_name(
    name: str,
    loaders: Mapping[str, Callable],
    from_tfds: Callable,
    *,
    kind: str,
    example: str,
    **kwargs,
):
    """``from_tfds(<tfds name>, **kwargs)`` for ``"tfds:<tfds name>"``, else
    ``loaders[name](**kwargs)``; `DataError` naming the choices (``kind``: what the caller loads,
    ``example``: a tfds name)."""
    if name.startswith("tfds:"):
        return from_tfds(name.removeprefix("tfds:"), **kwargs)
    if name not in loaders:
        raise DataError(
            f"unknown {kind} {name!r}; use one of {sorted(loaders)} or 'tfds:<name>' "
            f"(e.g. {example!r})."
        )
    return loaders[name](**kwargs)


def load_images(
    name: str,
    *,
    split: str = "train",
    image_size: int,
    channels: int,
    data_dir: str | None = None,
    **loader_kwargs,
) -> np.ndarray:
    """All images of a dataset split as uint8 [N, image_size, image_size, channels].

    Args:
      name: a key of `LOADERS` ("digits") or "tfds:<tfds name>" (e.g. "tfds:mnist",
        "tfds:cifar10"; extra `loader_kwargs` such as image_key="hr", limit=1000 go to `load_tfds`).
      split: the split name ("train"/"test"/"all" for digits; the tfds split string otherwise).
      image_size: output height and width (resized with PIL bilinear when different).
      channels: 1 or 3 (grey is replicated; RGB is converted to luminance).
      data_dir: where prepared tfds data lives (None: tfds's default).
    """
    if image_size < 1:
        raise DataError(f"image_size={image_size} must be positive.")
    return load_by_name(
        name,
        LOADERS,
        load_tfds,
        kind="dataset",
        example="tfds:mnist",
        split=split,
        image_size=image_size,
        channels=channels,
        data_dir=data_dir,
        **loader_kwargs,
    )


def _epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, epoch]))).permutation(
        n
    )


def process_share(batch_size: int, process_index: int, process_count: int) -> int:
    """How many examples of a global batch each process takes; `DataError` if it does not split."""
    if process_count < 1 or not 0 <= process_index < process_count or batch_size % process_count:
        raise DataError(
            f"batch_size={batch_size} must split evenly over process_count={process_count} and "
            f"0 <= process_index={process_index} < process_count."
        )
    return batch_size // process_count


def batch_indices(
    n: int, step: int, *, batch_size: int, seed: int, process_index: int = 0, process_count: int = 1
) -> np.ndarray:
    """Dataset indices of this process's slice of global batch `step` (see `batch_at`)."""
    if n < 1 or step < 0 or seed < 0 or batch_size < 1:
        raise DataError(
            f"need n>=1, step>=0, seed>=0, batch_size>=1; got n={n}, step={step}, seed={seed}, "
            f"batch_size={batch_size}."
        )
    per_process = process_share(batch_size, process_index, process_count)
    start = step * batch_size + process_index * per_process
    positions = np.arange(start, start + per_process, dtype=np.int64)
    epochs, offsets = np.divmod(positions, n)
    out = np.empty(per_process, np.int64)
    for epoch in np.unique(epochs):
        mask = epochs == epoch
        out[mask] = _epoch_permutation(seed, int(epoch), n)[offsets[mask]]
    return out


def batch_at(
    images: np.ndarray,
    step: int,
    *,
    batch_size: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
) -> np.ndarray:
    """This process's slice of global batch `step`: float32 [batch_size // process_count, H, W, C].

    The data is read as an endless stream of epochs, epoch e being a permutation of all N images
    drawn from Philox(SeedSequence([seed, e])); global batch s is stream positions
    [s·batch_size, (s+1)·batch_size), and process p takes the p-th equal slice of it. So the batch
    is a pure function of (seed, step), every image appears once per epoch, and the processes'
    slices partition the global batch. Values are `to_float(images)` in [-1, 1].
    """
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ShapeError(
            f"batch_at expects uint8 images [N, H, W, C], got {images.dtype} {images.shape}; "
            "load them with load_images."
        )
    indices = batch_indices(
        len(images),
        step,
        batch_size=batch_size,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
    )
    return to_float(images[indices])
