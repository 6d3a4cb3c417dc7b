"""Decoding a protected model's N-way outputs into classes, and tracing a black-box pipeline.

A *decoder* is an index -> class map (int32 [N]; what :func:`codebook.decrypt_codebook` gives a user,
or what an attacker estimates). A *pipeline* is a model followed by a decoder, seen as a black box:
images in, classes out (:class:`Pipeline` counts the queries). Tracing feeds the owner's triggers to
a suspect pipeline and compares its answers with every issued user's Fake classes
(:func:`codebook.trace`).

Decoding reads class ``k``'s probability as the softmax mass of the indices that map to ``k`` (entries
< 0 count for no class); the prediction is its argmax. After the codebook is decrypted this is one
[N, K] matrix product on top of the forward pass (bench/bench_encryip.py measures it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax.encryip.codebook import TraceResult, trace
from egan_jax.errors import ShapeError


@nnx.jit
def _logits(model: nnx.Module, images: jax.Array) -> jax.Array:
    return model(images)


def predict_logits(model: nnx.Module, images: np.ndarray, *, batch_size: int = 250) -> np.ndarray:
    """float32 [n, N]: ``model``'s outputs (eval mode) on float images in [-1, 1].

    Every chunk is padded to ``batch_size`` rows, so one compile serves every number of images
    (evaluation asks about 1 to thousands of images at a time)."""
    if images.ndim != 4:
        raise ShapeError(f"images must be [n, H, W, C], got shape {images.shape}")
    model.eval()
    chunks = []
    for start in range(0, len(images), batch_size):
        chunk = np.asarray(images[start : start + batch_size], np.float32)
        padded = np.zeros((batch_size, *chunk.shape[1:]), np.float32)
        padded[: len(chunk)] = chunk
        chunks.append(np.asarray(_logits(model, jnp.asarray(padded)))[: len(chunk)])
    return np.concatenate(chunks).astype(np.float32)


def class_scores(logits: np.ndarray, index_to_class: np.ndarray, num_classes: int) -> np.ndarray:
    """float [n, K]: the softmax mass of each class's indices (numpy twin of
    :func:`codebook.class_probabilities`)."""
    logits = np.asarray(logits, np.float64)
    index_to_class = np.asarray(index_to_class)
    if logits.ndim != 2 or index_to_class.shape != (logits.shape[1],):
        raise ShapeError(
            f"logits [n, N] and an index map [N] are needed; got {logits.shape} and "
            f"{index_to_class.shape}"
        )
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    valid = index_to_class >= 0
    one_hot = np.zeros((len(index_to_class), num_classes))
    one_hot[np.flatnonzero(valid), index_to_class[valid]] = 1.0
    return probabilities @ one_hot


def decode(logits: np.ndarray, index_to_class: np.ndarray, num_classes: int) -> np.ndarray:
    """int32 [n]: the class a decoder reads from each row of N-way logits."""
    return np.argmax(class_scores(logits, index_to_class, num_classes), axis=1).astype(np.int32)


def map_accuracy(
    logits: np.ndarray, labels: np.ndarray, index_to_class: np.ndarray, num_classes: int
) -> float:
    """Top-1 accuracy of the decoder ``index_to_class`` on precomputed logits."""
    return float(np.mean(decode(logits, index_to_class, num_classes) == np.asarray(labels)))


def index_spread(logits: np.ndarray, labels: np.ndarray, index_to_class: np.ndarray) -> float:
    """How randomized the outputs are within a class: for the examples of each class, the
    effective number of that class's indices that win the argmax (``exp`` of the entropy of their
    histogram) divided by the class's number of indices, averaged over classes. 1: every index of
    a class wins equally often; ``1/m``: one index per class (a K-way classifier in disguise)."""
    winners = np.argmax(np.asarray(logits), axis=1)
    index_to_class, labels = np.asarray(index_to_class), np.asarray(labels)
    spreads = []
    for y in np.unique(labels):
        own = np.flatnonzero(index_to_class == y)
        hits = winners[(labels == y) & np.isin(winners, own)]
        if not len(own) or not len(hits):
            continue
        counts = np.bincount(np.searchsorted(own, hits), minlength=len(own)) / len(hits)
        entropy = -np.sum(counts[counts > 0] * np.log(counts[counts > 0]))
        spreads.append(np.exp(entropy) / len(own))
    return float(np.mean(spreads)) if spreads else 0.0


class Pipeline:
    """A black box ``images -> classes`` that counts how many images it was asked about."""

    def __init__(self, classify: Callable[[np.ndarray], np.ndarray], name: str = "pipeline"):
        self._classify, self.name, self.queries = classify, name, 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.queries += len(images)
        return np.asarray(self._classify(images), np.int32)

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, queries={self.queries})"


def model_pipeline(
    model: nnx.Module, index_to_class: np.ndarray, num_classes: int, name: str = "pipeline"
) -> Pipeline:
    """A protected model followed by a decoder (e.g. a user's decrypted codebook)."""
    mapping = np.asarray(index_to_class).copy()
    return Pipeline(lambda x: decode(predict_logits(model, x), mapping, num_classes), name)


def plain_pipeline(model: nnx.Module, name: str = "plain model") -> Pipeline:
    """An unprotected K-way classifier as a black box (its argmax)."""
    return Pipeline(lambda x: np.argmax(predict_logits(model, x), axis=1), name)


def trace_pipeline(
    pipeline: Callable[[np.ndarray], np.ndarray],
    triggers: np.ndarray,
    expected: Mapping[str, np.ndarray],
    num_classes: int,
    *,
    false_accusation_rate: float = 1e-6,
) -> TraceResult:
    """Query ``pipeline`` once with the F triggers and name the user whose key it uses, if any."""
    observed = np.asarray(pipeline(triggers))
    if observed.shape != (len(triggers),):
        raise ShapeError(
            f"the pipeline answered {observed.shape} for {len(triggers)} triggers; it must "
            "return one class per input"
        )
    return trace(observed, expected, num_classes, false_accusation_rate=false_accusation_rate)


def random_map(key: jax.Array, size: int, num_classes: int) -> np.ndarray:
    """int32 [N]: a uniformly random index -> class map (a decoder with no key)."""
    return np.asarray(jax.random.randint(key, (size,), 0, num_classes), np.int32)
