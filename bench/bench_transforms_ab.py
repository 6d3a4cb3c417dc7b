"""A/B of the library transform against its previous code and the closest variants, many rounds.

Shuffle + NP + FFX (decimal, block 4), float32 on the pixel grid, at the benchmark's shapes and the
classifier's batch (128×32×32, 3 and 1 channels). Per shape, interleaved round by round (min of
``rounds``), each checked bit-exact against the library first: the library; (3c) the previous library
code (``clip(round(·))`` quantisation, select for NP); (5b) flat 2-D layout + sign XOR; (5c) one packed
control word per position; a device copy. The whole list of shapes is measured ``passes`` times, so a
load change shows up as a spread between passes rather than as a bias.

    PYTHONPATH=. python -m bench.bench_transforms_ab [--rounds 100] [--passes 2]
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

from bench import transform_variants as tv
from bench.bench_transforms import interleaved_min
from bench.common import write_result
from egan_jax.keys import SecretKey
from egan_jax.transforms import Pipeline, pixel_grid

SHAPES = ((256, 32, 32, 3), (128, 32, 32, 3), (128, 32, 32, 1), (64, 128, 128, 3))


def programs(shape) -> dict:
    config = {"block": 4, "steps": ["shuffle", "np", "ffx"], "channels": shape[3]}
    pipe = Pipeline.from_config(config, SecretKey.from_bytes(bytes(range(32))))
    return {
        "library": jax.jit(pipe.forward),
        "3c_previous_library": jax.jit(tv.previous_library_factory(pipe, shape)[0]),
        "5b_flat2d_xor_sign": jax.jit(tv.flat2d_factory(pipe, shape, xor_sign=True)),
        "5c_packed_control_word": jax.jit(tv.packed_control_factory(pipe, shape)),
        "device_copy": jax.jit(lambda a: a + 0),
    }


def run(rounds: int = 100, passes: int = 2) -> dict:
    load_before = os.getloadavg()
    measured = []
    for pass_index in range(passes):
        for shape in SHAPES:
            x = jax.device_put(pixel_grid()[np.random.default_rng(0).integers(0, 256, shape)])
            fns = programs(shape)
            expected = np.asarray(fns["library"](x))
            exact = {
                name: bool(np.array_equal(np.asarray(fn(x)), expected))
                for name, fn in fns.items()
                if name != "device_copy"
            }
            best = interleaved_min(fns, x, rounds=rounds)
            ms = {name: round(1e3 * t, 4) for name, t in best.items()}
            row = {
                "pass": pass_index,
                "shape": "x".join(map(str, shape)),
                "load_1min": round(os.getloadavg()[0], 2),
                "ms": ms,
                "exact": exact,
                "previous / library": round(ms["3c_previous_library"] / ms["library"], 4),
                "library / device_copy": round(ms["library"] / ms["device_copy"], 3),
            }
            measured.append(row)
            print(row["shape"], f"load {row['load_1min']}", ms, flush=True)
    speedups = [row["previous / library"] for row in measured if row["shape"].endswith("x3")]
    result = {
        "rounds": rounds,
        "passes": passes,
        "load_average_1_5_15": {"before": load_before, "after": os.getloadavg()},
        "rows": measured,
        "previous / library, 3-channel rows": {
            "min": min(speedups),
            "median": float(np.median(speedups)),
            "max": max(speedups),
        },
    }
    write_result("transforms_ab", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    print(run(args.rounds, args.passes)["previous / library, 3-channel rows"])
