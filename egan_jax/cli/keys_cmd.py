"""`egan keygen` and `egan key fingerprint`."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from egan_jax.errors import KeyFileError
from egan_jax.keys import SecretKey


def register(subparsers: argparse._SubParsersAction) -> None:
    keygen = subparsers.add_parser(
        "keygen",
        help="make a new secret key file",
        description=(
            "Write a new 256-bit secret key to FILE (versioned JSON, mode 0600). By default the key is "
            "drawn from the operating system's random source. With --passphrase it is derived from a "
            "passphrase with scrypt and a salt stored in the file; the same passphrase and --salt "
            "re-create the same key. Keep the file secret: anyone holding it can unlock your models. "
            "Models, files and reports only ever store the key's public fingerprint."
        ),
    )
    keygen.add_argument("--out", required=True, type=Path, metavar="FILE", help="key file to write")
    keygen.add_argument(
        "--passphrase",
        action="store_true",
        help="derive the key from a passphrase (asked on the terminal, or read from "
        "$EGAN_PASSPHRASE, or from --passphrase-file)",
    )
    keygen.add_argument(
        "--passphrase-file", type=Path, metavar="PATH", help="read the passphrase from this file"
    )
    keygen.add_argument(
        "--salt", metavar="HEX", help="scrypt salt (32 hex digits) to re-create a passphrase key"
    )
    keygen.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    keygen.set_defaults(func=_keygen)

    key = subparsers.add_parser("key", help="inspect a key file", description="Inspect a key file.")
    key_commands = key.add_subparsers(dest="key_command", metavar="ACTION")
    fingerprint = key_commands.add_parser(
        "fingerprint",
        help="print a key file's public fingerprint",
        description=(
            "Validate a key file and print its public fingerprint (egk1-…), the name that checkpoints, "
            "transformed files and reports store to say which key they expect."
        ),
    )
    fingerprint.add_argument("file", type=Path, metavar="FILE")
    fingerprint.set_defaults(func=_fingerprint)
    key.set_defaults(func=lambda _args: key.print_help() or 2)


def _read_passphrase(args: argparse.Namespace) -> str:
    if args.passphrase_file is not None:
        if not args.passphrase_file.is_file():
            raise KeyFileError(f"passphrase file {args.passphrase_file} does not exist")
        return args.passphrase_file.read_text().rstrip("\n")
    if os.environ.get("EGAN_PASSPHRASE"):
        return os.environ["EGAN_PASSPHRASE"]
    if not sys.stdin.isatty():
        raise KeyFileError(
            "no terminal to ask for the passphrase; set $EGAN_PASSPHRASE or pass --passphrase-file"
        )
    first = getpass.getpass("passphrase: ")
    if getpass.getpass("again: ") != first:
        raise KeyFileError("the two passphrases differ; run keygen again")
    return first


def _keygen(args: argparse.Namespace) -> int:
    if args.salt is not None and not (args.passphrase or args.passphrase_file):
        raise KeyFileError("--salt only makes sense with --passphrase")
    if args.passphrase or args.passphrase_file:
        salt = None
        if args.salt is not None:
            try:
                salt = bytes.fromhex(args.salt)
            except ValueError:
                raise KeyFileError(f"--salt {args.salt!r} is not hexadecimal") from None
            if len(salt) != 16:
                raise KeyFileError(
                    "--salt must be 32 hex digits (16 bytes), as stored in key files"
                )
        key = SecretKey.from_passphrase(_read_passphrase(args), salt)
    else:
        key = SecretKey.generate()
    key.save(args.out, overwrite=args.force)
    print(f"wrote {args.out} (mode 0600), fingerprint {key.fingerprint}")
    return 0


def _fingerprint(args: argparse.Namespace) -> int:
    print(SecretKey.load(args.file).fingerprint)
    return 0
