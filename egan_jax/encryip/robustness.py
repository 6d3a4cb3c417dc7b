"""What an attacker can do to an EncryIP model: learn the index map, fine-tune, prune, forge keys.

* :func:`attacker_map` — the honest limit of a label-space scheme: with a few labelled examples,
  vote per output index for the class it fires on (``"hard"``: majority of argmax indices;
  ``"soft"``: summed softmax mass). Indices that never win a hard vote count for no class (-1).
* :func:`finetune_through_decoder` — fine-tuning on the attacker's own labels through a decoder
  (a leaked user's map, or the attacker's estimated map): class-level cross-entropy of the decoded
  probabilities, so the attacker keeps the pipeline they have and adapts it.
* Key forging: :func:`forged_keys` (one part of a user key changed; a random key pair of another
  owner) and :func:`colluded_key` (two users recover the trapdoor and mint a new key — the known
  limit of CS-lite many-key tracing). :func:`unchecked_map` decrypts a codebook while ignoring the
  validity check, as a pirate who does not care about rejections would.
Pruning is :func:`egan_jax.attacks.prune_model` (global magnitude), imported by the report.
"""

from __future__ import annotations

import random

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from egan_jax.encryip import cslite
from egan_jax.encryip.codebook import Codebook
from egan_jax.encryip.cslite import DecryptionKey
from egan_jax.errors import ConfigError, ShapeError

VOTES = ("hard", "soft")


def attacker_map(
    logits: np.ndarray, labels: np.ndarray, num_classes: int, *, vote: str = "hard"
) -> np.ndarray:
    """int32 [N]: each output index's class by vote over labelled examples (-1: no hard vote)."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ShapeError(f"need logits [n, N] and labels [n]; got {logits.shape}, {labels.shape}")
    size = logits.shape[1]
    if vote == "hard":
        counts = np.zeros((size, num_classes))
        np.add.at(counts, (np.argmax(logits, axis=1), labels), 1.0)
    elif vote == "soft":
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        counts = probabilities.T @ np.eye(num_classes)[labels]
    else:
        raise ConfigError(f"vote must be one of {VOTES}, got {vote!r}")
    mapping = np.argmax(counts, axis=1).astype(np.int32)
    mapping[counts.sum(axis=1) == 0] = -1
    return mapping


def per_class_sample(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` examples of every class (fewer if a class has fewer)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xE1C]))
    chosen = [rng.permutation(np.flatnonzero(labels == y))[:per_class] for y in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


@nnx.jit
def _finetune_step(model, optimizer, membership: jax.Array, x: jax.Array, y: jax.Array):
    def loss_fn(model: nnx.Module):
        mass = jax.nn.softmax(model(x), axis=-1) @ membership
        return -jnp.mean(jnp.log(jnp.take_along_axis(mass, y[:, None], axis=1) + 1e-9))

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def finetune_through_decoder(
    model: nnx.Module,
    index_to_class: np.ndarray,
    num_classes: int,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    steps: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
) -> nnx.Module:
    """A fine-tuned copy of ``model``: Adam on ``-log P(y)``, ``P`` the decoded class mass.

    A short attack loop (tens to hundreds of steps on one device), not a training run: it needs
    the stolen model object and no checkpointing, so it does not go through the generic loop.
    """
    if steps < 1 or len(images) == 0 or len(images) != len(labels):
        raise ConfigError("fine-tuning needs steps >= 1 and as many labels as images (>= 1)")
    model = nnx.clone(model)
    model.train()
    optimizer = nnx.Optimizer(model, optax.adam(learning_rate), wrt=nnx.Param)
    membership = jax.nn.one_hot(jnp.asarray(index_to_class), num_classes)  # -1 rows are zero
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xF17E]))
    for _ in range(steps):
        chosen = rng.choice(len(images), size=min(batch_size, len(images)), replace=False)
        _finetune_step(
            model, optimizer, membership, jnp.asarray(images[chosen]), jnp.asarray(labels[chosen])
        )
    model.eval()
    return model


# --- keys -----------------------------------------------------------------------------------------
def unchecked_map(codebook: Codebook, key: DecryptionKey) -> np.ndarray:
    """int32 [N]: ``decode(w / (u^x v^y))`` for every entry, skipping the validity check ``e``
    and the public-key match (what a pirate decoder that ignores rejections would output)."""
    group, k = codebook.public_key.group, codebook.num_classes
    x, y = key._x, key._y
    return np.asarray(
        [
            group.decode_class(
                group.div(ct.w, group.mul(group.exp(ct.u, x), group.exp(ct.v, y))), k
            )
            for ct in codebook.entries
        ],
        np.int32,
    )


def forged_keys(key: DecryptionKey, *, rng: random.Random) -> dict[str, DecryptionKey]:
    """Keys an attacker can build without the trapdoor: ``key`` with one part replaced by a random
    scalar (x, y, a or b), and a fresh key pair of another owner in the same group."""
    public_key, group = key.public_key, key.public_key.group
    parts = {"x": key._x, "y": key._y, "a": key._a, "b": key._b}
    forged = {}
    for name in parts:
        changed = dict(parts, **{name: group.random_scalar(rng)})
        forged[f"user key, {name} changed"] = DecryptionKey(public_key, **changed, check=False)
    other = cslite.keygen(group, rng=rng)
    forged["random key pair"] = cslite.issue_key(other, rng=rng)
    return forged


def colluded_key(
    first: DecryptionKey, second: DecryptionKey, *, rng: random.Random
) -> DecryptionKey:
    """Two users' keys give ``t = (x1 - x2) / (y2 - y1) mod q``; with it they mint a fresh key
    ``(x, y)`` on the line ``x + t y = x1 + t y1`` that decrypts every honest entry and that no
    registry lists."""
    group = first.public_key.group
    q = group.q
    if first.public_key != second.public_key or first._y == second._y:
        raise ConfigError("collusion needs two different keys of one public key")
    t = (first._x - second._x) * pow((second._y - first._y) % q, -1, q) % q
    y = group.random_scalar(rng)
    x = (first._x + t * (first._y - y)) % q
    return DecryptionKey(first.public_key, x, y, first._a, first._b)
