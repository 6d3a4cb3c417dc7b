"""The parity check's command line: ``egan encryip parity`` and ``python -m
egan_jax.encryip.parity`` (the same arguments, :func:`add_arguments`, and the same run,
:func:`run_args`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from egan_jax.errors import ConfigError, EganError

DESCRIPTION = (
    "EncryIP vs its plain twin by stratified k-fold cross-validation: every image held out once, "
    "decoded with every issued user key; paired 95%% intervals and exact McNemar tests."
)
EXAMPLE = (
    "egan encryip parity experiments/encryip_digits.py --registry keys/owner.json "
    "--folds 5 --seeds 0 1 2 --out runs/parity"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="an encryip experiment (experiments/encryip_digits.py)")
    parser.add_argument("--registry", help="the owner's registry (default: model.registry)")
    parser.add_argument("--folds", type=int, default=10, help="number of folds, >= 2 (default 10)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the fold split")
    parser.add_argument("--pool-split", default="all", help="the images to fold (default all)")
    parser.add_argument("--resamples", type=int, default=4000, help="bootstrap resamples")
    parser.add_argument("--out", required=True, help="folder for parity.json / parity.md")
    parser.add_argument(
        "--combine",
        nargs="+",
        metavar="DIR",
        help="combine finished runs' folds instead of training",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")


def command_line(args: argparse.Namespace, prog: str) -> str:
    """The command that reproduces ``args`` (for the report)."""
    words = [prog, args.config, "--folds", str(args.folds), "--seeds", *map(str, args.seeds)]
    words += ["--split-seed", str(args.split_seed), "--pool-split", args.pool_split]
    words += ["--registry", args.registry] if args.registry else []
    words += ["--combine", *args.combine] if args.combine else []
    for override in args.overrides:
        words += ["--set", override]
    return " ".join([*words, "--out", args.out])


def run_args(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Check the arguments, then train (or combine) and write the report; bad input raises
    :class:`ConfigError` naming the fix."""
    from egan_jax.config import load_config
    from egan_jax.encryip import parity

    if args.folds < 2:
        raise ConfigError(f"--folds {args.folds}: need at least 2 folds (e.g. --folds 10)")
    if args.resamples < 1:
        raise ConfigError(f"--resamples {args.resamples}: need at least 1 (e.g. 4000)")
    config = load_config(args.config, args.overrides)
    registry = args.registry or getattr(config.model, "registry", None)
    if not registry:
        raise ConfigError(
            "no registry: pass --registry PATH or --set model.registry=PATH (make one with "
            "`egan encryip keygen` and issue users with `egan encryip issue-user`)"
        )
    common = {
        "out": args.out,
        "resamples": args.resamples,
        "config_path": args.config,
        "command": command,
    }
    if args.combine:
        return parity.combine_runs(config, registry, args.combine, **common)
    return parity.run_parity(
        config,
        registry,
        folds=args.folds,
        seeds=args.seeds,
        split_seed=args.split_seed,
        pool_split=args.pool_split,
        **common,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m egan_jax.encryip.parity", description=DESCRIPTION, epilog=EXAMPLE
    )
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from egan_jax.encryip import parity_stats as stats

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        report = run_args(args, command_line(args, "python -m egan_jax.encryip.parity"))
    except EganError as error:
        print(f"parity: error: {error}", file=sys.stderr)
        return 2
    print(stats.markdown(report))
    return 0
