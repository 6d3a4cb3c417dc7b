"""The EGAN DCGAN's key handling: the owner's key from the config, the feature lock's stored γ
variable, and the deep lock the owner's generator gets when it is built with the key. `egan_dcgan`
re-exports every name.
"""

from __future__ import annotations

import functools
from pathlib import Path

from flax import nnx

from egan_jax import deep_lock
from egan_jax.config import Config
from egan_jax.keys import SecretKey
from egan_jax.models import dcgan as dcgan_models

DEMO_PASSPHRASE = "egan_jax demo key: never use for real models"


class KeyLock(nnx.Variable):
    """γ = a_k(0) of the `feature_lock` design: stored in the generator, never trained."""


@functools.lru_cache(maxsize=8)
def _load_key(path: str | None, mtime: float) -> SecretKey:
    if path is None:
        return SecretKey.from_passphrase(DEMO_PASSPHRASE, bytes(16))
    return SecretKey.load(path)


def load_key(config: Config) -> SecretKey:
    """The owner's key named by `model.key_file` (the demo key when None)."""
    path = config.model.key_file
    mtime = Path(path).stat().st_mtime if path and Path(path).exists() else 0.0
    return _load_key(path, mtime)


def key_fingerprint(config: Config) -> str:
    return load_key(config).fingerprint


def attach_key(generator: nnx.Module, config: Config, key: SecretKey | None) -> None:
    """Give `generator` the deep lock of `key` at the config's sites (`NO_LOCK` for None)."""
    generator.deep_lock = deep_lock.make_lock(key, deep_sites(config))


def deep_sites(config: Config) -> dict[str, int]:
    """The config's deep-lock sites and their channel counts."""
    sites = deep_lock.check_sites(
        config.model.deep_lock, dcgan_models.GENERATOR_SITES, field="model.deep_lock"
    )
    channels = dcgan_models.generator_site_channels(config.model.width)
    return {site: channels[site] for site in sites}
