"""CS-lite's key and ciphertext types: the public key ``(g1, g2, h, c)``, a user's secret key
``(x, y, a, b)``, the owner's key (trapdoor ``t`` and base key), and a ciphertext ``(u, v, w, e)``.

The algorithms (Gen, Enc, Dec, Fake) and the scheme's description are in :mod:`.cslite`, which
re-exports these types. Secret scalars never appear in ``repr``; keys refuse to be pickled.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from egan_jax.encryip.group import Group, group_by_name
from egan_jax.errors import KeyFileError, KeyMismatchError, ShapeError
from egan_jax.keys import check_format

SCHEME_VERSION = 1
PUBLIC_KEY_FORMAT = "egan_jax-encryip-public-key"
CIPHERTEXT_FIELDS = ("u", "v", "w", "e")


def _scalar_hex(group: Group, value: int) -> str:
    return value.to_bytes((group.q.bit_length() + 7) // 8, "big").hex()


def _scalar_from(group: Group, text: object, what: str) -> int:
    try:
        value = int(text, 16)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise KeyFileError(f"{what} is not a hex scalar; the key file is corrupt") from None
    if not 0 <= value < group.q:
        raise KeyFileError(f"{what} is outside [0, q) for group {group.name}; the file is corrupt")
    return value


@dataclass(frozen=True)
class PublicKey:
    """``pk = (g1, g2, h, c)`` in ``group``. Public: safe to ship with a model."""

    group: Group
    g1: int
    g2: int
    h: int
    c: int

    def __post_init__(self):
        for name in ("g1", "g2", "h", "c"):
            self.group.check_member(getattr(self, name), f"public key part {name}")

    @property
    def fingerprint(self) -> str:
        """A short public digest naming this public key, e.g. ``eipk1-3f9a1c0d5e7b2a41``."""
        digest = hashlib.sha256(b"egan_jax/encryip/v1/public-key|" + self.group.name.encode())
        for value in (self.g1, self.g2, self.h, self.c):
            digest.update(value.to_bytes(self.group.element_bytes, "big"))
        return "eipk1-" + digest.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"PublicKey(group={self.group.name!r}, fingerprint={self.fingerprint!r})"

    def to_json(self) -> dict:
        record = {"format": PUBLIC_KEY_FORMAT, "version": SCHEME_VERSION, "group": self.group.name}
        record.update(
            {name: self.group.to_hex(getattr(self, name)) for name in ("g1", "g2", "h", "c")}
        )
        record["fingerprint"] = self.fingerprint
        return record

    @classmethod
    def from_json(cls, record: object) -> PublicKey:
        record = check_format(
            record,
            PUBLIC_KEY_FORMAT,
            SCHEME_VERSION,
            where="the public key",
            what=f"{PUBLIC_KEY_FORMAT} record",
        )
        group = group_by_name(record.get("group"))
        try:
            parts = {
                name: group.from_hex(record[name], f"public key part {name}")
                for name in ("g1", "g2", "h", "c")
            }
        except KeyError as missing:
            raise KeyFileError(f"the public key has no field {missing}; it is corrupt") from None
        key = cls(group, **parts)
        if record.get("fingerprint") != key.fingerprint:
            raise KeyFileError("the public key's stored fingerprint does not match its values")
        return key


class DecryptionKey:
    """A secret key ``(x, y, a, b)`` for ``public_key``; its repr shows only the fingerprint."""

    __slots__ = ("public_key", "_x", "_y", "_a", "_b", "_fingerprint")

    def __init__(self, public_key: PublicKey, x: int, y: int, a: int, b: int, *, check=True):
        group = public_key.group
        self.public_key = public_key
        self._x, self._y, self._a, self._b = (v % group.q for v in (x, y, a, b))
        if check:
            g1, g2 = public_key.g1, public_key.g2
            if group.mul(group.exp(g1, self._x), group.exp(g2, self._y)) != public_key.h or (
                group.mul(group.exp(g1, self._a), group.exp(g2, self._b)) != public_key.c
            ):
                raise KeyMismatchError(
                    f"this secret key does not belong to public key {public_key.fingerprint} "
                    "(h != g1^x g2^y or c != g1^a g2^b); it is forged, corrupt, or for another model"
                )
        digest = hashlib.sha256(b"egan_jax/encryip/v1/user-key|" + public_key.fingerprint.encode())
        for value in (self._x, self._y, self._a, self._b):
            digest.update(_scalar_hex(group, value).encode())
        self._fingerprint = "eiuk1-" + digest.hexdigest()[:16]

    @property
    def fingerprint(self) -> str:
        """A short public digest naming this key (one-way: it reveals nothing usable)."""
        return self._fingerprint

    def __repr__(self) -> str:
        return f"DecryptionKey(fingerprint={self._fingerprint!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DecryptionKey):
            return NotImplemented
        return (self.public_key, self._x, self._y, self._a, self._b) == (
            other.public_key,
            other._x,
            other._y,
            other._a,
            other._b,
        )

    def __hash__(self) -> int:
        return hash(self._fingerprint)

    def __reduce__(self):
        raise TypeError("DecryptionKey refuses to be pickled; write it with registry.save_user_key")

    def secret_record(self) -> dict:
        """The secret scalars as hex (for key files written with mode 0600 only)."""
        group = self.public_key.group
        names = ("x", "y", "a", "b")
        values = (self._x, self._y, self._a, self._b)
        return {name: _scalar_hex(group, value) for name, value in zip(names, values, strict=True)}

    @classmethod
    def from_secret_record(cls, public_key: PublicKey, record: object) -> DecryptionKey:
        if not isinstance(record, dict):
            raise KeyFileError("the secret key record is not a JSON object; the file is corrupt")
        group = public_key.group
        try:
            scalars = [_scalar_from(group, record[n], f"secret part {n}") for n in "xyab"]
        except KeyError as missing:
            raise KeyFileError(f"the secret key has no field {missing}; it is corrupt") from None
        return cls(public_key, *scalars)


class OwnerKey:
    """The owner's master secret: the trapdoor ``t = log_g1 g2`` and the base key ``(x, y, a, b)``."""

    __slots__ = ("public_key", "base_key", "_t")

    def __init__(self, public_key: PublicKey, t: int, base_key: DecryptionKey):
        group = public_key.group
        if not 0 < t < group.q or group.exp(public_key.g1, t) != public_key.g2:
            raise KeyMismatchError(
                "the trapdoor does not satisfy g2 = g1^t; the owner key is corrupt"
            )
        if base_key.public_key != public_key:
            raise KeyMismatchError("the owner's base key belongs to another public key")
        self.public_key, self.base_key, self._t = public_key, base_key, t

    @property
    def fingerprint(self) -> str:
        return self.public_key.fingerprint

    def __repr__(self) -> str:
        return f"OwnerKey(public_key={self.public_key.fingerprint!r})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("OwnerKey refuses to be pickled; it lives only in the 0600 registry file")

    def secret_record(self) -> dict:
        return {"t": _scalar_hex(self.public_key.group, self._t), **self.base_key.secret_record()}

    @classmethod
    def from_secret_record(cls, public_key: PublicKey, record: object) -> OwnerKey:
        base = DecryptionKey.from_secret_record(public_key, record)
        assert isinstance(record, dict)
        if "t" not in record:
            raise KeyFileError("the owner record has no trapdoor 't'; the registry is corrupt")
        return cls(public_key, _scalar_from(public_key.group, record["t"], "trapdoor t"), base)

    def issued_key(self, record: object) -> DecryptionKey:
        """Rebuild an issued user key from its ``{"x": .., "y": ..}`` record (registry side).

        Checks ``x' + t y' = x + t y (mod q)`` by scalar arithmetic (no exponentiation); the user's
        ``(a, b)`` are the owner's.
        """
        group, base = self.public_key.group, self.base_key
        if not isinstance(record, dict) or not {"x", "y"} <= record.keys():
            raise KeyFileError("a user's key record needs hex fields 'x' and 'y'; it is corrupt")
        x, y = (_scalar_from(group, record[n], f"user key part {n}") for n in "xy")
        if (x + self._t * y - base._x - self._t * base._y) % group.q:
            raise KeyMismatchError(
                "this user key was not issued for this owner key (x + t y differs)"
            )
        return DecryptionKey(self.public_key, x, y, base._a, base._b, check=False)

    def split(self, ciphertext: Ciphertext) -> tuple[int, int]:
        """``(w / u^(x + t y), v / u^t)``: under a key with second part ``y'`` the ciphertext
        decrypts to ``first * second^(-y')`` (``second = 1`` exactly for honest ciphertexts)."""
        group, base, t = self.public_key.group, self.base_key, self._t
        u = ciphertext.u
        rest = group.div(ciphertext.w, group.exp(u, base._x + t * base._y))
        return rest, group.div(ciphertext.v, group.exp(u, t))

    @staticmethod
    def plaintext_under(parts: tuple[int, int], key: DecryptionKey) -> int:
        """The element a :meth:`split` ciphertext decrypts to under ``key`` (one exponentiation)."""
        group = key.public_key.group
        return group.mul(parts[0], group.exp(parts[1], group.q - key._y))

    def is_honest(self, ciphertext: Ciphertext) -> bool:
        """Whether ``v = u^t`` (only the owner can tell honest entries from Fakes)."""
        return self.public_key.group.exp(ciphertext.u, self._t) == ciphertext.v


@dataclass(frozen=True)
class Ciphertext:
    """``(u, v, w, e)``, each an element of the public key's group."""

    u: int
    v: int
    w: int
    e: int

    def to_json(self, group: Group) -> list[str]:
        return [group.to_hex(getattr(self, name)) for name in CIPHERTEXT_FIELDS]

    @classmethod
    def from_json(cls, record: object, group: Group, what: str = "ciphertext") -> Ciphertext:
        if not isinstance(record, list | tuple) or len(record) != len(CIPHERTEXT_FIELDS):
            raise ShapeError(f"{what} must be a list of 4 hex elements (u, v, w, e)")
        return cls(
            *(
                group.from_hex(text, f"{what} part {name}")
                for text, name in zip(record, CIPHERTEXT_FIELDS, strict=True)
            )
        )
