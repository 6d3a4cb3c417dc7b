"""Fine-tuning against training from scratch over many attack seeds, paired, with a control.

One attack seed fixes the thief's images (``fraction`` of the training split) and his models'
initialisation; at 1% of the digits (16 images) which 16 images he holds moves a from-scratch model
by ±8 points, so a single seed cannot say whether stealing helps. `seed_study` runs, for each seed,
the from-scratch thief and the fine-tuning thief on the same images and budget (the functions of
`egan attack finetune`), and the control: the stolen weights with every parameter array's entries
shuffled (the same weight statistics, no structure; `shuffled`). It reports the paired gains over
scratch with a 95% bootstrap interval of their mean. A fine-tune gain whose interval lies above 0
is knowledge taken from the stolen weights; the control tells how much of a gain weight statistics
alone would give.

    python -m egan_jax.classifier_attack_seeds --workdir runs/classifier_digits --seeds 10

Writes ``WORKDIR/attacks/finetune_seeds.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from egan_jax import classifier_attacks as attacks
from egan_jax.errors import ConfigError

BOOTSTRAP_DRAWS = 10_000


def shuffled(model: nnx.Module, seed: int) -> nnx.Module:
    """A copy of ``model`` with the entries of each parameter array randomly permuted."""
    rng = np.random.default_rng([seed, 0x5A])
    copy = nnx.clone(model)

    def permute(value):
        flat = np.asarray(value).reshape(-1)
        return jnp.asarray(rng.permutation(flat).reshape(np.shape(value)), value.dtype)

    nnx.update(copy, jax.tree.map(permute, nnx.state(copy, nnx.Param)))
    return copy


def interval(gains: np.ndarray, *, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``gains`` (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(gains), (BOOTSTRAP_DRAWS, len(gains)))
    means = np.asarray(gains)[draws].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarize(rows: list[dict[str, Any]], arms: tuple[str, ...]) -> dict[str, Any]:
    """Mean accuracy per arm and, per attack arm, the paired gain over scratch in points."""
    summary: dict[str, Any] = {"seeds": len(rows)}
    for arm in ("from_scratch", *arms):
        summary[f"{arm}_mean"] = float(np.mean([r[arm] for r in rows]))
    for arm in arms:
        gains = np.array([100 * (r[arm] - r["from_scratch"]) for r in rows])
        low, high = interval(gains)
        summary[f"{arm}_gain"] = {
            "mean": float(gains.mean()),
            "sd": float(gains.std(ddof=1)) if len(gains) > 1 else 0.0,
            "ci95": [low, high],
            "helps": bool(low > 0),
        }
    return summary


def seed_study(
    workdir: str | Path,
    *,
    seeds: int,
    steps: int | None = None,
    fraction: float = 0.01,
    control: bool = True,
    first_seed: int = 0,
) -> dict[str, Any]:
    """Per attack seed: from scratch, fine-tune of the stolen weights and (``control``) fine-tune of
    the shuffled stolen weights, all on the seed's ``fraction`` of the data with ``steps`` steps
    (default: half the training's). Stores and returns the rows and the summary."""
    if seeds < 2:
        raise ConfigError(f"--seeds {seeds}: a paired interval needs at least 2 attack seeds")
    workdir = Path(workdir)
    config, stolen = attacks._load_stolen(workdir)
    steps = steps or config.train.steps // 2
    arms = ("finetune", "shuffled_finetune") if control else ("finetune",)
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        data = attacks.attacker_data(config, fraction, seed)
        row = {"seed": seed, "images": len(data.labels)}
        row["from_scratch"] = attacks.from_scratch(config, data, steps=steps, seed=seed)["accuracy"]
        row["finetune"] = attacks.finetune(config, stolen, data, steps=steps, seed=seed)["accuracy"]
        if control:
            probe = shuffled(stolen, seed)
            row["shuffled_finetune"] = attacks.finetune(
                config, probe, data, steps=steps, seed=seed
            )["accuracy"]
        rows.append(row)
    result = {
        "fraction": fraction,
        "steps": steps,
        "rows": rows,
        "summary": summarize(rows, arms),
    }
    path = workdir / "attacks" / "finetune_seeds.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    result["path"] = str(path)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="a protected classifier run")
    parser.add_argument("--seeds", type=int, default=10, help="attack seeds (default 10)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="default: half the training's")
    parser.add_argument("--fraction", type=float, default=0.01, help="thief's share of the data")
    parser.add_argument("--no-control", action="store_true", help="skip the shuffled-weights arm")
    args = parser.parse_args(argv)
    result = seed_study(
        args.workdir,
        seeds=args.seeds,
        steps=args.steps,
        fraction=args.fraction,
        control=not args.no_control,
        first_seed=args.first_seed,
    )
    s = result["summary"]
    print(f"{s['seeds']} attack seeds, {args.fraction:.0%} data, {result['steps']} steps")
    print(f"from scratch: mean {100 * s['from_scratch_mean']:.1f}%")
    for arm in ("finetune", "shuffled_finetune"):
        if f"{arm}_gain" in s:
            g = s[f"{arm}_gain"]
            print(
                f"{arm}: mean {100 * s[f'{arm}_mean']:.1f}%, gain {g['mean']:+.2f} ± {g['sd']:.2f} "
                f"points (95% CI {g['ci95'][0]:+.2f} to {g['ci95'][1]:+.2f})"
            )
    print(f"written: {result['path']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
