"""The deep lock of a key-protected classifier (``model.deep_lock``; `egan_jax.deep_lock`).

The keyed input transform alone leaves every layer after the first intact: a thief with the stolen
weights and 1% of the plain training images fine-tunes them past the from-scratch thief (measured on
the bundled digits, block 4, shuffle+NP+FFX: 58.3% vs 51.1%), and a learned per-block adapter in
front of the frozen stolen model recovers most of the key (55.6%). With ``model.deep_lock`` listing
sites of the network (`models.classifiers.deep_lock_sites`), the owner's model applies the key's
permutation + sign flip of channels at each site: a re-labelling of the next layer's input weights,
so training behaves as without it, but the material is derived from the key file when the model is
built and never stored, and the stolen checkpoint, run without the key, has every locked layer's
input channels in the wrong order and sign.

The owner's model gets the lock in `families.classifier.build_models` when the key file exists; a
model built where it does not (the thief's) and the attacks' stolen model (`classifier_attacks`)
run without it (`NO_LOCK`). The plain baseline twin never has one.
"""

from __future__ import annotations

from flax import nnx

from egan_jax import deep_lock
from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.keys import SecretKey

FIELD = "model.deep_lock"


ALL = "all"


def sites(config: Config) -> dict[str, int]:
    """The config's deep-lock sites (validated) and their channel counts.

    ``model.deep_lock=all``: every site of the architecture (none for ConvMixer and ViT) when the
    run is protected, none for an unprotected run (``model.transform.steps=()``).
    """
    from egan_jax.models.classifiers import deep_lock_sites

    m = config.model
    valid = deep_lock_sites(m.arch, m.width, m.depth or None)
    if tuple(m.deep_lock) == (ALL,):
        chosen = tuple(valid) if m.transform.steps else ()
    else:
        chosen = deep_lock.check_sites(m.deep_lock, tuple(valid), field=FIELD)
    if chosen and not m.transform.key_file:
        raise ConfigError(
            f"{FIELD}={list(chosen)} needs the owner's key: set model.transform.key_file=PATH, "
            f"or {FIELD}=() for a model without a deep lock"
        )
    return {site: valid[site] for site in chosen}


def attach_key(model: nnx.Module, config: Config, key: SecretKey | None) -> None:
    """Give ``model`` the deep lock of ``key`` at the config's sites (`NO_LOCK` for None)."""
    from egan_jax.models.classifiers import lock_target

    lock_target(model).deep_lock = deep_lock.make_lock(key, sites(config))


def attach_owner(model: nnx.Module, config: Config) -> None:
    """The owner's lock when the config names sites and its key file is here; otherwise none (a
    model restored without the key, as a thief restores it)."""
    from egan_jax.models.classifiers import lock_target

    path = config.model.transform.key_file
    lock_target(model).deep_lock = deep_lock.owner_lock(
        path, sites(config), lambda: SecretKey.load(path)
    )


def remove(model: nnx.Module) -> nnx.Module:
    """``model`` without a deep lock (the thief's view of the stolen weights)."""
    from egan_jax.models.classifiers import lock_target

    lock_target(model).deep_lock = deep_lock.NO_LOCK
    return model
