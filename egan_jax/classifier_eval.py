"""The protection table of a key-protected classifier, and `egan evaluate` for classifier runs.

Rows (test accuracy, one per model / input): the plain baseline; the protected model with the correct
key; with plain images; with ``loss.random_keys`` random keys; with near-miss *keys* (the secret with
one bit flipped, so HKDF derives fresh material for every step); with near-miss *material* (the
correct key's material with one entry changed: one transposition of the shuffle, one flipped NP or
FFX selection bit), a diagnostic of how smooth the model is around its key rather than a key an
attacker can hold; and, for lockable patch-embedding models, the model unlocked and the baseline
locked without retraining. :func:`summarize` reduces the rows to the flat dict the training loop
stores in ``eval.json``; :func:`evaluate_workdir` writes ``report.{md,json}`` with the attack rows
that ``egan attack`` stored under ``WORKDIR/attacks/`` (see ``egan_jax.classifier_attacks``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from egan_jax.config import Config
from egan_jax.families.classifier import (
    accuracy,
    load_pipeline,
    lockable,
    num_classes,
)
from egan_jax.keys import SecretKey
from egan_jax.transforms.compose import Pipeline, apply_plan

GOAL_CORRECT_POINTS = 1.0  # correct key within 1 point of the plain model
GOAL_CHANCE_POINTS = 10.0  # plain images, random and near-miss keys within 10 points of chance
NEAR_MISS_BITS = (0, 131, 255)  # which secret bits the near-miss keys flip (first, middle, last)
UNAUTHORIZED_KINDS = ("no_key", "random_key", "near_key")


def random_keys(key: jax.Array, count: int) -> list[SecretKey]:
    """``count`` keys drawn from a JAX key (so an evaluation is a function of the run's seed)."""
    return [
        SecretKey.from_bytes(bytes(jax.device_get(jax.random.bits(k, (32,), jnp.uint8))))
        for k in jax.random.split(key, count)
    ]


def near_miss_keys(key: SecretKey, count: int) -> list[tuple[int, SecretKey]]:
    """``(bit, key with that secret bit flipped)`` for the first ``count`` of NEAR_MISS_BITS."""
    bits = [
        NEAR_MISS_BITS[i % len(NEAR_MISS_BITS)] + i // len(NEAR_MISS_BITS) for i in range(count)
    ]
    return [(bit, key.flip_bit(bit)) for bit in bits]


def transformed(pipeline: Pipeline, plain: np.ndarray) -> np.ndarray:
    """``pipeline`` applied to float images, eagerly: one compile per array shape, not one per
    key's material (``pipeline.forward`` bakes the material into its program)."""
    height, width = plain.shape[1:3]
    return np.asarray(apply_plan(pipeline.plan(height, width), jnp.asarray(plain)))


def protection_rows(
    config: Config, models, key: SecretKey, jax_key: jax.Array, plain: np.ndarray, labels
) -> list[dict[str, Any]]:
    """The table's rows for ``models`` (``classifier`` and optionally ``baseline``) on the test
    images ``plain`` (float, [-1, 1]) with the owner's ``key``; ``jax_key`` draws the random keys."""
    from flax import nnx

    from egan_jax import classifier_deep_lock, classifier_lock

    loss = config.loss
    classifier = models["classifier"]

    def row(name: str, kind: str, model, images, note: str = "") -> dict[str, Any]:
        score = accuracy(model, images, labels, batch_size=loss.eval_batch_size)
        return {"name": name, "kind": kind, "accuracy": score, "note": note}

    rows = []
    if "baseline" in models:
        rows.append(row("plain model, plain images", "baseline", models["baseline"], plain))
    pipeline = load_pipeline(config, key)
    if pipeline is None:
        return rows + [row("unprotected model, plain images", "unprotected", classifier, plain)]
    protected_images = transformed(pipeline, plain)
    rows.append(row("correct key", "authorized", classifier, protected_images))
    rows.append(row("plain images (no key)", "no_key", classifier, plain))
    if classifier_deep_lock.sites(config):
        # the others run the owner's model (a service: the caller only chooses the input)
        stolen = classifier_deep_lock.remove(nnx.clone(classifier))
        note = "the checkpoint run as a thief runs it"
        rows.append(
            row("stolen weights, no deep lock, plain images", "no_lock", stolen, plain, note)
        )
    for i, other in enumerate(random_keys(jax_key, loss.random_keys)):
        images = transformed(load_pipeline(config, other), plain)
        rows.append(row(f"random key {i}", "random_key", classifier, images))
    for bit, near in near_miss_keys(key, loss.near_miss_keys):
        images = transformed(load_pipeline(config, near), plain)
        rows.append(
            row(f"near-miss key (secret bit {bit} flipped)", "near_key", classifier, images)
        )
    for step in config.model.transform.steps:
        for seed in range(loss.near_miss_keys):
            images = transformed(pipeline.near_miss(seed, step), plain)
            change = "one transposition" if step in ("shuffle", "channel") else "one flipped bit"
            name = f"near-miss material ({step}, {change}, #{seed})"
            rows.append(row(name, f"near_material_{step}", classifier, images))
    if "ffx" in config.model.transform.steps:
        rows += ffx_probe_rows(
            config, pipeline, jax_key, plain, lambda n, k, x: row(n, k, classifier, x)
        )
    if lockable(config):
        # a patch-embedding model with a linear transform: the key lives in the embedding
        unlocked = classifier_lock.unlock_model(classifier, pipeline)
        rows.append(row("unlocked model, plain images", "unlocked", unlocked, plain))
        if "baseline" in models:
            locked = classifier_lock.lock_model(models["baseline"], pipeline)
            note = "locked without retraining"
            rows.append(
                row("locked baseline, correct key", "locked", locked, protected_images, note)
            )
            rows.append(row("locked baseline, plain images", "locked_no_key", locked, plain, note))
    return rows


def ffx_probe_rows(config: Config, pipeline: Pipeline, jax_key: jax.Array, plain, row) -> list:
    """Diagnostics of what an FFX model reads: the owner's FFX positions with another key's table
    (``ffx_other_table``: is the model using the coded values at all?) and the owner's table at
    another key's positions (``ffx_other_mask``), ``loss.near_miss_keys`` of each. The other keys
    are drawn from ``jax_key`` folded with 1 (not the random-key rows' keys)."""
    owner = dict(pipeline.materials)["ffx"]
    rows = []
    others = random_keys(jax.random.fold_in(jax_key, 1), config.loss.near_miss_keys)
    for i, other in enumerate(others):
        theirs = dict(load_pipeline(config, other).materials)["ffx"]
        for kind, changed in (
            ("ffx_other_table", dataclasses.replace(owner, table=theirs.table)),
            ("ffx_other_mask", dataclasses.replace(owner, mask=theirs.mask)),
        ):
            materials = tuple(
                (name, changed if name == "ffx" else m) for name, m in pipeline.materials
            )
            probe = Pipeline(pipeline.config, materials, pipeline.fingerprint + "~probe")
            what = "another key's table" if kind == "ffx_other_table" else "another key's positions"
            rows.append(row(f"FFX probe: {what} (#{i})", kind, transformed(probe, plain)))
    return rows


def summarize(rows: list[dict[str, Any]], chance: float) -> dict[str, float]:
    """The flat ``eval.json`` dict: one number per single row kind, mean/sd/worst per repeated kind
    (sd: population; worst: the highest accuracy, the wrong key closest to working)."""
    names = {
        "baseline": "plain_model",
        "unprotected": "accuracy",
        "authorized": "correct_key",
        "no_key": "plain_images",
        "no_lock": "stolen_plain_images",
        "random_key": "random_keys",
        "near_key": "near_miss_keys",
        "unlocked": "unlocked_plain_images",
        "locked": "locked_baseline_correct_key",
        "locked_no_key": "locked_baseline_plain_images",
    }
    by_kind: dict[str, list[float]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r["accuracy"])
    results = {"chance": chance}
    for kind, scores in by_kind.items():
        name = names.get(kind, kind)
        if kind in ("random_key", "near_key") or kind.startswith(("near_material", "ffx_")):
            results[f"{name}_mean"] = float(np.mean(scores))
            results[f"{name}_sd"] = float(np.std(scores))
            results[f"{name}_worst"] = float(np.max(scores))
        else:
            results[name] = float(scores[0])
    return results


def goals(summary: dict[str, float]) -> dict[str, bool]:
    """The issue's goals that ``summary`` can check (absent rows are not judged)."""
    met = {}
    if "plain_model" in summary and "correct_key" in summary:
        lost = 100 * (summary["plain_model"] - summary["correct_key"])
        met[f"correct key within {GOAL_CORRECT_POINTS:g} point of the plain model"] = (
            lost <= GOAL_CORRECT_POINTS
        )
    worst = [
        summary[name]
        for name in (
            "plain_images",
            "stolen_plain_images",
            "random_keys_worst",
            "near_miss_keys_worst",
        )
        if name in summary
    ]
    if worst:
        gap = 100 * (max(worst) - summary["chance"])
        met[
            f"plain images, random and near-miss keys within {GOAL_CHANCE_POINTS:g} points of chance"
        ] = gap <= GOAL_CHANCE_POINTS
    return met


def make_evaluate(config: Config):
    """``evaluate(models, key) -> {name: float}``: the summary of :func:`protection_rows` on the
    ``loss.test_split`` images with the config's key file."""
    from egan_jax.data import to_float
    from egan_jax.families.classifier import _load

    pipeline = load_pipeline(config)
    owner = None if pipeline is None else SecretKey.load(config.model.transform.key_file)
    test_images, labels = _load(config, config.loss.test_split)
    plain = to_float(test_images)
    chance = 1.0 / num_classes(config)

    def evaluate(models, key: jax.Array) -> dict[str, float]:
        return summarize(protection_rows(config, models, owner, key, plain, labels), chance)

    return evaluate


# --- the report ---------------------------------------------------------------------------------
def markdown_table(rows: list[dict[str, Any]], reference: float | None) -> str:
    """Rows as a markdown table; ``reference`` (the plain model's accuracy) gives the Δ column."""
    lines = [
        "| model / input | kind | accuracy % | Δ vs plain model (points) | note |",
        "|---|---|---:|---:|---|",
    ]
    for r in rows:
        acc = r.get("accuracy")
        shown = "–" if acc is None else f"{100 * acc:.1f}"
        delta = "–" if acc is None or reference is None else f"{100 * (acc - reference):+.1f}"
        lines.append(f"| {r['name']} | {r['kind']} | {shown} | {delta} | {r.get('note', '')} |")
    return "\n".join(lines)


def attack_rows(workdir: Path) -> list[dict[str, Any]]:
    """Rows that ``egan attack`` stored under ``workdir/attacks/*.json``, in name order."""
    rows = []
    for path in sorted((Path(workdir) / "attacks").glob("*.json")):
        rows.extend(json.loads(path.read_text()).get("rows", []))
    return rows


def evaluate_workdir(
    workdir: str | Path,
    *,
    key: SecretKey | None = None,
    baseline: str | Path | None = None,
    out: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate a trained classifier run with ``key`` (default: its key file); write
    ``report.json`` and ``report.md`` under ``out`` (default ``WORKDIR/report``); return the report.

    ``baseline``: the workdir of an unprotected run (``model.transform.steps=()``) on the same
    data, whose accuracy is the plain-model row when the run has no baseline twin. A key whose
    fingerprint differs from the checkpoint's raises ``KeyMismatchError``."""
    from egan_jax.config import read_config
    from egan_jax.data import to_float
    from egan_jax.families.classifier import _load
    from egan_jax.train import load_trained

    workdir = Path(workdir)
    config = read_config(workdir / "config.json")
    if key is None and config.model.transform.steps:
        key = SecretKey.load(config.model.transform.key_file)
    fingerprint = key.fingerprint if key is not None else None
    config, models, step = load_trained(workdir, key_fingerprint=fingerprint)
    if key is not None:  # the deep lock of the key evaluated, even where the key file is absent
        from egan_jax.classifier_deep_lock import attach_key

        attach_key(models["classifier"], config, key)
    test_images, labels = _load(config, config.loss.test_split)
    rows = protection_rows(config, models, key, jax.random.key(seed), to_float(test_images), labels)
    if baseline is not None:
        _, plain_models, _ = load_trained(baseline)
        score = accuracy(plain_models["classifier"], to_float(test_images), labels)
        note = f"unprotected run {baseline}"
        rows.insert(
            0,
            {
                "name": "plain model, plain images",
                "kind": "baseline",
                "accuracy": score,
                "note": note,
            },
        )
    summary = summarize(rows, 1.0 / num_classes(config))
    rows += attack_rows(workdir)
    meta = {
        "workdir": str(workdir),
        "arch": config.model.arch,
        "transform": {
            "block": config.model.transform.block,
            "steps": list(config.model.transform.steps),
        },
        "key_fingerprint": fingerprint,
        "step": step,
        "test_images": len(labels),
        "seed": seed,
        "baseline": str(baseline) if baseline else None,
    }
    report = {"meta": meta, "rows": rows, "summary": summary, "goals": goals(summary)}
    out = Path(out) if out else workdir / "report"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Key-protected classifier report: {workdir}",
        "",
        f"`{meta['arch']}`, transform {meta['transform']['steps']} block "
        f"{meta['transform']['block']}, key {fingerprint}, step {step}, {len(labels)} test images "
        f"(`{config.data.name}` {config.loss.test_split}), seed {seed}; chance "
        f"{100 * summary['chance']:.1f}%.",
        "",
        markdown_table(rows, summary.get("plain_model")),
        "",
        *(f"- goal {g}: {'met' if ok else 'NOT met'}" for g, ok in report["goals"].items()),
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    report["paths"] = {"json": str(out / "report.json"), "markdown": str(out / "report.md")}
    return report
