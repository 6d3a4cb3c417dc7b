"""Secret keys, key files and key material derivation (algorithm ``egan-kdf-v1``).

A key is a 256-bit secret. Everything a transform needs (permutations, sign masks, selection masks, the
AES key of the FFX cipher) is derived from it by this module's versioned algorithm, which depends only on
standard primitives — never on numpy's or JAX's random streams, which change between releases — so the
same key file gives the same material on every machine and every version.

``egan-kdf-v1``, for a label ``L`` (a string naming a transform and the parameters that change its size):

1. ``subkey = HKDF-SHA256(ikm=secret, salt=b"egan_jax/kdf/v1", info=b"egan_jax/v1/" + L, length=32)``
2. ``stream = SHAKE-256(subkey)``, read as bytes (an extendable-output function: any length, prefix-stable).
3. Uniform integers below ``bound``: consecutive 8-byte big-endian words ``w`` of the stream; a word is
   rejected when ``w >= 2**64 - (2**64 mod bound)`` (so no modulo bias), else ``w mod bound``.
4. Permutations of ``n``: Fisher–Yates from ``arange(n)``: for ``i = n-1 … 1``, ``j = uniform(i + 1)``,
   swap ``a[i], a[j]``.
5. Masks of ``n`` bits: bit ``i`` is ``(stream[i // 8] >> (i % 8)) & 1``.
6. Fingerprint: ``"egk1-" + hex(HKDF-SHA256(secret, salt, info=b"egan_jax/v1/fingerprint", 8 bytes))``.
   It is public: checkpoints, files and reports store it to say which key they expect. HKDF is one-way, so
   it reveals nothing usable about the secret (64 bits: a label, not a security parameter).

The secret never appears in ``repr``/``str``, logs, checkpoints or metadata; only :meth:`SecretKey.save`
writes it, to a file with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from egan_jax.errors import KeyFileError

KDF_VERSION = 1
KEY_FILE_FORMAT = "egan_jax-key"
KEY_FILE_VERSION = 1
SECRET_BYTES = 32
_HKDF_SALT = b"egan_jax/kdf/v1"
_LABEL_PREFIX = "egan_jax/v1/"
# scrypt parameters for passphrase keys (RFC 7914's interactive-login setting, 32 MiB of memory).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


def _hkdf(secret: bytes, info: str, length: int) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=_HKDF_SALT, info=info.encode()
    ).derive(secret)


def read_private_json(
    path: str | os.PathLike,
    fmt: str,
    what: str,
    *,
    version: int,
    check_permissions: bool = True,
    missing_hint: str = "check the path",
) -> dict:
    """Read a 0600 JSON file holding secrets, checking existence, mode, JSON, ``format: fmt`` and
    ``version``; :class:`KeyFileError` naming the problem and the fix (``what``: e.g. "key file")."""
    path = Path(path)
    if not path.is_file():
        raise KeyFileError(f"{what} {path} does not exist; {missing_hint}")
    mode = path.stat().st_mode
    if check_permissions and os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{what} {path} is readable by other users (mode {stat.filemode(mode)}); it holds "
            f"secrets: restrict it with `chmod 600 {path}`"
        )
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise KeyFileError(
            f"{path} is not valid JSON ({error.__class__.__name__}); was it truncated?"
        ) from None
    return check_format(record, fmt, version, where=str(path), what=what)


def check_format(record: object, fmt: str, version: int, *, where: str, what: str) -> dict:
    """``record`` if it is a dict with ``format: fmt`` and ``version``; else :class:`KeyFileError`
    (``where``: the file or field it came from, ``what``: the kind of record)."""
    if not isinstance(record, dict) or record.get("format") != fmt:
        raise KeyFileError(f"{where} is not an egan_jax {what} (no 'format: {fmt}')")
    if record.get("version") != version:
        raise KeyFileError(
            f"{where} has {what} version {record.get('version')!r}; this egan_jax reads version "
            f"{version}. Upgrade egan_jax or re-create it with this version"
        )
    return record


class SecretKey:
    """A 256-bit secret. Its repr shows only the public fingerprint."""

    __slots__ = ("_secret", "_fingerprint", "origin", "kdf")

    def __init__(self, secret: bytes, *, origin: str = "random", kdf: dict | None = None):
        if not isinstance(secret, bytes | bytearray) or len(secret) != SECRET_BYTES:
            raise KeyFileError(
                f"a secret key must be exactly {SECRET_BYTES} bytes (256 bits); "
                "make one with `egan keygen --out FILE`"
            )
        self._secret = bytes(secret)
        self._fingerprint = "egk1-" + _hkdf(self._secret, _LABEL_PREFIX + "fingerprint", 8).hex()
        self.origin = origin
        self.kdf = kdf

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def generate(cls) -> SecretKey:
        """A fresh key from the operating system's CSPRNG."""
        return cls(secrets.token_bytes(SECRET_BYTES))

    @classmethod
    def from_bytes(cls, secret: bytes) -> SecretKey:
        return cls(secret)

    @classmethod
    def from_passphrase(cls, passphrase: str, salt: bytes | None = None) -> SecretKey:
        """Derive a key from a passphrase with scrypt (N=2^15, r=8, p=1) and a 16-byte salt.

        With ``salt=None`` a random salt is drawn. The salt is stored in the key file, so the same
        passphrase and salt re-create the same key (``egan keygen --passphrase --salt HEX``).
        """
        if not passphrase:
            raise KeyFileError("the passphrase is empty; give a non-empty passphrase")
        salt = secrets.token_bytes(16) if salt is None else salt
        secret = Scrypt(salt=salt, length=SECRET_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
            passphrase.encode()
        )
        kdf = {"name": "scrypt", "salt": salt.hex(), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
        return cls(secret, origin="passphrase", kdf=kdf)

    # --- public properties --------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """A short public digest naming this key, e.g. ``egk1-3f9a1c0d5e7b2a41``."""
        return self._fingerprint

    def flip_bit(self, index: int) -> SecretKey:
        """A near-miss key: this key with bit ``index`` (0…255) of the secret flipped."""
        if not 0 <= index < 8 * SECRET_BYTES:
            raise ValueError(f"bit index {index} is outside 0..{8 * SECRET_BYTES - 1}")
        flipped = bytearray(self._secret)
        flipped[index // 8] ^= 1 << (index % 8)
        return SecretKey(bytes(flipped), origin="near-miss")

    def __repr__(self) -> str:
        return f"SecretKey(fingerprint={self._fingerprint!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretKey):
            return NotImplemented
        return hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self._fingerprint)

    def __reduce__(self):
        raise TypeError(
            "SecretKey refuses to be pickled so that the secret cannot leak into checkpoints or "
            "caches; save it with SecretKey.save(path) and pass the path instead"
        )

    # --- files --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the key file (versioned JSON) with mode 0600. Refuses to overwrite unless asked."""
        path = Path(path)
        record = {
            "format": KEY_FILE_FORMAT,
            "version": KEY_FILE_VERSION,
            "kdf_version": KDF_VERSION,
            "origin": self.origin,
            "secret": base64.b64encode(self._secret).decode(),
            "fingerprint": self._fingerprint,
        }
        if self.kdf is not None:
            record["passphrase_kdf"] = self.kdf
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise KeyFileError(
                f"{path} exists already; choose another path or pass --force to overwrite it "
                "(models locked with the old key will no longer open with the new one)"
            ) from None
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, indent=2)
            handle.write("\n")
        os.chmod(path, 0o600)  # O_TRUNC keeps an existing file's mode
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, check_permissions: bool = True) -> SecretKey:
        """Read and validate a key file written by :meth:`save` / ``egan keygen``."""
        path = Path(path)
        record = read_private_json(
            path,
            KEY_FILE_FORMAT,
            "key file",
            version=KEY_FILE_VERSION,
            check_permissions=check_permissions,
            missing_hint=f"make one with `egan keygen --out {path}`",
        )
        if record.get("kdf_version") != KDF_VERSION:
            raise KeyFileError(
                f"{path} was written for derivation algorithm egan-kdf-v{record.get('kdf_version')}; "
                f"this egan_jax implements egan-kdf-v{KDF_VERSION}"
            )
        try:
            secret = base64.b64decode(record["secret"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise KeyFileError(
                f"{path} has no valid base64 'secret' field; the file is corrupt"
            ) from None
        if len(secret) != SECRET_BYTES:
            raise KeyFileError(
                f"{path} holds a {8 * len(secret)}-bit secret; egan_jax keys are {8 * SECRET_BYTES}-bit. "
                "The file is truncated or corrupt"
            )
        key = cls(secret, origin=record.get("origin", "random"), kdf=record.get("passphrase_kdf"))
        if record.get("fingerprint") != key.fingerprint:
            raise KeyFileError(
                f"{path}: the stored fingerprint does not match the secret; the file was edited or is "
                "corrupt"
            )
        return key


# --- material derivation ----------------------------------------------------------------------
class _Stream:
    """The SHAKE-256 byte stream of one label's subkey, read front to back."""

    def __init__(self, key: SecretKey, label: str, size_hint: int):
        self._subkey = derive_subkey(key, label)
        self._size = max(64, size_hint)
        self._buffer = hashlib.shake_256(self._subkey).digest(self._size)
        self._position = 0

    def read(self, n: int) -> bytes:
        while self._position + n > self._size:
            self._size *= 2
            self._buffer = hashlib.shake_256(self._subkey).digest(self._size)
        chunk = self._buffer[self._position : self._position + n]
        self._position += n
        return chunk

    def uniform(self, bound: int) -> int:
        limit = 2**64 - (2**64 % bound)
        while True:
            word = int.from_bytes(self.read(8), "big")
            if word < limit:
                return word % bound


def _check_label(label: str) -> None:
    if not label or not isinstance(label, str):
        raise ValueError("a derivation label must be a non-empty string")


def derive_subkey(key: SecretKey, label: str, n_bytes: int = 32) -> bytes:
    """Step 1 of egan-kdf-v1: a label's subkey (e.g. the AES key of the FFX cipher)."""
    _check_label(label)
    return _hkdf(key._secret, _LABEL_PREFIX + label, n_bytes)


def derive_bytes(key: SecretKey, label: str, n: int) -> bytes:
    """The first ``n`` bytes of a label's stream."""
    return _Stream(key, label, n).read(n)


def derive_permutation(key: SecretKey, label: str, n: int) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` (int32 [n]), by Fisher–Yates on the stream."""
    stream = _Stream(key, label, 8 * n + 64)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = stream.uniform(i + 1)
        order[i], order[j] = order[j], order[i]
    return np.asarray(order, dtype=np.int32)


def derive_mask(key: SecretKey, label: str, n: int) -> np.ndarray:
    """``n`` independent fair bits (bool [n]), least significant bit of each byte first."""
    raw = np.frombuffer(derive_bytes(key, label, (n + 7) // 8), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].astype(bool)


def derive_normal(key: SecretKey, label: str, n: int) -> np.ndarray:
    """``n`` standard-normal float64 values (Box–Muller on 53-bit uniforms from the stream).

    For key-derived continuous material such as latent-region offsets.
    """
    stream = _Stream(key, label, 16 * n + 64)
    values = np.empty(n, dtype=np.float64)
    for i in range(0, n, 2):
        u1 = (int.from_bytes(stream.read(8), "big") >> 11) + 1  # (0, 2^53]
        u2 = int.from_bytes(stream.read(8), "big") >> 11
        radius = np.sqrt(-2.0 * np.log(u1 / 2.0**53))
        angle = 2.0 * np.pi * (u2 / 2.0**53)
        values[i] = radius * np.cos(angle)
        if i + 1 < n:
            values[i + 1] = radius * np.sin(angle)
    return values
