"""The `egan` command line: a thin layer that parses flags and calls the library.

Each sub-command lives in its own module with a `register(subparsers)` function that adds its parser
and sets `func`, a callable taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from egan_jax.errors import EganError

# Modules under egan_jax.cli that each register one or more sub-commands.
COMMAND_MODULES = (
    "keys_cmd",
    "transform_cmd",
    "train_cmd",
    "egan_cmd",
    "encryip_cmd",
    "lpgan_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="egan",
        description="Lock trained JAX/Flax models with a secret key.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"egan_jax.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"egan_jax.cli.{name}":
                continue  # that sub-command is not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EganError as error:
        print(f"egan {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
