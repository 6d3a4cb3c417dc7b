"""Sample-quality metrics (FID-style Fréchet distance, KID, Inception Score) on pluggable features.

A feature network is any callable `images [N, H, W, C] in [-1, 1] -> features [N, D]`. Two ship:
`DigitsClassifier` (a small CNN trained reproducibly on the bundled digits; its penultimate layer gives
the "digits Fréchet distance") and the FID InceptionV3 (`egan_jax.models.inception`, weights from a
local file). The statistics are computed in float64 NumPy, outside jit.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, serialization

from egan_jax.data import batch_indices, load_digits_labels, load_images, to_float
from egan_jax.errors import ShapeError


class FeatureNetwork(Protocol):
    """images [N, H, W, C] float in [-1, 1] -> features [N, D]."""

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] (float64) of features [N, D], N >= 2."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ShapeError(f"feature_statistics needs features [N>=2, D], got {features.shape}.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):

    |mu1 − mu2|² + tr(sigma1) + tr(sigma2) − 2 tr((sigma1 sigma2)^½).

    tr((Σ1 Σ2)^½) is computed as Σ √λ over the eigenvalues of the symmetric PSD matrix
    Σ1^½ Σ2 Σ1^½ (same spectrum as Σ1 Σ2), clipping round-off negatives to 0: no complex
    parts and no failure on singular covariances (unlike scipy.linalg.sqrtm). Reference:
    Dowson & Landau (1982); Heusel et al., "GANs Trained by a Two Time-Scale Update Rule" (2017).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ShapeError(
            f"frechet_distance needs mu [D] and sigma [D, D] for both; got {mu1.shape}, "
            f"{sigma1.shape}, {mu2.shape}, {sigma2.shape}."
        )
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    distance = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    return float(max(distance, 0.0))


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: unbiased MMD² with the cubic kernel k(x, y) = (x·y / D + 1)³, over random subsets.

    Args:
      features1: [N1, D]; features2: [N2, D].
      subsets: how many subset pairs to average over.
      subset_size: examples per subset, clamped to min(N1, N2) (as clean-fid does).
      seed: seeds the subset draws (NumPy Philox), so the result is deterministic.

    Returns:
      (mean, standard deviation) of the per-subset MMD² estimates. Reference: Bińkowski et al.,
      "Demystifying MMD GANs" (ICLR 2018).
    """
    x = np.asarray(features1, np.float64)
    y = np.asarray(features2, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ShapeError(f"KID needs features [N1, D] and [N2, D], got {x.shape} and {y.shape}.")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ShapeError(f"KID needs at least 2 examples per set, got {len(x)} and {len(y)}.")
    dim = x.shape[1]
    rng = np.random.Generator(np.random.Philox(seed))
    estimates = np.empty(subsets)
    for s in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        k_aa = (a @ a.T / dim + 1) ** 3
        k_bb = (b @ b.T / dim + 1) ** 3
        k_ab = (a @ b.T / dim + 1) ** 3
        off_diagonal = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
        estimates[s] = off_diagonal - 2 * k_ab.mean()
    return float(estimates.mean()), float(estimates.std())


def inception_score(logits: np.ndarray, *, splits: int = 10) -> tuple[float, float]:
    """Inception Score exp(E_x KL(p(y|x) ‖ p(y))), mean and std over `splits` equal chunks.

    Args:
      logits: [N, K] classifier logits (softmax taken here, in float64).
      splits: number of chunks (10 in Salimans et al., "Improved Techniques for Training GANs", 2016).
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or len(logits) < splits:
        raise ShapeError(f"inception_score needs logits [N>={splits}, K], got {logits.shape}.")
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    scores = []
    for chunk in np.array_split(log_p, splits):
        log_marginal = np.log(np.exp(chunk).mean(axis=0))
        kl = np.sum(np.exp(chunk) * (chunk - log_marginal), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def extract_features(images, network: FeatureNetwork, *, batch_size: int = 256) -> np.ndarray:
    """Run `network` over images (uint8, or float in [-1, 1]) in batches; returns float [N, D]."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ShapeError(f"expected images [N, H, W, C], got {images.shape}.")
    if images.dtype == np.uint8:
        images = to_float(images)
    chunks = [
        np.asarray(network(images[i : i + batch_size])) for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks)


def compute_fid(images_a, images_b, network: FeatureNetwork, batch_size: int = 256) -> float:
    """Fréchet distance between the `network` features of two image sets."""
    stats_a = feature_statistics(extract_features(images_a, network, batch_size=batch_size))
    stats_b = feature_statistics(extract_features(images_b, network, batch_size=batch_size))
    return frechet_distance(*stats_a, *stats_b)


def compute_kid(
    images_a,
    images_b,
    network: FeatureNetwork,
    batch_size: int = 256,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (mean, std) between the `network` features of two image sets."""
    return kernel_inception_distance(
        extract_features(images_a, network, batch_size=batch_size),
        extract_features(images_b, network, batch_size=batch_size),
        subsets=subsets,
        subset_size=subset_size,
        seed=seed,
    )


# --- The digits feature network --------------------------------------------------------------

DIGITS_CLASSIFIER_FILE = "digits_classifier_v1.msgpack"
DIGITS_INPUT_SIZE = 16


class DigitsCNN(nnx.Module):
    """Grey 16×16 digits -> 10 logits; `features` is the 128-d penultimate layer."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 32, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, (3, 3), rngs=rngs)
        self.hidden = nnx.Linear(4 * 4 * 64, 128, rngs=rngs)
        self.head = nnx.Linear(128, 10, rngs=rngs)

    def features(self, images: jax.Array) -> jax.Array:
        """Any [N, H, W, 1 or 3] in [-1, 1] -> [N, 128]: grey, resized to 16×16, two conv stages."""
        x = images.mean(axis=-1, keepdims=True)
        if x.shape[1:3] != (DIGITS_INPUT_SIZE, DIGITS_INPUT_SIZE):
            x = jax.image.resize(
                x, (x.shape[0], DIGITS_INPUT_SIZE, DIGITS_INPUT_SIZE, 1), "linear", antialias=True
            )
        x = nnx.avg_pool(jax.nn.relu(self.conv1(x)), (2, 2), (2, 2))
        x = nnx.avg_pool(jax.nn.relu(self.conv2(x)), (2, 2), (2, 2))
        return jax.nn.relu(self.hidden(x.reshape(x.shape[0], -1)))

    def __call__(self, images: jax.Array) -> jax.Array:
        return self.head(self.features(images))


@nnx.jit
def _digits_train_step(model, optimizer, images, labels):
    def loss_fn(model):
        logits = model(images)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def _digits_features(model, images):
    return model.features(images)


@nnx.jit
def _digits_logits(model, images):
    return model(images)


class DigitsClassifier:
    """The digits feature network: `__call__(images) -> [N, 128]` penultimate-layer features.

    Build with `DigitsClassifier.load_or_train(cache_dir)`: loads the cached weights, or trains
    the CNN (seed 0, Adam 1e-3, batch 64, `epochs` epochs on the digits train split at 32 px) and
    caches it to `cache_dir/digits_classifier_v1.msgpack` (default dir `~/.cache/egan_jax`).
    """

    def __init__(self, model: DigitsCNN, metadata: dict | None = None):
        self.model = model
        self.metadata = dict(metadata or {})

    def __call__(self, images) -> np.ndarray:
        return np.asarray(_digits_features(self.model, jnp.asarray(images, jnp.float32)))

    def logits(self, images) -> np.ndarray:
        return np.asarray(_digits_logits(self.model, jnp.asarray(images, jnp.float32)))

    def accuracy(self, images, labels, *, batch_size: int = 256) -> float:
        """Top-1 accuracy on images (uint8 or [-1, 1] float) with integer labels."""
        if np.asarray(images).dtype == np.uint8:
            images = to_float(np.asarray(images))
        logits = np.concatenate(
            [self.logits(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        )
        return float(np.mean(logits.argmax(axis=1) == np.asarray(labels)))

    @classmethod
    def train(cls, *, seed: int = 0, epochs: int = 20, batch_size: int = 64) -> DigitsClassifier:
        start = time.perf_counter()
        images = load_images("digits", split="train", image_size=32, channels=1)
        labels = load_digits_labels("train")
        model = DigitsCNN(rngs=nnx.Rngs(seed))
        optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
        steps = epochs * len(images) // batch_size
        for step in range(steps):
            # The same stateless shuffling the GAN training uses.
            idx = batch_indices(len(images), step, batch_size=batch_size, seed=seed)
            _digits_train_step(model, optimizer, to_float(images[idx]), labels[idx])
        test_accuracy = cls(model).accuracy(
            load_images("digits", split="test", image_size=32, channels=1),
            load_digits_labels("test"),
        )
        metadata = {
            "seed": seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "test_accuracy": test_accuracy,
            "train_seconds": time.perf_counter() - start,
        }
        return cls(model, metadata)

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"params": nnx.to_pure_dict(nnx.state(self.model)), "metadata": self.metadata}
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # unique per writing process
        tmp.write_bytes(serialization.msgpack_serialize(jax.device_get(payload)))
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file

    @classmethod
    def load(cls, path: str | os.PathLike) -> DigitsClassifier:
        payload = serialization.msgpack_restore(Path(path).read_bytes())
        model = DigitsCNN(rngs=nnx.Rngs(0))
        state = nnx.state(model)
        nnx.replace_by_pure_dict(state, payload["params"])
        nnx.update(model, state)
        return cls(model, payload.get("metadata"))

    @classmethod
    def load_or_train(cls, cache_dir: str | os.PathLike | None = None, **train_kwargs):
        directory = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "egan_jax"
        path = directory / DIGITS_CLASSIFIER_FILE
        if path.exists():
            try:
                return cls.load(path)
            except Exception:  # a corrupt or foreign cache file: retrain and overwrite it
                pass
        classifier = cls.train(**train_kwargs)
        classifier.save(path)
        return classifier
