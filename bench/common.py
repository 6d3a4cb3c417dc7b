"""Shared benchmark helpers: timing (min of N after warm-up) and machine/version records."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def time_min(fn: Callable[[], object], *, repeats: int = 7, warmup: int = 2) -> float:
    """Minimum wall time of ``fn()`` in seconds; ``fn`` must block until its result is ready."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_json(command: list[str]) -> dict:
    """Run a benchmark subprocess (the PyTorch side) and parse the JSON object on its last line."""
    import subprocess

    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_info() -> dict:
    import jax
    import numpy as np

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine_info(), **result}, indent=2) + "\n")
    return path


def quick_flag(description: str) -> bool:
    """Parse a benchmark's command line whose only flag is ``--quick`` (fewer repeats and sizes)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    return parser.parse_args().quick
