"""Element-wise ring arithmetic on shares: numpy (what egan_jax.mpc does) vs jitted JAX (uint64, x64).

The issue asks for local share arithmetic in JAX (uint64 with x64 enabled, jitted). The bilinear
ring ops are (`ring._bilinear_jax`); this measures whether the element-wise ones should be too, at
the sizes the secure DCGAN step works on (width 8, 32 px, batch 16: 32 logits, 2,048 to 8,192
kernel and dense parameters, 8,192 to 65,536 activations). Per op and size, side by side in one
process, min over interleaved repeats of a timed loop:

- ``numpy_us``: the numpy expression on numpy uint64 arrays (the library's code);
- ``jax_resident_us``: the same expression jitted, inputs already JAX arrays, inside one
  ``jax.enable_x64(True)`` context, until ``block_until_ready`` (the best case for JAX: a pipeline
  whose shares never leave JAX);
- ``jax_from_numpy_us``: the drop-in cost: numpy in, jitted op, numpy out (``np.asarray``), inside
  the x64 context (shares arrive from and go to the channel as numpy bytes);
- ``x64_context_us``: entering and leaving ``jax.enable_x64(True)`` once (thread-local, as
  `ring._bilinear` does per call).

Every JAX result is checked bit for bit against numpy. Ops: the local arithmetic of the protocols
(add/sub/neg, products, the Beaver combination c + d·y + a·e, SecureML truncation for both parties,
the Beaver product with its truncation fused, the compare's xor/shift step, a sum over the batch),
and the comparison's whole bit-slicing routine fused into one jitted function (which the library
uses from 65,536 words on, where it measured at par or faster). Then the whole secure DCGAN step
(online, both parties), interleaved, outputs compared bit for bit: (1) the library's default
(numpy element-wise ops) vs ``ring.set_local_backend("jax")`` (the jitted drop-ins of
`egan_jax.mpc.elementwise`; ``secure_step``); (2) bit slicing all in numpy vs the library's JAX from 65,536 words on
(``secure_step_bit_slicing``).

Run: ``PYTHONPATH=. .venv/bin/python -m bench.bench_ring_ops [--quick]``; writes
bench/results/mpc_ring_ops.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from bench.common import write_result

SIZES = {  # elements, and what in the secure DCGAN step has that size
    "32": ((32,), "D logits / batch-norm statistics"),
    "2048": ((4, 4, 8, 16), "a D conv kernel"),
    "8192": ((16, 4, 4, 32), "G dense output / a kernel"),
    "32768": ((16, 16, 16, 8), "G up-sampler output"),
    "65536": ((32, 16, 16, 8), "D first conv output (real + fake)"),
}
_SHIFT = 16
_MASK = 0x00AA00AA00AA00AA


def _trunc0(x, xp):
    return (x.view(xp.int64) >> xp.int64(_SHIFT)).view(xp.uint64)


def _trunc1(x, xp):
    minus = (xp.zeros_like(x) - x).view(xp.int64) >> xp.int64(_SHIFT)
    return xp.zeros_like(x) - minus.view(xp.uint64)


def _swap(x, xp):
    t = (x ^ (x >> xp.uint64(7))) & xp.uint64(_MASK)
    return x ^ t ^ (t << xp.uint64(7))


def _sum(x, xp):
    return xp.sum(x.reshape(x.shape[0], -1), axis=0, dtype=xp.uint64)


OPS = {  # name: (number of inputs, fn(xp, *inputs))
    "add": (2, lambda xp, x, y: x + y),
    "sub": (2, lambda xp, x, y: x - y),
    "neg": (1, lambda xp, x: xp.zeros_like(x) - x),
    "mul": (2, lambda xp, x, y: x * y),
    "mul_scalar": (1, lambda xp, x: x * xp.uint64(3 << 16)),
    "truncate_party0": (1, lambda xp, x: _trunc0(x, xp)),
    "truncate_party1": (1, lambda xp, x: _trunc1(x, xp)),
    "beaver_combine": (5, lambda xp, c, d, y, a, e: c + d * y + a * e),
    "beaver_combine_truncate": (5, lambda xp, c, d, y, a, e: _trunc1(c + d * y + a * e, xp)),
    "compare_xor_shift": (1, lambda xp, x: _swap(x, xp)),
    "sum_batch": (1, lambda xp, x: _sum(x, xp)),
}


def _loop_seconds(fn, budget: float = 0.02) -> float:
    """Seconds per call: calls fn in a loop for about ``budget`` seconds."""
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return elapsed / n


def measure(name: str, shape: tuple[int, ...], repeats: int) -> dict:
    arity, fn = OPS[name]
    rng = np.random.default_rng(0)
    xs = [rng.integers(0, 2**64, size=shape, dtype=np.uint64) for _ in range(arity)]
    expected = fn(np, *xs)
    with jax.enable_x64(True):
        jitted = jax.jit(lambda *a: fn(jnp, *a))
        resident = [jnp.asarray(x) for x in xs]
        got = np.asarray(jitted(*resident))
        if got.dtype != np.uint64 or not np.array_equal(got, expected):
            raise AssertionError(f"{name}: jitted JAX differs from numpy")
        times = {"numpy": [], "jax_resident": [], "jax_from_numpy": []}
        for _ in range(repeats):
            times["numpy"].append(_loop_seconds(lambda: fn(np, *xs)))
            times["jax_resident"].append(
                _loop_seconds(lambda: jitted(*resident).block_until_ready())
            )
            times["jax_from_numpy"].append(
                _loop_seconds(lambda: np.asarray(jitted(*(jnp.asarray(x) for x in xs))))
            )
    best = {k: 1e6 * min(v) for k, v in times.items()}
    return {
        "numpy_us": best["numpy"],
        "jax_resident_us": best["jax_resident"],
        "jax_from_numpy_us": best["jax_from_numpy"],
        "jax_resident_over_numpy": best["jax_resident"] / best["numpy"],
        "jax_from_numpy_over_numpy": best["jax_from_numpy"] / best["numpy"],
    }


def x64_context_us(repeats: int) -> float:
    def enter():
        with jax.enable_x64(True):
            pass

    return 1e6 * min(_loop_seconds(enter) for _ in range(repeats))


# ---- the comparison's bit slicing (compare._bit_slices), the largest element-wise routine -------


BIT_SLICE_WORDS = (32, 2048, 8192, 16384, 32768, 65536, 98304, 131072)  # sizes in the step


def measure_bit_slices(words: tuple[int, ...], repeats: int) -> dict:
    """compare._bit_slices in numpy vs as one jitted JAX function (numpy in, numpy out, padding
    included in both); compare._bit_slices picks JAX from compare.JAX_SLICING_MIN_WORDS on."""
    from egan_jax.mpc.compare import JAX_SLICING_MIN_WORDS, _bit_slices_jax, _bit_slices_numpy

    def padded(x):
        out = np.zeros(-(-x.size // 64) * 64, dtype="<u8")
        out[: x.size] = x
        return out

    rows = {}
    with jax.enable_x64(True):
        for n in words:
            x = np.random.default_rng(1).integers(0, 2**64, size=n, dtype=np.uint64)

            def via_numpy(x=x):
                return _bit_slices_numpy(padded(x))

            def via_jax(x=x):
                return np.array(_bit_slices_jax(jnp.asarray(padded(x))))

            if not np.array_equal(via_jax(), via_numpy()):
                raise AssertionError("jitted bit slicing differs from numpy")
            times = {"numpy": [], "jax": []}
            for _ in range(repeats):
                times["numpy"].append(_loop_seconds(via_numpy))
                times["jax"].append(_loop_seconds(via_jax))
            best = {k: 1e6 * min(v) for k, v in times.items()}
            rows[str(n)] = {
                "numpy_us": best["numpy"],
                "jax_from_numpy_us": best["jax"],
                "jax_from_numpy_over_numpy": best["jax"] / best["numpy"],
                "library_uses": "jax" if n >= JAX_SLICING_MIN_WORDS else "numpy",
            }
    return rows


# ---- the whole secure step with ring.py's element-wise functions ported to jitted JAX -----------


def _ab_step(quick: bool, repeats: int, use) -> dict:
    """One secure DCGAN training step (bench_mpc's set-up: online, both parties, dealer plan
    precomputed) under ``use("numpy")`` and ``use("jax")``, interleaved; min seconds of each, and
    whether the two variants' outputs (the new state shares) are bit-identical."""
    from bench.bench_mpc import secure_step_inputs
    from egan_jax.lpgan import train as T
    from egan_jax.mpc.dealer import Dealer
    from egan_jax.mpc.protocols import run_two_party

    setup = secure_step_inputs(quick)
    config = setup["config"]
    model = config.model
    (s0, *a0), (s1, *a1) = setup["party_args"]

    def step(party, st, *xs):
        return T.secure_train_step(party, config, st, *xs)

    plan, outputs, seconds = None, {}, {"numpy": [], "jax": []}
    try:
        for variant in ("numpy", "jax"):  # warm-up: compiles, records the dealer plan
            use(variant)
            warm = Dealer(3)
            outputs[variant] = run_two_party(step, (s0, *a0), (s1, *a1), dealer=warm).outputs
            plan = list(warm.plan)
        for _ in range(repeats):
            for variant in ("numpy", "jax"):
                use(variant)
                dealer = Dealer(3)
                dealer.precompute(plan)
                seconds[variant].append(
                    run_two_party(step, (s0, *a0), (s1, *a1), dealer=dealer).seconds
                )
    finally:
        use("numpy")
    leaves = [jax.tree.leaves(outputs[v]) for v in ("numpy", "jax")]
    identical = all(
        np.array_equal(np.asarray(p), np.asarray(q)) for p, q in zip(*leaves, strict=True)
    )
    return {
        "model": {"width": model.width, "image_size": model.image_size, "batch": config.batch_size},
        "online_s_numpy": min(seconds["numpy"]),
        "online_s_jax": min(seconds["jax"]),
        "jax_over_numpy": min(seconds["jax"]) / min(seconds["numpy"]),
        "median_jax_over_numpy": float(np.median(seconds["jax"]) / np.median(seconds["numpy"])),
        "all_seconds": seconds,
        "outputs_bit_identical": identical,
    }


def secure_step_port(quick: bool, repeats: int) -> dict:
    """The step with the library's default numpy element-wise ring ops vs with
    ``ring.set_local_backend("jax")`` (every element-wise op of `ring` and the element-wise Beaver
    product as the jitted drop-ins of `egan_jax.mpc.elementwise`, numpy in and out: the channel sends
    numpy bytes). The protocols' remaining inline numpy + and - stay numpy."""
    from egan_jax.mpc import ring

    result = _ab_step(quick, repeats, ring.set_local_backend)
    ported = ["add", "sub", "neg", "mul", "mul_int", "add_public", "truncate", "share/reconstruct"]
    return {**result, "ported": sorted([*ported, "Beaver element-wise product and combination"])}


def secure_step_bit_slicing(quick: bool, repeats: int) -> dict:
    """The step with the comparison's bit slicing all in numpy ("numpy", as before the port) vs
    the library (jitted JAX from compare.JAX_SLICING_MIN_WORDS words on: "jax")."""
    from egan_jax.mpc import compare

    threshold = compare.JAX_SLICING_MIN_WORDS

    def use(variant: str) -> None:
        compare.JAX_SLICING_MIN_WORDS = threshold if variant == "jax" else 2**62

    return {**_ab_step(quick, repeats, use), "jax_from_words": threshold}


def run(quick: bool) -> dict:
    repeats = 3 if quick else 7
    sizes = {k: v for k, v in SIZES.items() if not quick or k in ("32", "8192")}
    ops = {}
    for name in OPS:
        ops[name] = {}
        for label, (shape, _) in sizes.items():
            ops[name][label] = measure(name, shape, repeats)
    bit_slices = measure_bit_slices(BIT_SLICE_WORDS[:3] if quick else BIT_SLICE_WORDS, repeats)
    step = secure_step_port(quick, 2 if quick else 10)
    slicing_step = secure_step_bit_slicing(quick, 2 if quick else 10)
    faster = {
        name: [s for s, r in rows.items() if r["jax_from_numpy_over_numpy"] < 1]
        for name, rows in ops.items()
    }
    result = {
        "quick": quick,
        "load_average_1_5_15_end": list(os.getloadavg()),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "sizes": {k: {"shape": list(s), "where": w} for k, (s, w) in sizes.items()},
        "x64_context_enter_exit_us": x64_context_us(repeats),
        "ops": ops,
        "bit_slices_fused": bit_slices,
        "secure_step": step,
        "secure_step_bit_slicing": slicing_step,
        "sizes_where_jax_from_numpy_is_faster": faster,
    }
    write_result("mpc_ring_ops_quick" if quick else "mpc_ring_ops", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print("load at start", os.getloadavg())
    result = run(args.quick)
    for name, rows in result["ops"].items():
        print(
            name,
            {
                s: (
                    round(r["numpy_us"], 1),
                    round(r["jax_resident_us"], 1),
                    round(r["jax_from_numpy_us"], 1),
                )
                for s, r in rows.items()
            },
        )
    print(json.dumps({"x64_context_us": result["x64_context_enter_exit_us"]}))
    for key in ("secure_step", "secure_step_bit_slicing"):
        print(key, json.dumps({k: v for k, v in result[key].items() if k != "all_seconds"}))
