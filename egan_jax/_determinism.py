"""Bit-for-bit reproducible GPU runs: XLA's deterministic-ops flag, set before JAX starts a backend.

Measured on an H100 (bench/results/gpu_determinism*.json, `python -m bench.bench_gpu --parts
determinism`): without the flag, three 30-step trainings of the digits DCGAN with the same seed
ended with three different parameter sets (XLA:GPU's autotuning and atomic reductions are not
deterministic, and a GAN amplifies the difference). XLA reads `XLA_FLAGS` once, when the first
backend starts, so `import egan_jax` adds the flag to `XLA_FLAGS` (the CPU backend ignores it).
Opt out with `EGAN_JAX_GPU_NONDETERMINISTIC=1` for speed when bit-for-bit runs are not needed.
"""

from __future__ import annotations

import os

FLAG = "--xla_gpu_deterministic_ops=true"
OPT_OUT = "EGAN_JAX_GPU_NONDETERMINISTIC"


def request_deterministic_gpu_ops(environ=os.environ) -> bool:
    """Add FLAG to XLA_FLAGS unless opted out or already decided there; True if it is requested.

    A user's own `xla_gpu_deterministic_ops` setting in XLA_FLAGS is left as it is.
    """
    flags = environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" in flags:
        return "xla_gpu_deterministic_ops=false" not in flags
    if environ.get(OPT_OUT, "") not in ("", "0"):
        return False
    environ["XLA_FLAGS"] = f"{flags} {FLAG}".strip()
    return True
