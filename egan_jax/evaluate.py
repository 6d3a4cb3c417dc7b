"""`egan evaluate`: how well a protected DCGAN works with its key and how badly without it.

For a trained `egan_dcgan` workdir this computes the digits Fréchet distance (`metrics.
DigitsClassifier` features, generated vs the real training images) of the unprotected baseline (a
plain `dcgan` workdir, optional), the correct key, no key, `random_keys` other keys (mean ± sd and
the worst case, i.e. the lowest distance a wrong key reaches), near-miss keys (one secret bit
flipped), `near_materials` near-miss materials (one transposition / one flipped sign / for the lock
one flipped offset sign; none of those training used), for `feature_lock` also the plain model
(no hook, no γ: what a thief runs), and the watermarks trained in; and writes under `out`
(default `workdir/report/`):

* `report.json` — every row, the summary and the issue's goals checked;
* `report.md` — the same as a markdown table;
* `grid.png` — rows: correct key, no key, two wrong keys, near-miss key, near-miss material;
  columns: the same latents.

Attack results written by `egan attack` (`egan_jax.attack_runs`) under `workdir/attacks/*.json`
are appended as rows; the files are written by `egan_jax.protection_report`. Every number comes
from one `seed`; stand-in keys are derived from it (`unauthorized.seeded_key`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax import deep_lock
from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.feature_lock import lock_arrays
from egan_jax.keys import SecretKey
from egan_jax.protection_report import (  # re-exported: the report's names stay importable here
    GOAL_CORRECT_RATIO,
    GOAL_UNAUTHORIZED_RATIO,
    attack_rows,
    markdown_table,
    save_labelled_grid,
    summarize,
    write_report,
)
from egan_jax.unauthorized import UnauthorizedSpec, Variant

__all__ = [
    "GOAL_CORRECT_RATIO",
    "GOAL_UNAUTHORIZED_RATIO",
    "FrechetScorer",
    "attack_rows",
    "baseline_config",
    "batched",
    "evaluate_workdir",
    "latents",
    "make_generate",
    "markdown_table",
    "no_key_variant",
    "plain_variant",
    "protection_rows",
    "save_labelled_grid",
    "summarize",
    "watermark_rows",
    "write_report",
]
# evaluation's near-miss materials start here, past the indices a training spec uses
NEAR_OFFSET = 100
_ATTACKS = ("attack_prune", "attack_search", "attack_estimate", "attack_finetune")


def baseline_config(config: Config) -> Config:
    """The unprotected DCGAN with the same sizes, data, schedule and seed as a protected config."""
    from egan_jax.families import dcgan

    m = config.model
    model = dcgan.ModelConfig(latent_dim=m.latent_dim, width=m.width, upsample=m.upsample)
    loss = dcgan.LossConfig(
        kind=config.loss.kind,
        discriminator_steps=config.loss.discriminator_steps,
        adversarial_weight=config.loss.adversarial_weight,
    )
    return dataclasses.replace(config, family="dcgan", model=model, loss=loss)


class FrechetScorer:
    """Digits Fréchet distance of generated images against the real training images (cached)."""

    def __init__(self, config: Config, *, cache_dir: str | None = None):
        from egan_jax.data import load_images
        from egan_jax.metrics import DigitsClassifier, extract_features, feature_statistics

        if config.data.name != "digits":
            raise ConfigError(
                f"egan evaluate measures the digits Fréchet distance; data.name is "
                f"{config.data.name!r} (only 'digits' is supported here)"
            )
        self.network = DigitsClassifier.load_or_train(cache_dir)
        real = load_images(
            "digits",
            split="train",
            image_size=config.data.image_size,
            channels=config.data.channels,
        )
        self._extract = extract_features
        self.real_stats = feature_statistics(extract_features(real, self.network))

    def __call__(self, images: np.ndarray) -> float:
        from egan_jax.metrics import feature_statistics, frechet_distance

        stats = feature_statistics(self._extract(np.asarray(images), self.network))
        return frechet_distance(*stats, *self.real_stats)


def make_generate(
    config: Config, generator: nnx.Module
) -> Callable[[Variant, np.ndarray], np.ndarray]:
    """`(variant, z) -> images` in eval mode, compiled once for all variants of the design.

    Latent variants are applied outside the compiled generator; feature variants enter it as
    array arguments (permutation, signs, offsets), so no variant recompiles; so does the deep lock
    (`model.deep_lock`): each keyed variant runs with its own key's, near-miss materials with the
    owner's, the thief's inputs (no key, the plain model) with none.
    """
    from egan_jax.families.egan_dcgan import deep_sites, design, feature_hook, locked

    generator.eval()
    owner_lock, sites = generator.deep_lock, deep_sites(config)
    with deep_lock.attached(generator, deep_lock.NO_LOCK):  # the deep lock enters as arrays
        graphdef, state = nnx.split(generator)
    kind = design(config).kind

    @jax.jit
    def run(state, z, deep):
        model = nnx.merge(graphdef, state)
        with deep_lock.attached(model, deep_lock.from_arrays(deep)):
            return model(z)

    @jax.jit
    def featured(state, z, permutation, signs, offsets, deep):
        model = nnx.merge(graphdef, state)
        hook = lambda h: jnp.take(h + offsets, permutation, axis=-1) * signs
        with feature_hook(model, locked(model, hook, kind)):
            with deep_lock.attached(model, deep_lock.from_arrays(deep)):
                return model(z)

    channels = 8 * config.model.width

    def variant_lock(variant: Variant):
        """A keyed variant's own deep lock; the owner's for his near-miss materials; none for
        the thief's inputs (no key, plain model, estimated)."""
        if variant.key is not None:
            return deep_lock.make_lock(variant.key, sites)
        return owner_lock if variant.kind == "near_material" else deep_lock.NO_LOCK

    def generate(variant: Variant, z: np.ndarray) -> np.ndarray:
        deep = deep_lock.lock_arrays(variant_lock(variant), sites)
        if variant.kind == "plain":
            return np.asarray(run(state, jnp.asarray(z), deep))
        if kind == "latent":
            return np.asarray(run(state, jnp.asarray(variant.apply(jnp.asarray(z))), deep))
        permutation, signs, offsets = lock_arrays(variant.material, channels)
        return np.asarray(featured(state, jnp.asarray(z), permutation, signs, offsets, deep))

    return generate


def batched(generate, variant: Variant, z: np.ndarray, batch: int = 250) -> np.ndarray:
    return np.concatenate([generate(variant, z[i : i + batch]) for i in range(0, len(z), batch)])


def protection_rows(
    config: Config,
    generator: nnx.Module,
    key: SecretKey,
    scorer: Callable[[np.ndarray], float],
    *,
    num_samples: int,
    seed: int = 0,
    random_keys: int = 10,
    near_keys: int = 2,
    near_materials: int = 6,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """One row per variant (name, kind, fd) and a few images of each variant for the grid."""
    from egan_jax.families.egan_dcgan import design, variants

    spec = UnauthorizedSpec(
        random_keys=random_keys,
        near_keys=near_keys,
        near_materials=near_materials,
        seed=seed,
        label="evaluate",
        near_offset=NEAR_OFFSET,
    )
    vs = variants(config, key, spec)
    generate = make_generate(config, generator)
    z = np.asarray(jax.random.normal(jax.random.key(seed), (num_samples, config.model.latent_dim)))
    rows, previews = [], {}
    # for the lock, the thief's plain forward pass (no hook, no γ) is a second no-key input
    plain = (plain_variant(),) if design(config).kind == "feature_lock" else ()
    for variant in (vs.authorized, *vs.unauthorized, *plain):
        images = batched(generate, variant, z)
        kind = "no_key" if variant.kind == "plain" else variant.kind
        rows.append({"name": variant.name, "kind": kind, "fd": scorer(images)})
        previews[variant.name] = images[:8]
    return rows, previews


def evaluate_workdir(
    workdir: str | Path,
    *,
    key: SecretKey | None = None,
    baseline: str | Path | None = None,
    out: str | Path | None = None,
    num_samples: int | None = None,
    seed: int = 0,
    random_keys: int = 10,
    near_materials: int = 6,
    cache_dir: str | None = None,
    use_ema: bool = True,
) -> dict[str, Any]:
    """Evaluate a protected workdir (and its baseline); write the report; return it as a dict.

    `key` defaults to the config's key file (or the demo key); a checkpoint trained with another
    key raises `KeyMismatchError`. Runs with a generator EMA (`train.ema_decay > 0`) are evaluated
    with their EMA generators (the baseline's too) unless `use_ema=False`.
    """
    from egan_jax.families.egan_dcgan import attach_key, load_key
    from egan_jax.train import load_trained, sample_images

    workdir = Path(workdir)
    from egan_jax.config import read_config

    config = read_config(workdir / "config.json")
    if config.family != "egan_dcgan":
        raise ConfigError(
            f"{workdir} holds a {config.family!r} run; egan evaluate needs an egan_dcgan workdir"
        )
    key = key or load_key(config)
    config, models, step = load_trained(workdir, key_fingerprint=key.fingerprint, use_ema=use_ema)
    attach_key(models["generator"], config, key)
    n = num_samples or config.eval.num_samples
    scorer = FrechetScorer(config, cache_dir=cache_dir)
    rows, previews = protection_rows(
        config,
        models["generator"],
        key,
        scorer,
        num_samples=n,
        seed=seed,
        random_keys=random_keys,
        near_materials=near_materials,
    )
    baseline_fd = None
    if baseline is not None:
        images = sample_images(baseline, n=n, seed=seed, use_ema=use_ema)
        baseline_fd = scorer(images)
        rows.insert(0, {"name": "unprotected baseline", "kind": "baseline", "fd": baseline_fd})
        previews = {"unprotected baseline": images[:8], **previews}
    rows += watermark_rows(config, models["generator"], key, seed=seed)
    rows += attack_rows(workdir)
    protection = [
        r
        for r in rows
        if r["kind"] in ("authorized", "no_key", "random_key", "near_key", "near_material")
    ]
    summary = summarize(protection, baseline_fd)
    meta = {
        "workdir": str(workdir),
        "design": config.model.design,
        "key_fingerprint": key.fingerprint,
        "step": step,
        "generator": "EMA" if use_ema and config.train.ema_decay > 0 else "trained",
        "ema_decay": config.train.ema_decay,
        "num_samples": n,
        "seed": seed,
        "baseline": str(baseline) if baseline else None,
    }
    paths = write_report(Path(out) if out else workdir / "report", rows, summary, previews, meta)
    return {
        "meta": meta,
        "rows": rows,
        "summary": summary,
        "paths": {k: str(v) for k, v in paths.items()},
    }


def watermark_checks(
    config: Config, generator: nnx.Module, variant: Variant, *, seed: int = 0, logo=None
) -> dict[str, float]:
    """The owner's watermarks on `generator` (those `config` trained in): `logo_ssim`, the mean
    SSIM in the logo region of G(variant(trigger z)) for 64 latents, and `bit_error_rate` of the
    signature. `logo` replaces the config's logo (a thief's)."""
    from egan_jax import watermark
    from egan_jax.families.egan_dcgan import watermark_logo

    wm = config.loss.watermark
    out = {}
    if wm.trigger_weight > 0 or logo is not None:
        logo = jnp.asarray(watermark_logo(config) if logo is None else logo)
        z = watermark.get_trigger(wm.trigger)(jnp.asarray(latents(config, 64, seed + 1)))
        marked = jnp.asarray(make_generate(config, generator)(variant, np.asarray(z)))
        out["logo_ssim"] = float(jnp.mean(watermark.logo_ssim(marked, logo)))
    if wm.signature_weight > 0:
        bits = watermark.signature_bits(wm.signature)
        out["bit_error_rate"] = watermark.signature_ber(generator, bits)
    return out


def watermark_note(checks: dict[str, float]) -> str:
    """'logo SSIM 0.930 (verified), bit error rate 0.000 (verified)' for a report row."""
    from egan_jax.watermark import verified

    status = verified(checks)
    labels = {"logo_ssim": "logo SSIM", "bit_error_rate": "bit error rate"}
    return ", ".join(
        f"{labels[k]} {checks[k]:.3f} ({'verified' if status[k] else 'NOT verified'})"
        for k in labels
        if k in checks
    )


def watermark_rows(config: Config, generator: nnx.Module, key: SecretKey, *, seed: int = 0):
    """Black-box logo SSIM (correct key / no key / the plain model, as a thief runs it) and
    white-box bit error rate, when trained in."""
    from egan_jax.families.egan_dcgan import variants

    rows = []
    wm = config.loss.watermark
    if wm.trigger_weight > 0:
        for variant in (variants(config, key).authorized, no_key_variant(), plain_variant()):
            value = watermark_checks(config, generator, variant, seed=seed)["logo_ssim"]
            rows.append(
                {
                    "name": "black-box watermark "
                    + ("(plain model)" if variant.kind == "plain" else f"({variant.name})"),
                    "kind": "watermark",
                    "fd": None,
                    "note": watermark_note({"logo_ssim": value}),
                    "logo_ssim": value,
                }
            )
    if config.loss.watermark.signature_weight > 0:
        ber = watermark_checks(config, generator, no_key_variant(), seed=seed)["bit_error_rate"]
        rows.append(
            {
                "name": "white-box signature",
                "kind": "watermark",
                "fd": None,
                "note": watermark_note({"bit_error_rate": ber}),
                "bit_error_rate": ber,
            }
        )
    return rows


def no_key_variant() -> Variant:
    """The identity: what a thief without the key feeds the generator."""
    return Variant("no key", "no_key", lambda x: x, None)


def plain_variant() -> Variant:
    """The generator's own forward pass, no hook at all: how a thief runs a stolen or fine-tuned
    model (for `feature_lock` it differs from `no_key_variant`, which still subtracts γ)."""
    return Variant("no key (plain model)", "plain", lambda x: x, None)


def latents(config: Config, n: int, seed: int) -> np.ndarray:
    return np.asarray(jax.random.normal(jax.random.key(seed), (n, config.model.latent_dim)))


def __getattr__(name: str):
    # the attack runners moved to `egan_jax.attack_runs` (which imports this module): lazy re-export
    if name in _ATTACKS:
        from egan_jax import attack_runs

        return getattr(attack_runs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
