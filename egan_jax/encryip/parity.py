"""Accuracy parity of EncryIP with its plain twin, measured by stratified k-fold cross-validation.

The issue's goal (every user key's accuracy within 0.5 point of the plain model's) cannot be
resolved on the bundled digits' 180-image test split (one image = 0.56 point). Here every image of
the pool (``--pool-split``, default ``all``: the 1,797 digits) is held out exactly once: for each
fold the EncryIP model and its plain K-way twin are trained from the same seed on the same batches
of the other folds (the family's own train step, parameter keys and batch stream, as
``egan train`` runs them: :func:`train_fold`), and the held-out fold is decoded with every issued
user key (each decrypts the codebook itself) and with the owner's map. Pooled over the folds this
gives one prediction per image, per seed; the gap (worst user key minus plain) comes with a paired
bootstrap 95% interval over images and an exact McNemar test per seed.

The folds are stratified by class and fixed by ``--split-seed`` (the same folds for every training
seed, so the seeds vary only the training). The watermarked twin is not trained (it draws its
parameters after the two compared models and trains on its own, so leaving it out changes neither).

    egan encryip parity experiments/encryip_digits.py --registry keys/owner.json \\
        --folds 10 --seeds 0 1 2 --out runs/parity

(or ``python -m egan_jax.encryip.parity``, the same arguments: :mod:`egan_jax.encryip.parity_cli`).

Writes ``parity.json`` and ``parity.md`` under ``--out`` (rewritten after every fold) and each
fold's held-out predictions under ``--out/folds/`` (a rerun with the same settings reuses them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from egan_jax.config import Config, apply_overrides, config_to_dict
from egan_jax.encryip import codebook as cb
from egan_jax.encryip import parity_stats as stats
from egan_jax.encryip import pipeline as pl
from egan_jax.errors import ConfigError


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """int32 [n]: each example's fold (0..folds-1); each class is shuffled (Philox from ``seed``)
    and dealt round-robin, so every fold holds ``floor`` or ``ceil`` of each class's share."""
    labels = np.asarray(labels)
    if not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"folds={folds!r}: need an integer >= 2 (e.g. --folds 10)")
    smallest = np.bincount(labels).min(initial=len(labels)) if len(labels) else 0
    if smallest < folds:
        raise ConfigError(
            f"folds={folds} but a class has only {smallest} examples: every fold needs one of each "
            "class; use fewer folds"
        )
    assignment = np.empty(len(labels), np.int32)
    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, folds])))
    offset = 0
    for y in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == y))
        assignment[members] = (offset + np.arange(len(members))) % folds
        offset += len(members)  # continue the deal, so the folds' sizes differ by at most one
    return assignment


def training_config(config: Config, registry: str | Path, seed: int) -> Config:
    """The run's config for one seed: plain twin on, watermarked twin and periodic eval off."""
    if config.family != "encryip":
        raise ConfigError(f"the parity check needs an encryip config, got family {config.family!r}")
    return apply_overrides(
        dataclasses.replace(config, seed=seed),
        [
            f"model.registry={registry}",
            "model.baseline=true",
            "model.watermark_signature=",
            "eval.every=0",
            "log.quiet=true",
        ],
    )


class FoldTrainer:
    """Trains the family's models on given arrays with ``egan train``'s step: the same initial
    state (``train.initial_state``), step keys (``fold_in(run_keys(seed)['train'], step)``) and
    batch stream (``labeled_batch_at`` with the config's seed), without checkpoints or logs.
    One compiled step serves every fold and seed (the seed is not part of the step)."""

    def __init__(self, config: Config):
        from egan_jax.families import get_family
        from egan_jax.train import abstract_run

        self.family = get_family(config.family)
        self.graphdef, _ = abstract_run(self.family, config)
        family_step = self.family.make_train_step(config)
        graphdef = self.graphdef

        def train_step(state: Any, batch: dict[str, jax.Array], key: jax.Array, step: jax.Array):
            tree = nnx.merge(graphdef, state)
            metrics = family_step(
                tree["models"], tree["optimizers"], batch, jax.random.fold_in(key, step)
            )
            return nnx.state(tree), metrics

        self._step = jax.jit(train_step)

    def train(self, config: Config, images: np.ndarray, labels: np.ndarray):
        """The trained models (``{"classifier", "baseline"}``) after ``config.train.steps``, and
        the step metrics averaged over the last tenth of the steps (training accuracy and loss
        of both models: does one of them underfit?)."""
        from egan_jax.data_labeled import labeled_batch_at
        from egan_jax.train import initial_state, run_keys

        _, state = initial_state(self.family, config)
        key = run_keys(config.seed)["train"]
        steps, tail = config.train.steps, []
        for step in range(steps):
            x, y = labeled_batch_at(
                images, labels, step, batch_size=config.train.batch_size, seed=config.seed
            )
            state, metrics = self._step(state, {"images": x, "labels": y}, key, np.int32(step))
            if step >= steps - max(1, steps // 10):
                tail.append(jax.device_get(metrics))
        means = {name: float(np.mean([m[name] for m in tail])) for name in tail[0]}
        return nnx.merge(self.graphdef, state)["models"], means


def fold_predictions(
    models, images: np.ndarray, maps: dict[str, np.ndarray], owner_map: np.ndarray, k: int, batch
) -> dict[str, np.ndarray]:
    """Held-out predictions: the plain twin's argmax, the owner map's and every user's decoding,
    and the protected model's winning output index (for the index spread)."""
    logits = pl.predict_logits(models["classifier"], images, batch_size=batch)
    plain = np.argmax(pl.predict_logits(models["baseline"], images, batch_size=batch), axis=1)
    out = {"plain": plain.astype(np.int32), "owner": pl.decode(logits, owner_map, k)}
    out.update({f"user:{uid}": pl.decode(logits, m, k) for uid, m in maps.items()})
    out["winner"] = np.argmax(logits, axis=1).astype(np.int32)
    return out


def _settings_tag(config: Config, extra: dict[str, Any]) -> str:
    """What a cached fold must match: the config (but the seed) and the parity settings."""
    settings = {**config_to_dict(config), "seed": None, **extra}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def run_parity(
    config: Config,
    registry_path: str | Path,
    *,
    folds: int,
    seeds: list[int],
    out: str | Path,
    split_seed: int = 0,
    pool_split: str = "all",
    resamples: int = 4000,
    config_path: str = "",
    command: str = "",
) -> dict[str, Any]:
    """Train and decode every fold for every seed; write ``parity.json``/``parity.md``; return
    the report. Folds already in ``out/folds`` with the same settings are reused."""
    from egan_jax.data import to_float
    from egan_jax.encryip.registry import Registry
    from egan_jax.families import classifier as plain
    from egan_jax.families import encryip as family

    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"seeds={seeds}: need distinct integers >= 0 (e.g. --seeds 0 1 2)")
    registry = Registry.load(registry_path)
    keys = registry.user_keys()
    if not keys:
        raise ConfigError(
            f"{registry_path} lists no users: issue some with `egan encryip issue-user`"
        )
    base = training_config(config, registry_path, seeds[0])
    secrets = family.run_secrets(base, registry.owner)
    book, owner_map, k = secrets.codebook, secrets.secret.classes, secrets.codebook.num_classes
    triggers, fake_indices = secrets.triggers, secrets.secret.fake_indices
    maps = {uid: cb.decrypt_codebook(book, key) for uid, key in keys.items()}
    images, labels = plain._load(base, pool_split)
    fold_of = stratified_folds(labels, folds, split_seed)
    tag = _settings_tag(
        base,
        {
            "folds": folds,
            "split_seed": split_seed,
            "pool_split": pool_split,
            "codebook": book.fingerprint,
            "users": sorted(key.fingerprint for key in keys.values()),
        },
    )
    out = Path(out)
    (out / "folds").mkdir(parents=True, exist_ok=True)
    trainer = FoldTrainer(base)
    x_all = to_float(images)
    predictions: dict[int, dict[str, np.ndarray]] = {}
    runs: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    for seed in seeds:
        cfg = training_config(config, registry_path, seed)
        pooled: dict[str, np.ndarray] = {}
        for f in range(folds):
            held = fold_of == f
            cache = out / "folds" / f"seed{seed}_fold{f}.npz"
            if cache.is_file() and str(np.load(cache)["tag"]) == tag:
                fold = {name: v for name, v in np.load(cache).items() if name != "tag"}
                seconds = None
            else:
                start = time.perf_counter()
                models, train_metrics = trainer.train(cfg, images[~held], labels[~held])
                batch = cfg.loss.eval_batch_size
                fold = fold_predictions(models, x_all[held], maps, owner_map, k, batch)
                trigger_logits = pl.predict_logits(models["classifier"], triggers, batch_size=batch)
                fold["trigger_hits"] = np.argmax(trigger_logits, axis=1) == fake_indices
                fold["train_metrics"] = np.array(json.dumps(train_metrics))
                seconds = time.perf_counter() - start
                np.savez(cache, tag=np.str_(tag), **fold)
            hits = fold.pop("trigger_hits", None)  # per trigger, not per image
            metrics = fold.pop("train_metrics", None)
            for name, values in fold.items():
                pooled.setdefault(name, np.full(len(labels), -1, np.int32))[held] = values
            runs.append(
                {
                    "seed": seed,
                    "fold": f,
                    "seconds": seconds,
                    "load": list(os.getloadavg()),
                    "trigger_hit_rate": None if hits is None else float(np.mean(hits)),
                    "train_metrics": None if metrics is None else json.loads(str(metrics)),
                }
            )
            print(
                f"seed {seed} fold {f}: plain {np.mean(fold['plain'] == labels[held]):.4f}, "
                f"users min {min(np.mean(fold[u] == labels[held]) for u in fold if u.startswith('user:')):.4f}"
                + (f" ({seconds:.0f} s)" if seconds is not None else " (cached)"),
                flush=True,
            )
        predictions[seed] = pooled
        report = {
            "config_path": config_path,
            "command": command,
            "pool_split": pool_split,
            "split_seed": split_seed,
            "steps": base.train.steps,
            "config": {**config_to_dict(base), "seed": None},
            "codebook_fingerprint": book.fingerprint,
            "user_key_fingerprints": {uid: key.fingerprint for uid, key in keys.items()},
            "summary": stats.summarize(
                labels, fold_of, predictions, owner_map, resamples=resamples
            ),
            "fold_runs": runs,
        }
        (out / "parity.json").write_text(json.dumps(report, indent=2))
        (out / "parity.md").write_text(stats.markdown(report))
    return report


COMBINED_FIELDS = ("pool_split", "split_seed", "steps", "codebook_fingerprint")


def combine_runs(
    config: Config,
    registry_path: str | Path,
    dirs: list[str | Path],
    *,
    out: str | Path,
    resamples: int = 4000,
    config_path: str = "",
    command: str = "",
) -> dict[str, Any]:
    """One report from the fold caches of several finished runs (e.g. seeds trained in separate
    processes). They must share the pool, folds, steps, codebook and users (and the config, where
    both reports record it); a seed may appear once."""
    from egan_jax.encryip.registry import Registry
    from egan_jax.families import classifier as plain
    from egan_jax.families import encryip as family

    reports = []
    for d in dirs:
        path = Path(d) / "parity.json"
        if not path.is_file():
            raise ConfigError(f"{path} does not exist: pass folders written by this module")
        reports.append(json.loads(path.read_text()))
    first = reports[0]
    for d, r in zip(dirs, reports, strict=True):
        fields = [*COMBINED_FIELDS, "user_key_fingerprints"]
        differ = [f for f in fields if r[f] != first[f]]
        differ += ["folds"] if r["summary"]["folds"] != first["summary"]["folds"] else []
        mine, theirs = r.get("config"), first.get("config")
        differ += ["config"] if mine and theirs and mine != theirs else []
        if differ:
            raise ConfigError(f"{d} differs from {dirs[0]} in {differ}: cannot combine them")
    registry = Registry.load(registry_path)
    base = training_config(config, registry_path, 0)
    owner_map = family.run_secrets(base, registry.owner).secret.classes
    _, labels = plain._load(base, first["pool_split"])
    folds = first["summary"]["folds"]
    fold_of = stratified_folds(labels, folds, first["split_seed"])
    predictions: dict[int, dict[str, np.ndarray]] = {}
    runs = []
    for d, r in zip(dirs, reports, strict=True):
        runs += r.get("fold_runs", r.get("timings", []))
        for seed in r["summary"]["seeds"]:
            if seed in predictions:
                raise ConfigError(f"seed {seed} appears in more than one of {dirs}")
            pooled: dict[str, np.ndarray] = {}
            for f in range(folds):
                fold = np.load(Path(d) / "folds" / f"seed{seed}_fold{f}.npz")
                for name in fold.files:
                    if name in ("plain", "owner", "winner") or name.startswith("user:"):
                        target = pooled.setdefault(name, np.full(len(labels), -1, np.int32))
                        target[fold_of == f] = fold[name]
            predictions[seed] = pooled
    report = {
        **{f: first[f] for f in (*COMBINED_FIELDS, "user_key_fingerprints")},
        "config_path": config_path,
        "command": command,
        "combined_from": [str(d) for d in dirs],
        "summary": stats.summarize(labels, fold_of, predictions, owner_map, resamples=resamples),
        "fold_runs": runs,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "parity.json").write_text(json.dumps(report, indent=2))
    (out / "parity.md").write_text(stats.markdown(report))
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m egan_jax.encryip.parity``: the same as ``egan encryip parity``."""
    from egan_jax.encryip.parity_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
