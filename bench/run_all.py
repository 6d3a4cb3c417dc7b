"""`make bench`: run every benchmark module's ``run(quick)``; each writes JSON under bench/results/."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback

BENCHMARKS = (
    "bench.bench_transforms",
    "bench.bench_dcgan",
    "bench.bench_encryip",
    "bench.bench_mpc",
    "bench.bench_ring_ops",
    "bench.bench_classifier",
    "bench.bench_egan",
    "bench.bench_sr_cycle",
    "bench.bench_egan_i2i",
    "bench.bench_transforms_cnn",
    "bench.bench_gpu",  # skipped without a GPU
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    parser.add_argument("--only", nargs="*", default=None, help="module names to run")
    args = parser.parse_args(argv)
    failed = []
    for name in BENCHMARKS:
        if args.only and name.split(".")[-1] not in args.only and name not in args.only:
            continue
        print(f"== {name}", flush=True)
        try:
            result = importlib.import_module(name).run(quick=args.quick)
            print(json.dumps(result.get("summary", {}), indent=2))
        except Exception:  # one broken benchmark must not hide the others' numbers
            traceback.print_exc()
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
