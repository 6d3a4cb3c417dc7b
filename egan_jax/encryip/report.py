"""The EncryIP report of a trained run: accuracy per user key, tracing, the attacker's curve,
robustness; written as ``report.json`` and ``report.md`` (default ``WORKDIR/report/encryip/``).

Sections (every number from the run's checkpoint, its registry and ``seed``):

* accuracy on the test split: the plain twin, the owner's map, every issued user's decrypted
  codebook (one row each), no key (a random index map, mean of ``draws``);
* tracing: every issued user's pipeline (model + their decoder, black box, F trigger queries),
  identified or not; false accusations on pipelines that use no issued key: random decoders, the
  plain model, the owner's base key, attacker-estimated maps;
* the attacker's curve: accuracy of a map voted from n labelled training examples per class;
* robustness: fine-tuning (10% of the training data, attacker's labels, through a leaked user's
  decoder and through an estimated map), global magnitude pruning 10-90% (the plain twin pruned
  alike), key forging (one part changed, random key pair) and two colluding users.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from egan_jax.encryip import codebook as cb
from egan_jax.encryip import pipeline as pl
from egan_jax.encryip import robustness as rb
from egan_jax.errors import ConfigError, KeyMismatchError

ATTACKER_COUNTS = (1, 2, 5, 10, 20, 50)
PRUNE_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)


def _trace(model_logits_fn, mapping, triggers, expected, k, rate) -> cb.TraceResult:
    return pl.trace_pipeline(
        pl.Pipeline(lambda x: pl.decode(model_logits_fn(x), mapping, k)),
        triggers,
        expected,
        k,
        false_accusation_rate=rate,
    )


def evaluate_run(
    workdir: str | Path,
    registry_path: str | Path,
    *,
    out: str | Path | None = None,
    seed: int = 0,
    draws: int = 5,
    random_decoders: int = 20,
    attacker_counts: tuple[int, ...] = ATTACKER_COUNTS,
    prune_fractions: tuple[float, ...] = PRUNE_FRACTIONS,
    finetune_fraction: float = 0.1,
    finetune_steps: int = 100,
    finetune_learning_rate: float = 1e-4,
) -> dict[str, Any]:
    """Evaluate an ``encryip`` workdir with the owner's registry; write and return the report."""
    from egan_jax.attacks import prune_model, subset_indices
    from egan_jax.config import read_config
    from egan_jax.data import to_float
    from egan_jax.encryip.registry import Registry
    from egan_jax.families import classifier as plain
    from egan_jax.families import encryip as family
    from egan_jax.train import load_trained

    started = time.perf_counter()
    workdir = Path(workdir)
    config = read_config(workdir / "config.json")
    if config.family != "encryip":
        raise ConfigError(f"{workdir} holds a {config.family!r} run, not an encryip one")
    registry = Registry.load(registry_path)
    secrets = family.run_secrets(config, registry.owner)
    book, secret, triggers = secrets.codebook, secrets.secret, secrets.triggers
    config, models, step = load_trained(workdir, key_fingerprint=book.fingerprint)
    k, rate, batch = (
        book.num_classes,
        config.loss.false_accusation_rate,
        config.loss.eval_batch_size,
    )
    model = models["classifier"]
    keys = registry.user_keys()
    if not keys:
        raise ConfigError(
            f"{registry_path} lists no users; issue some with `egan encryip issue-user`"
        )
    maps = {uid: cb.decrypt_codebook(book, key) for uid, key in keys.items()}
    expected = cb.fake_classes(registry.owner, book, secret, keys)
    test_images, test_labels = plain._load(config, config.loss.test_split)
    test_x = to_float(test_images)
    train_images, train_labels = plain._load(config, config.data.split)
    train_x = to_float(train_images)
    rng = random.Random(seed)
    key = jax.random.key(seed)

    def logits_of(m):
        return lambda x: pl.predict_logits(m, x, batch_size=batch)

    logits = logits_of(model)(test_x)

    # --- accuracy -------------------------------------------------------------------------------
    accuracy: list[dict[str, Any]] = []
    if "baseline" in models:
        plain_acc = plain.accuracy(models["baseline"], test_x, test_labels, batch_size=batch)
        accuracy.append({"name": "plain model (same seed, steps, batches)", "accuracy": plain_acc})
    else:
        plain_acc = None
    accuracy.append(
        {"name": "owner's map", "accuracy": pl.map_accuracy(logits, test_labels, secret.classes, k)}
    )
    for uid, mapping in maps.items():
        accuracy.append(
            {"name": f"user {uid}", "accuracy": pl.map_accuracy(logits, test_labels, mapping, k)}
        )
    no_key = [
        pl.map_accuracy(logits, test_labels, pl.random_map(sub, book.size, k), k)
        for sub in jax.random.split(key, draws)
    ]
    accuracy.append(
        {"name": f"no key (random index map, mean of {draws})", "accuracy": float(np.mean(no_key))}
    )
    user_scores = [pl.map_accuracy(logits, test_labels, m, k) for m in maps.values()]

    # --- tracing --------------------------------------------------------------------------------
    tracing = []
    for uid, mapping in maps.items():
        verdict = _trace(logits_of(model), mapping, triggers, expected, k, rate)
        tracing.append(
            {
                "pipeline": f"user {uid}",
                "truth": uid,
                "accused": verdict.accused,
                "score": verdict.scores[uid],
                "threshold": verdict.threshold,
                "queries": verdict.num_queries,
            }
        )
    innocent: list[tuple[str, Any]] = [
        (f"random decoder {i}", pl.model_pipeline(model, pl.random_map(sub, book.size, k), k))
        for i, sub in enumerate(jax.random.split(jax.random.fold_in(key, 1), random_decoders))
    ]
    if "baseline" in models:
        innocent.append(("plain model", pl.plain_pipeline(models["baseline"])))
    base_map = cb.decrypt_codebook(book, registry.owner.base_key)
    innocent.append(("owner's base key", pl.model_pipeline(model, base_map, k)))
    for n in (5, 50):
        chosen = rb.per_class_sample(train_labels, n, seed)
        estimated = rb.attacker_map(logits_of(model)(train_x[chosen]), train_labels[chosen], k)
        innocent.append((f"attacker map, {n}/class", pl.model_pipeline(model, estimated, k)))
    for name, suspect in innocent:
        verdict = pl.trace_pipeline(suspect, triggers, expected, k, false_accusation_rate=rate)
        tracing.append(
            {
                "pipeline": name,
                "truth": None,
                "accused": verdict.accused,
                "score": max(verdict.scores.values()),
                "threshold": verdict.threshold,
                "queries": verdict.num_queries,
            }
        )
    identified = [r["accused"] == r["truth"] for r in tracing if r["truth"] is not None]
    false_accusations = sum(
        r["accused"] is not None and r["accused"] != r["truth"] for r in tracing
    )

    # --- the attacker's curve -------------------------------------------------------------------
    curve = []
    for n in attacker_counts:
        row: dict[str, Any] = {"per_class": n}
        for vote in rb.VOTES:
            scores = []
            for draw in range(draws):
                chosen = rb.per_class_sample(train_labels, n, seed * 1000 + draw)
                mapping = rb.attacker_map(
                    logits_of(model)(train_x[chosen]), train_labels[chosen], k, vote=vote
                )
                scores.append(pl.map_accuracy(logits, test_labels, mapping, k))
            row[f"{vote}_mean"], row[f"{vote}_min"] = float(np.mean(scores)), float(min(scores))
        curve.append(row)

    # --- robustness -----------------------------------------------------------------------------
    robust: list[dict[str, Any]] = []

    def row(attack: str, m, decoder_maps: dict[str, np.ndarray], traced_user: str | None, **extra):
        attacked = logits_of(m)(test_x)
        accs = [pl.map_accuracy(attacked, test_labels, mp, k) for mp in decoder_maps.values()]
        entry = {
            "attack": attack,
            "user_key_accuracy_min": min(accs),
            "user_key_accuracy_mean": float(np.mean(accs)),
            **extra,
        }
        hits = np.argmax(logits_of(m)(triggers), axis=1) == secret.fake_indices
        entry["trigger_hit_rate"] = float(np.mean(hits))
        verdicts = {
            uid: _trace(logits_of(m), mp, triggers, expected, k, rate).accused
            for uid, mp in decoder_maps.items()
        }
        if traced_user is None:
            entry["traced"] = float(np.mean([verdicts[u] == u for u in verdicts]))
        else:
            entry["traced"] = float(verdicts[traced_user] == traced_user)
        robust.append(entry)

    row("none", model, maps, None)
    for fraction in prune_fractions:
        pruned = prune_model(_clone(model), fraction)
        extra = {}
        if "baseline" in models:
            extra["plain_model_accuracy"] = plain.accuracy(
                prune_model(_clone(models["baseline"]), fraction),
                test_x,
                test_labels,
                batch_size=batch,
            )
        row(f"prune {fraction:.0%}", pruned, maps, None, **extra)
    subset = subset_indices(len(train_x), finetune_fraction, seed)
    leaked_user = next(iter(maps))

    def finetune(decoder_map):
        return rb.finetune_through_decoder(
            model,
            decoder_map,
            k,
            train_x[subset],
            train_labels[subset],
            steps=finetune_steps,
            learning_rate=finetune_learning_rate,
            batch_size=64,
            seed=seed,
        )

    tuned = finetune(maps[leaked_user])
    row(
        f"fine-tune {finetune_fraction:.0%} data via user {leaked_user}'s decoder",
        tuned,
        {leaked_user: maps[leaked_user]},
        leaked_user,
    )
    estimated = rb.attacker_map(logits_of(model)(train_x[subset]), train_labels[subset], k)
    tuned_est = finetune(estimated)
    est_logits = logits_of(tuned_est)(test_x)
    verdict = _trace(logits_of(tuned_est), estimated, triggers, expected, k, rate)
    robust.append(
        {
            "attack": f"fine-tune {finetune_fraction:.0%} data via the attacker's voted map (no key)",
            "attacker_accuracy": pl.map_accuracy(est_logits, test_labels, estimated, k),
            "user_key_accuracy_min": min(
                pl.map_accuracy(est_logits, test_labels, m, k) for m in maps.values()
            ),
            "traced": 0.0,
            "accused": verdict.accused,
        }
    )
    first, second = list(keys.values())[:2] if len(keys) > 1 else (None, None)
    forged = rb.forged_keys(keys[leaked_user], rng=rng)
    if first is not None:
        forged["2 users collude, mint a key"] = rb.colluded_key(first, second, rng=rng)
    for name, forged_key in forged.items():
        entry: dict[str, Any] = {"attack": f"key forging: {name}"}
        try:
            mapping = cb.decrypt_codebook(book, forged_key)
            entry["decryption"] = "accepted"
        except KeyMismatchError:
            mapping = rb.unchecked_map(book, forged_key)
            entry["decryption"] = "rejected (accuracy: validity check ignored)"
        entry["user_key_accuracy_min"] = pl.map_accuracy(logits, test_labels, mapping, k)
        verdict = _trace(logits_of(model), mapping, triggers, expected, k, rate)
        entry["accused"] = verdict.accused
        robust.append(entry)

    report = {
        "meta": {
            "workdir": str(workdir),
            "step": step,
            "codebook": book.fingerprint,
            "public_key": book.public_key.fingerprint,
            "group": book.public_key.group.name,
            "num_classes": k,
            "per_class": config.model.per_class,
            "num_fakes": secret.num_fakes,
            "codebook_size": book.size,
            "users": len(keys),
            "test_images": len(test_labels),
            "seed": seed,
            "false_accusation_rate": rate,
            "seconds": None,
        },
        "summary": {
            "plain_accuracy": plain_acc,
            "user_key_accuracy_min": min(user_scores),
            "user_key_accuracy_max": max(user_scores),
            "gap_points": None if plain_acc is None else 100 * (plain_acc - min(user_scores)),
            "index_spread": pl.index_spread(logits, test_labels, secret.classes),
            "identified": float(np.mean(identified)),
            "false_accusations": int(false_accusations),
            "innocent_pipelines": len(innocent),
            "queries_per_trace": secret.num_fakes,
        },
        "accuracy": accuracy,
        "tracing": tracing,
        "attacker_curve": curve,
        "robustness": robust,
    }
    report["meta"]["seconds"] = time.perf_counter() - started
    out = Path(out) if out else workdir / "report" / "encryip"
    write_report(report, out)
    report["paths"] = {"json": str(out / "report.json"), "markdown": str(out / "report.md")}
    return report


def _clone(model):
    from flax import nnx

    return nnx.clone(model)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def markdown(report: dict[str, Any]) -> str:
    meta, summary = report["meta"], report["summary"]
    lines = [
        f"# EncryIP report: {meta['workdir']}",
        "",
        f"Step {meta['step']}, codebook {meta['codebook']} ({meta['codebook_size']} entries: "
        f"{meta['num_classes']} classes × {meta['per_class']} + {meta['num_fakes']} Fakes), group "
        f"{meta['group']}, {meta['users']} users, {meta['test_images']} test images, seed "
        f"{meta['seed']}.",
        "",
        f"- plain model {_pct(summary['plain_accuracy'])}%, every user key "
        f"{_pct(summary['user_key_accuracy_min'])}–{_pct(summary['user_key_accuracy_max'])}% "
        f"(gap {summary['gap_points'] if summary['gap_points'] is None else round(summary['gap_points'], 2)} points)",
        f"- randomized outputs: index spread {summary['index_spread']:.2f} (1: every index of a "
        f"class wins equally often; {1 / meta['per_class']:.2f}: one index per class)",
        f"- tracing: {100 * summary['identified']:.0f}% of users identified, "
        f"{summary['false_accusations']} false accusations over {summary['innocent_pipelines']} "
        f"pipelines without an issued key, {summary['queries_per_trace']} queries per trace",
        "",
        "## Accuracy (test split)",
        "",
        "| decoder | accuracy % |",
        "|---|---:|",
        *(f"| {r['name']} | {_pct(r['accuracy'])} |" for r in report["accuracy"]),
        "",
        "## Tracing",
        "",
        "| suspect pipeline | truth | accused | best score / threshold | queries |",
        "|---|---|---|---:|---:|",
        *(
            f"| {r['pipeline']} | {r['truth'] or '–'} | {r['accused'] or 'nobody'} | "
            f"{r['score']} / {r['threshold']} | {r['queries']} |"
            for r in report["tracing"]
        ),
        "",
        "## What the scheme cannot stop: an attacker's map from n labelled examples per class",
        "",
        "| n per class | majority vote % (mean, min) | soft vote % (mean, min) |",
        "|---:|---:|---:|",
        *(
            f"| {r['per_class']} | {_pct(r['hard_mean'])}, {_pct(r['hard_min'])} | "
            f"{_pct(r['soft_mean'])}, {_pct(r['soft_min'])} |"
            for r in report["attacker_curve"]
        ),
        "",
        "## Robustness",
        "",
        "| attack | user-key accuracy % (min) | plain model % | trigger hits % | traced / accused |",
        "|---|---:|---:|---:|---|",
    ]
    for r in report["robustness"]:
        traced = (
            f"{100 * r['traced']:.0f}%"
            if "traced" in r and "accused" not in r
            else f"accused: {r.get('accused') or 'nobody'}"
        )
        note = f" ({r['decryption']})" if "decryption" in r else ""
        if "attacker_accuracy" in r:
            note = f" (attacker's own map: {_pct(r['attacker_accuracy'])}%)"
        lines.append(
            f"| {r['attack']}{note} | {_pct(r.get('user_key_accuracy_min'))} | "
            f"{_pct(r.get('plain_model_accuracy'))} | {_pct(r.get('trigger_hit_rate'))} | {traced} |"
        )
    lines += ["", f"Evaluation took {meta['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "report.md").write_text(markdown(report))
