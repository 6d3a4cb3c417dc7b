"""`egan evaluate` for the protected image-to-image families (egan_srgan, egan_cyclegan).

For a trained workdir this runs the held-out images through the protected generator with the correct
key, no key (the raw input), `random_keys` other keys, near-miss secrets (one bit flipped) and
near-miss material (one transposition / one flipped mask bit), and, when given, the unprotected
baseline workdir (a plain `srgan` / `cyclegan` run of the same sizes), then writes under `out`
(default `workdir/report/`) `report.json`, `report.md` and `grid.png` (one row per input kind).

Metrics, per family:
* egan_srgan: PSNR and SSIM on the Y channel with a `scale`-px border (4 for ×4), against plain
  bicubic up-sampling of the same LR tiles (`image_quality`). Goals: correct key at most 0.2 dB below
  the baseline; every unauthorized input below bicubic.
* egan_cyclegan: the Fréchet distance of the A -> B translations to the real B test images in a
  bundled feature space — FID InceptionV3 when `model.fid_weights` names its .npz, else the project's
  digits classifier features (`metrics.DigitsClassifier`, grey 16×16; the only network shipped) —
  and the A -> B -> A cycle PSNR. The B -> A direction is unprotected and reported once. Goal: every
  unauthorized Fréchet distance ≥ 3× the correct key's. The wrapper-deleted build's outputs are
  also scored after a thief's global colour correction (their mean colour moved to the B training
  set's; `evaluate_i2i_inputs.colour_corrected`), since the grey 16-px digits features mostly
  read brightness; that row counts toward the goal as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from egan_jax.config import Config, read_config
from egan_jax.deep_lock import NO_LOCK, attached
from egan_jax.errors import ConfigError
from egan_jax.evaluate_i2i_inputs import (
    OWN,
    _sr_inputs,
    colour_corrected,
    has_input_map,
    no_key_lock,
    target_training_images,
)
from egan_jax.evaluate_i2i_report import (
    ADAPTER_REMOVED,
    COLOUR_CORRECTED,
    attack_table,
    load_attack_rows,
    markdown_table,
    summarize,
    write_report,
)
from egan_jax.keys import SecretKey
from egan_jax.unauthorized import UnauthorizedSpec

FAMILIES = ("egan_srgan", "egan_cyclegan")
PREVIEWS = 6


def baseline_config(config: Config) -> Config:
    """The unprotected model of a protected config: same sizes, data, schedule and seed."""
    import dataclasses

    from egan_jax.families import cyclegan, srgan

    plain = {"egan_srgan": ("srgan", srgan), "egan_cyclegan": ("cyclegan", cyclegan)}
    if config.family not in plain:
        raise ConfigError(f"no unprotected counterpart for family {config.family!r}")
    family, module = plain[config.family]

    def subset(cls, section):
        return cls(**{f.name: getattr(section, f.name) for f in dataclasses.fields(cls)})

    return dataclasses.replace(
        config,
        family=family,
        model=subset(module.ModelConfig, config.model),
        loss=subset(module.LossConfig, config.loss),
    )


def forward_fn(
    generator: nnx.Module,
    batch: int = 16,
    feature: Callable | None = None,
    lock: Callable | None = None,
    key_inverse: Callable | None | str = OWN,
) -> Callable[[np.ndarray], np.ndarray]:
    """Eval-mode `images -> generator(images)` in batches (numpy in, numpy out, compiled once);
    `feature`: the feature-map transform a `KeyedGenerator` uses instead of its stored key;
    `lock`: the deep lock to run with instead of the generator's own (`egan_jax.deep_lock`);
    `key_inverse`: the `key_inverse` input map to run with instead of its own (None: none)."""
    generator.eval()
    inner = getattr(generator, "generator", generator)
    own_inverse = getattr(generator, "key_inverse", None)
    if key_inverse is not OWN:
        generator.key_inverse = key_inverse
    try:
        with attached(inner, inner.deep_lock if lock is None else lock):
            graphdef, state = nnx.split(generator)  # lock and inverse are static: in graphdef
    finally:
        if key_inverse is not OWN:
            generator.key_inverse = own_inverse
    kwargs = {} if feature is None else {"feature": feature}
    run = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x, **kwargs))

    def forward(images: np.ndarray) -> np.ndarray:
        parts = [
            np.asarray(run(state, images[i : i + batch])) for i in range(0, len(images), batch)
        ]
        return np.concatenate(parts)

    return forward


def wrapper_deleted_fn(keyed: nnx.Module, batch: int = 16) -> Callable[[np.ndarray], np.ndarray]:
    """A white-box thief's forward: the stolen inner generator with neither the wrapper (input
    map, input / feature locks) nor the deep lock, which only the owner's key supplies."""
    return forward_fn(keyed.generator, batch, lock=NO_LOCK)


# --- SRGAN ---------------------------------------------------------------------------------------
def _sr_tiles(config: Config) -> tuple[np.ndarray, np.ndarray]:
    from egan_jax.families.srgan import _test_tiles

    return _test_tiles(config)


def _scores(images: np.ndarray, hr: np.ndarray, scale: int) -> dict[str, float]:
    """Y-PSNR/SSIM of SR output quantised to 8 bits first, as `families.srgan` and the SR papers."""
    from egan_jax.data import to_uint8
    from egan_jax.image_quality import sr_scores

    return sr_scores(to_uint8(images), hr, border=scale)


def sr_family_scores(config: Config, models) -> dict[str, float]:
    """The training loop's evaluation: Y-PSNR/SSIM with the key, without it, and of bicubic."""
    from egan_jax.data import to_float
    from egan_jax.families.egan_image import cached_variants
    from egan_jax.image_quality import bicubic_upscale

    lr, hr = _sr_tiles(config)
    scale = config.model.scale
    forward = forward_fn(models["generator"])
    raw = to_float(lr)
    keyed = np.asarray(cached_variants(config).authorized.apply(raw))
    results = _scores(forward(keyed), hr, scale)
    no_key = forward_fn(models["generator"], feature=_no_feature(config), lock=no_key_lock(config))
    no_key = _scores(no_key(raw), hr, scale)
    results.update({f"{name}_no_key": value for name, value in no_key.items()})
    bicubic = _scores(to_float(bicubic_upscale(lr, scale)), hr, scale)
    results.update({f"bicubic_{name}": value for name, value in bicubic.items()})
    models["generator"].train()
    return results


def _no_feature(config: Config):
    from egan_jax.families.egan_image import uses_feature_key

    return (lambda h: h) if uses_feature_key(config) else None


def sr_rows(config, models, key, spec, baseline: Path | None):
    """Rows (Y-PSNR/SSIM) and preview tiles: bicubic, baseline, every input kind."""
    from egan_jax.data import to_float
    from egan_jax.image_quality import bicubic_upscale

    lr, hr = _sr_tiles(config)
    scale, raw = config.model.scale, to_float(lr)
    rows, previews = [], {"HR (target)": to_float(hr[:PREVIEWS])}

    def add(name: str, kind: str, sr: np.ndarray) -> None:
        rows.append({"name": name, "kind": kind, **_scores(sr, hr, scale)})
        previews[name] = sr[:PREVIEWS]

    add("bicubic", "bicubic", to_float(bicubic_upscale(lr, scale)))
    if baseline is not None:
        from egan_jax.train import load_trained

        _, base_models, _ = load_trained(baseline)
        add("unprotected baseline", "baseline", forward_fn(base_models["generator"])(raw))
    generator = models["generator"]
    for name, kind, image, feature, lock, inverse in _sr_inputs(config, key, spec):
        forward = forward_fn(generator, feature=feature, lock=lock, key_inverse=inverse)
        add(name, kind, forward(np.asarray(image(raw))))
    if has_input_map(models["generator"]):  # a white-box thief deletes the input map
        add(ADAPTER_REMOVED, "adapter_removed", wrapper_deleted_fn(models["generator"])(raw))
    return rows, previews


# --- CycleGAN ------------------------------------------------------------------------------------
def feature_network(config: Config, cache_dir: str | None = None):
    """(network, name): FID InceptionV3 from `model.fid_weights`, else the digits classifier."""
    if config.model.fid_weights:
        from egan_jax.models.inception import InceptionFeatures

        return InceptionFeatures(config.model.fid_weights), "FID (InceptionV3)"
    from egan_jax.metrics import DigitsClassifier

    return DigitsClassifier.load_or_train(cache_dir), "Fréchet distance (digits features)"


def _cycle_test(config: Config) -> tuple[np.ndarray, np.ndarray]:
    from egan_jax.data import to_float
    from egan_jax.families.cyclegan import _test_domains

    return tuple(to_float(images) for images in _test_domains(config))


def cycle_family_scores(config: Config, models) -> dict[str, float]:
    """The training loop's evaluation: A -> B -> A cycle PSNR with and without the key."""
    from egan_jax.families.egan_image import cached_variants
    from egan_jax.image_quality import cycle_psnr

    test_a, test_b = _cycle_test(config)
    g_ab, g_ba = forward_fn(models["generator_ab"]), forward_fn(models["generator_ba"])
    no_key = forward_fn(
        models["generator_ab"], feature=_no_feature(config), lock=no_key_lock(config)
    )
    keyed = np.asarray(cached_variants(config).authorized.apply(test_a))
    results = {
        "cycle_psnr_a": float(np.mean(cycle_psnr(test_a, g_ba(g_ab(keyed))))),
        "cycle_psnr_a_no_key": float(np.mean(cycle_psnr(test_a, g_ba(no_key(test_a))))),
        "cycle_psnr_b": float(np.mean(cycle_psnr(test_b, g_ab(keyed_of(config, g_ba(test_b)))))),
    }
    models["generator_ab"].train()
    return results


def keyed_of(config: Config, images: np.ndarray) -> np.ndarray:
    from egan_jax.families.egan_image import cached_variants

    return np.asarray(cached_variants(config).authorized.apply(images))


def cycle_rows(config, models, key, spec, baseline: Path | None, cache_dir: str | None):
    from egan_jax.image_quality import cycle_psnr
    from egan_jax.metrics import compute_fid

    test_a, test_b = _cycle_test(config)
    network, metric = feature_network(config, cache_dir)
    g_ba = forward_fn(models["generator_ba"])

    def row(name: str, kind: str, fake_b: np.ndarray, backward) -> dict[str, Any]:
        return {
            "name": name,
            "kind": kind,
            "fd_a_to_b": compute_fid(fake_b, test_b, network),
            "cycle_psnr_a": float(np.mean(cycle_psnr(test_a, backward(fake_b)))),
        }

    rows, previews = [], {"source A": test_a[:PREVIEWS]}
    fake_a = g_ba(test_b)
    rows.append(
        {
            "name": "source A untranslated",
            "kind": "reference",
            "fd_a_to_b": compute_fid(test_a, test_b, network),
            "cycle_psnr_a": None,
        }
    )
    rows.append(
        {
            "name": "B→A by G_ba (unprotected)",
            "kind": "reference",
            "fd_a_to_b": None,
            "fd_b_to_a": compute_fid(fake_a, test_a, network),
            "cycle_psnr_a": None,
        }
    )
    if baseline is not None:
        from egan_jax.train import load_trained

        _, base, _ = load_trained(baseline)
        base_ab, base_ba = forward_fn(base["generator_ab"]), forward_fn(base["generator_ba"])
        fake_b = base_ab(test_a)
        rows.append(row("unprotected baseline", "baseline", fake_b, base_ba))
        previews["unprotected baseline"] = fake_b[:PREVIEWS]
    for name, kind, image, feature, lock, inverse in _sr_inputs(config, key, spec):
        forward = forward_fn(
            models["generator_ab"], feature=feature, lock=lock, key_inverse=inverse
        )
        fake_b = forward(np.asarray(image(test_a)))
        rows.append(row(name, kind, fake_b, g_ba))
        previews[name] = fake_b[:PREVIEWS]
    if has_input_map(models["generator_ab"]):  # a white-box thief deletes the input map
        fake_b = wrapper_deleted_fn(models["generator_ab"])(test_a)
        rows.append(row(ADAPTER_REMOVED, "adapter_removed", fake_b, g_ba))
        previews[ADAPTER_REMOVED] = fake_b[:PREVIEWS]
        corrected = colour_corrected(fake_b, target_training_images(config))
        rows.append(row(COLOUR_CORRECTED, "colour_corrected", corrected, g_ba))
        previews[COLOUR_CORRECTED] = corrected[:PREVIEWS]
    return rows, previews, metric


def evaluate_workdir(
    workdir: str | Path,
    *,
    key: SecretKey | None = None,
    baseline: str | Path | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    random_keys: int = 10,
    near_keys: int = 2,
    near_materials: int = 2,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Evaluate a protected egan_srgan / egan_cyclegan workdir; write and return the report.

    `key` defaults to the run's key file (or the demo key); a checkpoint trained with another key
    raises `KeyMismatchError`.
    """
    from egan_jax.families.egan_image import load_key
    from egan_jax.train import load_trained

    workdir = Path(workdir)
    config = read_config(workdir / "config.json")
    if config.family not in FAMILIES:
        raise ConfigError(
            f"{workdir} holds a {config.family!r} run; this report needs one of {list(FAMILIES)}"
        )
    key = key or load_key(config)
    config, models, step = load_trained(workdir, key_fingerprint=key.fingerprint)
    spec = UnauthorizedSpec(
        random_keys=random_keys, near_keys=near_keys, near_materials=near_materials,
        seed=seed, label="evaluate",
    )  # fmt: skip
    base = Path(baseline) if baseline is not None else None
    metric_name = "Y-PSNR"
    if config.family == "egan_srgan":
        rows, previews = sr_rows(config, models, key, spec, base)
        images = len(_sr_tiles(config)[0])
    else:
        rows, previews, metric_name = cycle_rows(config, models, key, spec, base, cache_dir)
        images = len(_cycle_test(config)[0])
    summary = summarize(config.family, rows)
    meta = {
        "workdir": str(workdir),
        "family": config.family,
        "key_fingerprint": key.fingerprint,
        "step": step,
        "seed": seed,
        "images": images,
        "metric_name": metric_name,
        "baseline": str(base) if base else None,
    }
    attacks = load_attack_rows(workdir)  # `egan attack ...` rows
    paths = write_report(
        Path(out) if out else workdir / "report", config.family, rows, summary, previews, meta,
        attacks,
    )  # fmt: skip
    return {"meta": meta, "rows": rows, "summary": summary, "attacks": attacks,
            "paths": {k: str(v) for k, v in paths.items()}}  # fmt: skip


# --- `egan evaluate` ----------------------------------------------------------------------------
def is_image_run(workdir: str | Path) -> bool:
    """Whether `workdir` holds an egan_srgan / egan_cyclegan run (the CLI's dispatch test)."""
    path = Path(workdir) / "config.json"
    if not path.exists():
        return False
    return json.loads(path.read_text()).get("family") in FAMILIES


def run_cli(args) -> int:
    """`egan evaluate` for these families: the report, its table and paths printed."""
    key = SecretKey.load(args.key) if args.key else None
    report = evaluate_workdir(
        args.workdir,
        key=key,
        baseline=args.baseline,
        out=args.out,
        seed=args.seed,
        random_keys=args.random_keys,
        cache_dir=args.cache_dir,
    )
    print(markdown_table(report["meta"]["family"], report["rows"], report["meta"]["metric_name"]))
    for goal, met in report["summary"]["goals"].items():
        print(f"goal {goal}: {'met' if met else 'NOT met'}")
    if report["attacks"]:
        print(attack_table(report["meta"]["family"], report["attacks"]))
    print(json.dumps(report["paths"]))
    return 0
