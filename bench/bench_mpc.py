"""Two-party protocol costs (egan_jax.mpc) beside the plaintext op, on the same machine, in one run.

Per protocol: online time (both parties in two threads of this process, in-process channel, so no
network latency: rounds are reported separately), bytes each party sends (frame bytes), rounds,
offline (dealer) time and bytes per party, the plaintext op's time (jitted float32 JAX), and the
largest error of the reconstructed result against float64 plaintext on the inputs rounded to the
fixed-point grid (the protocol's own error, without the input quantisation). The offline phase runs
ahead of the timed online run, from the plan recorded in a warm-up run. Timing: min over repeats.
Run: `.venv/bin/python -m bench.bench_mpc [--quick]`; writes bench/results/mpc.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from bench.common import time_min, write_result
from egan_jax.mpc import arith, compare, nonlinear, ring
from egan_jax.mpc.dealer import Dealer
from egan_jax.mpc.protocols import run_two_party

DN = ("NHWC", "HWIO", "NHWC")


def _bn_plain(x):
    mean = x.mean(axis=(0, 1, 2), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 1, 2), keepdims=True)
    return (x - mean) * lax.rsqrt(var + 1e-5)


def _up_plain(x, w):
    def strided(u):
        return lax.conv_general_dilated(u, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=DN)

    shape = (x.shape[0], 2 * x.shape[1], 2 * x.shape[2], w.shape[2])
    return jax.vjp(strided, jnp.zeros(shape, x.dtype))[1](x)[0]


def _cases(quick: bool) -> dict:
    rng = np.random.default_rng(0)
    rows, cols = (16, 256) if quick else (64, 1024)
    act = rng.normal(size=(rows, cols)) * 3
    pos = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), (rows, cols)))
    b, hw, cin, cout = (8, 8, 8, 16) if quick else (64, 16, 32, 64)
    image = rng.normal(size=(b, hw, hw, cin))
    kernel = rng.normal(size=(4, 4, cin, cout)) / np.sqrt(16 * cin)
    small = rng.normal(size=(b, hw // 2, hw // 2, cout))
    up_kernel = rng.normal(size=(4, 4, cin, cout)) / np.sqrt(16 * cout)
    bn_in = rng.normal(size=(b, hw // 2, hw // 2, cin)) * 2 + 0.5
    return {
        "mul": (arith.mul, (act, act[::-1]), lambda x, y: x * y),
        "relu": (lambda p, x: compare.relu(p, x)[0], (act,), jax.nn.relu),
        "sigmoid": (nonlinear.sigmoid, (act,), jax.nn.sigmoid),
        "tanh": (nonlinear.tanh, (act,), jnp.tanh),
        "inv_sqrt": (nonlinear.inv_sqrt, (pos,), lax.rsqrt),
        "batch_norm_normalize": (
            lambda p, x: nonlinear.batch_norm_normalize(p, x)[0],
            (bn_in,),
            _bn_plain,
        ),
        "conv2d_k4s2": (
            lambda p, x, w: arith.conv2d(p, x, w, stride=(2, 2), padding=((1, 1), (1, 1))),
            (image, kernel),
            lambda x, w: lax.conv_general_dilated(
                x, w, (2, 2), ((1, 1), (1, 1)), dimension_numbers=DN
            ),
        ),
        "conv_transpose2d_k4s2": (arith.conv_transpose2d, (small, up_kernel), _up_plain),
    }


def _measure(fn, inputs, plain, repeats: int) -> dict:
    prg = ring.Prg(1, domain=b"owner")
    shares = [ring.share(ring.encode(v), prg) for v in inputs]
    args0, args1 = tuple(s[0] for s in shares), tuple(s[1] for s in shares)
    warm = Dealer(2)
    first = run_two_party(fn, args0, args1, dealer=warm)  # compiles, records the dealer plan
    got = ring.decode(ring.reconstruct(*first.outputs))
    rounded = [ring.decode(ring.encode(v)) for v in inputs]  # what the parties compute on
    with jax.enable_x64(True):
        expected = np.asarray(jax.jit(plain)(*(jnp.asarray(v) for v in rounded)))
    online, offline, run = [], [], first
    for _ in range(repeats):
        dealer = Dealer(2)
        start = time.perf_counter()
        dealer.precompute(list(warm.plan))
        offline.append(time.perf_counter() - start)
        run = run_two_party(fn, args0, args1, dealer=dealer)
        online.append(run.seconds)
    plain32 = jax.jit(plain)
    inputs32 = [jnp.asarray(v, jnp.float32) for v in inputs]
    plain_s = time_min(lambda: plain32(*inputs32).block_until_ready(), repeats=max(repeats, 3))
    elements = int(np.size(got))
    sent = [c.bytes_sent for c in run.channel]
    return {
        "output_shape": list(np.shape(got)),
        "online_s": min(online),
        "offline_s": min(offline),
        "plaintext_s": plain_s,
        "online_over_plaintext": min(online) / plain_s,
        "bytes_sent_per_party": sent,
        "bytes_per_output_element_per_party": max(sent) / elements,
        "rounds": max(c.rounds for c in run.channel),
        "offline_bytes_per_party": list(warm.stats.bytes_to_party),
        "dealer_items": dict(warm.stats.by_kind),
        "max_abs_error_vs_float64_on_fixed_point_inputs": float(np.max(np.abs(got - expected))),
    }


def run(quick: bool = False) -> dict:
    repeats = 2 if quick else 5
    protocols = {}
    for name, (fn, inputs, plain) in _cases(quick).items():
        protocols[name] = {
            "input_shapes": [list(v.shape) for v in inputs],
            **_measure(fn, inputs, plain, repeats),
        }
    result = {
        "quick": quick,
        "frac_bits": ring.FRAC_BITS,
        "setting": "both parties in one process (two threads), in-process channel, trusted dealer",
        "load_average_1_5_15": list(os.getloadavg()),
        "protocols": protocols,
        "summary": {
            name: {
                "online_ms": round(1e3 * r["online_s"], 2),
                "plaintext_ms": round(1e3 * r["plaintext_s"], 3),
                "bytes_per_elem": round(r["bytes_per_output_element_per_party"], 1),
                "rounds": r["rounds"],
                "offline_ms": round(1e3 * r["offline_s"], 2),
            }
            for name, r in protocols.items()
        },
    }
    write_result("mpc_quick" if quick else "mpc", result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(parser.parse_args().quick)["summary"], indent=2))
