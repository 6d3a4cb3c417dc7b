"""`egan evaluate`: how well a protected DCGAN works with its key and how badly without it.

For a trained `egan_dcgan` workdir this computes the digits Fréchet distance (`metrics.
DigitsClassifier` features, generated vs the real training images) of the unprotected baseline (a
plain `dcgan` workdir, optional), the correct key, no key, `random_keys` other keys (mean ± sd and
the worst case, i.e. the lowest distance a wrong key reaches), near-miss keys (one secret bit
flipped) and near-miss material (one transposition / one flipped sign), and writes under
`out` (default `workdir/report/`):

* `report.json` — every row, the summary and the issue's goals checked;
* `report.md` — the same as a markdown table;
* `grid.png` — rows: correct key, no key, two wrong keys, near-miss key, near-miss material;
  columns: the same latents.

Attack results written by `egan attack` under `workdir/attacks/*.json` are appended as rows.
Every number comes from one `seed`; stand-in keys are derived from it (`unauthorized.seeded_key`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image, ImageDraw

from egan_jax.config import Config
from egan_jax.errors import ConfigError
from egan_jax.keys import SecretKey
from egan_jax.logging_utils import image_grid
from egan_jax.unauthorized import UnauthorizedSpec, Variant

GOAL_CORRECT_RATIO = 1.05
GOAL_UNAUTHORIZED_RATIO = 5.0


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


def _feature_arrays(variant: Variant, channels: int) -> tuple[np.ndarray, np.ndarray]:
    if variant.material is None:
        return np.arange(channels, dtype=np.int32), np.ones(channels, np.float32)
    return np.asarray(variant.material.permutation), np.asarray(variant.material.signs)


def make_generate(
    config: Config, generator: nnx.Module
) -> Callable[[Variant, np.ndarray], np.ndarray]:
    """`(variant, z) -> images` in eval mode, compiled once for all variants of the design.

    Latent variants are applied outside the compiled generator; feature variants enter it as
    array arguments (permutation and signs), so no variant recompiles.
    """
    from egan_jax.families.egan_dcgan import design, feature_hook

    generator.eval()
    graphdef, state = nnx.split(generator)
    kind = design(config).kind

    @jax.jit
    def plain(state, z):
        return nnx.merge(graphdef, state)(z)

    @jax.jit
    def featured(state, z, permutation, signs):
        model = nnx.merge(graphdef, state)
        with feature_hook(model, lambda h: jnp.take(h, permutation, axis=-1) * signs):
            return model(z)

    channels = 8 * config.model.width

    def generate(variant: Variant, z: np.ndarray) -> np.ndarray:
        if kind == "latent":
            return np.asarray(plain(state, jnp.asarray(variant.apply(jnp.asarray(z)))))
        permutation, signs = _feature_arrays(variant, channels)
        return np.asarray(featured(state, jnp.asarray(z), permutation, signs))

    return generate


def _batched(generate, variant: Variant, z: np.ndarray, batch: int = 250) -> np.ndarray:
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
    near_materials: int = 2,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """One row per variant (name, kind, fd) and a few images of each variant for the grid."""
    from egan_jax.families.egan_dcgan import variants

    spec = UnauthorizedSpec(
        random_keys=random_keys,
        near_keys=near_keys,
        near_materials=near_materials,
        seed=seed,
        label="evaluate",
    )
    vs = variants(config, key, spec)
    generate = make_generate(config, generator)
    z = np.asarray(jax.random.normal(jax.random.key(seed), (num_samples, config.model.latent_dim)))
    rows, previews = [], {}
    for variant in (vs.authorized, *vs.unauthorized):
        images = _batched(generate, variant, z)
        rows.append({"name": variant.name, "kind": variant.kind, "fd": scorer(images)})
        previews[variant.name] = images[:8]
    return rows, previews


def summarize(rows: list[dict[str, Any]], baseline_fd: float | None) -> dict[str, Any]:
    """Per-kind statistics, ratios to the baseline and the issue's goals."""
    by_kind: dict[str, list[float]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"], []).append(row["fd"])
    summary: dict[str, Any] = {"baseline_fd": baseline_fd, "kinds": {}}
    for kind, values in by_kind.items():
        values_arr = np.asarray(values)
        summary["kinds"][kind] = {
            "count": len(values),
            "mean": float(values_arr.mean()),
            "sd": float(values_arr.std(ddof=1)) if len(values) > 1 else 0.0,
            "worst": float(values_arr.min()),  # the wrong key closest to working
        }
    if baseline_fd:
        correct = summary["kinds"]["authorized"]["mean"]
        unauthorized = [v["worst"] for k, v in summary["kinds"].items() if k != "authorized"]
        worst_ratio = min(unauthorized) / baseline_fd if unauthorized else math.nan
        summary["correct_ratio"] = correct / baseline_fd
        summary["worst_unauthorized_ratio"] = worst_ratio
        summary["goals"] = {
            f"correct key FD ratio <= {GOAL_CORRECT_RATIO}": correct / baseline_fd
            <= GOAL_CORRECT_RATIO,
            f"every unauthorized FD >= {GOAL_UNAUTHORIZED_RATIO}x baseline": worst_ratio
            >= GOAL_UNAUTHORIZED_RATIO,
        }
    return summary


def save_labelled_grid(previews: dict[str, np.ndarray], path: Path, *, scale: int = 3) -> Path:
    """One row of samples per variant, its name on the left (PNG)."""
    names = list(previews)
    rows = [image_grid(previews[n], columns=len(previews[n])) for n in names]
    height, width = rows[0].shape[:2]
    label_width = 110
    canvas = Image.new("L", (label_width + width * scale, height * scale * len(rows)), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (name, row) in enumerate(zip(names, rows, strict=True)):
        grey = row[..., 0] if row.shape[-1] == 1 else row.mean(axis=-1).astype(np.uint8)
        tile = Image.fromarray(grey).resize((width * scale, height * scale), Image.NEAREST)
        canvas.paste(tile, (label_width, i * height * scale))
        draw.text((4, i * height * scale + height * scale // 2 - 5), name, fill=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def markdown_table(rows: list[dict[str, Any]], baseline_fd: float | None) -> str:
    lines = [
        "| model / input | kind | digits FD | × baseline | note |",
        "|---|---|---:|---:|---|",
    ]
    for row in rows:
        fd = row.get("fd")
        ratio = f"{fd / baseline_fd:.2f}" if baseline_fd and fd is not None else "–"
        shown = f"{fd:.2f}" if fd is not None else "–"
        lines.append(
            f"| {row['name']} | {row['kind']} | {shown} | {ratio} | {row.get('note', '')} |"
        )
    return "\n".join(lines)


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for kind, stats in summary["kinds"].items():
        lines.append(
            f"- {kind}: {stats['count']} × FD mean {stats['mean']:.2f} ± {stats['sd']:.2f}, "
            f"lowest {stats['worst']:.2f}"
        )
    for goal, met in summary.get("goals", {}).items():
        lines.append(f"- goal {goal}: {'met' if met else 'NOT met'}")
    return lines


def attack_rows(workdir: Path) -> list[dict[str, Any]]:
    """Rows that `egan attack` stored under `workdir/attacks/*.json`, in name order."""
    rows = []
    for path in sorted((workdir / "attacks").glob("*.json")):
        rows.extend(json.loads(path.read_text()).get("rows", []))
    return rows


def write_report(
    out: Path,
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    previews: dict[str, np.ndarray],
    meta: dict[str, Any],
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    grid_names = [n for n in previews if not n.startswith(("random key", "near"))]
    grid_names += [n for n in previews if n.startswith("random key")][:2]
    grid_names += [n for n in previews if n.startswith("near key")][:1]
    grid_names += [n for n in previews if n.startswith("near material")][:1]
    grid = save_labelled_grid({n: previews[n] for n in grid_names}, out / "grid.png")
    report = {"meta": meta, "rows": rows, "summary": summary}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    md = [
        f"# EGAN protection report: {meta.get('workdir', '')}",
        "",
        f"Design `{meta.get('design')}`, key {meta.get('key_fingerprint')}, step {meta.get('step')}, "
        f"{meta.get('num_samples')} samples, seed {meta.get('seed')}. Digits Fréchet distance "
        "(lower is better) against the real training digits.",
        "",
        markdown_table(rows, summary.get("baseline_fd")),
        "",
        *_summary_lines(summary),
        "",
        "![samples](grid.png)",
        "",
    ]
    (out / "report.md").write_text("\n".join(md))
    return {"json": out / "report.json", "markdown": out / "report.md", "grid": grid}


def evaluate_workdir(
    workdir: str | Path,
    *,
    key: SecretKey | None = None,
    baseline: str | Path | None = None,
    out: str | Path | None = None,
    num_samples: int | None = None,
    seed: int = 0,
    random_keys: int = 10,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Evaluate a protected workdir (and its baseline); write the report; return it as a dict.

    `key` defaults to the config's key file (or the demo key); a checkpoint trained with another
    key raises `KeyMismatchError`.
    """
    from egan_jax.families.egan_dcgan import load_key
    from egan_jax.train import load_trained, sample_images

    workdir = Path(workdir)
    from egan_jax.config import read_config

    config = read_config(workdir / "config.json")
    if config.family != "egan_dcgan":
        raise ConfigError(
            f"{workdir} holds a {config.family!r} run; egan evaluate needs an egan_dcgan workdir"
        )
    key = key or load_key(config)
    config, models, step = load_trained(workdir, key_fingerprint=key.fingerprint)
    n = num_samples or config.eval.num_samples
    scorer = FrechetScorer(config, cache_dir=cache_dir)
    rows, previews = protection_rows(
        config, models["generator"], key, scorer, num_samples=n, seed=seed, random_keys=random_keys
    )
    baseline_fd = None
    if baseline is not None:
        images = sample_images(baseline, n=n, seed=seed)
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


def watermark_rows(config: Config, generator: nnx.Module, key: SecretKey, *, seed: int = 0):
    """Black-box logo SSIM (correct key / no key) and white-box bit error rate, when trained in."""
    from egan_jax import watermark
    from egan_jax.families.egan_dcgan import variants, watermark_logo

    wm = config.loss.watermark
    rows = []
    if wm.trigger_weight > 0:
        logo = jnp.asarray(watermark_logo(config))
        trigger = watermark.get_trigger(wm.trigger)
        z = trigger(jnp.asarray(_latents(config, 64, seed + 1)))
        generate = make_generate(config, generator)
        for variant in (variants(config, key).authorized, _no_key()):
            marked = jnp.asarray(generate(variant, np.asarray(z)))
            value = float(jnp.mean(watermark.logo_ssim(marked, logo)))
            rows.append(
                {
                    "name": f"black-box watermark ({variant.name})",
                    "kind": "watermark",
                    "fd": None,
                    "note": f"logo SSIM {value:.3f}",
                    "logo_ssim": value,
                }
            )
    if wm.signature_weight > 0:
        ber = watermark.signature_ber(generator, watermark.signature_bits(wm.signature))
        rows.append(
            {
                "name": "white-box signature",
                "kind": "watermark",
                "fd": None,
                "note": f"bit error rate {ber:.3f}",
                "bit_error_rate": ber,
            }
        )
    return rows


# --- attacks' rows ------------------------------------------------------------------------------
PRUNE_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)


def _no_key() -> Variant:
    return Variant("no key", "no_key", lambda x: x, None)


def _context(workdir: Path, key: SecretKey | None, cache_dir: str | None, check_key: bool):
    """Config, models, key and scorer of a protected workdir (the key check is skipped for
    attacks run without the key)."""
    from egan_jax.config import read_config
    from egan_jax.families.egan_dcgan import load_key
    from egan_jax.train import load_trained

    config = read_config(Path(workdir) / "config.json")
    key = key or (load_key(config) if check_key else None)
    fingerprint = key.fingerprint if (key is not None and check_key) else None
    config, models, _ = load_trained(workdir, key_fingerprint=fingerprint)
    return config, models, key, FrechetScorer(config, cache_dir=cache_dir)


def _latents(config: Config, n: int, seed: int) -> np.ndarray:
    return np.asarray(jax.random.normal(jax.random.key(seed), (n, config.model.latent_dim)))


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
    z = _latents(config, num_samples, seed)
    rows = []
    original = jax.tree_util.tree_map(np.array, nnx.state(models["generator"]))  # a copy
    for fraction in fractions:
        generator = models["generator"]
        nnx.update(generator, original)
        prune_model(generator, fraction)
        generate = make_generate(config, generator)
        for variant, label in ((authorized, "correct key"), (_no_key(), "no key")):
            rows.append(
                {
                    "name": f"pruned {fraction:.0%} ({label})",
                    "kind": "attack_prune",
                    "fd": scorer(_batched(generate, variant, z)),
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
    z = _latents(config, num_samples, seed)
    best, scores = key_search(pool, lambda v: scorer(_batched(generate, v, z)))
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
    steps=300,
    batch_size=64,
    num_samples=500,
    seed=0,
    cache_dir=None,
):
    """Key estimation: a latent adapter trained in front of the frozen stolen generator."""
    from egan_jax.attacks import LatentAdapter, estimate_key
    from egan_jax.data import batch_at, load_images

    config, models, _, scorer = _context(Path(workdir), None, cache_dir, False)
    images = load_images(
        "digits", split="train", image_size=config.data.image_size, channels=config.data.channels
    )
    real = lambda i: jnp.asarray(batch_at(images, i, batch_size=batch_size, seed=seed))
    adapter = LatentAdapter(config.model.latent_dim, rngs=nnx.Rngs(seed))
    history = estimate_key(
        models["generator"],
        adapter,
        real_batches=real,
        latent_dim=config.model.latent_dim,
        steps=steps,
        batch_size=batch_size,
        objective=objective,
        discriminator=models["discriminator"],
        seed=seed,
    )
    adapted = Variant("estimated", "attack_estimate", lambda z: adapter(z), None)
    if config.model.design == "feature_perm":  # the adapter acts on z, before the feature hook
        generator = models["generator"]
        generator.eval()
        z = jnp.asarray(_latents(config, num_samples, seed))
        images_out = np.asarray(nnx.jit(lambda g, a, z: g(a(z)))(generator, adapter, z))
    else:
        images_out = _batched(
            make_generate(config, models["generator"]), adapted, _latents(config, num_samples, seed)
        )
    rows = [
        {
            "name": f"key estimation ({objective}, {steps} steps)",
            "kind": "attack_estimate",
            "fd": scorer(images_out),
            "note": f"loss {history[0]:.3f} -> {history[-1]:.3f}",
        }
    ]
    _save_rows(Path(workdir), f"estimate_{objective}", rows)
    return rows


def attack_finetune(workdir, *, key=None, num_samples=500, seed=0, cache_dir=None, steps=None):
    """Fine-tuning without the key (with / without the discriminator) vs the from-scratch thief;
    also whether the owner's key and watermark still work on the fine-tuned generator."""
    from egan_jax.attacks import _stolen_state, finetune_config
    from egan_jax.config import read_config
    from egan_jax.families.egan_dcgan import load_key, variants, watermark_logo
    from egan_jax.train import train_and_evaluate
    from egan_jax.watermark import dcgan_trigger, logo_ssim

    workdir = Path(workdir)
    source = read_config(workdir / "config.json")
    key = key or load_key(source)
    scorer = FrechetScorer(source, cache_dir=cache_dir)
    z = _latents(source, num_samples, seed)
    authorized = variants(source, key).authorized
    _stolen_state(str(workdir.absolute()))
    rows = []
    settings = (("with D", True, False), ("without D", False, False), ("from scratch", True, True))
    for label, keep_d, scratch in settings:
        attack = finetune_config(source, workdir, keep_discriminator=keep_d, from_scratch=scratch)
        overrides = {"log": dataclasses.replace(attack.log, quiet=True, sample_every=0)}
        if steps:
            overrides["train"] = dataclasses.replace(attack.train, steps=steps)
        attack = dataclasses.replace(attack, **overrides)
        result = train_and_evaluate(attack, workdir / "attacks" / f"run_{label.replace(' ', '_')}")
        generator = result.models["generator"]
        generate = make_generate(source, generator)
        rows.append(
            {
                "name": f"fine-tune {label} (no key)",
                "kind": "attack_finetune",
                "fd": scorer(_batched(generate, _no_key(), z)),
            }
        )
        if not scratch:
            rows.append(
                {
                    "name": f"fine-tune {label} (correct key)",
                    "kind": "attack_finetune",
                    "fd": scorer(_batched(generate, authorized, z)),
                }
            )
            if source.loss.watermark.trigger_weight > 0:
                logo = jnp.asarray(watermark_logo(source))
                zt = np.asarray(dcgan_trigger(jnp.asarray(z[:64])))
                marked = _batched(generate, authorized, zt)
                rows[-1]["note"] = (
                    f"logo SSIM {float(jnp.mean(logo_ssim(jnp.asarray(marked), logo))):.3f}"
                )
    _save_rows(workdir, "finetune", rows)
    return rows
