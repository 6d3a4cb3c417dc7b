"""The numbers and the markdown of the parity report (:mod:`egan_jax.encryip.parity`).

Inputs are held-out predictions pooled over the folds, one per image and seed. The gap is the
worst user key's accuracy minus the plain twin's, in points; its 95% interval is a paired
percentile bootstrap over images (an image keeps all its seeds when resampled); per seed an exact
McNemar test says whether the two models' errors differ by more than chance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from egan_jax.encryip import pipeline as pl

GOAL_POINTS = 0.5


def mcnemar_exact(plain_correct: np.ndarray, other_correct: np.ndarray) -> dict[str, float]:
    """Exact two-sided McNemar test on paired correctness: ``plain_only`` images only the plain
    model gets right, ``other_only`` only the other; p = two-sided binomial(b + c, 1/2) tail."""
    plain_correct, other_correct = np.asarray(plain_correct, bool), np.asarray(other_correct, bool)
    b = int(np.sum(plain_correct & ~other_correct))
    c = int(np.sum(~plain_correct & other_correct))
    n = b + c
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2.0**n if n else 1.0
    return {"plain_only": b, "other_only": c, "p_value": min(1.0, 2.0 * tail)}


def paired_bootstrap(
    differences: np.ndarray, *, resamples: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of the mean of ``differences`` ([n], or [seeds, n]: a resampled
    image keeps all its seeds), resampling images with replacement (Philox from ``seed``)."""
    d = np.asarray(differences, np.float64)
    d = d.reshape(-1, d.shape[-1]).mean(axis=0)
    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, 2024])))
    means = np.empty(resamples)
    for start in range(0, resamples, 500):
        rows = rng.integers(0, len(d), (min(500, resamples - start), len(d)))
        means[start : start + len(rows)] = d[rows].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def summarize(
    labels: np.ndarray,
    folds: np.ndarray,
    predictions: dict[int, dict[str, np.ndarray]],
    owner_map: np.ndarray,
    *,
    resamples: int = 4000,
) -> dict[str, Any]:
    """The report's numbers. ``predictions[seed]`` maps ``plain``, ``owner``, ``user:ID`` to int
    [n] held-out classes and ``winner`` to the protected model's winning output index."""
    seeds = sorted(predictions)
    users = sorted(k for k in predictions[seeds[0]] if k.startswith("user:"))
    if not users:
        raise ValueError("the predictions hold no user key's decoding")
    names = ["plain", "owner", *users]
    per_seed, worst_rows, plain_rows = [], [], []
    for s in seeds:
        p = predictions[s]
        correct = {name: p[name] == labels for name in names}
        worst = min(users, key=lambda u: (correct[u].mean(), u))
        diff = correct[worst].astype(float) - correct["plain"]
        low, high = paired_bootstrap(diff, resamples=resamples, seed=s)
        one_hot = np.eye(len(owner_map), dtype=np.float32)[p["winner"]]
        per_seed.append(
            {
                "seed": s,
                "accuracy": {
                    name.removeprefix("user:"): float(correct[name].mean()) for name in names
                },
                "users_agree": all(np.array_equal(p[u], p[users[0]]) for u in users),
                "worst_user": worst.removeprefix("user:"),
                "gap_points": 100 * float(diff.mean()),
                "gap_ci95_points": [100 * low, 100 * high],
                "mcnemar": mcnemar_exact(correct["plain"], correct[worst]),
                "index_spread": pl.index_spread(one_hot, labels, owner_map),
                "folds": [
                    {
                        "fold": int(f),
                        "images": int(np.sum(folds == f)),
                        "plain": float(correct["plain"][folds == f].mean()),
                        "worst_user": float(correct[worst][folds == f].mean()),
                    }
                    for f in np.unique(folds)
                ],
            }
        )
        worst_rows.append(correct[worst])
        plain_rows.append(correct["plain"])
    diff = np.asarray(worst_rows, float) - np.asarray(plain_rows, float)
    gap = 100 * float(diff.mean())
    low, high = (100 * v for v in paired_bootstrap(diff, resamples=resamples, seed=len(seeds)))
    return {
        "images": len(labels),
        "folds": int(np.max(folds)) + 1,
        "seeds": seeds,
        "users": [u.removeprefix("user:") for u in users],
        "per_seed": per_seed,
        "pooled_over_seeds": {
            "plain": float(np.mean(plain_rows)),
            "worst_user": float(np.mean(worst_rows)),
            "gap_points": gap,
            "gap_ci95_points": [low, high],
            "goal_points": GOAL_POINTS,
            "within_goal": abs(gap) <= GOAL_POINTS,
            "ci_within_goal": -GOAL_POINTS <= low and high <= GOAL_POINTS,
        },
    }


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown: the pooled verdict, one row per seed, one row per fold."""
    s = report["summary"]
    pooled = s["pooled_over_seeds"]
    low, high = pooled["gap_ci95_points"]
    verdict = (
        "met, the whole 95% interval inside ±0.5"
        if pooled["ci_within_goal"]
        else "met on the estimate, but the 95% interval reaches past ±0.5"
        if pooled["within_goal"]
        else "not met"
    )
    lines = [
        "# EncryIP accuracy parity (stratified k-fold cross-validation)",
        "",
        f"- config `{report['config_path']}`, {s['images']} images ({report['pool_split']}), "
        f"{s['folds']} folds (split seed {report['split_seed']}), seeds {s['seeds']}, "
        f"{report['steps']} steps per fold, users {', '.join(s['users'])}",
        f"- pooled over seeds: plain {_pct(pooled['plain'])}%, worst user key "
        f"{_pct(pooled['worst_user'])}%, gap {pooled['gap_points']:+.2f} points "
        f"(95% CI {low:+.2f} to {high:+.2f}); goal within ±{pooled['goal_points']}: {verdict}",
        "",
        "| seed | plain % | owner map % | every user key % (min / max) | gap (points) | 95% CI "
        "| McNemar plain-only / EncryIP-only, p | index spread | user keys agree |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in s["per_seed"]:
        acc = row["accuracy"]
        users = [acc[u] for u in s["users"]]
        m = row["mcnemar"]
        lo, hi = row["gap_ci95_points"]
        lines.append(
            f"| {row['seed']} | {_pct(acc['plain'])} | {_pct(acc['owner'])} | "
            f"{_pct(min(users))} / {_pct(max(users))} | {row['gap_points']:+.2f} | "
            f"{lo:+.2f} to {hi:+.2f} | {m['plain_only']} / {m['other_only']}, {m['p_value']:.3f} | "
            f"{row['index_spread']:.2f} | {'yes' if row['users_agree'] else 'NO'} |"
        )
    hits = [r.get("trigger_hit_rate") for r in report.get("fold_runs", [])]
    if hits and None not in hits:
        lines += [
            "",
            f"- trigger hit rate (tracing's Fakes), lowest over folds and seeds: {_pct(min(hits))}%",
        ]
    trained = [r["train_metrics"] for r in report.get("fold_runs", []) if r.get("train_metrics")]
    if trained:

        def mean(name: str) -> float:
            return float(np.mean([t[name] for t in trained]))

        lines.append(
            f"- training, last tenth of the steps (mean over {len(trained)} fold runs): EncryIP "
            f"decoded accuracy {_pct(mean('accuracy'))}%, class-sum loss {mean('class_loss'):.4f}; "
            f"plain {_pct(mean('baseline_accuracy'))}%, loss {mean('baseline_loss'):.4f}"
        )
    lines += ["", "| seed | fold | images | plain % | worst user key % |", "|---|---|---|---|---|"]
    for row in s["per_seed"]:
        for f in row["folds"]:
            lines.append(
                f"| {row['seed']} | {f['fold']} | {f['images']} | {_pct(f['plain'])} | "
                f"{_pct(f['worst_user'])} |"
            )
    lines += ["", f"Measured with: `{report['command']}`", ""]
    return "\n".join(lines)
