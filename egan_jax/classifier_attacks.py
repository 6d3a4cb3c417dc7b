"""Attacks on a key-protected classifier without its key (`egan attack finetune|estimate|search`).

Threat model: the attacker holds the protected model's weights, a fraction of the labeled training
images (plain, no key) and knows the scheme (block size, steps), not the key. The yardstick is the
attacker who ignores the stolen model and trains the same architecture from scratch on the same
images with the same budget (steps, batch size, optimizer and schedule of the run's config): an
attack that does not beat it gives the thief nothing the data alone would not. Every attack is run
for each fraction of :data:`FRACTIONS` and scored by test accuracy on plain test images (what the
thief wants: a model that works without the key).

* ``finetune`` — all weights of the stolen model trained on plain images.
* ``estimate`` — key estimation: a learned per-block linear map (:class:`BlockAdapter`, a conv with
  kernel = stride = block size and ``M·M·C`` outputs put back in place, initialised to the
  identity) in front of the frozen stolen model, trained on plain images. It can express shuffling
  and negative/positive exactly (a signed permutation per block), FFX only approximately.
* ``search`` — key search: the candidate key material with the lowest cross-entropy on the
  attacker's images. Exhaustive over the whole material space when the steps are linear and the
  space has at most ``exhaustive_limit`` elements (block size 2 on grey images: shuffle 4! = 24,
  NP 2⁴ = 16, both 384), otherwise sampled (random keys). :func:`key_space` states the size.

Rows are stored in ``WORKDIR/attacks/<attack>.json`` (the from-scratch rows, shared by all attacks,
in ``from_scratch.json``); ``egan evaluate`` adds them to the report.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax.config import Config, apply_overrides
from egan_jax.errors import ConfigError
from egan_jax.families import classifier as family
from egan_jax.key_estimation import BlockAdapter
from egan_jax.keys import SecretKey
from egan_jax.transforms import block as block_transforms
from egan_jax.transforms.compose import Pipeline

FRACTIONS = (0.01, 0.1)
EXHAUSTIVE_LIMIT = 5000


# --- the attacker's data and budget -----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AttackData:
    """The attacker's labeled plain images (uint8) and the plain test split (float)."""

    fraction: float
    images: np.ndarray
    labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def attacker_data(config: Config, fraction: float, seed: int = 0) -> AttackData:
    """``fraction`` of the training split (at least one image per class), drawn with ``seed``."""
    from egan_jax.data import to_float

    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"attack data fraction {fraction} must be in (0, 1]")
    images, labels = family._load(config, config.data.split)
    count = max(family.num_classes(config), round(fraction * len(images)))
    chosen = np.asarray(jax.random.permutation(jax.random.key(seed), len(images)))[:count]
    test_images, test_labels = family._load(config, config.loss.test_split)
    return AttackData(fraction, images[chosen], labels[chosen], to_float(test_images), test_labels)


def _budget(config: Config, steps: int) -> Config:
    if steps < 1:
        raise ConfigError(f"attack steps must be at least 1, got {steps}")
    return apply_overrides(config, [f"train.steps={steps}"])  # the lr schedule spans the budget


@nnx.jit
def _fit_step(trainable, optimizer, frozen, images, labels):
    def loss_fn(trainable):
        logits = trainable(images) if frozen is None else frozen(trainable(images))
        return jnp.mean(family.cross_entropy(logits, labels))

    loss, grads = nnx.value_and_grad(loss_fn)(trainable)
    optimizer.update(trainable, grads)
    return loss


def fit(
    config: Config,
    trainable: nnx.Module,
    data: AttackData,
    *,
    steps: int,
    seed: int = 0,
    frozen: nnx.Module | None = None,
) -> nnx.Module:
    """Train ``trainable`` (in front of the ``frozen`` model, eval mode, if given) on the
    attacker's images for ``steps`` batches of the config's batch size and optimizer."""
    from egan_jax.data_labeled import labeled_batch_at

    config = _budget(config, steps)
    optimizer = family.build_optimizers(config, {"m": trainable})["m"]
    trainable.train()
    if frozen is not None:
        frozen.eval()
    for step in range(steps):
        x, y = labeled_batch_at(
            data.images, data.labels, step, batch_size=config.train.batch_size, seed=seed
        )
        _fit_step(trainable, optimizer, frozen, jnp.asarray(x), jnp.asarray(y))
    trainable.eval()
    return trainable


def _row(name: str, kind: str, score: float, data: AttackData, steps: int, **extra) -> dict:
    return {
        "name": name,
        "kind": kind,
        "accuracy": score,
        "fraction": data.fraction,
        "images": len(data.labels),
        "steps": steps,
        **extra,
    }


def _test_accuracy(model, data: AttackData, images: np.ndarray | None = None) -> float:
    return family.accuracy(model, data.test_images if images is None else images, data.test_labels)


# --- the yardstick and the attacks ------------------------------------------------------------
def from_scratch(config: Config, data: AttackData, *, steps: int, seed: int = 0) -> dict:
    """A fresh model of the run's architecture trained on the attacker's images alone."""
    model = family.make_classifier(config, nnx.Rngs(seed + 1), family.num_classes(config))
    fit(config, model, data, steps=steps, seed=seed)
    name = f"from scratch, {data.fraction:.0%} data ({len(data.labels)} images)"
    return _row(name, "from_scratch", _test_accuracy(model, data), data, steps)


def finetune(config: Config, stolen: nnx.Module, data: AttackData, *, steps: int, seed: int = 0):
    """All weights of (a copy of) the stolen model trained on the attacker's plain images."""
    model = fit(config, nnx.clone(stolen), data, steps=steps, seed=seed)
    name = f"fine-tune without the key, {data.fraction:.0%} data ({len(data.labels)} images)"
    return _row(name, "finetune", _test_accuracy(model, data), data, steps)


def estimate(config: Config, stolen: nnx.Module, data: AttackData, *, steps: int, seed: int = 0):
    """Key estimation: a :class:`BlockAdapter` trained in front of the frozen stolen model."""
    t = config.model.transform
    adapter = BlockAdapter(t.block, config.data.channels, rngs=nnx.Rngs(seed))
    fit(config, adapter, data, steps=steps, seed=seed, frozen=stolen)
    stolen.eval()
    adapted = family.accuracy(_Chain(adapter, stolen), data.test_images, data.test_labels)
    name = f"key estimation (block adapter), {data.fraction:.0%} data ({len(data.labels)} images)"
    return _row(name, "estimate", adapted, data, steps)


class _Chain(nnx.Module):
    def __init__(self, first: nnx.Module, second: nnx.Module):
        self.first, self.second = first, second

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.second(self.first(x))


# --- key search -------------------------------------------------------------------------------
def key_space(steps: tuple[str, ...], block_size: int, channels: int) -> tuple[int | None, str]:
    """The number of distinct material combinations of ``steps`` (None: not enumerable, as FF1
    tables come from a 256-bit AES key) and how it is made up; ``n = M·M·C`` values per block."""
    n = block_size * block_size * channels
    sizes = {"shuffle": math.factorial(n), "np": 2**n}
    parts = {
        "shuffle": f"{n}! shuffles",
        "np": f"2^{n} NP masks",
        "ffx": f"2^{n} FFX masks × FF1 tables keyed by a 256-bit AES key",
    }
    size = math.prod(sizes[s] for s in steps) if all(s in sizes for s in steps) else None
    shown = f"{size:,}" if size is not None else "not enumerable"
    return size, " × ".join(parts.get(s, f"{s} material") for s in steps) + f" = {shown}"


def _all_materials(config: Config):
    """Every material combination of the linear steps (shuffle, NP) in the pipeline's order."""
    t = config.model.transform
    m, c = t.block, config.data.channels
    n = m * m * c
    options = []
    for step in t.steps:
        if step == "shuffle":
            options.append(
                [
                    (
                        "shuffle",
                        block_transforms.BlockShuffleMaterial(
                            m, c, np.array(p, np.int32), "search"
                        ),
                    )
                    for p in itertools.permutations(range(n))
                ]
            )
        else:
            options.append(
                [
                    ("np", block_transforms.NegPosMaterial(m, c, np.array(bits, bool), "search"))
                    for bits in itertools.product((False, True), repeat=n)
                ]
            )
    return (tuple(combo) for combo in itertools.product(*options))


@nnx.jit
def _logits(model: nnx.Module, images: jax.Array) -> jax.Array:
    return model(images)


def _cross_entropy(model, images: np.ndarray, labels: np.ndarray) -> float:
    logits = _logits(model, jnp.asarray(images))
    return float(jnp.mean(family.cross_entropy(logits, jnp.asarray(labels))))


def search(
    config: Config,
    stolen: nnx.Module,
    data: AttackData,
    *,
    candidates: int = 100,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    seed: int = 0,
    key: SecretKey | None = None,
):
    """The candidate with the lowest cross-entropy on the attacker's images; its test accuracy.

    ``key`` (the owner's, optional) only labels whether the search found the owner's material.
    """
    from egan_jax.classifier_eval import random_keys, transformed
    from egan_jax.data import to_float
    from egan_jax.transforms.compose import validate_config

    t = config.model.transform
    size, described = key_space(t.steps, t.block, config.data.channels)
    exhaustive = size is not None and size <= exhaustive_limit
    cfg = validate_config(family.transform_config(config))
    if exhaustive:
        pipelines = (Pipeline(cfg, materials, "search") for materials in _all_materials(config))
        tried = size
    else:
        keys = random_keys(jax.random.fold_in(jax.random.key(seed), 1), candidates)
        pipelines = (family.load_pipeline(config, k) for k in keys)
        tried = candidates
    plain = to_float(data.images)
    stolen.eval()
    best, best_loss = None, math.inf
    for pipeline in pipelines:
        loss = _cross_entropy(stolen, transformed(pipeline, plain), data.labels)
        if loss < best_loss:
            best, best_loss = pipeline, loss
    score = _test_accuracy(stolen, data, transformed(best, data.test_images))
    how = "exhaustive" if exhaustive else "sampled"
    note = f"{how}: {tried:,} candidates; key space {described}"
    if key is not None:
        # equal outputs on a random 8-bit image: the same material (flat digit backgrounds
        # would hide a wrong shuffle)
        levels = jax.random.randint(jax.random.key(seed), data.test_images[:1].shape, 0, 256)
        probe = block_transforms.pixel_grid()[np.asarray(levels)]
        owner = family.load_pipeline(config, key)
        found = np.array_equal(transformed(best, probe), transformed(owner, probe))
        note += f"; owner's material {'found' if found else 'not found'}"
    name = f"key search ({how}), {data.fraction:.0%} data ({len(data.labels)} images)"
    return _row(name, "search", score, data, 0, candidates=tried, note=note)


# --- workdir entry points ---------------------------------------------------------------------
def _load_stolen(workdir: Path):
    from egan_jax.classifier_deep_lock import remove
    from egan_jax.train import load_trained

    config, models, _ = load_trained(workdir)  # the thief has the weights, not the key
    if config.family != "classifier":
        raise ConfigError(f"{workdir} holds a {config.family!r} run, not a classifier run")
    if not config.model.transform.steps:
        raise ConfigError(
            f"{workdir} is an unprotected run (model.transform.steps=()); nothing to attack"
        )
    return config, remove(models["classifier"])  # nor the deep lock the key gives


def _store(workdir: Path, name: str, rows: list[dict]) -> Path:
    path = workdir / "attacks" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"attack": name, "rows": rows}, indent=2) + "\n")
    return path


def scratch_rows(
    workdir: Path, config: Config, *, steps: int, seed: int, fractions=FRACTIONS
) -> dict[float, dict]:
    """The from-scratch row of each fraction, trained once per (fraction, steps, seed) and kept
    in ``attacks/from_scratch.json``."""
    path = workdir / "attacks" / "from_scratch.json"
    stored = json.loads(path.read_text())["rows"] if path.exists() else []
    rows = {}
    for fraction in fractions:
        match = [
            r
            for r in stored
            if (r["fraction"], r["steps"], r.get("seed")) == (fraction, steps, seed)
        ]
        if match:
            rows[fraction] = match[0]
        else:
            row = {
                **from_scratch(
                    config, attacker_data(config, fraction, seed), steps=steps, seed=seed
                ),
                "seed": seed,
            }
            stored.append(row)
            rows[fraction] = row
    _store(workdir, "from_scratch", stored)
    return rows


def run_attack(
    workdir: str | Path,
    attack: str,
    *,
    steps: int | None = None,
    seed: int = 0,
    candidates: int = 100,
    key: SecretKey | None = None,
    fractions=FRACTIONS,
) -> list[dict[str, Any]]:
    """Run ``attack`` (finetune | estimate | search) on a classifier workdir for every fraction,
    each row compared with the from-scratch attacker of the same data and budget; store the rows."""
    if attack not in ATTACKS:
        raise ConfigError(f"unknown classifier attack {attack!r}; use one of {sorted(ATTACKS)}")
    workdir = Path(workdir)
    config, stolen = _load_stolen(workdir)
    steps = steps or config.train.steps // 2
    scratch = scratch_rows(workdir, config, steps=steps, seed=seed, fractions=fractions)
    rows = []
    for fraction in fractions:
        data = attacker_data(config, fraction, seed)
        if attack == "search":
            row = search(config, stolen, data, candidates=candidates, seed=seed, key=key)
        else:
            row = ATTACKS[attack](config, stolen, data, steps=steps, seed=seed)
        gain = 100 * (row["accuracy"] - scratch[fraction]["accuracy"])
        row["vs_from_scratch_points"] = gain
        row["beats_from_scratch"] = gain > 0
        row["note"] = (row.get("note", "") + f"; {gain:+.1f} points vs from scratch").lstrip("; ")
        rows.append(row)
    _store(workdir, attack, rows)
    return rows


ATTACKS = {"finetune": finetune, "estimate": estimate, "search": search}
