"""The EGAN demo job: key, protected DCGAN on the bundled digits, evaluation, report.

`run(out, steps=..., quick=...)`:
1. creates the demo key (`egan_jax.demo.demo_key`: scrypt of a published passphrase, saved as
   `out/demo.key` with mode 0600 — reproducible, and for demonstration only);
2. trains the unprotected DCGAN baseline (`out/baseline`) and the EGAN-protected DCGAN
   (`out/protected`, `experiments/egan_dcgan_digits.py`) for `steps` steps each with the generic loop;
3. evaluates them (`egan_jax.evaluate.evaluate_workdir`): digits Fréchet distance with the correct
   key, no key (also the plain model), 10 random keys, near-miss keys and 6 near-miss materials,
   against the baseline, and the IPR-GAN watermarks the experiment trains in (logo SSIM, BER);
4. writes `out/report.md`, `out/report.json`, `out/grid.png` and prints the protection table.

`quick=True` shrinks everything (tiny widths, few steps, 200 samples) for smoke tests.
`python -m egan_jax.egan_demo --out runs/demo [--steps N] [--quick]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

from egan_jax.config import Config, apply_overrides

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "egan_dcgan_digits.py"
DEFAULT_STEPS = 1000
QUICK = ("model.width=8", "model.latent_dim=16", "data.image_size=8", "train.batch_size=16")


def demo_config(key_file: Path, *, steps: int, quick: bool) -> Config:
    """The protected experiment config with the demo's key, length and (quick) sizes."""
    spec = importlib.util.spec_from_file_location("_egan_demo_experiment", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    overrides = [
        f"model.key_file={key_file}",
        f"train.steps={steps}",
        "model.width=16",
        "log.quiet=true",
        "log.sample_every=0",
        f"checkpoint.every={max(steps // 2, 1)}",
        *(QUICK if quick else ()),
    ]
    return apply_overrides(module.get_config(), overrides)


def run(out: Path, *, steps: int = DEFAULT_STEPS, quick: bool = False) -> dict:
    from egan_jax.demo import demo_key
    from egan_jax.evaluate import baseline_config, evaluate_workdir, markdown_table
    from egan_jax.train import train_and_evaluate

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    key = demo_key(out)
    print(f"demo key {key.fingerprint} -> {out / 'demo.key'}", flush=True)
    config = demo_config(out / "demo.key", steps=steps, quick=quick)
    timings = {}
    for name, run_config in (("baseline", baseline_config(config)), ("protected", config)):
        began = time.perf_counter()
        print(f"training {name} DCGAN ({steps} steps) -> {out / name}", flush=True)
        train_and_evaluate(run_config, out / name)
        timings[f"train_{name}_s"] = round(time.perf_counter() - began, 1)
    began = time.perf_counter()
    report = evaluate_workdir(
        out / "protected",
        key=key,
        baseline=out / "baseline",
        out=out,
        num_samples=200 if quick else 1000,
        random_keys=10,
    )
    timings["evaluate_s"] = round(time.perf_counter() - began, 1)
    timings["total_s"] = round(time.perf_counter() - start, 1)
    print(markdown_table(report["rows"], report["summary"].get("baseline_fd")))
    for goal, met in report["summary"].get("goals", {}).items():
        print(f"goal {goal}: {'met' if met else 'NOT met'}")
    summary = {
        "key_fingerprint": key.fingerprint,
        "design": config.model.design,
        "steps": steps,
        "quick": quick,
        "config": dataclasses.asdict(config.model) | {"loss": dataclasses.asdict(config.loss)},
        "summary": report["summary"],
        "timings": timings,
        "report": report["paths"],
    }
    (out / "egan_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"report -> {out / 'report.md'}, grid -> {out / 'grid.png'} ({timings['total_s']} s)")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    run(args.out, steps=args.steps, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
