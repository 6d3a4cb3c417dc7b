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

import random
import secrets
from collections.abc import Sequence

from egan_jax.encryip.cskeys import (
    CIPHERTEXT_FIELDS,
    PUBLIC_KEY_FORMAT,
    SCHEME_VERSION,
    Ciphertext,
    DecryptionKey,
    OwnerKey,
    PublicKey,
)
from egan_jax.encryip.group import RFC3526_2048, FixedBase, Group, powmod
from egan_jax.errors import KeyMismatchError

__all__ = [
    "BATCH_CHECK_BITS",
    "CIPHERTEXT_FIELDS",
    "PUBLIC_KEY_FORMAT",
    "SCHEME_VERSION",
    "Ciphertext",
    "DecryptionKey",
    "Encryptor",
    "OwnerKey",
    "PublicKey",
    "decrypt",
    "decrypt_class",
    "decrypt_many",
    "encrypt",
    "fake",
    "issue_key",
    "keygen",
]

BATCH_CHECK_BITS = 64


def _rng(rng: random.Random | None) -> random.Random:
    return rng if rng is not None else secrets.SystemRandom()


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
