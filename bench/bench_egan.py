"""EGAN-protected DCGAN train step vs the unprotected DCGAN step of the same model (issue 6 goal:
protected ≤ 1.35× unprotected).

Both steps are the families' own `make_train_step` functions, run the way the generic loop runs them
(one `jax.jit` over the split nnx state). Timing is min wall and min process-CPU time per step, the
two measured in interleaved rounds so background load hits them alike. Protected variants: the
feature-lock design (the default, with and without the deep lock), the feature-permutation design and the latent-offset design, the
self-adversarial term on output pixels over half the batch. Writes bench/results/egan_step.json
(`egan_step_quick.json` with --quick). Run: `.venv/bin/python -m bench.bench_egan [--quick]`.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np
from flax import nnx

from bench.bench_dcgan import time_wall_and_cpu
from bench.common import quick_flag, write_result
from egan_jax.config import DataConfig, TrainConfig
from egan_jax.families import FAMILIES, get_family

FAMILIES.setdefault("egan_dcgan", "egan_jax.families.egan_dcgan:FAMILY")
GOAL = 1.35


DEEP_SITES = ("linear", "block1", "block2", "block3")  # experiments/egan_dcgan_digits.py's


def _config(
    design: str | None,
    *,
    batch: int,
    width: int,
    image_size: int,
    latent_dim: int,
    deep_lock: tuple[str, ...] = (),
):
    from egan_jax.evaluate import baseline_config
    from egan_jax.families import egan_dcgan

    base = egan_dcgan.default_config()
    config = dataclasses.replace(
        base,
        model=dataclasses.replace(
            base.model,
            latent_dim=latent_dim,
            width=width,
            design=design or "latent_offset",
            deep_lock=deep_lock,
        ),
        data=DataConfig(name="digits", image_size=image_size, channels=1),
        train=TrainConfig(steps=100, batch_size=batch),
    )
    return config if design else baseline_config(config)


def make_step(config):
    """A jitted step `() -> metrics` on the family's batch of step 0, as the generic loop runs it."""
    from egan_jax.train import initial_state

    family = get_family(config.family)
    graphdef, state = initial_state(family, config)
    family_step = family.make_train_step(config)
    batch = family.make_batches(config)(0, 0, 1)

    @jax.jit
    def step(state, batch, key):
        tree = nnx.merge(graphdef, state)
        metrics = family_step(tree["models"], tree["optimizers"], batch, key)
        return nnx.state(tree), metrics

    holder = {"state": state, "i": 0}

    def run_once():
        holder["i"] += 1
        holder["state"], metrics = step(holder["state"], batch, jax.random.key(holder["i"]))
        return jax.block_until_ready(metrics)

    return run_once


def run(quick: bool = False, *, batch: int = 64, width: int = 32, image_size: int = 16) -> dict:
    rounds, repeats, warmup = (1, 3, 1) if quick else (3, 5, 1)
    if quick:
        batch, width = 32, 16
    shape = dict(batch=batch, width=width, image_size=image_size, latent_dim=64)
    names = {
        "dcgan": None,
        "egan_latent_offset": "latent_offset",
        "egan_feature_perm": "feature_perm",
        "egan_feature_lock": "feature_lock",
        "egan_feature_lock_deep": "feature_lock",  # + the deep lock (the digits default)
    }
    load_at_start = os.getloadavg()
    steps = {
        name: make_step(
            _config(design, **shape, deep_lock=DEEP_SITES if name.endswith("_deep") else ())
        )
        for name, design in names.items()
    }
    best = {name: float("inf") for name in names}
    best_cpu = {name: float("inf") for name in names}
    for _ in range(rounds):
        for name in names:
            wall, cpu = time_wall_and_cpu(steps[name], repeats=repeats, warmup=warmup)
            best[name], best_cpu[name] = min(best[name], wall), min(best_cpu[name], cpu)
    summary = {
        "step_s": best,
        "cpu_s_per_step": best_cpu,
        **{
            f"ratio_{name}_over_dcgan": best[name] / best["dcgan"]
            for name in names
            if name != "dcgan"
        },
        **{
            f"cpu_ratio_{name}_over_dcgan": best_cpu[name] / best_cpu["dcgan"]
            for name in names
            if name != "dcgan"
        },
        "goal_ratio_at_most": GOAL,
        "load_average_at_start": load_at_start,
    }
    result = {
        "benchmark": "egan_step",
        "config": {
            **shape,
            "channels": 1,
            "unauthorized_fraction": 0.5,
            "self_adversarial": "l1 on output pixels, margin 1",
            "rounds": rounds,
            "repeats": repeats,
            "warmup": warmup,
            "timing": "min wall and min process CPU time per step",
        },
        "load_average_at_end": os.getloadavg(),
        "summary": summary,
    }
    path = write_result("egan_step_quick" if quick else "egan_step", result)
    result["path"] = str(path)
    return result


def main() -> None:
    result = run(quick=quick_flag(__doc__.splitlines()[0]))
    print(json.dumps(result["summary"], indent=2, default=float))
    print(f"wrote {result['path']}")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
