"""A training run's codebook and trigger inputs, derived deterministically from the owner's secret.

The generic loop builds a family from its config alone, several times per run (train step,
evaluation, checkpoint fingerprint, resumption), so the codebook and the triggers must come out
identical each time without being stored in the config. They are derived from the owner's master
secret (trapdoor and base key, read from the 0600 registry) and the codebook parameters:

    seed = HMAC-SHA256(owner secret, "egan_jax/encryip/v1/run|K|per_class|num_fakes|label")

The codebook's randomness (the ``r`` of every ciphertext, the class encodings, the Fakes' deltas, the
shuffle) is drawn from :class:`KeyedRandom`, a ``random.Random`` whose bits are SHA-256 in counter
mode under that seed (so it is unpredictable without the owner's secret, unlike the Mersenne
Twister). The triggers are uniform noise images in [-1, 1] from a Philox generator keyed by a second
HMAC output. ``label`` lets one owner make several independent codebooks (one per model).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from dataclasses import dataclass

import numpy as np

from egan_jax.encryip.codebook import Codebook, CodebookSecret, build_codebook
from egan_jax.encryip.cslite import OwnerKey
from egan_jax.errors import ConfigError

_DOMAIN = b"egan_jax/encryip/v1/run"


class KeyedRandom(random.Random):
    """``random.Random`` driven by SHA-256(seed || counter): deterministic and, without the seed,
    unpredictable. Only ``getrandbits`` and ``random`` draw bits (``randrange``, ``shuffle`` and
    the rest of ``random.Random`` go through them)."""

    def __init__(self, seed: bytes):
        if not isinstance(seed, bytes) or len(seed) < 16:
            raise ConfigError("KeyedRandom needs a seed of at least 16 bytes")
        self._seed, self._counter, self._pool = seed, 0, b""
        super().__init__(0)

    def seed(self, *args, **kwargs) -> None:  # the stream is fixed by the constructor's seed
        pass

    def __repr__(self) -> str:
        return "KeyedRandom(<secret seed>)"

    def _bytes(self, count: int) -> bytes:
        while len(self._pool) < count:
            block = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._pool += block
            self._counter += 1
        out, self._pool = self._pool[:count], self._pool[count:]
        return out

    def getrandbits(self, k: int) -> int:
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        if k == 0:
            return 0
        size = (k + 7) // 8
        return int.from_bytes(self._bytes(size), "big") >> (8 * size - k)

    def random(self) -> float:
        return self.getrandbits(53) * 2.0**-53

    def getstate(self):
        raise TypeError("KeyedRandom has no exportable state (it would reveal the seed)")

    def setstate(self, state) -> None:
        raise TypeError("KeyedRandom has no importable state")


def _owner_material(owner: OwnerKey) -> bytes:
    return json.dumps(owner.secret_record(), sort_keys=True).encode()


def derived_seed(
    owner: OwnerKey, purpose: str, num_classes: int, per_class: int, num_fakes: int, label: str
) -> bytes:
    """32 secret bytes for ``purpose`` ("codebook" or "triggers") of one run's parameters."""
    message = b"|".join(
        [_DOMAIN, purpose.encode(), *(str(v).encode() for v in (num_classes, per_class)), b""]
    )
    message += f"{num_fakes}|{label}".encode()
    return hmac.new(_owner_material(owner), message, hashlib.sha256).digest()


@dataclass(frozen=True)
class RunSecrets:
    """Owner side: the run's public codebook, its secret (index classes, Fake order), the triggers."""

    codebook: Codebook
    secret: CodebookSecret
    triggers: np.ndarray  # float32 [F, S, S, C] in [-1, 1]; trigger j -> secret.fake_indices[j]

    def __repr__(self) -> str:
        return (
            f"RunSecrets(codebook={self.codebook.fingerprint!r}, size={self.codebook.size}, "
            f"triggers={self.triggers.shape})"
        )


def run_secrets(
    owner: OwnerKey,
    *,
    num_classes: int,
    per_class: int,
    num_fakes: int,
    image_shape: tuple[int, int, int],
    label: str = "default",
) -> RunSecrets:
    """The codebook (``K * per_class`` honest entries + ``num_fakes`` Fakes) and ``num_fakes``
    trigger images of shape ``image_shape`` (H, W, C) for one run; the same arguments always give
    the same result."""
    if num_fakes < 1:
        raise ConfigError(f"model.num_fakes={num_fakes}: tracing needs at least one trigger")
    params = (num_classes, per_class, num_fakes, label)
    rng = KeyedRandom(derived_seed(owner, "codebook", *params))
    book, secret = build_codebook(owner, num_classes, per_class, num_fakes, rng=rng)
    trigger_seed = derived_seed(owner, "triggers", *params)
    generator = np.random.Generator(
        np.random.Philox(key=np.frombuffer(trigger_seed[:16], dtype=np.uint64))
    )
    triggers = generator.uniform(-1.0, 1.0, (num_fakes, *image_shape)).astype(np.float32)
    return RunSecrets(book, secret, triggers)
