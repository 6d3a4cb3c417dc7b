"""`egan train` and `egan sample`: run an experiment config; draw a grid from a trained run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TRAIN_EPILOG = """\
examples:
  egan train experiments/dcgan_digits.py --workdir runs/dcgan_digits
  egan train experiments/dcgan_digits.py --workdir runs/x --set train.steps=2000 --set model.width=32

Running the same command again resumes from the latest checkpoint in WORKDIR; raising
train.steps extends a finished run. A WORKDIR holding a run of another config is refused.
Ctrl-C saves a checkpoint before stopping.

WORKDIR receives config.json, checkpoints/, metrics.jsonl, tensorboard/, samples/step_*.png and
eval.json.

Every local device trains data-parallel. Several hosts: run the same command on each with
  --set distributed.coordinator_address=HOST0:PORT --set distributed.num_processes=N
  --set distributed.process_id=I
(WORKDIR must then be on a file system every host shares: all of them write the checkpoints.)
Set JAX_COMPILATION_CACHE_DIR (e.g. ~/.cache/jax) to reuse compiled steps across runs.
"""

SAMPLE_EPILOG = """\
example:
  egan sample --workdir runs/dcgan_digits --n 64 --out grid.png --seed 1
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a model from an experiment config",
        description="Train the model an experiment config describes (one generic loop for every "
        "family), resuming from WORKDIR's latest checkpoint if there is one.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "config", help="experiment file with get_config() (e.g. experiments/dcgan_digits.py)"
    )
    train.add_argument("--workdir", required=True, help="folder for checkpoints, logs and samples")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one config field, parsed to its type (repeatable), e.g. train.steps=500",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)

    sample = subparsers.add_parser(
        "sample",
        help="draw a PNG grid of samples from a trained run",
        description="Restore the latest checkpoint of WORKDIR (or --step) and write a grid of "
        "N generated images.",
        epilog=SAMPLE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sample.add_argument("--workdir", required=True, help="a folder written by `egan train`")
    sample.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    sample.add_argument("--out", required=True, help="PNG file to write")
    sample.add_argument("--seed", type=int, default=0, help="seed of the latent draws (default 0)")
    sample.add_argument("--step", type=int, default=None, help="checkpoint step (default latest)")
    sample.set_defaults(func=run_sample)


def run_train(args: argparse.Namespace) -> int:
    from egan_jax.config import load_config
    from egan_jax.train import train_and_evaluate

    overrides = list(args.overrides) + (["log.quiet=true"] if args.quiet else [])
    config = load_config(args.config, overrides)
    try:
        result = train_and_evaluate(config, args.workdir)
    except KeyboardInterrupt:
        print(
            f"egan train: interrupted; the last finished step is saved in {args.workdir}/"
            "checkpoints: run the same command to resume",
            file=sys.stderr,
        )
        return 130
    summary = ", ".join(f"{k}={v:.4g}" for k, v in {**result.metrics, **result.evaluation}.items())
    print(f"trained {result.step} steps in {args.workdir}: {summary}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from egan_jax.logging_utils import save_image_grid
    from egan_jax.train import sample_images

    images = sample_images(args.workdir, n=args.n, seed=args.seed, step=args.step)
    path = save_image_grid(images, Path(args.out))
    print(f"wrote {len(images)} samples to {path}")
    return 0
