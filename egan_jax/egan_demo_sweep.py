"""Recipe sweeps for the EGAN demo: correct-key quality over seeds at several lengths, with and
without the generator EMA, from one training per seed and arm.

Each seed trains the demo's baseline / protected pair (`egan_demo.demo_config` + `--set`
overrides) for `--steps` steps with a checkpoint every `--eval-every` steps. With a constant
learning rate nothing in a run depends on its total length, so the checkpoint at step s is the
run of s steps: one long run measures every shorter one. The EMA never changes training, so a run
with `train.ema_decay > 0` measures the trained and the EMA generator side by side. For each
(step, generator) the digits FD of the baseline (seed-0 latents, as `egan evaluate`) and of the
protected model with the correct key and with no key (both no-key inputs of the design), the
ratio of means over seeds and the smallest no-key / baseline ratio.

`python -m egan_jax.egan_demo_sweep --out /tmp/sweep --steps 2000 --eval-every 500
 --seeds 0 1 2 --set train.ema_decay=0.999` writes `sweep.json` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def evaluate_step(workdirs: dict[str, Path], key, step: int, use_ema: bool, n: int) -> dict:
    from egan_jax.evaluate import FrechetScorer, protection_rows
    from egan_jax.train import load_trained, sample_images

    config, models, _ = load_trained(
        workdirs["protected"], step=step, key_fingerprint=key.fingerprint, use_ema=use_ema
    )
    scorer = FrechetScorer(config)
    rows, _ = protection_rows(
        config, models["generator"], key, scorer, num_samples=n,
        random_keys=0, near_keys=0, near_materials=0,
    )  # fmt: skip
    baseline = scorer(sample_images(workdirs["baseline"], n=n, step=step, use_ema=use_ema))
    return {
        "baseline_fd": baseline,
        "correct_key_fd": next(r["fd"] for r in rows if r["kind"] == "authorized"),
        "no_key_fd_min": min(r["fd"] for r in rows if r["kind"] == "no_key"),
    }


def summarize(per_seed: dict[int, dict]) -> dict:
    baseline = np.array([r["baseline_fd"] for r in per_seed.values()])
    keyed = np.array([r["correct_key_fd"] for r in per_seed.values()])
    no_key = np.array([r["no_key_fd_min"] for r in per_seed.values()])
    return {
        "seeds": {str(s): r for s, r in per_seed.items()},
        "baseline_fd_mean": float(baseline.mean()),
        "correct_key_fd_mean": float(keyed.mean()),
        "ratio_of_means": float(keyed.mean() / baseline.mean()),
        "no_key_ratio_min": float((no_key / baseline).min()),
    }


def run(
    out: Path, *, steps: int, eval_every: int, seeds: tuple[int, ...], overrides: tuple[str, ...]
) -> dict:
    from egan_jax.demo import demo_key
    from egan_jax.egan_demo import _train_pair, demo_config

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = demo_key(out)
    checkpoints = list(range(eval_every, steps + 1, eval_every))
    extra = (f"checkpoint.every={eval_every}", f"checkpoint.max_to_keep={len(checkpoints)}")
    timings: dict[str, float] = {}
    results: dict[str, dict[int, dict]] = {}
    config = None
    for seed in seeds:
        config = demo_config(out / "demo.key", steps=steps, quick=False, seed=seed,
                             overrides=(*overrides, *extra))  # fmt: skip
        workdirs = {name: out / str(seed) / name for name in ("baseline", "protected")}
        _train_pair(config, out / str(seed), timings, f" seed {seed}")
        for step in checkpoints:
            for use_ema in (False, True) if config.train.ema_decay > 0 else (False,):
                label = f"{step} {'ema' if use_ema else 'trained'}"
                results.setdefault(label, {})[seed] = evaluate_step(
                    workdirs, key, step, use_ema, config.eval.num_samples
                )
    table = {label: summarize(per_seed) for label, per_seed in results.items()}
    report = {"overrides": list(overrides), "steps": steps, "seeds": list(seeds),
              "timings": timings, "results": table}  # fmt: skip
    (out / "sweep.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"overrides {list(overrides)}, seeds {list(seeds)}")
    print("| step generator | baseline FD per seed | correct-key FD per seed | ratio of means | "
          "min no-key ratio |\n|---|---|---|---:|---:|")  # fmt: skip
    for label, row in table.items():
        base = " / ".join(f"{r['baseline_fd']:.2f}" for r in row["seeds"].values())
        keyed = " / ".join(f"{r['correct_key_fd']:.2f}" for r in row["seeds"].values())
        print(f"| {label} | {base} | {keyed} | {row['ratio_of_means']:.3f} | "
              f"{row['no_key_ratio_min']:.1f} |")  # fmt: skip
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    began = time.perf_counter()
    run(args.out, steps=args.steps, eval_every=args.eval_every, seeds=tuple(args.seeds),
        overrides=tuple(args.overrides))  # fmt: skip
    print(f"{time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
