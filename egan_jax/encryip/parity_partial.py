"""The parity numbers of the folds finished so far (runs cut short: a seed's report is written by
:mod:`egan_jax.encryip.parity` only once all its folds are done).

Every finished fold is a paired held-out comparison in its own right (both models trained on the
other folds, from the same seed, on the same batches), so the folds found under each run's
``folds/`` are pooled as they are: per image and seed, the fold's worst user key correct minus plain
correct; the 95% interval resamples images (an image keeps the seeds that hold it out); McNemar
counts the discordant pairs. It is a smaller sample than the full cross-validation, not a
different measure; the fold list printed says which folds it holds.

    python -m egan_jax.encryip.parity_partial experiments/encryip_digits.py \\
        --registry keys/owner.json --folds 5 runs/parity_s0 runs/parity_s1
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from egan_jax.encryip import parity_stats as stats
from egan_jax.errors import ConfigError, EganError

CACHE = re.compile(r"seed(\d+)_fold(\d+)\.npz")


def partial_summary(labels: np.ndarray, fold_of: np.ndarray, dirs: list[Path], resamples: int):
    """Pooled gap (points), its 95% interval, McNemar, and the (seed, fold) pairs used."""
    found, tags = {}, set()
    for d in dirs:
        for path in sorted(Path(d, "folds").glob("seed*_fold*.npz")):
            seed, fold = map(int, CACHE.fullmatch(path.name).groups())
            z = np.load(path)
            tags.add(str(z["tag"]))
            found[(seed, fold)] = {k: z[k] for k in z.files if k == "plain" or k[:5] == "user:"}
    if not found:
        raise ConfigError(f"no finished folds under {[str(d) for d in dirs]}: nothing to pool")
    if len(tags) > 1:
        raise ConfigError(f"the folds were run with {len(tags)} different settings: pool one")
    seeds = sorted({s for s, _ in found})
    diff = np.full((len(seeds), len(labels)), np.nan)
    plain_ok, user_ok = [], []
    for (seed, fold), pred in found.items():
        held = fold_of == fold
        if len(pred["plain"]) != held.sum():
            raise ConfigError(
                f"seed {seed} fold {fold}: not the split of --folds {fold_of.max() + 1}"
            )
        y = labels[held]
        worst = min((np.mean(v == y), k) for k, v in pred.items() if k != "plain")[1]
        plain_ok.append(pred["plain"] == y)
        user_ok.append(pred[worst] == y)
        diff[seeds.index(seed), held] = user_ok[-1].astype(float) - plain_ok[-1]
    images = np.flatnonzero(~np.all(np.isnan(diff), axis=0))
    per_image = np.nanmean(diff[:, images], axis=0)  # an image's mean over the seeds holding it
    weights = np.sum(~np.isnan(diff[:, images]), axis=0)
    plain_ok, user_ok = np.concatenate(plain_ok), np.concatenate(user_ok)
    gap = 100 * float(np.mean(user_ok.astype(float) - plain_ok))
    # resample images; an image counts once per seed that holds it out (its weight)
    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([0, 2024])))
    rows = rng.integers(0, len(images), (resamples, len(images)))
    means = (per_image[rows] * weights[rows]).sum(axis=1) / weights[rows].sum(axis=1)
    low, high = (100 * float(v) for v in np.percentile(means, [2.5, 97.5]))
    return {
        "folds_used": sorted(found),
        "held_out_predictions": int(len(plain_ok)),
        "plain": float(plain_ok.mean()),
        "worst_user": float(user_ok.mean()),
        "gap_points": gap,
        "gap_ci95_points": [low, high],
        "mcnemar": stats.mcnemar_exact(plain_ok, user_ok),
    }


def main(argv: list[str] | None = None) -> int:
    from egan_jax.config import load_config
    from egan_jax.encryip import parity
    from egan_jax.families import classifier as plain

    parser = argparse.ArgumentParser(prog="python -m egan_jax.encryip.parity_partial")
    parser.add_argument("config")
    parser.add_argument("dirs", nargs="+", type=Path, help="parity --out folders")
    parser.add_argument("--registry", required=True)
    parser.add_argument("--folds", type=int, required=True, help="the runs' --folds")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--pool-split", default="all")
    parser.add_argument("--resamples", type=int, default=4000)
    args = parser.parse_args(argv)
    try:
        config = parity.training_config(load_config(args.config), args.registry, 0)
        _, labels = plain._load(config, args.pool_split)
        fold_of = parity.stratified_folds(labels, args.folds, args.split_seed)
        s = partial_summary(labels, fold_of, args.dirs, args.resamples)
    except EganError as error:
        print(f"parity_partial: error: {error}", file=sys.stderr)
        return 2
    m, (low, high) = s["mcnemar"], s["gap_ci95_points"]
    print(f"(seed, fold) pooled: {s['folds_used']}; {s['held_out_predictions']} predictions")
    print(
        f"plain {100 * s['plain']:.2f}%, worst user key {100 * s['worst_user']:.2f}%, gap "
        f"{s['gap_points']:+.2f} points (95% CI {low:+.2f} to {high:+.2f}); McNemar plain-only "
        f"{m['plain_only']} / EncryIP-only {m['other_only']}, p = {m['p_value']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
