"""SRGAN and CycleGAN train steps, JAX (egan_jax families) vs PyTorch, side by side.

- SRGAN: SRResNet-16 width 64 + VGG-style D, batch 16, LR 24 -> HR 96, GAN phase (one D update with
  BCE, one G update on pixel MSE + 1e-3 adversarial), Adam 1e-4 — the step of
  `egan_jax.families.srgan` with no VGG weights (REFERENCE.md §3 anchor: PyTorch 2.25 s).
- CycleGAN: two ResNet-9 width 64 generators + two 70×70 PatchGANs, batch 1, 128 px, LSGAN, cycle
  10, identity 5, pool 50 — the step of `egan_jax.families.cyclegan` (anchor: PyTorch 2.31 s).
PyTorch 2.13 CPU runs the same networks in bench/.venv-torch (bench/torch_sr_cycle.py). JAX runs
the family's own train step as the training loop does (one `jax.jit` over the split state).
Timing: min of N after warm-up, JAX and PyTorch measured in interleaved rounds. Writes bench/results/sr_cycle_step.json.
Run: `.venv/bin/python -m bench.bench_sr_cycle [--quick]`.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from bench.common import quick_flag, run_json, time_min, write_result
from egan_jax.config import apply_overrides

TORCH_PYTHON = Path(__file__).resolve().parent / ".venv-torch" / "bin" / "python"
TORCH_SCRIPT = Path(__file__).resolve().parent / "torch_sr_cycle.py"
SETUP = (
    "python3.11 -m venv bench/.venv-torch && bench/.venv-torch/bin/pip install torch==2.13.0 numpy"
)

CASES = {
    "srgan": {
        "module": "egan_jax.families.srgan",
        "overrides": [
            "model.width=64",
            "model.num_blocks=16",
            "model.discriminator_width=64",
            "data.image_size=96",
            "train.batch_size=16",
            "loss.pretrain_steps=0",
        ],
        "batch": {"lr": (16, 24, 24, 3), "hr": (16, 96, 96, 3), "adversarial": (16,)},
        "torch": ["--model", "srgan", "--batch", "16", "--width", "64", "--blocks", "16"],
    },
    "cyclegan": {
        "module": "egan_jax.families.cyclegan",
        "overrides": [
            "model.width=64",
            "model.num_blocks=9",
            "model.discriminator_width=64",
            "data.image_size=128",
            "train.batch_size=1",
            "loss.pool_size=50",
        ],
        "batch": {"a": (1, 128, 128, 3), "b": (1, 128, 128, 3)},
        "torch": [
            "--model",
            "cyclegan",
            "--batch",
            "1",
            "--width",
            "64",
            "--blocks",
            "9",
            "--image-size",
            "128",
        ],  # fmt: skip
    },
}


def make_jax_step(name: str):
    """The family's models, optimizers and jitted train step on a fixed random batch."""
    import importlib
    import warnings

    case = CASES[name]
    family = importlib.import_module(case["module"]).FAMILY
    config = apply_overrides(family.default_config(), case["overrides"])
    models = family.build_models(config, nnx.Rngs(0))
    optimizers = family.build_optimizers(config, models)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # srgan's "no VGG weights" notice: intended here
        family_step = family.make_train_step(config)
    rng = np.random.default_rng(0)
    batch = {k: rng.uniform(-1, 1, shape).astype(np.float32) for k, shape in case["batch"].items()}
    keys = iter(jax.random.split(jax.random.key(1), 100_000))
    # as egan_jax.train runs it: one jax.jit over the split state (no per-call nnx graph walk,
    # which costs ~15 ms per step here for these ~2,000-node module graphs under nnx.jit)
    graphdef, state = nnx.split({"models": models, "optimizers": optimizers})

    @jax.jit
    def train_state(state, batch, key):
        tree = nnx.merge(graphdef, state)
        metrics = family_step(tree["models"], tree["optimizers"], batch, key)
        return nnx.state(tree), metrics

    holder = [state]

    def step():
        holder[0], metrics = train_state(holder[0], batch, next(keys))
        return jax.block_until_ready(metrics)

    return step


def run_torch(name: str, *, repeats: int, warmup: int) -> dict:
    if not TORCH_PYTHON.exists():
        raise RuntimeError(f"PyTorch venv missing: {SETUP}")
    command = [str(TORCH_PYTHON), str(TORCH_SCRIPT), *CASES[name]["torch"]]
    command += ["--repeats", str(repeats), "--warmup", str(warmup)]
    return run_json(command)


def run(quick: bool = False) -> dict:
    rounds, repeats, warmup = (1, 2, 1) if quick else (2, 3, 1)
    summary, torch_info = {}, {}
    for name in CASES:
        step = make_jax_step(name)
        best = {"jax": float("inf"), "torch": float("inf")}
        for _ in range(rounds):  # interleaved, so background load hits both alike
            best["jax"] = min(best["jax"], time_min(step, repeats=repeats, warmup=warmup))
            torch_info = run_torch(name, repeats=repeats, warmup=warmup)
            best["torch"] = min(best["torch"], torch_info["step_s"])
        summary[name] = {
            "step_s": best,
            "steps_per_s": {k: 1.0 / v for k, v in best.items()},
            "ratio_jax_over_torch": best["torch"] / best["jax"],
        }
    summary["target_jax_over_torch"] = 1.2
    result = {
        "benchmark": "sr_cycle_step",
        "config": {
            "srgan": "SRResNet-16 w64 + VGG-style D w64, batch 16, 24->96, MSE + 1e-3 adv",
            "cyclegan": "ResNet-9 w64 x2 + PatchGAN w64 x2, batch 1, 128 px, LSGAN/cycle/id/pool",
            "rounds": rounds,
            "repeats": repeats,
            "warmup": warmup,
            "timing": "min",
        },
        "torch": {"version": torch_info.get("torch"), "threads": torch_info.get("threads")},
        "load_average_at_end": os.getloadavg(),
        "summary": summary,
    }
    path = write_result("sr_cycle_step", result)
    result["path"] = str(path)
    return result


def main() -> None:
    result = run(quick=quick_flag(__doc__.splitlines()[0]))
    for name in CASES:
        item = result["summary"][name]
        jax_s, torch_s = item["step_s"]["jax"], item["step_s"]["torch"]
        print(
            f"{name:9s} JAX {jax_s:6.2f} s/step  PyTorch {torch_s:6.2f} s/step  "
            f"JAX/PyTorch steps/s {item['ratio_jax_over_torch']:.2f}x"
        )
    print(f"load average at end: {result['load_average_at_end']}")
    print(f"wrote {result['path']}")


if __name__ == "__main__":
    main()
