"""CS-lite = (Gen, Enc, Dec, Fake): Cramer-Shoup "lite" encryption with many keys per public key.

The scheme (EncryIP, Mu et al., AAAI 2024; the paper names CS-lite, its details here are ours where
the paper is not public — see egan_jax/encryip/__init__.py):

- Gen: in a prime-order group (RFC 3526's 2048-bit MODP residues), the owner draws ``g1`` and the
  trapdoor ``t``, sets ``g2 = g1^t``, draws ``sk = (x, y, a, b)`` and publishes
  ``pk = (g1, g2, h = g1^x g2^y, c = g1^a g2^b)``.
- Enc(m; r) = ``(u, v, w, e) = (g1^r, g2^r, h^r m, c^r)``.
- Dec rejects unless ``e = u^a v^b``, else returns ``m = w / (u^x v^y)``.
- Many keys: with ``t`` the owner issues ``(x', y')`` with ``x' + t y' = x + t y (mod q)``. Every such
  key decrypts every honest ciphertext (``v = u^t``) to the same ``m``.
- Fake: ``v = g2^r g1^delta`` with ``delta != 0``, so ``v != u^t``. Under key ``(x', y')`` it decrypts
  to ``m0 * g1^(-delta y')``: a different element for every user, hence (through the hash decoding of
  :meth:`Group.decode_class`) a user-dependent class. That is what tracing reads.

Design choice (ours): **all issued keys share the owner's ``(a, b)``**; only ``(x', y')`` differ. Then
the owner can build Fakes whose validity tag ``e = c^r g1^(delta b) = u^a v^b`` passes every user's
check, so a Fake is accepted by every key, looks like an honest entry to any single user (telling them
apart is the DDH problem), and decodes to a different class under each key. The price: every user
holds ``(a, b)``, so the check ``e = u^a v^b`` no longer keeps *users* from making ciphertexts that
pass; it still rejects tampering and ciphertexts made by anyone without a key (IND-CCA1 against
outsiders, not against insiders). The alternative, per-user ``(a', b')``, would make each Fake fail
the check for all users but one: any single user would spot the Fakes (they are the entries their
key rejects) and a pirate decoder would answer "reject" to every trigger.

Limits that hold for any CS-lite many-key design: two colluding users recover
``t = (x1 - x2) / (y2 - y1) mod q``, and with ``t`` they can tell Fakes from honest entries and mint
untraceable keys. Tracing is sound against one leaked key, not against a coalition.

Randomness: ``rng=None`` means the operating system's CSPRNG (``secrets.SystemRandom``); tests pass a
seeded ``random.Random`` for reproducible numbers. Secret scalars never appear in ``repr``.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from egan_jax.encryip.group import RFC3526_2048, FixedBase, Group, group_by_name, powmod
from egan_jax.errors import KeyFileError, KeyMismatchError, ShapeError
from egan_jax.keys import check_format

SCHEME_VERSION = 1
PUBLIC_KEY_FORMAT = "egan_jax-encryip-public-key"
CIPHERTEXT_FIELDS = ("u", "v", "w", "e")
BATCH_CHECK_BITS = 64


def _rng(rng: random.Random | None) -> random.Random:
    return rng if rng is not None else secrets.SystemRandom()


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


# --- Gen ------------------------------------------------------------------------------------------
def keygen(group: Group = RFC3526_2048, *, rng: random.Random | None = None) -> OwnerKey:
    """Gen: draw ``g1``, the trapdoor ``t`` and ``sk = (x, y, a, b)``; return the owner's key."""
    rng = _rng(rng)
    g1 = group.random_element(rng)
    t = group.random_scalar(rng)
    x, y, a, b = (group.random_scalar(rng) for _ in range(4))
    g2 = group.exp(g1, t)
    h = group.mul(group.exp(g1, x), group.exp(g2, y))
    c = group.mul(group.exp(g1, a), group.exp(g2, b))
    public_key = PublicKey(group, g1, g2, h, c)
    return OwnerKey(public_key, t, DecryptionKey(public_key, x, y, a, b, check=False))


def issue_key(owner: OwnerKey, *, rng: random.Random | None = None) -> DecryptionKey:
    """A fresh user key ``(x', y', a, b)`` with ``x' + t y' = x + t y``: decrypts every honest entry."""
    group = owner.public_key.group
    base = owner.base_key
    y_new = group.random_scalar(_rng(rng))
    x_new = (base._x + owner._t * (base._y - y_new)) % group.q
    return DecryptionKey(owner.public_key, x_new, y_new, base._a, base._b, check=False)


# --- Enc / Fake -----------------------------------------------------------------------------------
class Encryptor:
    """Enc and Fake for one public key; ``precompute=True`` builds fixed-base tables (~0.6 s for
    2048 bits without gmpy2) that make each exponentiation ~6x cheaper: use it for codebooks."""

    def __init__(self, public_key: PublicKey, *, precompute: bool = True, window: int = 6):
        self.public_key = public_key
        group = public_key.group
        names = ("g1", "g2", "h", "c")
        if precompute:
            tables = {name: FixedBase(group, getattr(public_key, name), window) for name in names}
            self._exp = lambda name, exponent: tables[name].exp(exponent)
        else:
            self._exp = lambda name, exponent: group.exp(getattr(public_key, name), exponent)

    def encrypt(self, message: int, *, rng: random.Random | None = None) -> Ciphertext:
        """Enc(m; r) with a fresh uniform ``r``: ``(g1^r, g2^r, h^r m, c^r)``."""
        group, exp = self.public_key.group, self._exp
        group.check_member(message, "message")
        r = group.random_scalar(_rng(rng))
        return Ciphertext(exp("g1", r), exp("g2", r), group.mul(exp("h", r), message), exp("c", r))

    def encrypt_class(
        self, class_id: int, num_classes: int, *, rng: random.Random | None = None
    ) -> Ciphertext:
        """Enc of a uniform element among those that decode to ``class_id``."""
        rng = _rng(rng)
        return self.encrypt(self.public_key.group.encode_class(class_id, num_classes, rng), rng=rng)

    def fake(self, owner: OwnerKey, *, rng: random.Random | None = None) -> Ciphertext:
        """Fake: ``v = g2^r g1^delta`` (``delta != 0``) with a tag that passes every issued key.

        ``w = h^r m0`` for a uniform ``m0``; ``e = c^r g1^(delta b) = u^a v^b``. Under a key with
        second part ``y'`` it decrypts to ``m0 g1^(-delta y')``: a different element per user.
        """
        if owner.public_key != self.public_key:
            raise KeyMismatchError(
                "the owner key belongs to another public key than this encryptor"
            )
        group, rng, exp = self.public_key.group, _rng(rng), self._exp
        while True:
            r, delta = group.random_scalar(rng), group.random_scalar(rng)
            v = group.mul(exp("g2", r), exp("g1", delta))
            if v != 1:
                break
        tag = group.mul(exp("c", r), exp("g1", delta * owner.base_key._b))
        m0 = group.random_element(rng)
        return Ciphertext(exp("g1", r), v, group.mul(exp("h", r), m0), tag)


def encrypt(public_key: PublicKey, message: int, *, rng: random.Random | None = None) -> Ciphertext:
    """Enc(m; r) without precomputation (one-off use; build an :class:`Encryptor` for many)."""
    return Encryptor(public_key, precompute=False).encrypt(message, rng=rng)


def fake(owner: OwnerKey, *, rng: random.Random | None = None) -> Ciphertext:
    """One Fake ciphertext (see :meth:`Encryptor.fake`), without precomputation."""
    return Encryptor(owner.public_key, precompute=False).fake(owner, rng=rng)


# --- Dec ------------------------------------------------------------------------------------------
def decrypt(key: DecryptionKey, ciphertext: Ciphertext) -> int:
    """Dec: check membership and ``e = u^a v^b``, then return ``w / (u^x v^y)``."""
    group = key.public_key.group
    u, v, w, e = (
        group.check_member(getattr(ciphertext, name), f"ciphertext part {name}")
        for name in CIPHERTEXT_FIELDS
    )
    if group.mul(group.exp(u, key._a), group.exp(v, key._b)) != e:
        raise KeyMismatchError(
            f"ciphertext rejected: e != u^a v^b under key {key.fingerprint}. It was tampered with or "
            f"made for another public key than {key.public_key.fingerprint}"
        )
    return group.div(w, group.mul(group.exp(u, key._x), group.exp(v, key._y)))


def decrypt_class(key: DecryptionKey, ciphertext: Ciphertext, num_classes: int) -> int:
    return key.public_key.group.decode_class(decrypt(key, ciphertext), num_classes)


def decrypt_many(
    key: DecryptionKey, ciphertexts: Sequence[Ciphertext], *, rng: random.Random | None = None
) -> list[int]:
    """Dec of many ciphertexts with one batched validity check (~2x faster than :func:`decrypt`).

    Small-exponent batch test (Bellare, Garay, Rabin, EUROCRYPT 1998): for random 64-bit ``s_i``,
    ``prod e_i^s_i = (prod u_i^s_i)^a (prod v_i^s_i)^b``. In a prime-order group (membership is
    checked first) a batch with any invalid ciphertext passes with probability <= 2^-64; the ``s_i``
    come from the CSPRNG unless ``rng`` is given. If the batch fails, every ciphertext is checked
    alone and the first bad one is named.
    """
    group, rng = key.public_key.group, _rng(rng)
    p = group.p
    for i, ct in enumerate(ciphertexts):
        for name in CIPHERTEXT_FIELDS:
            group.check_member(getattr(ct, name), f"ciphertext {i} part {name}")
    sum_u = sum_v = sum_e = 1
    for ct in ciphertexts:
        s = rng.randrange(1, 2**BATCH_CHECK_BITS)
        sum_u = sum_u * powmod(ct.u, s, p) % p
        sum_v = sum_v * powmod(ct.v, s, p) % p
        sum_e = sum_e * powmod(ct.e, s, p) % p
    if group.mul(group.exp(sum_u, key._a), group.exp(sum_v, key._b)) != sum_e:
        for i, ct in enumerate(ciphertexts):
            try:
                decrypt(key, ct)
            except KeyMismatchError as error:
                raise KeyMismatchError(f"ciphertext {i}: {error}") from None
    return [
        group.div(ct.w, group.mul(group.exp(ct.u, key._x), group.exp(ct.v, key._y)))
        for ct in ciphertexts
    ]
