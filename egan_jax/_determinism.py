"""Bit-for-bit reproducible GPU runs: XLA's deterministic-ops flag, set before JAX starts a backend.

Measured with `python -m bench.bench_gpu --parts determinism`: without the flag, on an H100, three
30-step trainings of the digits DCGAN with the same seed ended with three different parameter sets
(bench/results/gpu_h100_determinism.json; XLA:GPU's autotuning and atomic reductions are its
documented sources of nondeterminism, and a GAN amplifies any difference); with it, on an H200, two
straight runs and one resumed ended bit-identical (gpu_h200_deterministic_determinism.json). XLA reads `XLA_FLAGS` once, when the first
backend starts, so `import egan_jax` adds the flag to `XLA_FLAGS` (the CPU backend ignores it).
Opt out with `EGAN_JAX_GPU_NONDETERMINISTIC=1` for speed when bit-for-bit runs are not needed.
"""

from __future__ import annotations

import os
import sys
import warnings

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
    if _gpu_backend_already_started():
        warnings.warn(
            "egan_jax was imported after JAX had started its GPU backend, so XLA will not see "
            f"{FLAG} and GPU runs may not be bit-reproducible: import egan_jax before running any "
            f"JAX code, or start Python with XLA_FLAGS={FLAG}.",
            stacklevel=3,
        )
    return True


def _gpu_backend_already_started() -> bool:
    """True if JAX is imported, its backends are up and the default one is a GPU (asks nothing of
    JAX otherwise, so importing egan_jax never starts a backend)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        if not xla_bridge.backends_are_initialized():
            return False
        return xla_bridge.default_backend() in ("gpu", "cuda", "rocm")
    except (ImportError, AttributeError):  # private API moved: say nothing rather than guess
        return False
