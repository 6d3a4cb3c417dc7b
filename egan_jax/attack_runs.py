"""`egan attack ...` on an EGAN-protected DCGAN workdir: each attack measures digits Fréchet
distances and stores its rows under `WORKDIR/attacks/NAME.json`, which `egan evaluate` appends to
the report (`protection_report.attack_rows`).

Attacks: global magnitude pruning, key search (best of N random keys), key estimation (a latent
adapter in front of the frozen stolen generator), fine-tuning without the key (with / without the
discriminator, against a from-scratch thief), and watermark overwrite (the thief fine-tunes with
his own logo and signature; does the owner's still verify?). The mechanics live in
`egan_jax.attacks`; this module runs them on a workdir and scores them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax.errors import ConfigError
from egan_jax.evaluate import (
    FrechetScorer,
    batched,
    latents,
    make_generate,
    no_key_variant,
    plain_variant,
    watermark_checks,
    watermark_note,
)
from egan_jax.keys import SecretKey
from egan_jax.unauthorized import UnauthorizedSpec

PRUNE_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
ESTIMATE_ADAPTERS = ("latent", "sites")


def _context(workdir: Path, key: SecretKey | None, cache_dir: str | None, check_key: bool):
    """Config, models, key and scorer of a protected workdir (the key check is skipped for
    attacks run without the key)."""
    from egan_jax.config import read_config
    from egan_jax.families.egan_dcgan import attach_key, load_key
    from egan_jax.train import load_trained

    config = read_config(Path(workdir) / "config.json")
    key = key or (load_key(config) if check_key else None)
    fingerprint = key.fingerprint if (key is not None and check_key) else None
    config, models, _ = load_trained(workdir, key_fingerprint=fingerprint)
    attach_key(models["generator"], config, key)  # the owner's deep lock (none without the key)
    return config, models, key, FrechetScorer(config, cache_dir=cache_dir)


def _save_rows(workdir: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = Path(workdir) / "attacks" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"attack": name, "rows": rows}, indent=2) + "\n")
    return path


def attack_prune(
    workdir, *, key=None, fractions=PRUNE_FRACTIONS, num_samples=500, seed=0, cache_dir=None
) -> list[dict[str, Any]]:
    """Global magnitude pruning of the generator: keyed and unkeyed FD at each fraction."""
    from egan_jax.attacks import prune_model
    from egan_jax.families.egan_dcgan import variants

    config, models, key, scorer = _context(Path(workdir), key, cache_dir, True)
    authorized = variants(config, key).authorized
    z = latents(config, num_samples, seed)
    rows = []
    original = jax.tree_util.tree_map(np.array, nnx.state(models["generator"]))  # a copy
    for fraction in fractions:
        generator = models["generator"]
        nnx.update(generator, original)
        prune_model(generator, fraction)
        generate = make_generate(config, generator)
        for variant, label in ((authorized, "correct key"), (no_key_variant(), "no key")):
            rows.append(
                {
                    "name": f"pruned {fraction:.0%} ({label})",
                    "kind": "attack_prune",
                    "fd": scorer(batched(generate, variant, z)),
                }
            )
    nnx.update(models["generator"], original)
    _save_rows(Path(workdir), "prune", rows)
    return rows


def attack_search(workdir, *, candidates=20, num_samples=300, seed=0, cache_dir=None):
    """Key search: the best of `candidates` random keys (lowest FD), without the owner's key."""
    from egan_jax.attacks import key_search
    from egan_jax.families.egan_dcgan import variants

    config, models, _, scorer = _context(Path(workdir), None, cache_dir, False)
    stand_in = SecretKey.from_bytes(bytes(32))  # only to name the spec; no owner key is used
    spec = UnauthorizedSpec(
        no_key=False,
        random_keys=candidates,
        near_keys=0,
        near_materials=0,
        seed=seed,
        label="search",
    )
    pool = variants(config, stand_in, spec).unauthorized
    generate = make_generate(config, models["generator"])
    z = latents(config, num_samples, seed)
    best, scores = key_search(pool, lambda v: scorer(batched(generate, v, z)))
    rows = [
        {
            "name": f"key search: best of {candidates} keys",
            "kind": "attack_search",
            "fd": float(min(scores)),
            "note": f"median {np.median(scores):.2f}",
        }
    ]
    _save_rows(Path(workdir), "search", rows)
    return rows


def attack_estimate(
    workdir,
    *,
    objective="discriminator",
    adapter="latent",
    steps=300,
    batch_size=64,
    data_fraction=0.1,
    control=False,
    num_samples=500,
    seed=0,
    cache_dir=None,
):
    """Key estimation with the frozen stolen generator: a latent adapter in front of it
    (`adapter="latent"`), or a learned channel map at every lock site (`"sites"`: the white-box
    thief who knows where the feature lock and a deep lock sit). The thief has the fine-tuning
    thief's share of the data (`data_fraction`, the same seeded subset). `control` adds the same
    attack on a randomly initialised generator: how much the stolen weights help."""
    from egan_jax import attacks
    from egan_jax.data import batch_at, load_images
    from egan_jax.families import dcgan as plain
    from egan_jax.models.dcgan import generator_site_channels

    if adapter not in ESTIMATE_ADAPTERS:
        raise ConfigError(f"unknown adapter {adapter!r}; valid: {list(ESTIMATE_ADAPTERS)}")
    config, models, _, scorer = _context(Path(workdir), None, cache_dir, False)
    images = load_images(
        "digits", split="train", image_size=config.data.image_size, channels=config.data.channels
    )
    images = images[attacks.subset_indices(len(images), data_fraction, config.seed)]
    real = lambda i: jnp.asarray(batch_at(images, i, batch_size=batch_size, seed=seed))
    label = "" if adapter == "latent" else ", channel maps at the lock sites"
    z = jnp.asarray(latents(config, num_samples, seed))
    # the stolen generator, then (`control`) the same attack on a randomly initialised one: what
    # the adapter reaches without the stolen weights
    generators = [("", models["generator"])]
    if control:
        fresh = plain.build_models(config, nnx.Rngs(config.seed + 1))["generator"]
        generators.append((" on a random generator (control)", fresh))
    rows = []
    for what, generator in generators:
        if adapter == "sites":
            sites = generator_site_channels(config.model.width)
            module, run = attacks.SiteAdapter(sites, rngs=nnx.Rngs(seed)), attacks.through_sites
        else:
            module = attacks.LatentAdapter(config.model.latent_dim, rngs=nnx.Rngs(seed))
            run = attacks.through_latent
        history = attacks.estimate_key(
            generator,
            module,
            real_batches=real,
            latent_dim=config.model.latent_dim,
            steps=steps,
            batch_size=batch_size,
            objective=objective,
            discriminator=models["discriminator"],
            seed=seed,
            run=run,
        )
        generator.eval()  # the thief's plain model (no hook, no deep lock) with his adapter
        rows.append(
            {
                "name": f"key estimation ({objective}{label}, {steps} steps){what}",
                "kind": "attack_estimate" if not what else "attack_control",
                "fd": scorer(np.asarray(nnx.jit(run)(generator, module, z))),
                "note": f"loss {history[0]:.3f} -> {history[-1]:.3f}, {len(images)} images",
            }
        )
    suffix = "" if adapter == "latent" else f"_{adapter}"
    _save_rows(Path(workdir), f"estimate_{objective}{suffix}", rows)
    return rows


def _thief_run(source, workdir: Path, name: str, steps: int | None, **kwargs):
    """Train the thief's run `name` (quiet) from `attacks.finetune_config(source, ...)`."""
    from egan_jax.attacks import _stolen_state, finetune_config
    from egan_jax.train import train_and_evaluate

    _stolen_state(str(workdir.absolute()))  # loaded here: the engine builds models under a trace
    attack = finetune_config(source, workdir, **kwargs)
    overrides = {"log": dataclasses.replace(attack.log, quiet=True, sample_every=0)}
    if steps:
        overrides["train"] = dataclasses.replace(attack.train, steps=steps)
    attack = dataclasses.replace(attack, **overrides)
    return train_and_evaluate(attack, workdir / "attacks" / f"run_{name}"), attack


def attack_finetune(
    workdir, *, key=None, num_samples=500, seed=0, cache_dir=None, steps=None, lr_scale=0.1
):
    """Fine-tuning without the key (with / without the discriminator) vs the from-scratch thief;
    also whether the owner's key and watermarks still work on the fine-tuned generator.
    `lr_scale`: the thief's learning rate as a multiple of the owner's (the issue's 0.1; a thief
    may also try 1); rows and runs of another scale are stored apart (`finetune_lr<scale>`)."""
    from egan_jax.config import read_config
    from egan_jax.families.egan_dcgan import load_key, variants

    workdir = Path(workdir)
    source = read_config(workdir / "config.json")
    key = key or load_key(source)
    scorer = FrechetScorer(source, cache_dir=cache_dir)
    z = latents(source, num_samples, seed)
    authorized = variants(source, key).authorized
    rows = []
    settings = (("with D", True, False), ("without D", False, False), ("from scratch", True, True))
    suffix = "" if lr_scale == 0.1 else f"_lr{lr_scale:g}"
    for label, keep_d, scratch in settings:
        if scratch and suffix:  # the from-scratch thief does not depend on the fine-tuning lr
            continue
        result, _ = _thief_run(
            source,
            workdir,
            label.replace(" ", "_") + suffix,
            steps,
            keep_discriminator=keep_d,
            from_scratch=scratch,
            lr_scale=lr_scale,
        )
        label = label if scratch else f"{label}, lr × {lr_scale:g}"

        generator = result.models["generator"]
        generate = make_generate(source, generator)
        # the thief trained and runs the plain model; the owner queries it with his trigger (the
        # from-scratch thief's is the control: his model must not show the owner's marks)
        thief = watermark_checks(source, generator, plain_variant(), seed=seed)
        rows.append(
            {
                "name": f"fine-tune {label} (no key)",
                "kind": "attack_finetune",
                "fd": scorer(batched(generate, plain_variant(), z)),
                **({"note": watermark_note(thief), **thief} if thief else {}),
            }
        )
        if not scratch:
            checks = watermark_checks(source, generator, authorized, seed=seed)
            rows.append(
                {
                    "name": f"fine-tune {label} (correct key)",
                    "kind": "attack_finetune",
                    "fd": scorer(batched(generate, authorized, z)),
                    "note": watermark_note(checks),
                    **checks,
                }
            )
    _save_rows(workdir, "finetune" + suffix, rows)
    return rows


def attack_watermark_overwrite(
    workdir, *, key=None, num_samples=500, seed=0, cache_dir=None, steps=None
):
    """The thief fine-tunes the stolen G and D without the key (lr × 0.1, half the steps, 10% of
    the data) while embedding his own watermark (`attacks.thief_logo` on the orthant trigger and
    the signature `attacks.THIEF_SIGNATURE`); do the owner's watermarks still verify, and does the
    thief's?"""
    from egan_jax import attacks
    from egan_jax.config import read_config
    from egan_jax.families.egan_dcgan import load_key, variants

    workdir = Path(workdir)
    source = read_config(workdir / "config.json")
    key = key or load_key(source)
    scorer = FrechetScorer(source, cache_dir=cache_dir)
    authorized = variants(source, key).authorized
    result, attack = _thief_run(
        source, workdir, "overwrite", steps, keep_discriminator=True, overwrite_watermark=True
    )
    generator = result.models["generator"]
    generate = make_generate(source, generator)
    z = latents(source, num_samples, seed)
    owner = watermark_checks(source, generator, authorized, seed=seed)
    thief_config = dataclasses.replace(
        source,
        loss=dataclasses.replace(
            source.loss,
            watermark=dataclasses.replace(
                source.loss.watermark,
                trigger=attack.loss.overwrite_trigger,
                signature=attack.loss.overwrite_signature or source.loss.watermark.signature,
                signature_weight=1.0 if attack.loss.overwrite_signature else 0.0,
            ),
        ),
    )
    thief = watermark_checks(
        thief_config, generator, plain_variant(), seed=seed, logo=attacks.thief_logo(source)
    )
    rows = [
        {
            "name": "watermark overwrite: owner's marks (correct key)",
            "kind": "attack_overwrite",
            "fd": scorer(batched(generate, authorized, z)),
            "note": watermark_note(owner),
            **owner,
        },
        {
            "name": "watermark overwrite: thief's marks (no key)",
            "kind": "attack_overwrite",
            "fd": scorer(batched(generate, plain_variant(), z)),
            "note": watermark_note(thief),
            **{f"thief_{k}": v for k, v in thief.items()},
        },
    ]
    _save_rows(workdir, "overwrite", rows)
    return rows
