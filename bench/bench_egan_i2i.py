"""EGAN-protected SRGAN and CycleGAN train steps vs their unprotected twins (issue 6 goal:
protected ≤ 1.35× unprotected, "in `make bench`").

Each pair is the bundled experiment (`experiments/egan_srgan_photos.py`,
`experiments/egan_cyclegan_grass2gravel.py` — both since session 6 the exact key inverse + the deep
lock — and `_deep`, the learned input map + the deep lock) and its `_baseline` twin (same model
sizes, data,
schedule and seed, the plain family), both run the way the generic loop runs them (one `jax.jit`
over the split nnx state), on the family's own batch of step 0. SRGAN is timed in its GAN phase
(`loss.pretrain_steps=0`: D update + content + adversarial), the phase that costs most. Timing: min
wall and min process-CPU time per step, protected and plain measured in interleaved rounds so
background load hits them alike. Writes bench/results/egan_i2i_step.json (`_quick` with --quick).
Run: `PYTHONPATH=. .venv/bin/python -m bench.bench_egan_i2i [--quick]`.
"""

from __future__ import annotations

import json
import os

from bench.bench_dcgan import time_wall_and_cpu
from bench.bench_egan import make_step
from bench.common import quick_flag, write_result
from egan_jax.config import apply_overrides

GOAL = 1.35
PAIRS = {
    "srgan": ("experiments.egan_srgan_photos", ["loss.pretrain_steps=0"]),
    "cyclegan": ("experiments.egan_cyclegan_grass2gravel", []),
    "cyclegan_deep": ("experiments.egan_cyclegan_grass2gravel_deep", []),  # learned map + lock
}


def configs(name: str):
    """(protected, unprotected) configs of one pair."""
    import importlib

    from egan_jax.evaluate_i2i import baseline_config

    module, overrides = PAIRS[name]
    protected = apply_overrides(importlib.import_module(module).get_config(), overrides)
    return protected, baseline_config(protected)


def run(quick: bool = False) -> dict:
    rounds, repeats, warmup = (1, 2, 1) if quick else (3, 3, 1)
    load_at_start = os.getloadavg()
    summary = {}
    for name in PAIRS:
        protected, plain = configs(name)
        steps = {"protected": make_step(protected), "plain": make_step(plain)}
        wall = {k: float("inf") for k in steps}
        cpu = {k: float("inf") for k in steps}
        for _ in range(rounds):
            for key, step in steps.items():
                w, c = time_wall_and_cpu(step, repeats=repeats, warmup=warmup)
                wall[key], cpu[key] = min(wall[key], w), min(cpu[key], c)
        summary[name] = {
            "step_s": wall,
            "cpu_s_per_step": cpu,
            "ratio_protected_over_plain": wall["protected"] / wall["plain"],
            "cpu_ratio_protected_over_plain": cpu["protected"] / cpu["plain"],
            "config": {
                "experiment": PAIRS[name][0],
                "overrides": PAIRS[name][1],
                "batch_size": protected.train.batch_size,
                "image_size": protected.data.image_size,
                "width": protected.model.width,
            },
        }
    result = {
        "benchmark": "egan_i2i_step",
        "config": {"rounds": rounds, "repeats": repeats, "warmup": warmup, "timing": "min"},
        "goal_ratio_at_most": GOAL,
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "summary": summary,
    }
    path = write_result("egan_i2i_step_quick" if quick else "egan_i2i_step", result)
    result["path"] = str(path)
    return result


def main() -> None:
    result = run(quick=quick_flag(__doc__.splitlines()[0]))
    for name, item in result["summary"].items():
        print(
            f"{name:9s} protected {item['step_s']['protected']:.3f} s  plain "
            f"{item['step_s']['plain']:.3f} s  ratio {item['ratio_protected_over_plain']:.2f}x "
            f"(CPU {item['cpu_ratio_protected_over_plain']:.2f}x; goal <= {GOAL})"
        )
    print(f"wrote {result['path']}")
    print(json.dumps({"load_average_at_end": result["load_average_at_end"]}))


if __name__ == "__main__":
    main()
