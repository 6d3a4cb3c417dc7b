"""The EncryIP codebook: build, decrypt with every key, class probabilities, tracing."""

import functools
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from egan_jax.encryip import codebook as cb
from egan_jax.encryip import cslite
from egan_jax.encryip.codebook import Codebook, CodebookSecret
from egan_jax.encryip.group import RFC3526_2048, TEST_GROUP_64
from egan_jax.errors import ConfigError, KeyFileError, KeyMismatchError, ShapeError

K, PER_CLASS, FAKES, USERS = 10, 6, 32, 20


@pytest.fixture(scope="module")
def setup():
    rng = random.Random(31)
    owner = cslite.keygen(TEST_GROUP_64, rng=rng)
    keys = {f"user{i:02d}": cslite.issue_key(owner, rng=rng) for i in range(USERS)}
    book, secret = cb.build_codebook(owner, K, PER_CLASS, FAKES, rng=rng)
    expected = cb.fake_classes(owner, book, secret, keys)
    return owner, keys, book, secret, expected


def test_build_shape_order_and_determinism(setup):
    owner, _, book, secret, _ = setup
    assert book.size == K * PER_CLASS + FAKES == len(secret.classes)
    table = secret.label_table()
    assert table.shape == (K, PER_CLASS)
    assert all((secret.classes[table[y]] == y).all() for y in range(K))
    assert sorted(secret.fake_indices.tolist()) == np.flatnonzero(secret.classes < 0).tolist()
    assert secret.classes[: K * PER_CLASS].tolist() != sorted(secret.classes[: K * PER_CLASS])
    again = cb.build_codebook(owner, K, PER_CLASS, FAKES, rng=random.Random(5))
    twice = cb.build_codebook(owner, K, PER_CLASS, FAKES, rng=random.Random(5))
    assert again[0].fingerprint == twice[0].fingerprint != book.fingerprint
    assert np.array_equal(again[1].fake_indices, twice[1].fake_indices)
    with pytest.raises(ConfigError):
        cb.build_codebook(owner, 1, PER_CLASS)


def test_every_user_key_maps_honest_entries_identically(setup):
    _, keys, book, secret, expected = setup
    honest = secret.classes >= 0
    for user_id, key in list(keys.items())[:8]:
        index_to_class = cb.decrypt_codebook(book, key)
        assert index_to_class.dtype == np.int32 and index_to_class.shape == (book.size,)
        assert np.array_equal(index_to_class[honest], secret.classes[honest])
        # the owner's one-exponentiation shortcut gives the user's own decryption of the Fakes
        assert np.array_equal(index_to_class[secret.fake_indices], expected[user_id])


def test_fake_entries_separate_users(setup):
    *_, expected = setup
    ids = sorted(expected)
    agreements = np.array(
        [np.sum(expected[a] == expected[b]) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    )
    print(f"Fake classes shared by two users: mean {agreements.mean() / FAKES:.4f} (1/K = 0.1)")
    assert 0.05 <= agreements.mean() / FAKES <= 0.15
    assert agreements.max() <= 12


def test_class_probabilities_sum_softmax_per_class():
    logits = jax.random.normal(jax.random.key(0), (4, 7))
    index_to_class = jnp.array([2, 0, 1, 2, -1, 0, 1], dtype=jnp.int32)
    fn = jax.jit(functools.partial(cb.class_probabilities, num_classes=3))
    probs = np.asarray(fn(logits, index_to_class))
    soft = np.asarray(jax.nn.softmax(logits, axis=-1))
    manual = np.stack([soft[:, [1, 5]].sum(1), soft[:, [2, 6]].sum(1), soft[:, [0, 3]].sum(1)], 1)
    np.testing.assert_allclose(probs, manual, rtol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1 - soft[:, 4], rtol=1e-6)  # -1: no class
    with pytest.raises(AssertionError):
        cb.class_probabilities(logits, index_to_class[:5], 3)


def test_class_sum_cross_entropy_is_minus_log_of_the_class_mass():
    logits = jax.random.normal(jax.random.key(2), (5, 7))
    index_to_class = jnp.array([2, 0, 1, 2, -1, 0, 1], dtype=jnp.int32)
    table = jnp.array([[1, 5], [2, 6], [0, 3]], dtype=jnp.int32)
    labels = jnp.array([0, 1, 2, 2, 1])
    loss = np.asarray(jax.jit(cb.class_sum_cross_entropy)(logits, labels, table))
    mass = np.asarray(cb.class_probabilities(logits, index_to_class, 3))
    np.testing.assert_allclose(loss, -np.log(mass[np.arange(5), labels]), rtol=1e-5)
    # blind to how a class's mass is split over its indices (swap row 0's two class-0 logits)
    swapped = logits.at[0, 1].set(logits[0, 5]).at[0, 5].set(logits[0, 1])
    np.testing.assert_allclose(cb.class_sum_cross_entropy(swapped, labels, table), loss, rtol=1e-6)
    # stable where a naive log(sum(softmax)) under- or overflows
    assert np.isfinite(np.asarray(cb.class_sum_cross_entropy(300.0 * logits, labels, table))).all()


def test_randomized_targets_use_every_index_of_the_class(setup):
    *_, secret, _ = setup
    table = jnp.asarray(secret.label_table())
    labels = jnp.repeat(jnp.arange(K), 200)
    targets = np.asarray(cb.randomized_targets(jax.random.key(1), labels, table))
    assert np.array_equal(secret.classes[targets], np.asarray(labels))
    assert set(targets.tolist()) == set(np.flatnonzero(secret.classes >= 0).tolist())
    again = cb.randomized_targets(jax.random.key(1), labels, table)
    assert np.array_equal(np.asarray(again), targets)


def test_trace_names_every_user_from_their_fakes(setup):
    *_, expected = setup
    rng = np.random.default_rng(2)
    for user_id, classes in expected.items():
        result = cb.trace(classes, expected, K)
        assert result.accused == user_id and result.scores[user_id] == FAKES
        noisy = classes.copy()  # a quarter of the triggers answered wrongly or not at all
        flip = rng.choice(FAKES, FAKES // 4, replace=False)
        noisy[flip] = np.where(rng.random(len(flip)) < 0.5, -1, (noisy[flip] + 1) % K)
        assert cb.trace(noisy, expected, K).accused == user_id


def test_trace_accuses_nobody_for_decoders_without_a_key(setup):
    *_, expected = setup
    rng = np.random.default_rng(3)
    best_scores = []
    for _ in range(300):
        result = cb.trace(rng.integers(0, K, FAKES), expected, K)
        assert result.accused is None
        best_scores.append(max(result.scores.values()))
    assert cb.trace(np.zeros(FAKES, int), expected, K).accused is None
    assert cb.trace(np.full(FAKES, -1), expected, K).accused is None
    print(f"random decoders: best user score max {max(best_scores)} of {FAKES}")
    assert max(best_scores) < result.threshold


def test_trace_threshold_bounds_false_accusations(setup):
    *_, expected = setup
    result = cb.trace(expected["user00"], expected, K, false_accusation_rate=1e-6)
    n, tail = len(expected), cb.binomial_tail
    assert result.false_accusation_bound <= 1e-6
    assert n * tail(FAKES, result.threshold - 1, 0.1) > 1e-6  # the smallest such threshold
    assert result.p_values["user00"] == pytest.approx(0.1**FAKES)
    assert tail(3, 2, 0.5) == pytest.approx(0.5) and tail(5, 0, 0.3) == 1.0
    with pytest.raises(ConfigError, match="at least"):
        cb.trace(expected["user00"][:4], {u: c[:4] for u, c in expected.items()}, K)
    with pytest.raises(ShapeError):
        cb.trace(expected["user00"][:5], expected, K)


def test_codebook_files_round_trip_and_validate(setup, tmp_path):
    owner, keys, book, secret, _ = setup
    path = book.save(tmp_path / "codebook.json")
    assert Codebook.load(path) == book
    secret.save(tmp_path / "secret.json")
    restored = CodebookSecret.load(tmp_path / "secret.json")
    assert np.array_equal(restored.classes, secret.classes)
    assert np.array_equal(restored.fake_indices, secret.fake_indices)
    restored.check_matches(book)
    record = book.to_json()
    record["entries"][3] = record["entries"][4]
    with pytest.raises(KeyFileError, match="fingerprint"):
        Codebook.from_json(record)
    record["entries"][3] = [TEST_GROUP_64.to_hex(TEST_GROUP_64.p - 1)] * 4
    with pytest.raises(ShapeError, match="entry 3"):
        Codebook.from_json(record)
    other_book, other_secret = cb.build_codebook(owner, K, 1, 2, rng=random.Random(4))
    with pytest.raises(KeyMismatchError, match="codebook secret"):
        other_secret.check_matches(book)
    entries = list(book.entries)
    entries[7] = cslite.Ciphertext(entries[7].u, entries[7].v, entries[7].w, entries[8].e)
    with pytest.raises(KeyMismatchError, match="ciphertext 7"):
        cb.decrypt_codebook(Codebook(book.public_key, K, tuple(entries)), keys["user00"])
    stranger = cslite.keygen(TEST_GROUP_64, rng=random.Random(5)).base_key
    with pytest.raises(KeyMismatchError, match="use the key issued"):
        cb.decrypt_codebook(book, stranger)


def test_small_codebook_in_the_rfc3526_group():
    rng = random.Random(6)
    owner = cslite.keygen(RFC3526_2048, rng=rng)
    users = {"a": cslite.issue_key(owner, rng=rng), "b": cslite.issue_key(owner, rng=rng)}
    book, secret = cb.build_codebook(owner, 2, 1, 1, rng=rng, precompute=False)
    maps = {u: cb.decrypt_codebook(book, key) for u, key in users.items()}
    honest = secret.classes >= 0
    assert all(np.array_equal(m[honest], secret.classes[honest]) for m in maps.values())
    expected = cb.fake_classes(owner, book, secret, users)
    assert all(np.array_equal(maps[u][secret.fake_indices], expected[u]) for u in users)


def test_owner_to_user_to_trace_through_files(tmp_path):
    """The whole flow through files: registry, user key files, codebook, secret, trace."""
    from egan_jax.encryip.registry import Registry, load_user_key

    rng = random.Random(40)
    registry = Registry.create(tmp_path / "owner.json", group=TEST_GROUP_64, rng=rng)
    for name in ("ann", "ben", "cat"):
        registry.issue_user(name, tmp_path / f"{name}.key", rng=rng)
    book, secret = cb.build_codebook(registry.owner, 4, 3, 24, rng=rng)
    book.save(tmp_path / "codebook.json")
    secret.save(tmp_path / "codebook.secret.json")
    registry.revoke("ben")

    # ben's pipeline: his key decrypts the shipped codebook; triggers come back as Fake classes
    key, _ = load_user_key(tmp_path / "ben.key")
    index_to_class = cb.decrypt_codebook(Codebook.load(tmp_path / "codebook.json"), key)
    owner_secret = CodebookSecret.load(tmp_path / "codebook.secret.json")
    answers = index_to_class[owner_secret.fake_indices]

    owner = Registry.load(tmp_path / "owner.json")
    expected = cb.fake_classes(
        owner.owner, Codebook.load(tmp_path / "codebook.json"), owner_secret, owner.user_keys()
    )
    result = cb.trace(answers, expected, 4)
    assert result.accused == "ben" and result.num_queries == 24
    assert max(s for u, s in result.scores.items() if u != "ben") < result.threshold
