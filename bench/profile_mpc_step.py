"""Where the secure DCGAN step's time goes: a sampling profile (py-spy) of both party threads.

Runs bench_mpc's secure training step (width 8, 32 px, batch 16; both parties in two threads of this
process, in-process channel, dealer plan precomputed) once to compile, then ``--steps`` times while
py-spy (started by this script on its own process id, so compilation is not sampled) records the
stacks. Each sample of a party thread is put in one class by its frames:

- ``bilinear``: inside ``ring._bilinear`` (the jitted JAX matmul / convolutions);
- ``channel``: inside egan_jax/mpc/channel.py (framing, copies, handing messages over);
- ``dealer``: taking precomputed correlated randomness;
- ``elementwise``: everything else in the protocols: the numpy element-wise ring arithmetic and the
  Python around it (the part a JAX port of the element-wise ops could change).

py-spy leaves out idle samples (a thread blocked waiting for its peer), so the shares are of the
threads' busy time. Needs py-spy in the venv. Run:
``PYTHONPATH=. .venv/bin/python -m bench.profile_mpc_step [--steps 10]``; writes
bench/results/mpc_step_profile.json.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import write_result

CLASSES = (
    ("bilinear", "_bilinear (egan_jax/mpc/ring.py"),
    ("channel", "egan_jax/mpc/channel.py"),
    ("dealer", "egan_jax/mpc/dealer.py"),
)
_PARTY_FRAME = "body (egan_jax/mpc/protocols.py"


def classify(raw: str) -> dict:
    """py-spy raw (collapsed) stacks -> samples per class, and the busiest element-wise lines."""
    counts, lines = collections.Counter(), collections.Counter()
    for line in raw.splitlines():
        if not line.strip():
            continue
        stack, n = line.rsplit(" ", 1)
        frames = stack.split(";")
        if not any(_PARTY_FRAME in f for f in frames):
            continue  # the main thread, waiting for the parties
        name = next((c for c, mark in CLASSES if any(mark in f for f in frames)), "elementwise")
        counts[name] += int(n)
        if name == "elementwise":
            own = [f for f in frames if "egan_jax/" in f]
            lines[own[-1] if own else frames[-1]] += int(n)
    total = sum(counts.values())
    return {
        "party_thread_samples": total,
        "share": {
            k: counts[k] / max(total, 1) for k in ("bilinear", "channel", "dealer", "elementwise")
        },
        "elementwise_top_lines": dict(lines.most_common(10)),
    }


def main(steps: int, rate: int) -> dict:
    from bench.bench_mpc import _share_all
    from egan_jax.lpgan import train as T
    from egan_jax.lpgan.model import ModelConfig
    from egan_jax.mpc import ring
    from egan_jax.mpc.dealer import Dealer
    from egan_jax.mpc.protocols import run_two_party

    config = T.LpganConfig(model=ModelConfig(), batch_size=16)
    params = T.initial_params(config)
    real = np.tanh(np.random.default_rng(0).normal(size=(16, 32, 32, 1)))
    z_d, z_g = T.latents(config, 0)
    s0, s1 = T.share_state(T.encode_state(config, params), ring.Prg(5, domain=b"owner"))
    a0, a1 = _share_all([real, z_d, z_g], 6)

    def step(party, st, *xs):
        return T.secure_train_step(party, config, st, *xs)

    warm = Dealer(3)
    run_two_party(step, (s0, *a0), (s1, *a1), dealer=warm)
    dealers = []
    for _ in range(steps):
        dealers.append(Dealer(3))
        dealers[-1].precompute(list(warm.plan))
    spy = Path(sys.executable).with_name("py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stacks.raw"
        command = [str(spy), "record", "--pid", str(os.getpid()), "-r", str(rate), "-f", "raw"]
        proc = subprocess.Popen([*command, "-o", str(out)], stderr=subprocess.PIPE)
        time.sleep(2.0)  # py-spy attaches
        seconds = [run_two_party(step, (s0, *a0), (s1, *a1), dealer=d).seconds for d in dealers]
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        proc.wait(timeout=60)
        raw = out.read_text() if out.exists() else ""
    if not raw:
        raise RuntimeError(f"py-spy wrote no samples (is ptrace allowed?): {proc.stderr.read()!r}")
    return {
        "load_average_1_5_15": list(os.getloadavg()),
        "steps": steps,
        "sample_rate_hz": rate,
        "online_s": seconds,
        **classify(raw),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    args = parser.parse_args()
    result = main(args.steps, args.rate)
    write_result("mpc_step_profile", result)
    print({k: v for k, v in result.items() if k != "elementwise_top_lines"})
