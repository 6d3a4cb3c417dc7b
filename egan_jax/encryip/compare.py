"""EncryIP side by side with the project's other protections, on the same model and data.

Four classifiers of one architecture, trained for the same steps on the same batches from the same
seed: the **plain** model and the **watermarked** model (the project's white-box signature in the
batch-norm scales, :mod:`egan_jax.watermark`) are the twins an ``encryip`` run trains with
``model.baseline`` and ``model.watermark_signature``; the **key-transform** model is a
``classifier`` run (block-wise transform with a secret key, :mod:`egan_jax.families.classifier`)
whose data, model, steps, batch size, optimizer and seed must equal the encryip run's (checked).

The same attacks hit all four: fine-tuning on 10% of the training data with the attacker's own
labels (the same optimizer, steps and subset for every model), global magnitude pruning 10-90%
(of the weight kernels only: the batch-norm scales, and with them the watermark, stay), and forged
keys. Each cell says what the owner or an authorized user gets, what a thief without the key gets,
and what the owner can still prove (watermark: the signature's bit error rate;
EncryIP: which user's key a black-box copy uses). Written as ``compare.json`` and ``compare.md``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from egan_jax import watermark
from egan_jax.encryip import codebook as cb
from egan_jax.encryip import pipeline as pl
from egan_jax.encryip import robustness as rb
from egan_jax.errors import ConfigError, KeyMismatchError

METHODS = ("plain", "watermark", "key transform", "EncryIP")
PRUNE_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
# what must match between the encryip run and the key-transform run for a fair comparison
SAME_FIELDS = (
    "seed data.name data.split data.image_size data.channels model.arch model.width model.depth "
    "train.steps train.batch_size optim"
).split()


def _field(config, dotted: str):
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def check_same_setting(encryip_config, transform_config) -> None:
    """Raise ``ConfigError`` naming every field where the two runs differ."""
    if transform_config.family != "classifier" or not transform_config.model.transform.steps:
        raise ConfigError(
            "the key-transform run must be a 'classifier' run with model.transform.steps set "
            "(egan train experiments/classifier_digits.py --set model.transform.key_file=KEY)"
        )
    differ = [
        f"{name}: {_field(encryip_config, name)!r} vs {_field(transform_config, name)!r}"
        for name in SAME_FIELDS
        if _field(encryip_config, name) != _field(transform_config, name)
    ]
    if differ:
        raise ConfigError(
            "the encryip and key-transform runs differ in " + "; ".join(differ) + ". Train the "
            "key-transform run with the same settings (--set FIELD=VALUE) to compare them"
        )


def compare_protections(
    workdir: str | Path,
    registry_path: str | Path,
    transform_workdir: str | Path,
    *,
    out: str | Path | None = None,
    seed: int = 0,
    finetune_fraction: float = 0.1,
    finetune_steps: int = 100,
    finetune_learning_rate: float = 1e-4,
    prune_fractions: tuple[float, ...] = PRUNE_FRACTIONS,
    random_keys: int = 10,
    draws: int = 5,
) -> dict[str, Any]:
    """The side-by-side table of an encryip run (with its plain and watermarked twins) and a
    key-transform run; written under ``out`` (default ``WORKDIR/report/encryip``) and returned."""
    from egan_jax.attacks import prune_model, subset_indices
    from egan_jax.classifier_eval import near_miss_keys, transformed
    from egan_jax.classifier_eval import random_keys as draw_random_keys
    from egan_jax.config import read_config
    from egan_jax.data import to_float
    from egan_jax.encryip.registry import Registry
    from egan_jax.families import classifier as plain
    from egan_jax.families import encryip as family
    from egan_jax.keys import SecretKey
    from egan_jax.train import load_trained

    workdir, transform_workdir = Path(workdir), Path(transform_workdir)
    config = read_config(workdir / "config.json")
    if config.family != "encryip":
        raise ConfigError(f"{workdir} holds a {config.family!r} run, not an encryip one")
    if not (config.model.baseline and config.model.watermark_signature):
        raise ConfigError(
            f"{workdir} has no plain and watermarked twins; train it with model.baseline=true "
            "and model.watermark_signature=TEXT (experiments/encryip_digits.py sets both)"
        )
    check_same_setting(config, read_config(transform_workdir / "config.json"))
    registry = Registry.load(registry_path)
    secrets = family.run_secrets(config, registry.owner)
    book, secret, triggers = secrets.codebook, secrets.secret, secrets.triggers
    config, models, step = load_trained(workdir, key_fingerprint=book.fingerprint)
    t_config = read_config(transform_workdir / "config.json")
    transform_key = SecretKey.load(t_config.model.transform.key_file)
    t_config, t_models, t_step = load_trained(
        transform_workdir, key_fingerprint=plain.load_pipeline(t_config, transform_key).fingerprint
    )
    transform = plain.load_pipeline(t_config, transform_key)
    keys = registry.user_keys()
    if not keys:
        raise ConfigError(
            f"{registry_path} lists no users; issue some with egan encryip issue-user"
        )
    k, batch, rate = (
        book.num_classes,
        config.loss.eval_batch_size,
        config.loss.false_accusation_rate,
    )
    maps = {uid: cb.decrypt_codebook(book, key) for uid, key in keys.items()}
    expected = cb.fake_classes(registry.owner, book, secret, keys)
    bits = family.signature_bits(config)
    test_images, test_labels = plain._load(config, config.loss.test_split)
    train_images, train_labels = plain._load(config, config.data.split)
    test_x, train_x = to_float(test_images), to_float(train_images)
    test_t, train_t = transformed(transform, test_x), transformed(transform, train_x)
    key = jax.random.key(seed)
    no_key_maps = [pl.random_map(sub, book.size, k) for sub in jax.random.split(key, draws)]

    def acc(model, images) -> float:
        return plain.accuracy(model, images, test_labels, batch_size=batch)

    def logits(model, images) -> np.ndarray:
        return pl.predict_logits(model, images, batch_size=batch)

    def users(model) -> dict[str, float]:
        """EncryIP: every user's accuracy, a thief's with no key, users identified by tracing."""
        test_logits, trigger_logits = logits(model, test_x), logits(model, triggers)
        scores = [pl.map_accuracy(test_logits, test_labels, m, k) for m in maps.values()]
        traced = [
            cb.trace(
                pl.decode(trigger_logits, m, k), expected, k, false_accusation_rate=rate
            ).accused
            == uid
            for uid, m in maps.items()
        ]
        thief = [pl.map_accuracy(test_logits, test_labels, m, k) for m in no_key_maps]
        return {
            "min": min(scores),
            "thief": float(np.mean(thief)),
            "traced": float(np.mean(traced)),
        }

    def ber(model) -> float:
        return watermark.signature_ber(model, bits)

    subset = subset_indices(len(train_x), finetune_fraction, seed)

    def finetune(model, images, decoder: np.ndarray, classes: int):
        return rb.finetune_through_decoder(
            model,
            decoder,
            classes,
            images[subset],
            train_labels[subset],
            steps=finetune_steps,
            learning_rate=finetune_learning_rate,
            batch_size=64,
            seed=seed,
        )

    identity = np.arange(k, dtype=np.int32)
    base, marked = models["baseline"], models["watermarked"]
    locked, encrypted = t_models["classifier"], models["classifier"]
    rows: list[dict[str, Any]] = []

    def add(scenario: str, measure: str, **cells: Any) -> None:
        rows.append({"scenario": scenario, "measure": measure, **cells})

    # --- no attack ----------------------------------------------------------------------------
    base_acc, marked_acc, enc = acc(base, test_x), acc(marked, test_x), users(encrypted)
    add(
        "none",
        "owner / authorized user %",
        plain=base_acc,
        watermark=marked_acc,
        transform=acc(locked, test_t),
        encryip=enc["min"],
    )
    add(
        "none",
        "thief without the key %",
        plain=base_acc,
        watermark=marked_acc,
        transform=acc(locked, test_x),
        encryip=enc["thief"],
    )
    one_each = rb.per_class_sample(train_labels, 1, seed)
    learned = rb.attacker_map(logits(encrypted, train_x[one_each]), train_labels[one_each], k)
    add(
        "none",
        "thief with 1 labelled image per class %",
        plain=base_acc,
        watermark=marked_acc,
        encryip=pl.map_accuracy(logits(encrypted, test_x), test_labels, learned, k),
    )
    add(
        "none",
        "owner's proof",
        plain="none",
        watermark=_ber_cell(ber(marked)),
        transform="none",
        encryip=_traced_cell(enc["traced"], len(maps)),
    )

    # --- fine-tuning on the attacker's own labels ----------------------------------------------
    scenario = f"fine-tune {finetune_fraction:.0%} data, {finetune_steps} steps"
    tuned_base = finetune(base, train_x, identity, k)
    tuned_marked = finetune(marked, train_x, identity, k)
    tuned_locked = finetune(locked, train_x, identity, k)  # the thief has plain images only
    estimated = rb.attacker_map(logits(encrypted, train_x[subset]), train_labels[subset], k)
    tuned_estimated = finetune(encrypted, train_x, estimated, k)
    add(
        scenario,
        "thief without the key %",
        plain=acc(tuned_base, test_x),
        watermark=acc(tuned_marked, test_x),
        transform=acc(tuned_locked, test_x),
        encryip=pl.map_accuracy(logits(tuned_estimated, test_x), test_labels, estimated, k),
    )
    leaked_user = next(iter(maps))
    tuned_leaked = finetune(encrypted, train_x, maps[leaked_user], k)
    leaked_logits = logits(tuned_leaked, test_x)
    leaked_verdict = cb.trace(
        pl.decode(logits(tuned_leaked, triggers), maps[leaked_user], k),
        expected,
        k,
        false_accusation_rate=rate,
    )
    add(
        scenario,
        "leaked-key holder %",
        transform=acc(finetune(locked, train_t, identity, k), test_t),
        encryip=pl.map_accuracy(leaked_logits, test_labels, maps[leaked_user], k),
    )
    add(
        scenario,
        "owner's proof",
        plain="none",
        watermark=_ber_cell(ber(tuned_marked)),
        transform="none",
        encryip="leaked user identified"
        if leaked_verdict.accused == leaked_user
        else f"not identified (accused: {leaked_verdict.accused or 'nobody'})",
    )

    # --- pruning ---------------------------------------------------------------------------------
    for fraction in prune_fractions:
        pruned = {
            name: prune_model(nnx.clone(m), fraction)
            for name, m in (("plain", base), ("wm", marked), ("tf", locked), ("enc", encrypted))
        }
        pruned_enc = users(pruned["enc"])
        scenario = f"prune {fraction:.0%}"
        add(
            scenario,
            "owner / authorized user %",
            plain=acc(pruned["plain"], test_x),
            watermark=acc(pruned["wm"], test_x),
            transform=acc(pruned["tf"], test_t),
            encryip=pruned_enc["min"],
        )
        add(
            scenario,
            "owner's proof",
            plain="none",
            watermark=_ber_cell(ber(pruned["wm"])),
            transform="none",
            encryip=_traced_cell(pruned_enc["traced"], len(maps)),
        )

    # --- forged keys -----------------------------------------------------------------------------
    def transform_acc(other: SecretKey) -> float:
        return acc(locked, transformed(plain.load_pipeline(t_config, other), test_x))

    random_scores = [transform_acc(other) for other in draw_random_keys(key, random_keys)]
    near_scores = [transform_acc(near) for _, near in near_miss_keys(transform_key, 3)]
    forged = rb.forged_keys(keys[leaked_user], rng=random.Random(seed))
    test_logits = logits(encrypted, test_x)
    forged_scores = {}
    for name, forged_key in forged.items():
        try:
            mapping = cb.decrypt_codebook(book, forged_key)
        except KeyMismatchError:
            mapping = rb.unchecked_map(book, forged_key)  # a pirate ignoring the rejection
        forged_scores[name] = pl.map_accuracy(test_logits, test_labels, mapping, k)
    add(
        f"forged keys: random ({random_keys} transform keys, 1 EncryIP key pair)",
        "best forged-key accuracy %",
        plain="no key",
        watermark="no key",
        transform=max(random_scores),
        encryip=forged_scores["random key pair"],
    )
    add(
        "forged keys: one part of a real key changed",
        "best forged-key accuracy %",
        plain="no key",
        watermark="no key",
        transform=max(near_scores),
        encryip=max(v for name, v in forged_scores.items() if name != "random key pair"),
    )

    report = {
        "meta": {
            "encryip_workdir": str(workdir),
            "transform_workdir": str(transform_workdir),
            "steps": [step, t_step],
            "model": f"{config.model.arch} width {config.model.width}",
            "data": config.data.name,
            "test_images": len(test_labels),
            "users": len(maps),
            "transform": list(t_config.model.transform.steps),
            "block": t_config.model.transform.block,
            "signature_bits": len(bits),
            "seed": seed,
        },
        "rows": rows,
    }
    out = Path(out) if out else workdir / "report" / "encryip"
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "compare.md").write_text(markdown(report))
    report["paths"] = {"json": str(out / "compare.json"), "markdown": str(out / "compare.md")}
    return report


def _ber_cell(value: float) -> str:
    verdict = "verified" if value <= watermark.BER_THRESHOLD else "NOT verified"
    return f"ownership {verdict} (BER {100 * value:.1f}%)"


def _traced_cell(fraction: float, users: int) -> str:
    return f"{round(fraction * users)}/{users} users identified"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{100 * value:.1f}"
    return str(value)


COLUMNS: tuple[tuple[str, str], ...] = (
    ("plain", "plain"),
    ("watermark", "watermark"),
    ("transform", "key transform"),
    ("encryip", "EncryIP"),
)


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    header = [
        "| attack | measure | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    lines = [
        "# EncryIP side by side: plain, watermark, key transform, EncryIP",
        "",
        f"One model ({meta['model']}), data {meta['data']} ({meta['test_images']} test images), "
        f"steps {meta['steps'][0]} (encryip run, with its plain and watermarked twins) and "
        f"{meta['steps'][1]} (key-transform run: {'+'.join(meta['transform'])}, block "
        f"{meta['block']}), seed {meta['seed']}; {meta['users']} EncryIP users; the watermark is a "
        f"{meta['signature_bits']}-bit signature in the batch-norm scales. Accuracy in %; '–': "
        "not applicable.",
        "",
        *header,
        *(
            f"| {r['scenario']} | {r['measure']} | "
            + " | ".join(_cell(r.get(name)) for name, _ in COLUMNS)
            + " |"
            for r in report["rows"]
        ),
        "",
    ]
    return "\n".join(lines)
