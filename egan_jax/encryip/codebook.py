"""The EncryIP codebook: N encrypted labels, their decryption, and tracing with Fake entries.

The owner encrypts ``per_class`` labels of every class (fresh ``r`` each) and ``num_fakes`` Fake
ciphertexts, and shuffles them: ``N = K * per_class + num_fakes`` entries. A model is trained on
N-way outputs (an example of class ``y`` gets one of ``y``'s indices at random each time:
:func:`randomized_targets`); trigger ``j`` is trained to output Fake ``j``. The codebook (public) ships
with the model; which entries are which stays in the owner's :class:`CodebookSecret` (0600).

A user decrypts the codebook once (:func:`decrypt_codebook`: index -> class) and reads class
probabilities as sums of the softmax over each class's indices (:func:`class_probabilities`). Every
issued key maps the honest entries identically; the Fake entries map to user-dependent classes, and
:func:`trace` compares the classes a suspect pipeline returns for the triggers with each user's.

Tracing statistics: for a pipeline that does not use user ``j``'s key, each trigger's class matches
user ``j``'s class with probability ``1/K`` independently (the classes are hash-uniform and drawn
independently per Fake), so user ``j``'s score is Binomial(F, 1/K). We accuse the best user only if
their score reaches the threshold ``tau`` with ``n_users * P(Binomial(F, 1/K) >= tau) <= alpha``:
the chance of accusing anyone falsely is at most ``alpha`` (union bound over users).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.encryip import cslite
from egan_jax.encryip.cslite import Ciphertext, DecryptionKey, OwnerKey, PublicKey
from egan_jax.encryip.registry import read_private_json, write_private_json
from egan_jax.errors import ConfigError, KeyFileError, KeyMismatchError, ShapeError

CODEBOOK_FORMAT = "egan_jax-encryip-codebook"
SECRET_FORMAT = "egan_jax-encryip-codebook-secret"
FILE_VERSION = 1


@dataclass(frozen=True)
class Codebook:
    """Public: the public key, the number of classes and the N ciphertexts in the owner's order."""

    public_key: PublicKey
    num_classes: int
    entries: tuple[Ciphertext, ...] = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.entries)

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(f"{self.public_key.fingerprint}|{self.num_classes}|".encode())
        group = self.public_key.group
        for entry in self.entries:
            digest.update("".join(entry.to_json(group)).encode())
        return "eicb1-" + digest.hexdigest()[:16]

    def to_json(self) -> dict:
        group = self.public_key.group
        return {
            "format": CODEBOOK_FORMAT,
            "version": FILE_VERSION,
            "num_classes": self.num_classes,
            "public_key": self.public_key.to_json(),
            "entries": [entry.to_json(group) for entry in self.entries],
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_json(cls, record: object) -> Codebook:
        if not isinstance(record, dict) or record.get("format") != CODEBOOK_FORMAT:
            raise KeyFileError(f"not an egan_jax codebook (no 'format: {CODEBOOK_FORMAT}')")
        if record.get("version") != FILE_VERSION:
            raise KeyFileError(
                f"codebook version {record.get('version')!r}; this egan_jax reads {FILE_VERSION}"
            )
        public_key = cslite.PublicKey.from_json(record.get("public_key"))
        num_classes, entries = record.get("num_classes"), record.get("entries")
        if not isinstance(num_classes, int) or num_classes < 2 or not isinstance(entries, list):
            raise ShapeError("codebook needs an int num_classes >= 2 and a list of entries")
        book = cls(
            public_key,
            num_classes,
            tuple(
                Ciphertext.from_json(entry, public_key.group, f"codebook entry {i}")
                for i, entry in enumerate(entries)
            ),
        )
        if record.get("fingerprint") != book.fingerprint:
            raise KeyFileError("the codebook's stored fingerprint does not match its entries")
        return book

    def save(self, path: str | os.PathLike) -> Path:
        """Write the codebook (public: ordinary file mode)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Codebook:
        path = Path(path)
        if not path.is_file():
            raise KeyFileError(f"codebook {path} does not exist; check the path")
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise KeyFileError(f"codebook {path} is not valid JSON; was it truncated?") from None


@dataclass(frozen=True)
class CodebookSecret:
    """Owner only: the class of every honest entry (-1 for Fakes) and the Fake indices in trigger
    order (trigger ``j`` is trained to output entry ``fake_indices[j]``)."""

    codebook_fingerprint: str
    num_classes: int
    classes: np.ndarray = field(repr=False)
    fake_indices: np.ndarray = field(repr=False)

    @property
    def num_fakes(self) -> int:
        return len(self.fake_indices)

    def label_table(self) -> np.ndarray:
        """int32 [K, per_class]: row ``y`` lists the indices of class ``y``'s honest entries."""
        rows = [np.flatnonzero(self.classes == y) for y in range(self.num_classes)]
        if len({len(row) for row in rows}) != 1:
            raise ShapeError("the codebook has unequal numbers of entries per class")
        return np.stack(rows).astype(np.int32)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        record = {
            "format": SECRET_FORMAT,
            "version": FILE_VERSION,
            "codebook_fingerprint": self.codebook_fingerprint,
            "num_classes": self.num_classes,
            "classes": [int(c) for c in self.classes],
            "fake_indices": [int(i) for i in self.fake_indices],
        }
        return write_private_json(path, record, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, *, check_permissions: bool = True) -> CodebookSecret:
        record = read_private_json(
            path, SECRET_FORMAT, "codebook secret", check_permissions=check_permissions
        )
        try:
            secret = cls(
                str(record["codebook_fingerprint"]),
                int(record["num_classes"]),
                np.asarray(record["classes"], dtype=np.int32),
                np.asarray(record["fake_indices"], dtype=np.int32),
            )
        except (KeyError, TypeError, ValueError):
            raise KeyFileError(f"codebook secret {path} is missing fields; corrupt") from None
        fakes = np.flatnonzero(secret.classes < 0)
        if not np.array_equal(np.sort(secret.fake_indices), fakes):
            raise KeyFileError(f"codebook secret {path}: Fake indices disagree with classes")
        return secret

    def check_matches(self, codebook: Codebook) -> None:
        if codebook.fingerprint != self.codebook_fingerprint:
            raise KeyMismatchError(
                f"this codebook secret is for codebook {self.codebook_fingerprint}, not "
                f"{codebook.fingerprint}; pass the secret written together with this codebook"
            )


def build_codebook(
    owner: OwnerKey,
    num_classes: int,
    per_class: int,
    num_fakes: int = 0,
    *,
    rng: random.Random | None = None,
    precompute: bool = True,
) -> tuple[Codebook, CodebookSecret]:
    """Encrypt ``per_class`` labels per class (fresh ``r`` each) and ``num_fakes`` Fakes, shuffled."""
    if num_classes < 2 or per_class < 1 or num_fakes < 0:
        raise ConfigError(
            f"need num_classes >= 2, per_class >= 1, num_fakes >= 0; got {num_classes}, "
            f"{per_class}, {num_fakes}"
        )
    rng = rng if rng is not None else secrets.SystemRandom()
    encryptor = cslite.Encryptor(owner.public_key, precompute=precompute)
    items = [
        (encryptor.encrypt_class(y, num_classes, rng=rng), y)
        for y in range(num_classes)
        for _ in range(per_class)
    ]
    items += [(encryptor.fake(owner, rng=rng), -1) for _ in range(num_fakes)]
    rng.shuffle(items)
    book = Codebook(owner.public_key, num_classes, tuple(ct for ct, _ in items))
    classes = np.asarray([y for _, y in items], dtype=np.int32)
    fake_indices = np.flatnonzero(classes < 0).astype(np.int32)
    rng.shuffle(order := list(range(len(fake_indices))))
    secret = CodebookSecret(book.fingerprint, num_classes, classes, fake_indices[order])
    return book, secret


def decrypt_codebook(codebook: Codebook, key: DecryptionKey) -> np.ndarray:
    """int32 [N]: the class each codebook index decrypts to under ``key`` (index -> class map)."""
    if key.public_key != codebook.public_key:
        raise KeyMismatchError(
            f"key {key.fingerprint} belongs to public key {key.public_key.fingerprint}, but this "
            f"codebook was made for {codebook.public_key.fingerprint}; use the key issued for it"
        )
    group, k = codebook.public_key.group, codebook.num_classes
    plaintexts = cslite.decrypt_many(key, codebook.entries)
    return np.asarray([group.decode_class(m, k) for m in plaintexts], np.int32)


def class_probabilities(
    logits: jax.Array, index_to_class: jax.Array, num_classes: int
) -> jax.Array:
    """[B, K]: ``P(class k) = sum of softmax(logits) over the indices that decrypt to k``.

    ``logits`` [B, N], ``index_to_class`` int [N] (entries < 0 count for no class). Jittable with
    ``num_classes`` static.
    """
    chex.assert_rank(logits, 2)
    chex.assert_shape(index_to_class, (logits.shape[1],))
    probabilities = jax.nn.softmax(logits, axis=-1)
    return probabilities @ jax.nn.one_hot(index_to_class, num_classes, dtype=probabilities.dtype)


def class_sum_cross_entropy(
    logits: jax.Array, labels: jax.Array, label_table: jax.Array
) -> jax.Array:
    """float [B]: ``-log`` of the softmax mass of each label's indices (the class-sum objective).

    ``logits`` [B, N], ``labels`` int [B], ``label_table`` int [K, m] (row ``y``: class ``y``'s
    indices, :meth:`CodebookSecret.label_table`). Equals ``logsumexp(all N) - logsumexp(the
    label's m)``: the plain K-way cross-entropy of the classes a key holder reads, Fakes included
    in the normaliser as in :func:`class_probabilities`.
    """
    chex.assert_rank(logits, 2)
    chex.assert_rank(labels, 1)
    chex.assert_rank(label_table, 2)
    own = jnp.take_along_axis(logits, jnp.asarray(label_table)[labels], axis=1)  # [B, m]
    return jax.nn.logsumexp(logits, axis=-1) - jax.nn.logsumexp(own, axis=-1)


def randomized_targets(rng: jax.Array, labels: jax.Array, label_table: jax.Array) -> jax.Array:
    """int32 [B]: for each label ``y``, one of ``y``'s codebook indices uniformly at random."""
    chex.assert_rank(labels, 1)
    chex.assert_rank(label_table, 2)
    choice = jax.random.randint(rng, labels.shape, 0, label_table.shape[1])
    return jnp.asarray(label_table)[labels, choice]


# --- tracing ------------------------------------------------------------------------------------
def fake_classes(
    owner: OwnerKey,
    codebook: Codebook,
    secret: CodebookSecret,
    keys: Mapping[str, DecryptionKey],
) -> dict[str, np.ndarray]:
    """Owner side: int32 [F] per user, the class each trigger's Fake decodes to under their key.

    Uses ``u^x' v^y' = u^(x + t y) (v / u^t)^(y')``: one exponentiation per user and Fake (the same
    numbers as :func:`cslite.decrypt_class` under each key, which the tests check).
    """
    secret.check_matches(codebook)
    group, k = codebook.public_key.group, codebook.num_classes
    parts = [owner.split(codebook.entries[int(index)]) for index in secret.fake_indices]
    result = {}
    for user_id, key in keys.items():
        if key.public_key != codebook.public_key:
            raise KeyMismatchError(f"user {user_id}'s key is for another public key")
        result[user_id] = np.asarray(
            [group.decode_class(owner.plaintext_under(p, key), k) for p in parts], np.int32
        )
    return result


def binomial_tail(n: int, k: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)`` (exact sum)."""
    if k <= 0:
        return 1.0
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


@dataclass(frozen=True)
class TraceResult:
    """Who the suspect pipeline's trigger answers point to, with the statistics behind it."""

    accused: str | None
    scores: dict[str, int]
    p_values: dict[str, float]
    threshold: int
    num_queries: int
    chance_match: float
    false_accusation_bound: float


def trace(
    observed: Sequence[int] | np.ndarray,
    expected: Mapping[str, np.ndarray],
    num_classes: int,
    *,
    false_accusation_rate: float = 1e-6,
) -> TraceResult:
    """Score every user by how many trigger classes match theirs; accuse one only if significant.

    ``observed`` int [F]: the classes the suspect pipeline returned for the triggers, in trigger
    order (-1 for no answer). ``expected``: :func:`fake_classes`. The chance that any user who is not
    behind the pipeline reaches the threshold is at most ``false_accusation_rate``. The top scorer is
    accused only if they reach the threshold alone (a tie at the top accuses nobody).
    """
    observed = np.asarray(observed)
    if observed.ndim != 1 or not expected:
        raise ShapeError("observed must be a 1-D array of classes and expected a non-empty mapping")
    num_fakes, chance = observed.shape[0], 1.0 / num_classes
    for user_id, classes in expected.items():
        if np.shape(classes) != (num_fakes,):
            raise ShapeError(
                f"user {user_id}: {np.shape(classes)} expected classes for {num_fakes} answers"
            )
    per_user = false_accusation_rate / len(expected)
    threshold = next(
        (k for k in range(num_fakes + 1) if binomial_tail(num_fakes, k, chance) <= per_user), None
    )
    if threshold is None:
        needed = math.ceil(math.log(per_user) / math.log(chance))
        raise ConfigError(
            f"{num_fakes} triggers cannot reach a false accusation rate of {false_accusation_rate} "
            f"for {len(expected)} users and {num_classes} classes; use at least {needed} triggers"
        )
    scores = {uid: int(np.sum(observed == np.asarray(c))) for uid, c in expected.items()}
    p_values = {uid: binomial_tail(num_fakes, s, chance) for uid, s in scores.items()}
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    best, best_score = ranked[0]
    unique = len(ranked) == 1 or ranked[1][1] < best_score
    accused = best if best_score >= threshold and unique else None
    return TraceResult(
        accused,
        scores,
        p_values,
        threshold,
        num_fakes,
        chance,
        len(expected) * binomial_tail(num_fakes, threshold, chance),
    )
