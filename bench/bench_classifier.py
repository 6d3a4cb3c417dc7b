"""Inference cost of the key transform relative to a classifier's forward pass (goal: ≤ 2%).

For each model, side by side in one process: the jitted forward pass on plain images; the key
transform alone (shuffle + NP + FFX, block 4, the fused ``Pipeline``); and both in one jit (what a
key holder runs). The overhead is ``(fused − forward) / forward``; ``transform / forward`` is the
cost if the transform runs as its own program. Min of N runs after warm-up (``bench.common``).

    python -m bench.bench_classifier [--quick]
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
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


def _model(arch: str, width: int, depth: int | None) -> nnx.Module:
    make = lambda: build_classifier(
        arch,
        num_classes=10,
        image_size=32,
        channels=3,
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


def interleaved_min(programs: dict, *, repeats: int) -> dict[str, float]:
    """Min wall time of each program, the programs run in turn (so load changes hit all alike)."""
    for fn in programs.values():
        time_min(fn, repeats=1, warmup=2)
    best = dict.fromkeys(programs, float("inf"))
    for _ in range(repeats):
        for name, fn in programs.items():
            best[name] = min(best[name], time_min(fn, repeats=1, warmup=0))
    return best


def measure(arch, width, depth, pipeline: Pipeline, images, *, repeats: int) -> dict:
    model = _model(arch, width, depth)
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
    times = interleaved_min(programs, repeats=repeats)
    return {
        "arch": arch,
        "width": width,
        "depth": depth,
        **times,
        "transform_over_forward": times["transform_s"] / times["forward_s"],
        "fused_overhead": times["keyed_forward_s"] / times["forward_s"] - 1.0,
    }


def run(quick: bool = False) -> dict:
    batch = 32 if quick else 128
    repeats = 10 if quick else 30
    key = SecretKey.from_bytes(bytes(range(32)))  # a fixed benchmark key (never a user's)
    pipeline = Pipeline.from_config({"block": 4, "steps": ["shuffle", "np", "ffx"]}, key)
    images = jax.random.uniform(jax.random.key(0), (batch, 32, 32, 3), minval=-1, maxval=1)
    images = jnp.round((images + 1) * 127.5) / 127.5 - 1  # on the 8-bit grid, as real images
    rows = [
        measure(*spec, pipeline, images, repeats=repeats)
        for spec in (QUICK_MODELS if quick else MODELS)
    ]
    summary = {
        f"{r['arch']}_w{r['width']}": {
            "forward_ms": round(1e3 * r["forward_s"], 2),
            "transform_ms": round(1e3 * r["transform_s"], 3),
            "transform_over_forward_pct": round(100 * r["transform_over_forward"], 2),
            "fused_overhead_pct": round(100 * r["fused_overhead"], 2),
        }
        for r in rows
    }
    result = {
        "benchmark": "classifier",
        "quick": quick,
        "batch": batch,
        "image": [32, 32, 3],
        "transform": pipeline.config,
        "goal": "transform cost <= 2% of the forward pass",
        "rows": rows,
        "summary": summary,
    }
    write_result("bench_classifier" + ("_quick" if quick else ""), result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(quick_flag(__doc__))["summary"], indent=2))
