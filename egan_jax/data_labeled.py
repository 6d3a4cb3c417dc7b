"""Labeled image datasets for the classifier family: uint8 images with int32 class labels.

`load_labeled(name, split, image_size=, channels=)` returns ``(images uint8 [N, S, S, C], labels
int32 [N])`` through a registry:

* ``"digits"`` — scikit-learn's 1,797 real 8×8 digits (10 classes), resized; the same split and
  order as ``egan_jax.data.load_images("digits")`` (labels from ``load_digits_labels``).
* ``"lfw"`` — scikit-image's ``lfw_subset``: 200 real 25×25 grey images, the first 100 faces
  (label 1), the last 100 non-faces (label 0); a binary task. Split: a fixed stratified 20% test
  holdout (20 faces + 20 non-faces, chosen by a Philox permutation per class), 80% train.
* ``"tfds:<name>"`` — a prepared TensorFlow Datasets split read through ``tfds.data_source``
  (``"tfds:mnist"``, ``"tfds:cifar10"``; no TensorFlow needed), features ``image`` and ``label``.

`labeled_batch_at` is the labeled twin of ``egan_jax.data.batch_at``: a pure function of
(seed, step) with the same stream of epochs, so resumed runs see identical batches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from egan_jax import data
from egan_jax.errors import DataError, ShapeError

LFW_SPLIT_SEED = 20240601
LFW_TEST_PER_CLASS = 20
SPLITS = ("train", "test", "all")

LabeledLoader = Callable[..., tuple[np.ndarray, np.ndarray]]


def _check_split(name: str, split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"dataset {name!r} has no split {split!r}; use one of {list(SPLITS)}")


def _load_digits(*, split: str, image_size: int, channels: int, data_dir: str | None):
    _check_split("digits", split)
    images = data.load_images("digits", split=split, image_size=image_size, channels=channels)
    return images, data.load_digits_labels(split)


def _lfw_split_indices(split: str) -> np.ndarray:
    """Stratified split of lfw_subset: indices 0–99 are faces, 100–199 non-faces."""
    _check_split("lfw", split)
    if split == "all":
        return np.arange(200)
    test = []
    for label, start in ((1, 0), (0, 100)):
        rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([LFW_SPLIT_SEED, label])))
        test.append(start + rng.permutation(100)[:LFW_TEST_PER_CLASS])
    test = np.sort(np.concatenate(test))
    return test if split == "test" else np.setdiff1d(np.arange(200), test)


def _load_lfw(*, split: str, image_size: int, channels: int, data_dir: str | None):
    """scikit-image's lfw_subset (faces vs non-faces), float [0, 1] → uint8, resized."""
    from skimage.data import lfw_subset

    indices = _lfw_split_indices(split)
    raw = lfw_subset()[indices]  # float64 [n, 25, 25] in [0, 1]
    images = np.clip(np.rint(raw * 255.0), 0, 255).astype(np.uint8)[..., None]
    labels = (indices < 100).astype(np.int32)  # 1: face
    return data.resize_and_convert(images, image_size, channels), labels


def load_tfds_labeled(
    name: str,
    *,
    split: str,
    image_size: int,
    channels: int,
    data_dir: str | None,
    image_key: str = "image",
    label_key: str = "label",
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a prepared tfds split (``tfds.data_source``, array_record)."""
    features = {"image_key": image_key, "label_key": label_key}
    source, count = data.tfds_records(name, split, data_dir, features, limit)
    records = [source[i] for i in range(count)]
    images = np.stack([np.asarray(r[image_key]) for r in records])
    labels = np.asarray([int(r[label_key]) for r in records], np.int32)
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(
            f"tfds feature {image_key!r} of {name!r} is {images.dtype} {images.shape[1:]}; "
            "expected uint8 images [H, W, C]"
        )
    return data.resize_and_convert(images, image_size, channels), labels


LOADERS: dict[str, LabeledLoader] = {"digits": _load_digits, "lfw": _load_lfw}
NUM_CLASSES: dict[str, int] = {"digits": 10, "lfw": 2, "tfds:mnist": 10, "tfds:cifar10": 10}


def load_labeled(
    name: str,
    split: str = "train",
    *,
    image_size: int,
    channels: int,
    data_dir: str | None = None,
    **loader_kwargs,
) -> tuple[np.ndarray, np.ndarray]:
    """Every image and label of a dataset split.

    Args:
      name: ``"digits"``, ``"lfw"`` or ``"tfds:<name>"`` (extra ``loader_kwargs`` such as
        ``limit=1000``, ``label_key="label"`` go to :func:`load_tfds_labeled`).
      split: ``"train"``/``"test"``/``"all"`` (bundled sets) or a tfds split string.
      image_size: output height and width (PIL bilinear resize when different).
      channels: 1 or 3 (grey is replicated, RGB converted to luminance).
      data_dir: where prepared tfds data lives (None: tfds's default).

    Returns:
      ``(images, labels)``: uint8 ``[N, image_size, image_size, channels]``, int32 ``[N]``.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"image_size={image_size!r} must be a positive integer")
    return data.load_by_name(
        name,
        LOADERS,
        load_tfds_labeled,
        kind="labeled dataset",
        example="tfds:cifar10",
        split=split,
        image_size=image_size,
        channels=channels,
        data_dir=data_dir,
        **loader_kwargs,
    )


def num_classes(name: str, *, data_dir: str | None = None, label_key: str = "label") -> int:
    """Number of classes of a dataset (from the tfds metadata for other ``tfds:`` names)."""
    if name in NUM_CLASSES:
        return NUM_CLASSES[name]
    if not name.startswith("tfds:"):
        raise DataError(f"unknown labeled dataset {name!r}; use one of {sorted(NUM_CLASSES)}")
    source = data.tfds_source(name.removeprefix("tfds:"), "train", data_dir)
    try:
        return int(source.dataset_info.features[label_key].num_classes)
    except (KeyError, AttributeError) as error:
        raise DataError(
            f"tfds dataset {name!r} has no class-label feature {label_key!r}; pass label_key="
        ) from error


def labeled_batch_at(
    images: np.ndarray,
    labels: np.ndarray,
    step: int,
    *,
    batch_size: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """This process's slice of global batch ``step``: float32 images in [-1, 1] and int32 labels.

    Same indices as :func:`egan_jax.data.batch_at` for the same arguments (pure in (seed, step)).
    """
    if images.ndim != 4 or images.dtype != np.uint8 or labels.shape != (len(images),):
        raise ShapeError(
            f"labeled_batch_at expects uint8 images [N, H, W, C] and labels [N], got "
            f"{images.dtype} {images.shape} and {labels.shape}; load them with load_labeled"
        )
    indices = data.batch_indices(
        len(images),
        step,
        batch_size=batch_size,
        seed=seed,
        process_index=process_index,
        process_count=process_count,
    )
    return data.to_float(images[indices]), labels[indices].astype(np.int32)
