"""Decoding N-way outputs with an index map, black-box pipelines, tracing by trigger queries."""

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax.encryip import codebook as cb
from egan_jax.encryip import cslite
from egan_jax.encryip import pipeline as pl
from egan_jax.encryip.group import TEST_GROUP_64
from egan_jax.errors import ShapeError

K = 4


def test_class_scores_match_the_jax_read_out_and_ignore_negative_entries():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 9)).astype(np.float32)
    mapping = np.array([0, 1, 2, 3, 0, 1, 2, 3, -1], np.int32)
    scores = pl.class_scores(logits, mapping, K)
    reference = cb.class_probabilities(jnp.asarray(logits), jnp.asarray(mapping), K)
    np.testing.assert_allclose(scores, np.asarray(reference), atol=1e-6)
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(scores.sum(1), 1 - softmax[:, -1], atol=1e-6)
    with pytest.raises(ShapeError):
        pl.class_scores(logits, mapping[:-1], K)


def test_decode_sums_indices_before_the_argmax():
    # index 0 alone is the largest, but class 1's two indices together outweigh it
    logits = np.log(np.array([[0.4, 0.3, 0.3]]))
    assert pl.decode(logits, np.array([0, 1, 1]), 2).tolist() == [1]
    assert pl.map_accuracy(logits, np.array([1]), np.array([0, 1, 1]), 2) == 1.0
    assert pl.map_accuracy(logits, np.array([1]), np.array([0, 0, 1]), 2) == 0.0


def test_index_spread_measures_how_many_indices_of_a_class_win():
    mapping = np.array([0, 0, 1, 1, -1], np.int32)
    labels = np.array([0, 0, 1, 1])
    everywhere = np.eye(5)[[0, 1, 2, 3]]
    assert pl.index_spread(everywhere, labels, mapping) == pytest.approx(1.0)
    one_per_class = np.eye(5)[[0, 0, 3, 3]]
    assert pl.index_spread(one_per_class, labels, mapping) == pytest.approx(0.5)
    # winners outside the label's indices (errors, Fakes) are not counted
    assert pl.index_spread(np.eye(5)[[0, 4, 2, 3]], labels, mapping) == pytest.approx(0.75)


def test_pipeline_counts_queries_and_model_pipelines_decode():
    model = nnx.Linear(3, 6, rngs=nnx.Rngs(0))

    class Flat(nnx.Module):
        def __init__(self, inner):
            self.inner = inner

        def __call__(self, x):
            return self.inner(x.reshape(x.shape[0], -1))

    net = Flat(model)
    images = np.asarray(jax.random.uniform(jax.random.key(1), (7, 1, 3, 1), minval=-1, maxval=1))
    logits = pl.predict_logits(net, images, batch_size=8)
    assert logits.shape == (7, 6)
    mapping = np.array([0, 1, 2, 0, 1, 2], np.int32)
    box = pl.model_pipeline(net, mapping, 3)
    assert np.array_equal(box(images), pl.decode(logits, mapping, 3))
    assert box(images[:2]).shape == (2,) and box.queries == 9
    np.testing.assert_allclose(pl.predict_logits(net, images, batch_size=4), logits, atol=1e-6)
    with pytest.raises(ShapeError):
        pl.predict_logits(net, images[0])


@pytest.fixture(scope="module")
def traced():
    rng = random.Random(4)
    owner = cslite.keygen(TEST_GROUP_64, rng=rng)
    keys = {f"u{i}": cslite.issue_key(owner, rng=rng) for i in range(5)}
    book, secret = cb.build_codebook(owner, K, 3, 24, rng=rng)
    expected = cb.fake_classes(owner, book, secret, keys)
    maps = {uid: cb.decrypt_codebook(book, key) for uid, key in keys.items()}
    return book, secret, expected, maps


def _perfect_model(secret, noise=0):
    """A stand-in model: trigger j (an image holding j) puts its mass on Fake j's index."""

    def logits_of(images):
        index = images.reshape(len(images), -1)[:, 0].astype(int)
        out = np.zeros((len(images), len(secret.classes)))
        out[np.arange(len(images)), secret.fake_indices[index]] = 10.0
        return out

    return logits_of


def test_trace_pipeline_names_each_user_and_only_them(traced):
    book, secret, expected, maps = traced
    triggers = np.arange(secret.num_fakes, dtype=np.float32).reshape(-1, 1, 1, 1)
    logits_of = _perfect_model(secret)
    for uid, mapping in maps.items():
        box = pl.Pipeline(lambda x, m=mapping: pl.decode(logits_of(x), m, K))
        verdict = pl.trace_pipeline(box, triggers, expected, K)
        assert verdict.accused == uid and verdict.scores[uid] == secret.num_fakes
        assert box.queries == secret.num_fakes
    random_map = np.random.default_rng(0).integers(0, K, len(secret.classes))
    box = pl.Pipeline(lambda x: pl.decode(logits_of(x), random_map, K))
    assert pl.trace_pipeline(box, triggers, expected, K).accused is None
    constant = pl.Pipeline(lambda x: np.zeros(len(x), np.int32))
    assert pl.trace_pipeline(constant, triggers, expected, K).accused is None
    with pytest.raises(ShapeError):
        pl.trace_pipeline(lambda x: np.zeros((len(x), 2)), triggers, expected, K)
