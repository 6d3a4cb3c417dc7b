"""Bit-for-bit reproducibility of a training run on the current backend (the GPU check of #4).

Trains the digits DCGAN (`experiments/dcgan_digits.py`, width 64, `--steps` steps) and prints one
JSON line with the SHA-256 of every parameter and the logged losses. With `--resume-at K` it trains
to step K first and then resumes the same workdir to `--steps`, as a restarted job does. Run it in
separate processes and compare the digests: equal digests mean bit-identical parameters.
Run: `python -m bench.gpu_determinism --workdir W --steps 30 [--resume-at 15]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from egan_jax.config import load_config
from egan_jax.logging_utils import read_metrics
from egan_jax.train import train_and_evaluate

EXPERIMENT = Path(__file__).resolve().parent.parent / "experiments" / "dcgan_digits.py"


def params_digest(models) -> str:
    digest = hashlib.sha256()
    for path, value in sorted(nnx.to_flat_state(nnx.state(models)), key=lambda kv: str(kv[0])):
        digest.update("/".join(map(str, path)).encode())
        digest.update(np.ascontiguousarray(np.asarray(value[...])).tobytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--resume-at", type=int, default=0)
    args = parser.parse_args()
    overrides = [
        "model.width=64",
        "log.every=1",
        "log.sample_every=0",
        "log.tensorboard=false",
        "log.quiet=true",
        "eval.enabled=false",
        f"checkpoint.every={args.resume_at or args.steps}",
    ]
    if args.resume_at:
        train_and_evaluate(
            load_config(EXPERIMENT, [*overrides, f"train.steps={args.resume_at}"]), args.workdir
        )
    result = train_and_evaluate(
        load_config(EXPERIMENT, [*overrides, f"train.steps={args.steps}"]), args.workdir
    )
    losses = [[r["step"], r["d_loss"], r["g_loss"]] for r in read_metrics(args.workdir)
              if "d_loss" in r]  # fmt: skip
    print(json.dumps({
        "backend": jax.default_backend(),
        "step": result.step,
        "params_sha256": params_digest(result.models),
        "losses_sha256": hashlib.sha256(json.dumps(losses).encode()).hexdigest(),
        "last_losses": losses[-1],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
