"""Attacks on EncryIP: voted index maps, fine-tuning through a decoder, forged and colluded keys."""

import random

import jax
import numpy as np
import pytest
from flax import nnx

from egan_jax.encryip import codebook as cb
from egan_jax.encryip import cslite
from egan_jax.encryip import pipeline as pl
from egan_jax.encryip import robustness as rb
from egan_jax.encryip.group import TEST_GROUP_64
from egan_jax.errors import ConfigError, KeyMismatchError

K = 5


def _logits_for(mapping, labels, rng, strength=8.0):
    """Synthetic outputs: each example's mass on a random index of its class."""
    logits = rng.normal(size=(len(labels), len(mapping)))
    for row, y in enumerate(labels):
        logits[row, rng.choice(np.flatnonzero(mapping == y))] += strength
    return logits


def test_attacker_map_recovers_the_map_from_enough_examples():
    rng = np.random.default_rng(0)
    truth = rng.permutation(np.repeat(np.arange(K), 4)).astype(np.int32)
    labels = np.repeat(np.arange(K), 40)
    logits = _logits_for(truth, labels, rng)
    for vote in rb.VOTES:
        estimated = rb.attacker_map(logits, labels, K, vote=vote)
        assert np.array_equal(estimated, truth), vote
    few = np.arange(K)  # one example per class: most indices never win a hard vote
    sparse = rb.attacker_map(logits[few * 40], labels[few * 40], K, vote="hard")
    assert (sparse == -1).sum() >= len(truth) - K
    assert np.array_equal(sparse[sparse >= 0], truth[sparse >= 0])
    with pytest.raises(ConfigError):
        rb.attacker_map(logits, labels, K, vote="median")


def test_per_class_sample_is_balanced_and_seeded():
    labels = np.repeat(np.arange(K), 7)
    chosen = rb.per_class_sample(labels, 3, seed=1)
    assert np.bincount(labels[chosen]).tolist() == [3] * K
    assert np.array_equal(chosen, rb.per_class_sample(labels, 3, seed=1))
    assert not np.array_equal(chosen, rb.per_class_sample(labels, 3, seed=2))
    assert len(rb.per_class_sample(labels, 50, seed=0)) == len(labels)


@pytest.fixture(scope="module")
def keyed():
    rng = random.Random(9)
    owner = cslite.keygen(TEST_GROUP_64, rng=rng)
    keys = {f"u{i}": cslite.issue_key(owner, rng=rng) for i in range(4)}
    book, secret = cb.build_codebook(owner, K, 4, 24, rng=rng)
    return owner, keys, book, secret, rng


def test_forged_keys_break_decryption_and_tracing(keyed):
    owner, keys, book, secret, rng = keyed
    honest = secret.classes >= 0
    expected = cb.fake_classes(owner, book, secret, keys)
    forged = rb.forged_keys(keys["u0"], rng=rng)
    assert set(forged) == {
        "user key, x changed",
        "user key, y changed",
        "user key, a changed",
        "user key, b changed",
        "random key pair",
    }
    for name, key in forged.items():
        if name != "random key pair":
            assert key.public_key == book.public_key
        if name.endswith(("a changed", "b changed")) or name == "random key pair":
            with pytest.raises(KeyMismatchError):  # Dec rejects every entry
                cb.decrypt_codebook(book, key)
            mapping = rb.unchecked_map(book, key)
        else:  # the validity check uses (a, b) only: the entries pass and decode to garbage
            mapping = cb.decrypt_codebook(book, key)
        verdict = cb.trace(mapping[secret.fake_indices], expected, K, false_accusation_rate=1e-3)
        if name.endswith(("a changed", "b changed")):
            # (x, y) untouched: a decoder that skips the check still reads everything, and its
            # Fake classes still name the key's owner
            assert np.array_equal(mapping, cb.decrypt_codebook(book, keys["u0"]))
            assert verdict.accused == "u0", name
        else:
            assert np.mean(mapping[honest] == secret.classes[honest]) < 0.6, name
            assert verdict.accused is None, name
    # an untouched key through unchecked_map decodes exactly like Dec
    assert np.array_equal(rb.unchecked_map(book, keys["u1"]), cb.decrypt_codebook(book, keys["u1"]))


def test_two_colluders_mint_a_working_untraceable_key(keyed):
    owner, keys, book, secret, rng = keyed
    minted = rb.colluded_key(keys["u0"], keys["u1"], rng=rng)
    assert minted.fingerprint not in {k.fingerprint for k in keys.values()}
    mapping = cb.decrypt_codebook(book, minted)
    honest = secret.classes >= 0
    assert np.array_equal(mapping[honest], secret.classes[honest])
    expected = cb.fake_classes(owner, book, secret, keys)
    verdict = cb.trace(mapping[secret.fake_indices], expected, K, false_accusation_rate=1e-3)
    assert verdict.accused is None
    with pytest.raises(ConfigError):
        rb.colluded_key(keys["u0"], keys["u0"], rng=rng)


def test_finetune_through_decoder_raises_the_decoded_likelihood():
    class Net(nnx.Module):
        def __init__(self):
            self.dense = nnx.Linear(4, 6, rngs=nnx.Rngs(0))

        def __call__(self, x):
            return self.dense(x.reshape(x.shape[0], -1))

    model = Net()
    mapping = np.array([0, 1, 2, 0, 1, -1], np.int32)
    images = np.asarray(jax.random.uniform(jax.random.key(0), (12, 2, 2, 1), minval=-1, maxval=1))
    labels = np.arange(12, dtype=np.int32) % 3
    before = pl.class_scores(pl.predict_logits(model, images), mapping, 3)
    tuned = rb.finetune_through_decoder(
        model, mapping, 3, images, labels, steps=30, learning_rate=0.05, batch_size=12, seed=0
    )
    after = pl.class_scores(pl.predict_logits(tuned, images), mapping, 3)
    picked = np.arange(12), labels
    assert np.log(after[picked]).mean() > np.log(before[picked]).mean() + 0.1
    np.testing.assert_allclose(  # a copy was tuned, the stolen model is unchanged
        pl.class_scores(pl.predict_logits(model, images), mapping, 3), before, atol=1e-6
    )
    with pytest.raises(ConfigError):
        rb.finetune_through_decoder(
            model, mapping, 3, images, labels[:3], steps=1, learning_rate=0.1, batch_size=4, seed=0
        )
