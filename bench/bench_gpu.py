"""The GPU checks of issues #3, #4 and #5, run on a lent GPU in one process, JAX beside PyTorch.

- determinism (#4): the digits DCGAN trained in three processes (two straight, one stopped and
  resumed) must give bit-identical parameters on this backend;
- transforms (#3): the Kiya pipeline (shuffle → NP → FFX, M = 4) and its inverse at 256×32×32×3
  and 64×128×128×3, every formulation of bench/bench_transforms.py, against a device copy of the
  same array (the bandwidth bound; goal there: the library ≥ 50% of the copy's throughput) and one
  DCGAN train step on the same batch;
- dcgan (#4): the DCGAN train step (batch 64 and 256, width 64, 32 px), JAX with the custom-VJP
  up-sampler and with stock ConvTranspose, and the same network in PyTorch on the same GPU
  (bench/torch_dcgan.py --device cuda); steps/s and images/s;
- sr_cycle (#5): SRGAN (batch 16, 24→96) and CycleGAN (batch 1, 128 px) train steps, JAX vs PyTorch
  on the same GPU (bench/torch_sr_cycle.py --device cuda).

Each part writes its JSON as soon as it finishes (gpu_<part>.json under --out, default
bench/results), so a run cut short keeps what it measured. JAX and PyTorch are timed in interleaved
rounds (min of N after warm-up); every JAX step blocks on its result, every PyTorch step reads its
loss back. Run: `python -m bench.bench_gpu [--parts transforms,dcgan,sr_cycle] [--out DIR]`.
On a CPU-only machine it runs too (`--torch-device cpu`), which is how its code is checked here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

from bench import bench_dcgan, bench_sr_cycle, bench_transforms
from bench.common import machine_info, run_json, time_min

HERE = Path(__file__).resolve().parent
PARTS = ("determinism", "transforms", "dcgan", "sr_cycle")


def torch_json(script: str, args: list[str], *, python: str, device: str) -> dict:
    return run_json([python, str(HERE / script), *args, "--device", device])


def write(out: Path, name: str, result: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"gpu_{name}.json"
    path.write_text(json.dumps({"machine": machine_info(), **result}, indent=2) + "\n")
    print(f"wrote {path}", flush=True)


def part_determinism(steps: int = 30) -> dict:
    """Three trainings of the digits DCGAN in separate processes: two straight, one resumed."""
    runs, root = {}, Path(tempfile.mkdtemp(prefix="egan_determinism_"))
    for name, extra in (("a", []), ("b", []), ("resumed", [f"--resume-at={steps // 2}"])):
        command = [sys.executable, "-m", "bench.gpu_determinism", f"--steps={steps}", *extra]
        command.append(f"--workdir={root / name}")
        done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=HERE.parent)
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
    digests = {r["params_sha256"] for r in runs.values()}
    losses = {r["losses_sha256"] for r in runs.values()}
    result = {"bit_identical_params": len(digests) == 1, "identical_losses": len(losses) == 1}
    print(f"-- determinism: {json.dumps(result)}", flush=True)
    return {"benchmark": "determinism_gpu", "steps": steps, "runs": runs, **result}


def part_transforms(repeats: int) -> dict:
    shapes = {}
    for shape in bench_transforms.SHAPES:
        name = "x".join(map(str, shape))
        r = bench_transforms.bench_shape(shape, repeats=repeats, step_repeats=5, with_step=True)
        ms = r["ms"]
        library, copy = ms["forward/3_flat_gather_library"], ms["baseline/device_copy"]
        fastest = r["fastest_forward"]
        r["gpu_summary"] = {
            "library_forward_ms": library,
            "library_inverse_ms": ms["inverse/3_flat_gather_library"],
            "device_copy_ms": copy,
            # the GPU goal: throughput of the transform >= 50% of the copy's
            "library_forward_throughput_vs_copy": copy / library,
            "library_inverse_throughput_vs_copy": copy / ms["inverse/3_flat_gather_library"],
            "fastest_forward": fastest,
            "fastest_forward_throughput_vs_copy": copy / ms[fastest],
            "numpy_per_image_over_library": ms["baseline/numpy_per_image"] / library,
            "library_percent_of_dcgan_step": r["ratios"].get("library / dcgan_train_step (%)"),
            "all_exact": all(r["exact"].values()),
        }
        shapes[name] = r
        print(f"-- transforms {name}: {json.dumps(r['gpu_summary'])}", flush=True)
    return {"benchmark": "transforms_gpu", "config": bench_transforms.CONFIG, "shapes": shapes}


def part_dcgan(
    repeats: int, *, rounds: int, torch_python: str, torch_device: str, batches=(64, 256)
) -> dict:
    per_batch = {}
    for batch in batches:
        shape = dict(batch=batch, width=64, image_size=32, channels=3)
        steps = {
            f"jax_{u}": bench_dcgan.make_jax_step(upsample=u, **shape)
            for u in ("vjp", "conv_transpose")
        }
        best = dict.fromkeys([*steps, "torch"], float("inf"))
        torch_args = [f"--{k.replace('_', '-')}={v}" for k, v in shape.items()]
        torch_args += [f"--repeats={repeats}", "--warmup=5"]
        for _ in range(rounds):
            for name, step in steps.items():
                best[name] = min(best[name], time_min(step, repeats=repeats, warmup=3))
            info = torch_json(
                "torch_dcgan.py", torch_args, python=torch_python, device=torch_device
            )
            best["torch"] = min(best["torch"], info["step_s"])
        per_batch[str(batch)] = {
            "step_s": best,
            "images_per_s": {k: batch / v for k, v in best.items()},
            "ratio_jax_vjp_over_torch": best["torch"] / best["jax_vjp"],
            "ratio_jax_conv_transpose_over_torch": best["torch"] / best["jax_conv_transpose"],
            "torch": {"version": info["torch"], "device": info["device"]},
        }
        print(f"-- dcgan batch {batch}: {json.dumps(per_batch[str(batch)])}", flush=True)
    return {
        "benchmark": "dcgan_step_gpu",
        "config": "width 64, 32 px, 3 channels, hinge, Adam 2e-4 (0.5, 0.999); min of N",
        "target_jax_over_torch": 1.2,
        "batches": per_batch,
    }


def part_sr_cycle(
    repeats: int, *, rounds: int, torch_python: str, torch_device: str, cases=None
) -> dict:
    summary = {}
    for name, case in bench_sr_cycle.CASES.items():
        if cases and name not in cases:
            continue
        step = bench_sr_cycle.make_jax_step(name)
        best = {"jax": float("inf"), "torch": float("inf")}
        args = [*case["torch"], f"--repeats={repeats}", "--warmup=5"]
        for _ in range(rounds):
            best["jax"] = min(best["jax"], time_min(step, repeats=repeats, warmup=3))
            info = torch_json("torch_sr_cycle.py", args, python=torch_python, device=torch_device)
            best["torch"] = min(best["torch"], info["step_s"])
        batch = case["batch"][next(iter(case["batch"]))][0]
        summary[name] = {
            "step_s": best,
            "images_per_s": {k: batch / v for k, v in best.items()},
            "ratio_jax_over_torch": best["torch"] / best["jax"],
            "torch": {"version": info["torch"], "device": info["device"]},
        }
        print(f"-- {name}: {json.dumps(summary[name])}", flush=True)
    return {"benchmark": "sr_cycle_step_gpu", "target_jax_over_torch": 1.2, "summary": summary}


def torch_cuda_python() -> str | None:
    """A Python whose torch sees a CUDA GPU: $EGAN_BENCH_TORCH_PYTHON, else this one; None if not."""
    python = os.environ.get("EGAN_BENCH_TORCH_PYTHON", sys.executable)
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    try:
        ok = subprocess.run([python, "-c", probe], capture_output=True).returncode == 0
    except OSError:
        ok = False
    return python if ok else None


def run(quick: bool = False) -> dict:
    """`make bench`'s entry: every part on a GPU (JAX-only parts without a CUDA torch); on a
    machine without a GPU, nothing (the CPU benchmarks cover it)."""
    if jax.default_backend() not in ("gpu", "cuda", "rocm"):
        return {"summary": {"skipped": f"no GPU (JAX backend {jax.default_backend()!r})"}}
    python = torch_cuda_python()
    parts = PARTS if python else ("determinism", "transforms")
    repeats, rounds = (5, 1) if quick else (20, 2)
    summary = {"parts": list(parts)}
    if python is None:
        summary["torch"] = "no torch with CUDA: set EGAN_BENCH_TORCH_PYTHON for the PyTorch parts"
    torch_kw = dict(rounds=rounds, torch_python=python, torch_device="cuda")
    run_parts(parts, HERE / "results", repeats=repeats, torch_kw=torch_kw)
    return {"summary": summary}


def run_parts(parts, out: Path, *, repeats: int, torch_kw: dict, cases=None, batches=(64, 256)):
    """Run each part in turn, writing its JSON (with wall time and XLA_FLAGS) as it finishes."""
    for part in parts:
        start = time.perf_counter()
        if part == "determinism":
            result = part_determinism()
        elif part == "transforms":
            result = part_transforms(repeats)
        elif part == "dcgan":
            result = part_dcgan(repeats, batches=batches, **torch_kw)
        else:
            result = part_sr_cycle(max(3, repeats // 4), cases=cases, **torch_kw)
        result["wall_s"] = time.perf_counter() - start
        result["xla_flags"] = os.environ.get("XLA_FLAGS", "")
        write(out, part, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated of {PARTS}")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--torch-device", default="cuda")
    parser.add_argument("--sr-cases", default="srgan,cyclegan")
    parser.add_argument("--dcgan-batches", default="64,256")
    args = parser.parse_args()
    parts = args.parts.split(",")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {PARTS}")
    print(f"devices: {jax.devices()}", flush=True)
    torch_kw = dict(
        rounds=args.rounds, torch_python=args.torch_python, torch_device=args.torch_device
    )
    run_parts(
        parts,
        args.out,
        repeats=args.repeats,
        torch_kw=torch_kw,
        cases=args.sr_cases.split(","),
        batches=tuple(int(b) for b in args.dcgan_batches.split(",")),
    )


if __name__ == "__main__":
    main()
