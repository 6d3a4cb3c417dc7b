"""Keys: golden material, fingerprints, key files and their validation."""

import hashlib
import json
import os
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egan_jax import keys
from egan_jax.errors import KeyFileError
from egan_jax.keys import SecretKey

GOLDEN_KEY = SecretKey.from_bytes(bytes(range(32)))


def test_golden_material_is_pinned():
    # These values define egan-kdf-v1: if any changes, every key file in the world opens different models.
    assert GOLDEN_KEY.fingerprint == "egk1-c6c80cafc5641060"
    assert keys.derive_subkey(GOLDEN_KEY, "ffx/aes").hex() == (
        "e9f2a6de53ca8c2b6f2ce60be7d38f614e2b580a7e84e604fdbe8a738e2e132a"
    )
    perm = keys.derive_permutation(GOLDEN_KEY, "block_shuffle/m4c3", 48)
    assert perm.tolist() == (
        [
            6,
            1,
            23,
            39,
            26,
            41,
            34,
            24,
            40,
            47,
            16,
            13,
            46,
            18,
            37,
            12,
            7,
            33,
            20,
            29,
            10,
            25,
            36,
            43,
        ]
        + [21, 14, 4, 38, 3, 45, 27, 9, 28, 32, 35, 30, 2, 5, 8, 19, 31, 17, 22, 42, 15, 0, 11, 44]
    )
    stream = keys.derive_bytes(GOLDEN_KEY, "block_shuffle/m4c3", 4096)
    assert hashlib.sha256(stream).hexdigest()[:16] == "7e1ad7ffeca828a5"
    mask = keys.derive_mask(GOLDEN_KEY, "np/m4c3", 48).astype(int)
    assert "".join(map(str, mask[:24])) == "000101010010011010011001"
    normal = keys.derive_normal(GOLDEN_KEY, "latent/offset/d4", 3)
    np.testing.assert_allclose(normal, [1.98321264, 0.08104819, 1.64355939], atol=1e-8)


def test_passphrase_key_is_reproducible_from_salt():
    key = SecretKey.from_passphrase("correct horse battery staple", bytes(16))
    again = SecretKey.from_passphrase("correct horse battery staple", bytes(16))
    other_salt = SecretKey.from_passphrase("correct horse battery staple", bytes([1]) * 16)
    assert key == again and key.fingerprint == "egk1-" + key.fingerprint[5:]
    assert key != other_salt
    assert key.kdf == {"name": "scrypt", "salt": "00" * 16, "n": 2**15, "r": 8, "p": 1}
    with pytest.raises(KeyFileError, match="empty"):
        SecretKey.from_passphrase("")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), secret=st.binary(min_size=32, max_size=32))
def test_permutations_are_permutations(n, secret):
    perm = keys.derive_permutation(SecretKey.from_bytes(secret), "p", n)
    assert perm.dtype == np.int32 and sorted(perm.tolist()) == list(range(n))


def test_permutation_is_uniform_enough():
    # Over many keys, every value lands in every position about equally often (chi-square on 6!).
    key = SecretKey.from_bytes(bytes(32))
    counts = np.zeros((6, 6))
    for i in range(3000):
        perm = keys.derive_permutation(key, f"u/{i}", 6)
        counts[np.arange(6), perm] += 1
    expected = 3000 / 6
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 60  # 25 dof: p ≈ 1e-4 at 60


def test_wrong_and_near_miss_keys_give_different_material():
    near = GOLDEN_KEY.flip_bit(77)
    other = SecretKey.generate()
    assert near != GOLDEN_KEY and near.fingerprint != GOLDEN_KEY.fingerprint
    for candidate in (near, other):
        assert not np.array_equal(
            keys.derive_permutation(GOLDEN_KEY, "s", 48),
            keys.derive_permutation(candidate, "s", 48),
        )
        assert keys.derive_subkey(GOLDEN_KEY, "a") != keys.derive_subkey(candidate, "a")
    # Distinct labels give independent material from one key.
    assert keys.derive_subkey(GOLDEN_KEY, "a") != keys.derive_subkey(GOLDEN_KEY, "b")
    with pytest.raises(ValueError):
        GOLDEN_KEY.flip_bit(256)


def test_secret_never_shown_or_pickled():
    secret = bytes(range(32))
    text = repr(GOLDEN_KEY) + str(GOLDEN_KEY) + f"{GOLDEN_KEY}"
    assert GOLDEN_KEY.fingerprint in text
    for encoding in (secret.hex(), __import__("base64").b64encode(secret).decode()):
        assert encoding not in text
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(GOLDEN_KEY)


def test_key_file_round_trip_and_mode(tmp_path):
    path = tmp_path / "k.json"
    key = SecretKey.generate()
    key.save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert SecretKey.load(path) == key
    with pytest.raises(KeyFileError, match="exists already"):
        key.save(path)
    replacement = SecretKey.generate()
    replacement.save(path, overwrite=True)
    assert SecretKey.load(path) == replacement and os.stat(path).st_mode & 0o777 == 0o600


def _write(path, record, mode=0o600):
    path.write_text(json.dumps(record) if isinstance(record, dict) else record)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: {**r, "version": 99}, "version 99"),
        (lambda r: {**r, "format": "other"}, "not an egan_jax key file"),
        (lambda r: {**r, "kdf_version": 2}, "egan-kdf-v2"),
        (lambda r: {**r, "secret": "AAAA"}, "24-bit secret"),
        (lambda r: {**r, "secret": "%%%"}, "base64"),
        (lambda r: {**r, "fingerprint": "egk1-0000000000000000"}, "fingerprint does not match"),
        (lambda r: json.dumps(r)[:40], "truncated"),
    ],
)
def test_bad_key_files_have_clear_errors(tmp_path, edit, message):
    path = tmp_path / "k.json"
    GOLDEN_KEY.save(path)
    record = json.loads(path.read_text())
    _write(path, edit(record))
    with pytest.raises(KeyFileError, match=message):
        SecretKey.load(path)


def test_permissions_and_missing_file(tmp_path):
    path = tmp_path / "k.json"
    GOLDEN_KEY.save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        SecretKey.load(path)
    assert SecretKey.load(path, check_permissions=False) == GOLDEN_KEY
    with pytest.raises(KeyFileError, match="egan keygen"):
        SecretKey.load(tmp_path / "missing.json")
    with pytest.raises(KeyFileError, match="256 bits"):
        SecretKey.from_bytes(b"short")


def test_derivation_matches_the_documented_algorithm():
    # An independent from-scratch egan-kdf-v1 (RFC 5869 HKDF with hmac, then SHAKE-256) agrees.
    import hmac

    def hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
        prk = hmac.new(b"egan_jax/kdf/v1", ikm, "sha256").digest()
        out, block, counter = b"", b"", 1
        while len(out) < length:
            block = hmac.new(prk, block + info + bytes([counter]), "sha256").digest()
            out, counter = out + block, counter + 1
        return out[:length]

    secret = bytes(range(32))
    subkey = hkdf(secret, b"egan_jax/v1/np/m4c3", 32)
    assert keys.derive_subkey(GOLDEN_KEY, "np/m4c3") == subkey
    assert keys.derive_bytes(GOLDEN_KEY, "np/m4c3", 100) == hashlib.shake_256(subkey).digest(100)
    assert GOLDEN_KEY.fingerprint == "egk1-" + hkdf(secret, b"egan_jax/v1/fingerprint", 8).hex()
    # Fisher–Yates with 8-byte big-endian words, as documented.
    stream = hashlib.shake_256(hkdf(secret, b"egan_jax/v1/p", 32)).digest(8 * 64)
    order, words = list(range(10)), iter(range(0, len(stream), 8))
    for i in range(9, 0, -1):
        while True:
            word = int.from_bytes(stream[next(words) :][:8], "big")
            if word < 2**64 - 2**64 % (i + 1):
                break
        j = word % (i + 1)
        order[i], order[j] = order[j], order[i]
    assert keys.derive_permutation(GOLDEN_KEY, "p", 10).tolist() == order
