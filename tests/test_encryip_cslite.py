"""CS-lite: round trips, many keys per public key, Fakes, validity checks, serialization."""

import itertools
import pickle
import random

import pytest

from egan_jax.encryip import cslite
from egan_jax.encryip.cslite import Ciphertext, DecryptionKey, OwnerKey, PublicKey
from egan_jax.encryip.group import RFC3526_2048, TEST_GROUP_64
from egan_jax.errors import KeyFileError, KeyMismatchError, ShapeError

K = 10


@pytest.fixture(scope="module")
def owner():
    return cslite.keygen(TEST_GROUP_64, rng=random.Random(11))


@pytest.fixture(scope="module")
def users(owner):
    rng = random.Random(12)
    return [cslite.issue_key(owner, rng=rng) for _ in range(20)]


def test_keygen_relations_and_determinism(owner):
    pk, group = owner.public_key, owner.public_key.group
    base = owner.base_key
    assert group.exp(pk.g1, owner._t) == pk.g2
    assert group.mul(group.exp(pk.g1, base._x), group.exp(pk.g2, base._y)) == pk.h
    assert group.mul(group.exp(pk.g1, base._a), group.exp(pk.g2, base._b)) == pk.c
    again = cslite.keygen(TEST_GROUP_64, rng=random.Random(11))
    assert again.public_key == pk
    assert cslite.keygen(TEST_GROUP_64).public_key != pk  # CSPRNG path


def test_honest_round_trip_for_every_class_and_many_r(owner):
    rng = random.Random(13)
    encryptor = cslite.Encryptor(owner.public_key)
    seen_u = set()
    for class_id in range(K):
        for _ in range(20):
            ct = encryptor.encrypt_class(class_id, K, rng=rng)
            seen_u.add(ct.u)
            assert cslite.decrypt_class(owner.base_key, ct, K) == class_id
            assert owner.is_honest(ct)
    assert len(seen_u) == 200  # a fresh r every time
    for _ in range(20):
        m = owner.public_key.group.random_element(rng)
        assert cslite.decrypt(owner.base_key, cslite.encrypt(owner.public_key, m, rng=rng)) == m


def test_round_trip_in_the_rfc3526_group():
    rng = random.Random(14)
    owner = cslite.keygen(RFC3526_2048, rng=rng)
    user = cslite.issue_key(owner, rng=rng)
    DecryptionKey(owner.public_key, user._x, user._y, user._a, user._b)  # passes the key check
    ct = cslite.encrypt(owner.public_key, RFC3526_2048.encode_class(7, K, rng), rng=rng)
    assert cslite.decrypt_class(user, ct, K) == 7 == cslite.decrypt_class(owner.base_key, ct, K)
    fake = cslite.fake(owner, rng=rng)
    assert cslite.decrypt(user, fake) != cslite.decrypt(owner.base_key, fake)


def test_precomputed_and_plain_encryption_agree(owner):
    m = owner.public_key.group.random_element(random.Random(1))
    fast = cslite.Encryptor(owner.public_key, window=5)
    assert fast.encrypt(m, rng=random.Random(2)) == cslite.encrypt(
        owner.public_key, m, rng=random.Random(2)
    )
    assert fast.fake(owner, rng=random.Random(3)) == cslite.fake(owner, rng=random.Random(3))


def test_every_issued_key_decrypts_every_honest_ciphertext(owner, users):
    assert len({key.fingerprint for key in users}) == len(users)
    for key in users[:3]:  # the full consistency check h = g1^x g2^y, c = g1^a g2^b
        DecryptionKey(owner.public_key, key._x, key._y, key._a, key._b, check=True)
    rng = random.Random(15)
    encryptor = cslite.Encryptor(owner.public_key)
    for _ in range(30):
        m = owner.public_key.group.random_element(rng)
        ct = encryptor.encrypt(m, rng=rng)
        assert {cslite.decrypt(key, ct) for key in users} == {m}


def test_fakes_fail_the_honesty_test_but_pass_every_validity_check(owner, users):
    rng = random.Random(16)
    for _ in range(10):
        ct = cslite.fake(owner, rng=rng)
        assert not owner.is_honest(ct)
        plaintexts = [cslite.decrypt(key, ct) for key in users]  # raises if the check fails
        assert len(set(plaintexts)) == len(users)  # m0 g1^(-delta y') differs for every y'


def test_fakes_separate_users_classes(owner, users):
    """20 users x 32 Fakes: how often two users' keys decode a Fake to the same class."""
    encryptor = cslite.Encryptor(owner.public_key)
    fakes = [encryptor.fake(owner, rng=random.Random(100 + i)) for i in range(32)]
    classes = [[cslite.decrypt_class(key, ct, K) for ct in fakes] for key in users]
    agreements = [
        sum(a == b for a, b in zip(classes[i], classes[j], strict=True))
        for i, j in itertools.combinations(range(len(users)), 2)
    ]
    rate = sum(agreements) / (len(agreements) * 32)
    print(f"pairwise class agreement on Fakes: {rate:.4f} (chance 1/K = {1 / K})")
    assert 0.05 <= rate <= 0.15  # 190 pairs x 32 Fakes around 0.1
    assert max(agreements) <= 12  # P(Binomial(32, 0.1) >= 13) ~ 2e-5 per pair


def test_split_gives_each_users_plaintext(owner, users):
    rng = random.Random(17)
    for ct in (cslite.fake(owner, rng=rng), cslite.encrypt(owner.public_key, 4, rng=rng)):
        parts = owner.split(ct)
        for key in users[:5]:
            assert owner.plaintext_under(parts, key) == cslite.decrypt(key, ct)
    assert owner.split(ct)[1] == 1  # honest: v / u^t = 1


def test_malformed_ciphertexts_are_rejected(owner):
    group, key = owner.public_key.group, owner.base_key
    ct = cslite.encrypt(owner.public_key, 4, rng=random.Random(18))
    for bad in (0, 1, group.p - 1, group.p, group.p + 4):
        with pytest.raises(ShapeError, match="ciphertext part u"):
            cslite.decrypt(key, Ciphertext(bad, ct.v, ct.w, ct.e))
    with pytest.raises(ShapeError, match="part w"):
        cslite.decrypt(key, Ciphertext(ct.u, ct.v, group.p - ct.w, ct.e))
    with pytest.raises(KeyMismatchError, match="tampered"):
        cslite.decrypt(key, Ciphertext(ct.u, ct.v, ct.w, group.mul(ct.e, 4)))
    with pytest.raises(KeyMismatchError, match="tampered"):
        cslite.decrypt(key, Ciphertext(ct.u, group.mul(ct.v, 4), ct.w, ct.e))
    # CS-lite's tag does not cover w: a changed w decrypts, to another message (IND-CCA1 only).
    assert cslite.decrypt(key, Ciphertext(ct.u, ct.v, group.mul(ct.w, 4), ct.e)) == 16
    with pytest.raises(ShapeError, match="message"):
        cslite.encrypt(owner.public_key, group.p - 1)


def test_keys_of_another_public_key_are_rejected(owner):
    other = cslite.keygen(TEST_GROUP_64, rng=random.Random(19))
    ct = cslite.encrypt(owner.public_key, 4, rng=random.Random(20))
    with pytest.raises(KeyMismatchError):
        cslite.decrypt(other.base_key, ct)
    with pytest.raises(KeyMismatchError, match="does not belong"):
        DecryptionKey(owner.public_key, other.base_key._x, 1, 2, 3)
    with pytest.raises(KeyMismatchError):
        cslite.Encryptor(owner.public_key).fake(other)


def test_a_forged_key_decodes_at_chance(owner):
    """Key forging: a random (x, y) with the right (a, b) passes the tag check but not the key
    check, and decodes honest labels at about chance level."""
    base, rng = owner.base_key, random.Random(21)
    forged = DecryptionKey(owner.public_key, 12345, 678, base._a, base._b, check=False)
    with pytest.raises(KeyMismatchError):
        DecryptionKey(owner.public_key, 12345, 678, base._a, base._b)
    encryptor = cslite.Encryptor(owner.public_key)
    trials = [(y, encryptor.encrypt_class(y, K, rng=rng)) for y in range(K) for _ in range(30)]
    accuracy = sum(cslite.decrypt_class(forged, ct, K) == y for y, ct in trials) / len(trials)
    assert accuracy < 0.2, accuracy


def test_public_key_json_round_trip_and_validation(owner):
    pk = owner.public_key
    record = pk.to_json()
    assert PublicKey.from_json(record) == pk
    assert set(record) == {"format", "version", "group", "g1", "g2", "h", "c", "fingerprint"}
    with pytest.raises(KeyFileError, match="version"):
        PublicKey.from_json({**record, "version": 2})
    with pytest.raises(KeyFileError, match="fingerprint"):
        PublicKey.from_json({**record, "h": record["c"]})
    with pytest.raises(KeyFileError, match="unknown group"):
        PublicKey.from_json({**record, "group": "modp1024"})
    with pytest.raises(KeyFileError, match="no field"):
        PublicKey.from_json({k: v for k, v in record.items() if k != "g2"})
    with pytest.raises(ShapeError, match="not an element"):
        PublicKey.from_json({**record, "g1": TEST_GROUP_64.to_hex(TEST_GROUP_64.p - 1)})


def test_secret_records_round_trip(owner, users):
    pk = owner.public_key
    key = users[0]
    assert DecryptionKey.from_secret_record(pk, key.secret_record()) == key
    restored = OwnerKey.from_secret_record(pk, owner.secret_record())
    assert restored.secret_record() == owner.secret_record()
    assert owner.issued_key({"x": key.secret_record()["x"], "y": key.secret_record()["y"]}) == key
    with pytest.raises(KeyMismatchError, match="not issued"):
        owner.issued_key({"x": key.secret_record()["x"], "y": users[1].secret_record()["y"]})
    with pytest.raises(KeyMismatchError, match="trapdoor"):
        OwnerKey.from_secret_record(pk, {**owner.secret_record(), "t": "00" * 7 + "05"})
    with pytest.raises(KeyFileError, match="outside"):
        DecryptionKey.from_secret_record(pk, {**key.secret_record(), "x": "ff" * 8})
    with pytest.raises(KeyFileError, match="no field"):
        DecryptionKey.from_secret_record(pk, {"x": "00"})


def test_ciphertext_json_checks_length_and_members(owner):
    group = owner.public_key.group
    ct = cslite.encrypt(owner.public_key, 4, rng=random.Random(22))
    assert Ciphertext.from_json(ct.to_json(group), group) == ct
    with pytest.raises(ShapeError, match="list of 4"):
        Ciphertext.from_json(ct.to_json(group)[:3], group)
    with pytest.raises(ShapeError, match="16-digit"):
        Ciphertext.from_json([*ct.to_json(group)[:3], "abcd"], group)


def test_secrets_stay_out_of_repr_and_pickle(owner, users):
    key = users[0]
    texts = [repr(key), str(key), repr(owner), str(owner), repr(owner.public_key)]
    secrets = [*key.secret_record().values(), owner.secret_record()["t"]]
    secrets += [str(key._x), str(key._y), str(owner._t), hex(key._x)[2:]]
    assert not any(s in text for s in secrets for text in texts)
    assert key.fingerprint in repr(key) and key.fingerprint.startswith("eiuk1-")
    for obj in (key, owner):
        with pytest.raises(TypeError, match="pickle"):
            pickle.dumps(obj)


def test_batched_decryption_matches_and_names_bad_ciphertexts(owner, users):
    rng = random.Random(23)
    encryptor = cslite.Encryptor(owner.public_key)
    cts = [encryptor.encrypt(owner.public_key.group.random_element(rng), rng=rng) for _ in range(8)]
    cts += [encryptor.fake(owner, rng=rng) for _ in range(4)]
    for key in users[:3]:
        assert cslite.decrypt_many(key, cts) == [cslite.decrypt(key, ct) for ct in cts]
    assert cslite.decrypt_many(users[0], []) == []
    group = owner.public_key.group
    bad = list(cts)
    bad[5] = Ciphertext(bad[5].u, bad[5].v, bad[5].w, group.mul(bad[5].e, 4))
    with pytest.raises(KeyMismatchError, match="ciphertext 5: ciphertext rejected"):
        cslite.decrypt_many(users[0], bad)
    bad[5] = Ciphertext(bad[5].u, group.p - bad[5].v, bad[5].w, bad[5].e)
    with pytest.raises(ShapeError, match="ciphertext 5 part v"):
        cslite.decrypt_many(users[0], bad)
    # two errors that would cancel in an unweighted product are still caught: e_1 * z, e_2 / z
    z = group.random_element(rng)
    pair = [
        Ciphertext(cts[1].u, cts[1].v, cts[1].w, group.mul(cts[1].e, z)),
        Ciphertext(cts[2].u, cts[2].v, cts[2].w, group.div(cts[2].e, z)),
    ]
    with pytest.raises(KeyMismatchError, match="ciphertext 0"):
        cslite.decrypt_many(users[0], pair)


@pytest.mark.parametrize("part", ["x", "y", "a", "b"])
def test_a_key_changed_in_one_part_is_refused_or_decodes_at_chance(owner, users, part):
    """Key forging from another user's key: change one part by +1."""
    values = {n: getattr(users[0], f"_{n}") for n in "xyab"}
    values[part] += 1
    with pytest.raises(KeyMismatchError, match="does not belong"):
        DecryptionKey(owner.public_key, **values)
    forged = DecryptionKey(owner.public_key, **values, check=False)
    rng, encryptor = random.Random(24), cslite.Encryptor(owner.public_key)
    trials = [(y, encryptor.encrypt_class(y, K, rng=rng)) for y in range(K) for _ in range(20)]
    if part in "ab":  # the validity tag no longer matches: every ciphertext is rejected
        with pytest.raises(KeyMismatchError, match="rejected"):
            cslite.decrypt_many(forged, [ct for _, ct in trials])
    else:  # w / (u^(x+1) v^y) = m / u: a fresh random element per ciphertext
        hits = sum(cslite.decrypt_class(forged, ct, K) == y for y, ct in trials)
        assert hits / len(trials) < 0.2
