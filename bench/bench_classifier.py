"""Inference cost of the key transform relative to a classifier's forward pass (goal: ≤ 2%).

For each model, side by side in one process: the jitted forward pass on plain images; the key
transform alone (shuffle + NP + FFX, block 4, the fused ``Pipeline``); and both in one jit (what a
key holder runs). The overhead is ``(fused − forward) / forward``; ``transform / forward`` is the
cost if the transform runs as its own program. Each is given as min/min of N interleaved runs after
warm-up and as the median of per-round ratios (steadier under load); the load average is recorded.
The CIFAR-size models take 3-channel images; the table's digits CNN also runs on 1-channel ones.

    python -m bench.bench_classifier [--quick]
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bench.common import quick_flag, time_min, write_result
from egan_jax.keys import SecretKey
from egan_jax.models.classifiers import build_classifier
from egan_jax.transforms.compose import Pipeline

# (arch, width, depth) at CIFAR size; the paper's ResNet-18 is width 64
MODELS = (
    ("resnet18", 64, 2),
    ("cnn", 32, None),
    ("convmixer", 256, 8),
    ("vit", 192, 6),
)
QUICK_MODELS = (("resnet18", 16, 1), ("cnn", 32, None), ("convmixer", 64, 2))
DIGITS_MODELS = (("cnn", 32, None),)  # the model of the protection table, on 32×32 grey digits
GOAL = 0.02


def _model(arch: str, width: int, depth: int | None, *, channels: int = 3) -> nnx.Module:
    make = lambda: build_classifier(
        arch,
        num_classes=10,
        image_size=32,
        channels=channels,
        width=width,
        depth=depth,
        patch_size=4,
        rngs=nnx.Rngs(0),
    )
    graphdef, _ = nnx.split(nnx.eval_shape(make))
    compiled = jax.jit(lambda: nnx.state(make())).lower()
    model = nnx.merge(graphdef, compiled.compile({"xla_backend_optimization_level": 0})())
    model.eval()
    return model


def interleaved(programs: dict, *, repeats: int) -> dict[str, list[float]]:
    """Wall times of each program over ``repeats`` rounds, the programs run in turn in every round
    (so a load change hits all of them alike; ratios are taken within a round), in a fresh random
    order each round (fixed seed): a program run right after a model's forward pass is slower (its
    threads and caches), so a fixed order would always charge that to the transform."""
    for fn in programs.values():
        time_min(fn, repeats=1, warmup=2)
    names = list(programs)
    times: dict[str, list[float]] = {name: [] for name in names}
    rng = np.random.default_rng(0)
    for _ in range(repeats):
        for index in rng.permutation(len(names)):
            times[names[index]].append(time_min(programs[names[index]], repeats=1, warmup=0))
    return times


def measure(arch, width, depth, pipeline: Pipeline, images, *, repeats: int) -> dict:
    model = _model(arch, width, depth, channels=images.shape[-1])
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, x):
        return nnx.merge(graphdef, state)(x)

    @jax.jit
    def keyed_forward(state, x):
        return nnx.merge(graphdef, state)(pipeline.forward(x))

    transform = jax.jit(pipeline.forward)
    programs = {
        "forward_s": lambda: forward(state, images).block_until_ready(),
        "transform_s": lambda: transform(images).block_until_ready(),
        "keyed_forward_s": lambda: keyed_forward(state, images).block_until_ready(),
    }
    times = interleaved(programs, repeats=repeats)
    best = {name: min(values) for name, values in times.items()}
    per_round = lambda name: np.asarray(times[name]) / np.asarray(times["forward_s"])
    return {
        "arch": arch,
        "width": width,
        "depth": depth,
        "channels": int(images.shape[-1]),
        **best,
        "transform_over_forward": best["transform_s"] / best["forward_s"],
        "fused_overhead": best["keyed_forward_s"] / best["forward_s"] - 1.0,
        # the same ratios as medians of per-round ratios: steadier than min/min under load
        "transform_over_forward_median": float(np.median(per_round("transform_s"))),
        "fused_overhead_median": float(np.median(per_round("keyed_forward_s"))) - 1.0,
    }


def _images(batch: int, channels: int) -> jax.Array:
    images = jax.random.uniform(jax.random.key(0), (batch, 32, 32, channels), minval=-1, maxval=1)
    return jnp.round((images + 1) * 127.5) / 127.5 - 1  # on the 8-bit grid, as real images


def run(quick: bool = False) -> dict:
    batch = 32 if quick else 128
    repeats = 10 if quick else 30
    key = SecretKey.from_bytes(bytes(range(32)))  # a fixed benchmark key (never a user's)
    config = {"block": 4, "steps": ["shuffle", "np", "ffx"]}
    load_before = os.getloadavg()
    rows = []
    for channels, specs in ((3, QUICK_MODELS if quick else MODELS), (1, DIGITS_MODELS)):
        pipeline = Pipeline.from_config({**config, "channels": channels}, key)
        images = _images(batch, channels)
        rows += [measure(*spec, pipeline, images, repeats=repeats) for spec in specs]
    summary = {
        f"{r['arch']}_w{r['width']}_c{r['channels']}": {
            "forward_ms": round(1e3 * r["forward_s"], 2),
            "transform_ms": round(1e3 * r["transform_s"], 3),
            "transform_over_forward_pct": round(100 * r["transform_over_forward"], 2),
            "transform_over_forward_median_pct": round(100 * r["transform_over_forward_median"], 2),
            "fused_overhead_pct": round(100 * r["fused_overhead"], 2),
            "fused_overhead_median_pct": round(100 * r["fused_overhead_median"], 2),
            "goal_met": r["transform_over_forward"] <= GOAL,
        }
        for r in rows
    }
    result = {
        "benchmark": "classifier",
        "quick": quick,
        "batch": batch,
        "image": [32, 32, "3 (CIFAR size) or 1 (bundled digits)"],
        "transform": config,
        "goal": f"transform cost <= {GOAL:.0%} of the forward pass",
        "load_average_1_5_15_before": load_before,
        "load_average_1_5_15_after": os.getloadavg(),
        "rows": rows,
        "summary": summary,
    }
    write_result("bench_classifier" + ("_quick" if quick else ""), result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(quick_flag(__doc__))["summary"], indent=2))
