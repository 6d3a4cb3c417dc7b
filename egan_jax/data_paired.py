"""Paired (super-resolution) and unpaired (CycleGAN) image data, with stateless samplers.

Super-resolution. `load_sr_photos(name, split, scale)` gives whole HR photos (cropped to a multiple of
`scale`) and their LR versions; `sr_batch_at` draws random aligned crops from them as a pure function
of (seed, step), so a resumed run sees bit-identical batches; `load_sr_pairs` tiles a split into
fixed aligned crops (the evaluation set). LR images are made once per whole photo, so a crop's LR is
exactly the matching window of the whole photo's LR, as in the SR benchmarks.
- "photos" (bundled, offline): the real RGB photos that scikit-image 0.26 and scikit-learn ship.
  train: astronaut (512×512), coffee (400×600), rocket (427×640), immunohistochemistry (512×512),
  hubble_deep_field (872×1000), stereo_motorcycle left view (500×741), sklearn flower.jpg (427×640);
  test (held out, whole photos): chelsea (300×451) and sklearn china.jpg (427×640).
  train_extended: train + `SR_EXTRA_PHOTOS` (the right stereo view, retina, and the grey camera,
  coins, moon, brick, grass, gravel, page, text and cell photos replicated to RGB). LR = PIL BICUBIC
  resize by 1/scale (PIL's bicubic, a = −0.5, antialiased — close to, not bit-equal with,
  MATLAB's imresize).
- "tfds:div2k/bicubic_x4" (or any tfds dataset with `hr`/`lr` image features): read lazily through
  `tfds.data_source` from data prepared in array_record format; LR is the dataset's own.

Unpaired. `load_unpaired(name, split, image_size)` -> (domain A, domain B) uint8 arrays, and
`unpaired_batch_at` draws each domain's batch independently (two streams of `data.batch_indices`).
- "grass2gravel" (bundled): crops of scikit-image's grass and gravel textures (512×512 grey, halved to
  256×256 so that a 32-px crop holds several stones or blades). Why this pair: both are real photos,
  the domains differ clearly in local texture while neither has global structure the generator must
  preserve, so a small ResNet generator learns the mapping on a CPU in minutes and the cycle loss is
  meaningful; unlimited distinct crops avoid memorising a few images. train: crops with stride
  image_size/4 from the left 192 columns; test: crops with stride image_size/2 from the right 64
  columns (disjoint pixels). Grey is replicated to 3 channels unless channels=1.
- "tfds:cycle_gan/<name>" (e.g. horse2zebra): splits "train"/"test" read trainA+trainB /
  testA+testB through `tfds.data_source`, each image resized (PIL bilinear) to image_size².
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from egan_jax.data import batch_indices, load_by_name, process_share, tfds_source, to_float
from egan_jax.errors import DataError, ShapeError

SR_TRAIN_PHOTOS = (
    "astronaut",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "stereo_motorcycle",
    "sklearn:flower.jpg",
)
SR_TEST_PHOTOS = ("chelsea", "sklearn:china.jpg")
# More real photos that scikit-image ships on disk (no download); the grey ones are replicated to
# RGB. Split "train_extended" = SR_TRAIN_PHOTOS + these (more content for a small SR model).
SR_EXTRA_PHOTOS = (
    "stereo_motorcycle:right",
    "retina",
    "camera",
    "coins",
    "moon",
    "brick",
    "grass",
    "gravel",
    "page",
    "text",
    "cell",
)
TEXTURE_SCALE = 2  # grass/gravel are halved before cropping
TEXTURE_TRAIN_COLUMNS = 192  # of the 256 columns after halving


@dataclasses.dataclass(frozen=True)
class SRPhotos:
    """Whole images: hr[i] uint8 [H_i, W_i, C] and lr[i] uint8 [H_i/scale, W_i/scale, C]."""

    hr: Sequence[np.ndarray]
    lr: Sequence[np.ndarray]
    scale: int


def bicubic_downscale(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 [H, W, C] (H, W multiples of scale) -> uint8 [H/scale, W/scale, C], PIL BICUBIC."""
    height, width, channels = image.shape
    mode = "L" if channels == 1 else "RGB"
    pil = Image.fromarray(image[..., 0] if channels == 1 else image, mode)
    small = pil.resize((width // scale, height // scale), Image.Resampling.BICUBIC)
    return np.asarray(small).reshape(height // scale, width // scale, channels)


def _bundled_photo(name: str) -> np.ndarray:
    if name.startswith("sklearn:"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(name.removeprefix("sklearn:"))
    import skimage.data

    name, _, view = name.partition(":")
    image = getattr(skimage.data, name)()
    if name == "stereo_motorcycle":  # (left, right, disparity)
        image = image[1] if view == "right" else image[0]
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def _crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    height, width = image.shape[0] // scale * scale, image.shape[1] // scale * scale
    return image[:height, :width]


def _photos(*, split: str, scale: int, data_dir: str | None, limit: int | None) -> SRPhotos:
    splits = {
        "train": SR_TRAIN_PHOTOS,
        "train_extended": SR_TRAIN_PHOTOS + SR_EXTRA_PHOTOS,
        "test": SR_TEST_PHOTOS,
    }
    if split not in splits:
        raise DataError(f"'photos' has no split {split!r}; use one of {sorted(splits)}.")
    names = splits[split][:limit]
    hr = [_crop_to_multiple(_bundled_photo(name), scale) for name in names]
    return SRPhotos(hr=hr, lr=[bicubic_downscale(image, scale) for image in hr], scale=scale)


class _LazyFeature(Sequence):
    """A read-only sequence view of one image feature of a tfds data source."""

    def __init__(self, source, key: str, count: int):
        self.source, self.key, self.count = source, key, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):
        if not 0 <= index < self.count:
            raise IndexError(index)
        return np.asarray(self.source[index][self.key])


def load_tfds_sr(
    name: str, *, split: str, scale: int, data_dir: str | None, limit: int | None = None
) -> SRPhotos:
    """A prepared tfds SR dataset with features `hr` and `lr` (e.g. div2k/bicubic_x4), lazily read."""
    source = tfds_source(name, split, data_dir)
    count = len(source) if limit is None else min(limit, len(source))
    if count == 0:
        raise DataError(f"tfds dataset {name!r} split {split!r} is empty.")
    first = source[0]
    if "hr" not in first or "lr" not in first:
        raise DataError(
            f"tfds dataset {name!r} has features {sorted(first)}; SR needs 'hr' and 'lr' "
            "(use e.g. div2k/bicubic_x4)."
        )
    hr, lr = np.asarray(first["hr"]), np.asarray(first["lr"])
    if hr.shape[0] != lr.shape[0] * scale or hr.shape[1] != lr.shape[1] * scale:
        raise DataError(
            f"{name!r}: hr {hr.shape} is not lr {lr.shape} × scale={scale}; set scale to the "
            "dataset's factor (4 for div2k/bicubic_x4)."
        )
    return SRPhotos(
        hr=_LazyFeature(source, "hr", count), lr=_LazyFeature(source, "lr", count), scale=scale
    )


SR_LOADERS: dict[str, Callable[..., SRPhotos]] = {"photos": _photos}


def load_sr_photos(
    name: str,
    *,
    split: str = "train",
    scale: int = 4,
    data_dir: str | None = None,
    limit: int | None = None,
) -> SRPhotos:
    """Whole HR/LR image pairs of a split: `SR_LOADERS` name ("photos") or "tfds:<name>"."""
    if scale < 2:
        raise DataError(f"scale={scale} must be at least 2 (e.g. 4).")
    return load_by_name(
        name,
        SR_LOADERS,
        load_tfds_sr,
        kind="SR dataset",
        example="tfds:div2k/bicubic_x4",
        split=split,
        scale=scale,
        data_dir=data_dir,
        limit=limit,
    )


def _check_crop(hr_size: int, scale: int) -> None:
    if hr_size < scale or hr_size % scale:
        raise DataError(f"hr_size={hr_size} must be a positive multiple of scale={scale}.")


def _aligned_crop(photos: SRPhotos, index: int, top: int, left: int, lr_size: int):
    s = photos.scale
    lr = photos.lr[index][top : top + lr_size, left : left + lr_size]
    hr = photos.hr[index][top * s : (top + lr_size) * s, left * s : (left + lr_size) * s]
    return lr, hr


def load_sr_pairs(
    name: str,
    *,
    split: str = "test",
    hr_size: int = 96,
    scale: int = 4,
    data_dir: str | None = None,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping aligned tiles covering each photo of the split, row-major, photo by photo.

    Returns (lr uint8 [N, hr_size/scale, hr_size/scale, C], hr uint8 [N, hr_size, hr_size, C]).
    Photos smaller than a tile contribute nothing; the bottom/right remainders are dropped.
    """
    _check_crop(hr_size, scale)
    photos = load_sr_photos(name, split=split, scale=scale, data_dir=data_dir, limit=limit)
    lr_size = hr_size // scale
    lrs, hrs = [], []
    for index in range(len(photos.lr)):
        height, width = photos.lr[index].shape[:2]
        for top in range(0, height - lr_size + 1, lr_size):
            for left in range(0, width - lr_size + 1, lr_size):
                lr, hr = _aligned_crop(photos, index, top, left, lr_size)
                lrs.append(lr)
                hrs.append(hr)
    if not hrs:
        raise DataError(f"no {hr_size}-px tile fits in the {split!r} photos of {name!r}.")
    return np.stack(lrs), np.stack(hrs)


def sr_batch_at(
    photos: SRPhotos,
    step: int,
    *,
    batch_size: int,
    seed: int,
    hr_size: int = 96,
    scale: int | None = None,
    process_index: int = 0,
    process_count: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """This process's slice of global batch `step` of random aligned crops, as float32 in [-1, 1].

    Returns (lr [B/P, hr_size/scale, hr_size/scale, C], hr [B/P, hr_size, hr_size, C]). Global batch
    `step` draws, for each of its `batch_size` examples, a photo uniformly and a crop position
    uniformly from Philox(SeedSequence([seed, step])); process p takes the p-th equal slice. So the
    batch is a pure function of (seed, step) and the processes' slices partition the global batch.
    """
    scale = photos.scale if scale is None else scale
    if scale != photos.scale:
        raise DataError(f"scale={scale} differs from the photos' scale {photos.scale}.")
    _check_crop(hr_size, scale)
    if step < 0 or seed < 0 or batch_size < 1 or len(photos.hr) == 0:
        raise DataError(
            f"need step>=0, seed>=0, batch_size>=1 and photos; got step={step}, seed={seed}, "
            f"batch_size={batch_size}, {len(photos.hr)} photos."
        )
    per_process = process_share(batch_size, process_index, process_count)
    lr_size = hr_size // scale
    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, step])))
    choices = rng.integers(0, len(photos.lr), size=batch_size)
    fractions = rng.random((batch_size, 2))
    mine = range(process_index * per_process, (process_index + 1) * per_process)
    lrs, hrs = [], []
    for example in mine:
        index = int(choices[example])
        lr_image = photos.lr[index]
        height, width = lr_image.shape[:2]
        if height < lr_size or width < lr_size:
            raise DataError(
                f"photo {index} has LR size {height}×{width}, smaller than the crop {lr_size}."
            )
        top = int(fractions[example, 0] * (height - lr_size + 1))
        left = int(fractions[example, 1] * (width - lr_size + 1))
        lr, hr = _aligned_crop(photos, index, top, left, lr_size)
        lrs.append(lr)
        hrs.append(hr)
    return to_float(np.stack(lrs)), to_float(np.stack(hrs))


# --- unpaired domains ------------------------------------------------------------------------


def _texture_crops(texture: np.ndarray, split: str, image_size: int, channels: int) -> np.ndarray:
    size = texture.shape[0] // TEXTURE_SCALE
    small = np.asarray(Image.fromarray(texture).resize((size, size), Image.Resampling.BICUBIC))
    if split == "train":
        region, stride = small[:, :TEXTURE_TRAIN_COLUMNS], max(1, image_size // 4)
    elif split == "test":
        region, stride = small[:, TEXTURE_TRAIN_COLUMNS:], max(1, image_size // 2)
    else:
        raise DataError(f"'grass2gravel' has no split {split!r}; use 'train' or 'test'.")
    height, width = region.shape
    if height < image_size or width < image_size:
        raise DataError(
            f"image_size={image_size} is larger than the {split} region {height}×{width} of "
            "'grass2gravel'; use image_size <= 64."
        )
    crops = [
        region[top : top + image_size, left : left + image_size]
        for top in range(0, height - image_size + 1, stride)
        for left in range(0, width - image_size + 1, stride)
    ]
    out = np.stack(crops)[..., None]
    return np.repeat(out, channels, axis=-1) if channels == 3 else out


def _grass2gravel(*, split: str, image_size: int, channels: int, data_dir: str | None):
    import skimage.data

    if channels not in (1, 3):
        raise DataError(f"channels={channels} must be 1 or 3.")
    return (
        _texture_crops(skimage.data.grass(), split, image_size, channels),
        _texture_crops(skimage.data.gravel(), split, image_size, channels),
    )


def _tfds_images(name: str, split: str, image_size: int, channels: int, data_dir: str | None):
    """Every `image` of a prepared tfds split, each resized (PIL bilinear) to image_size²."""
    source = tfds_source(name, split, data_dir)
    if len(source) == 0:
        raise DataError(f"tfds dataset {name!r} split {split!r} is empty.")
    from egan_jax.data_grain import resize_unpaired

    out = np.empty((len(source), image_size, image_size, channels), np.uint8)
    for i in range(len(source)):
        out[i] = resize_unpaired(np.asarray(source[i]["image"]), image_size, channels)
    return out


UNPAIRED_LOADERS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "grass2gravel": _grass2gravel
}


def load_unpaired(
    name: str,
    *,
    split: str = "train",
    image_size: int = 32,
    channels: int = 3,
    data_dir: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Two unpaired domains as uint8 [N_a, S, S, C] and [N_b, S, S, C] (see module doc)."""
    if image_size < 1:
        raise DataError(f"image_size={image_size} must be positive.")
    if name.startswith("tfds:"):
        splits = {"train": ("trainA", "trainB"), "test": ("testA", "testB")}
        if split not in splits:
            raise DataError(f"{name!r}: split {split!r} is unknown; use 'train' or 'test'.")
        name = name.removeprefix("tfds:")
        return tuple(
            _tfds_images(name, part, image_size, channels, data_dir) for part in splits[split]
        )
    if name not in UNPAIRED_LOADERS:
        raise DataError(
            f"unknown unpaired dataset {name!r}; use one of {sorted(UNPAIRED_LOADERS)} or "
            "'tfds:cycle_gan/horse2zebra'."
        )
    return UNPAIRED_LOADERS[name](
        split=split, image_size=image_size, channels=channels, data_dir=data_dir
    )


def unpaired_batch_at(
    domain_a: np.ndarray,
    domain_b: np.ndarray,
    step: int,
    *,
    batch_size: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """This process's slices of global batch `step` of each domain, float32 in [-1, 1].

    Each domain is an endless stream of epochs as in `data.batch_at`; domain A uses `seed`, domain B
    the stream seeded with `seed` + 2**31 (kept independent of A's), so the pairing is random.
    """
    for images in (domain_a, domain_b):
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ShapeError(
                f"unpaired_batch_at expects uint8 images [N, H, W, C], got {images.dtype} "
                f"{images.shape}; load them with load_unpaired."
            )
    common = dict(
        step=step, batch_size=batch_size, process_index=process_index, process_count=process_count
    )
    a = batch_indices(len(domain_a), seed=seed, **common)
    b = batch_indices(len(domain_b), seed=seed + 2**31, **common)
    return to_float(domain_a[a]), to_float(domain_b[b])
