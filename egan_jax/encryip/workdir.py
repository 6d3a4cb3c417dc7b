"""A trained EncryIP run as the owner and its users handle it: publish the codebook, decrypt with a
user key, export the triggers, trace a suspect.

The owner publishes ``WORKDIR/codebook.json`` (public: ciphertexts and the public key) next to the
checkpoint; a user with the checkpoint, the codebook and their key file decrypts the codebook once
and classifies. The checkpoint's stored fingerprint must equal the codebook's, so a codebook of
another run is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from egan_jax.encryip import codebook as cb
from egan_jax.encryip import pipeline as pl
from egan_jax.encryip.codebook import Codebook
from egan_jax.encryip.cslite import DecryptionKey
from egan_jax.errors import ConfigError, ShapeError

CODEBOOK_FILE = "codebook.json"


def _owner_side(workdir: Path, registry_path: str | Path):
    from egan_jax.config import read_config
    from egan_jax.encryip.registry import Registry
    from egan_jax.families import encryip as family

    config = read_config(Path(workdir) / "config.json")
    if config.family != "encryip":
        raise ConfigError(f"{workdir} holds a {config.family!r} run, not an encryip one")
    registry = Registry.load(registry_path)
    return config, registry, family.run_secrets(config, registry.owner)


def publish_codebook(
    workdir: str | Path, registry_path: str | Path, out: str | Path | None = None
) -> Path:
    """Write the run's public codebook (default ``WORKDIR/codebook.json``), checked against the
    checkpoint's fingerprint."""
    from egan_jax.train import load_trained

    workdir = Path(workdir)
    _, _, secrets = _owner_side(workdir, registry_path)
    load_trained(workdir, key_fingerprint=secrets.codebook.fingerprint)  # refuses another run
    return secrets.codebook.save(Path(out) if out else workdir / CODEBOOK_FILE)


def load_for_user(workdir: str | Path, codebook_path: str | Path | None = None):
    """``(config, model, codebook)`` of a run, the codebook matched to the checkpoint."""
    from egan_jax.train import load_trained

    workdir = Path(workdir)
    path = Path(codebook_path) if codebook_path else workdir / CODEBOOK_FILE
    book = Codebook.load(path)
    config, models, _ = load_trained(workdir, key_fingerprint=book.fingerprint)
    return config, models["classifier"], book


def classify(
    workdir: str | Path,
    key: DecryptionKey,
    images: np.ndarray,
    *,
    codebook_path: str | Path | None = None,
) -> np.ndarray:
    """int32 [n]: classes of float images in [-1, 1] ([n, H, W, C]) as ``key``'s holder reads them."""
    config, model, book = load_for_user(workdir, codebook_path)
    expected = (config.data.image_size, config.data.image_size, config.data.channels)
    if images.ndim != 4 or images.shape[1:] != expected:
        raise ShapeError(f"images must be [n, {', '.join(map(str, expected))}], got {images.shape}")
    mapping = cb.decrypt_codebook(book, key)
    return pl.decode(pl.predict_logits(model, images), mapping, book.num_classes)


def split_accuracy(
    workdir: str | Path, key: DecryptionKey, split: str, *, codebook_path=None
) -> dict[str, Any]:
    """A user's accuracy on a split of the run's dataset."""
    from egan_jax.data import to_float
    from egan_jax.families import classifier as plain

    config, model, book = load_for_user(workdir, codebook_path)
    images, labels = plain._load(config, split)
    mapping = cb.decrypt_codebook(book, key)
    predicted = pl.decode(pl.predict_logits(model, to_float(images)), mapping, book.num_classes)
    return {
        "split": split,
        "images": len(labels),
        "accuracy": float(np.mean(predicted == labels)),
        "key": key.fingerprint,
        "codebook": book.fingerprint,
    }


def export_triggers(workdir: str | Path, registry_path: str | Path, out: str | Path) -> Path:
    """Save the F trigger images (float32 [-1, 1], ``.npy``) for querying an outside black box."""
    _, _, secrets = _owner_side(Path(workdir), registry_path)
    out = Path(out)
    np.save(out, secrets.triggers)
    return out


def trace_suspect(
    workdir: str | Path,
    registry_path: str | Path,
    *,
    suspect_key: DecryptionKey | None = None,
    answers: list[int] | np.ndarray | None = None,
) -> cb.TraceResult:
    """Trace a suspect: either the classes an outside black box returned for the exported
    triggers (``answers``), or a pipeline built here from the run's model and a decoder key found
    with the suspect (queried as a black box)."""
    from egan_jax.train import load_trained

    if (suspect_key is None) == (answers is None):
        raise ConfigError("pass exactly one of a suspect's key or the suspect's answers")
    config, registry, secrets = _owner_side(Path(workdir), registry_path)
    book, secret = secrets.codebook, secrets.secret
    expected = cb.fake_classes(registry.owner, book, secret, registry.user_keys())
    if not expected:
        raise ConfigError(f"{registry_path} lists no users to trace")
    rate = config.loss.false_accusation_rate
    if answers is not None:
        return cb.trace(np.asarray(answers), expected, book.num_classes, false_accusation_rate=rate)
    _, models, _ = load_trained(workdir, key_fingerprint=book.fingerprint)
    mapping = cb.decrypt_codebook(book, suspect_key)
    suspect = pl.model_pipeline(models["classifier"], mapping, book.num_classes, "suspect")
    return pl.trace_pipeline(
        suspect, secrets.triggers, expected, book.num_classes, false_accusation_rate=rate
    )


def trace_json(result: cb.TraceResult) -> str:
    """The verdict as JSON (user ids, scores, p-values; no key material)."""
    return json.dumps(
        {
            "accused": result.accused,
            "threshold": result.threshold,
            "queries": result.num_queries,
            "false_accusation_bound": result.false_accusation_bound,
            "scores": result.scores,
            "p_values": result.p_values,
        },
        indent=2,
    )
