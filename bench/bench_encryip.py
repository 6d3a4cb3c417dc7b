"""EncryIP CS-lite costs in the RFC 3526 2048-bit group: Enc / Dec / Fake per second, codebook
build and decryption times, and the owner's tracing preparation.

Everything runs on the active big-integer backend (``gmpy2`` when installed, else Python's ``pow``);
the result file is ``bench/results/encryip.json`` for the Python backend and
``encryip_gmpy2.json`` for gmpy2, so the two can be compared. Plain and fixed-base (precomputed)
encryption are timed side by side in one run. Timing: min of N after warm-up (bench/common.py).
Run: `.venv/bin/python -m bench.bench_encryip [--quick]`.
"""

from __future__ import annotations

import json
import random
import time

import numpy as np

from bench.common import quick_flag, time_min, write_result
from egan_jax.encryip import codebook, cslite
from egan_jax.encryip.group import BACKEND, RFC3526_2048

NUM_CLASSES = 10


def _cpu_min(fn, repeats: int) -> float:
    """Min process CPU time of ``fn()``: single-threaded big-integer work is measured this way too,
    because wall time on a shared machine counts other processes' load."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _once(fn):
    """``(wall seconds, {"wall_s", "cpu_s"}, value)`` of one call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    value = fn()
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return wall, {"wall_s": wall, "cpu_s": cpu}, value


def _class_head_cost(repeats: int, batch: int = 256, size: int = 1032) -> dict:
    """The read-out alone, jitted: softmax over K logits (plain model) against
    :func:`codebook.class_probabilities` over N = 1032 (K=10, m=100, 32 Fakes) logits. The N-way
    last layer itself belongs to the model and is measured with it (learning part)."""
    import functools

    import jax
    import jax.numpy as jnp

    logits_k = jax.random.normal(jax.random.key(0), (batch, NUM_CLASSES))
    logits_n = jax.random.normal(jax.random.key(1), (batch, size))
    index_to_class = jnp.arange(size, dtype=jnp.int32) % NUM_CLASSES
    plain = jax.jit(lambda x: jax.nn.softmax(x, axis=-1))
    protected = jax.jit(functools.partial(codebook.class_probabilities, num_classes=NUM_CLASSES))
    plain_s = time_min(lambda: plain(logits_k).block_until_ready(), repeats=repeats * 3)
    protected_s = time_min(
        lambda: protected(logits_n, index_to_class).block_until_ready(), repeats=repeats * 3
    )
    return {
        "batch": batch,
        "codebook_size": size,
        "plain_softmax_s": plain_s,
        "class_probabilities_s": protected_s,
    }


def _inference_cost(repeats: int, batch: int = 256, per_class: int = 10, fakes: int = 28) -> dict:
    """Whole inference after the codebook is decrypted, on the digits CNN (width 32, 32x32 grey):
    ``plain`` — K-way head, argmax; ``n_way`` — the same CNN with an N-way head, argmax over N (no
    decoding); ``protected`` — N-way head, the decoded read-out
    (:func:`codebook.class_probabilities`), argmax over K. Each is a ``jax.jit`` of the split model;
    timed interleaved (A, B, C, A, B, C, ...), min of each, by wall clock and by process CPU time
    (the latter is less disturbed by other processes on a shared machine)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from egan_jax.models.classifiers import build_classifier

    size = NUM_CLASSES * per_class + fakes

    def split(outputs: int):
        net = build_classifier(
            "cnn", num_classes=outputs, image_size=32, channels=1, width=32, rngs=nnx.Rngs(0)
        )
        net.eval()
        return nnx.split(net)

    (plain_def, plain_state), (n_def, n_state) = split(NUM_CLASSES), split(size)
    index_to_class = jnp.asarray(
        np.random.default_rng(0).integers(0, NUM_CLASSES, size), dtype=jnp.int32
    )
    images = jax.random.uniform(jax.random.key(2), (batch, 32, 32, 1), minval=-1.0, maxval=1.0)
    argmax_plain = jax.jit(lambda s, x: jnp.argmax(nnx.merge(plain_def, s)(x), axis=-1))
    argmax_n = jax.jit(lambda s, x: jnp.argmax(nnx.merge(n_def, s)(x), axis=-1))
    decoded = jax.jit(
        lambda s, x, m: jnp.argmax(
            codebook.class_probabilities(nnx.merge(n_def, s)(x), m, NUM_CLASSES), axis=-1
        )
    )
    runs = {
        "plain": lambda: argmax_plain(plain_state, images).block_until_ready(),
        "n_way": lambda: argmax_n(n_state, images).block_until_ready(),
        "protected": lambda: decoded(n_state, images, index_to_class).block_until_ready(),
    }
    wall = {name: float("inf") for name in runs}
    cpu = dict(wall)
    for fn in runs.values():
        fn(), fn()
    for _ in range(repeats * 5):
        for name, fn in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name] = min(wall[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)

    def extra(times: dict, over: str) -> float:
        return 100.0 * (times["protected"] / times[over] - 1.0)

    return {
        "batch": batch,
        "codebook_size": size,
        "wall_s": wall,
        "cpu_s": cpu,
        "extra_percent_vs_plain_wall": extra(wall, "plain"),
        "extra_percent_vs_plain_cpu": extra(cpu, "plain"),
        "decode_extra_percent_vs_n_way_wall": extra(wall, "n_way"),
        "decode_extra_percent_vs_n_way_cpu": extra(cpu, "n_way"),
    }


def run(quick: bool = False) -> dict:
    group, rng = RFC3526_2048, random.Random(0)
    repeats = 3 if quick else 7
    _, keygen_s, owner = _once(lambda: cslite.keygen(group, rng=rng))
    pk = owner.public_key
    user = cslite.issue_key(owner, rng=rng)
    message = group.encode_class(3, NUM_CLASSES, rng)
    honest = cslite.encrypt(pk, message, rng=rng)
    _, table_s, encryptor = _once(lambda: cslite.Encryptor(pk))
    base, exponent = group.random_element(rng), group.random_scalar(rng)
    table = group.fixed_base(base)

    ops_to_time = {
        "exp": lambda: group.exp(base, exponent),
        "exp_fixed_base": lambda: table.exp(exponent),
        "enc_plain": lambda: cslite.encrypt(pk, message, rng=rng),
        "enc_precomputed": lambda: encryptor.encrypt(message, rng=rng),
        "enc_class_precomputed": lambda: encryptor.encrypt_class(3, NUM_CLASSES, rng=rng),
        "fake_plain": lambda: cslite.fake(owner, rng=rng),
        "fake_precomputed": lambda: encryptor.fake(owner, rng=rng),
        "dec": lambda: cslite.decrypt(user, honest),
        "membership_check": lambda: group.is_member(base),
    }
    times = {name: time_min(fn, repeats=repeats) for name, fn in ops_to_time.items()}
    cpu = {name: _cpu_min(fn, repeats) for name, fn in ops_to_time.items()}
    result = {
        "group": group.name,
        "backend": BACKEND,
        "keygen_s": keygen_s,
        "encryptor_tables_s": table_s,
        "seconds_per_op": times,
        "cpu_seconds_per_op": cpu,
        "ops_per_second": {name: 1.0 / seconds for name, seconds in times.items()},
        "ops_per_cpu_second": {name: 1.0 / seconds for name, seconds in cpu.items()},
    }

    builds = {}
    for per_class in (10,) if quick else (10, 100):
        _, timing, (book, _secret) = _once(
            lambda per_class=per_class: codebook.build_codebook(
                owner, NUM_CLASSES, per_class, rng=rng
            )
        )
        builds[f"K{NUM_CLASSES}_m{per_class}"] = {"entries": book.size, "build": timing}
        if per_class == 10:
            _, timing, _ = _once(lambda book=book: codebook.decrypt_codebook(book, user))
            builds[f"K{NUM_CLASSES}_m{per_class}"]["decrypt_one_user"] = timing
    result["codebook"] = builds

    if not quick:
        users = {f"user{i}": cslite.issue_key(owner, rng=rng) for i in range(20)}
        _, build, (book, secret) = _once(
            lambda: codebook.build_codebook(owner, NUM_CLASSES, 10, 32, rng=rng)
        )
        _, expected, _ = _once(lambda: codebook.fake_classes(owner, book, secret, users))
        result["tracing"] = {
            "codebook_K10_m10_F32_build": build,
            "fake_classes_20_users_32_fakes": expected,
        }

    result["class_head"] = _class_head_cost(repeats)
    # N = 128 (experiments/encryip_digits.py) and N = 132: XLA:CPU's cost jumps past 128 outputs
    result["inference"] = _inference_cost(repeats, fakes=28)
    result["inference_N132"] = _inference_cost(repeats, fakes=32)

    ops = result["ops_per_cpu_second"]
    result["summary"] = {
        "backend": BACKEND,
        "enc_per_cpu_s": round(ops["enc_precomputed"], 1),
        "enc_plain_per_cpu_s": round(ops["enc_plain"], 1),
        "dec_per_cpu_s": round(ops["dec"], 1),
        "fake_per_cpu_s": round(ops["fake_precomputed"], 1),
        "exp_ms_cpu": round(1e3 * cpu["exp"], 2),
        "fixed_base_speedup": round(cpu["exp"] / cpu["exp_fixed_base"], 2),
        **{f"build_{name}_cpu_s": round(v["build"]["cpu_s"], 2) for name, v in builds.items()},
        "decrypt_K10_m10_cpu_s": round(builds["K10_m10"]["decrypt_one_user"]["cpu_s"], 2),
        "inference_extra_percent_cpu_N128": round(
            result["inference"]["extra_percent_vs_plain_cpu"], 2
        ),
        "inference_extra_percent_cpu_N132": round(
            result["inference_N132"]["extra_percent_vs_plain_cpu"], 2
        ),
        "decode_extra_percent_cpu": round(
            result["inference"]["decode_extra_percent_vs_n_way_cpu"], 2
        ),
    }
    write_result("encryip" if BACKEND == "python" else f"encryip_{BACKEND}", result)
    return result


def summary_lines(result: dict) -> list[str]:
    """The issue's numbers, one line each (per CPU second: wall time counts other processes)."""
    s = result["summary"]
    builds = ", ".join(
        f"{name.removeprefix('build_').removesuffix('_cpu_s')} {value:.2f} s"
        for name, value in s.items()
        if name.startswith("build_")
    )
    inference = result["inference"]
    return [
        f"EncryIP CS-lite in {result['group']} ({s['backend']} backend), per CPU second:",
        f"  Enc  {s['enc_per_cpu_s']:8.1f} /s  (fixed-base tables; {s['enc_plain_per_cpu_s']:.1f} /s "
        "without)",
        f"  Dec  {s['dec_per_cpu_s']:8.1f} /s",
        f"  Fake {s['fake_per_cpu_s']:8.1f} /s",
        f"  codebook build: {builds}; one user decrypts K10_m10 in "
        f"{s['decrypt_K10_m10_cpu_s']:.2f} s",
        f"  inference after decryption, protected (N={inference['codebook_size']}) vs plain, "
        f"batch {inference['batch']}: {s['inference_extra_percent_cpu_N128']:+.2f}% CPU time "
        f"(goal <= 2%); N=132: {s['inference_extra_percent_cpu_N132']:+.2f}%",
    ]


if __name__ == "__main__":
    outcome = run(quick=quick_flag(__doc__))
    print("\n".join(summary_lines(outcome)))
    print(json.dumps(outcome["summary"], indent=2))
