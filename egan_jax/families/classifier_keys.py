"""The classifier family's keyed input transform as data: the `Pipeline` config of a run and the
check that an owner's key changes the images at every step (`families.classifier` uses both)."""

from __future__ import annotations

import numpy as np

from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.transforms.compose import Pipeline


def transform_config(config: Config) -> dict:
    """The ``Pipeline`` config of ``model.transform`` (JSON data, no key)."""
    t = config.model.transform
    return {
        "block": t.block,
        "steps": list(t.steps),
        "channels": config.data.channels,
        "ffx_variant": t.ffx_variant,
    }


def refuse_identity_steps(pipeline: Pipeline) -> None:
    """The owner's key must change the images at every step: at block 2 with one channel an NP or
    FFX mask has only 4 bits (empty for 1 key in 16) and a shuffle only 24 permutations."""
    for name, material in pipeline.materials:
        if name not in ("shuffle", "np", "ffx"):
            continue
        field = material.near_miss_field
        values = np.asarray(getattr(material, field))
        identity = (
            np.array_equal(values, np.arange(values.size))
            if field == "permutation"
            else not values.any()
        )
        if identity:
            raise ConfigError(
                f"this key's {name!r} material is the identity at block {pipeline.block_size} "
                f"(key {pipeline.fingerprint}): the step would leave every image unchanged; make "
                "another key (egan keygen) or use a larger model.transform.block"
            )
