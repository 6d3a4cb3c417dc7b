"""Transform cost relative to the small digits CNN's forward pass (issue 7's ≤ 2% goal), side by side
with the previous library formulation of the transform.

For the small CNN of ``bench.bench_classifier`` (width 32, batch 128, 32×32, 3 and 1 channels), in one
process in a random order each round: the jitted forward pass on plain images, the library's key
transform (shuffle + NP + FFX, block 4) alone, the previous library code of the same transform
(``bench.transform_variants.previous_library_factory``, bit-identical outputs), and the forward pass
with the library transform in the same jit. Ratios are min/min and medians of per-round ratios.
The ResNet-18, ConvMixer and ViT rows are in ``bench.bench_classifier`` (all ≤ 0.3%).

    PYTHONPATH=. python -m bench.bench_transforms_cnn [--quick]
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
from flax import nnx

from bench import transform_variants as tv
from bench.bench_classifier import GOAL, _images, _model, interleaved
from bench.common import quick_flag, write_result
from egan_jax.keys import SecretKey
from egan_jax.transforms.compose import Pipeline


def measure(channels: int, *, batch: int, repeats: int) -> dict:
    key = SecretKey.from_bytes(bytes(range(32)))  # the fixed benchmark key of bench_classifier
    config = {"block": 4, "steps": ["shuffle", "np", "ffx"], "channels": channels}
    pipeline = Pipeline.from_config(config, key)
    images = _images(batch, channels)
    graphdef, state = nnx.split(_model("cnn", 32, None, channels=channels))

    @jax.jit
    def forward(state, x):
        return nnx.merge(graphdef, state)(x)

    @jax.jit
    def keyed_forward(state, x):
        return nnx.merge(graphdef, state)(pipeline.forward(x))

    transform = jax.jit(pipeline.forward)
    previous = jax.jit(tv.previous_library_factory(pipeline, images.shape)[0])
    exact = bool(np.array_equal(np.asarray(transform(images)), np.asarray(previous(images))))
    programs = {
        "forward_s": lambda: forward(state, images).block_until_ready(),
        "transform_s": lambda: transform(images).block_until_ready(),
        "previous_transform_s": lambda: previous(images).block_until_ready(),
        "keyed_forward_s": lambda: keyed_forward(state, images).block_until_ready(),
    }
    times = interleaved(programs, repeats=repeats)
    best = {name: min(values) for name, values in times.items()}
    ratio = lambda name: np.asarray(times[name]) / np.asarray(times["forward_s"])
    return {
        "channels": channels,
        "batch": batch,
        "exact_vs_previous": exact,
        "ms": {name.removesuffix("_s"): round(1e3 * t, 4) for name, t in best.items()},
        "transform_over_forward_pct": round(100 * best["transform_s"] / best["forward_s"], 3),
        "previous_transform_over_forward_pct": round(
            100 * best["previous_transform_s"] / best["forward_s"], 3
        ),
        "transform_over_forward_median_pct": round(100 * float(np.median(ratio("transform_s"))), 3),
        "previous_over_forward_median_pct": round(
            100 * float(np.median(ratio("previous_transform_s"))), 3
        ),
        "fused_overhead_pct": round(100 * (best["keyed_forward_s"] / best["forward_s"] - 1), 3),
        "previous / library": round(best["previous_transform_s"] / best["transform_s"], 4),
        "goal_met": best["transform_s"] / best["forward_s"] <= GOAL,
    }


def run(quick: bool = False) -> dict:
    batch, repeats = (32, 10) if quick else (128, 60)
    load_before = os.getloadavg()
    rows = {f"cnn_w32_c{c}": measure(c, batch=batch, repeats=repeats) for c in (3, 1)}
    result = {
        "benchmark": "transform cost vs the small digits CNN forward pass",
        "quick": quick,
        "goal": f"transform <= {GOAL:.0%} of the forward pass",
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "rows": rows,
    }
    write_result("transforms_cnn" + ("_quick" if quick else ""), result)
    return result


if __name__ == "__main__":
    print(json.dumps(run(quick_flag(__doc__))["rows"], indent=2))
