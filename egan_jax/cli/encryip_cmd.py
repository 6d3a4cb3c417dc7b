"""`egan encryip ...`: owner registry, users, codebook, decryption, tracing and the report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """\
owner:
  egan encryip keygen --registry keys/owner.json
  egan encryip issue-user --registry keys/owner.json --user alice --out keys/alice.json
  egan encryip list-users --registry keys/owner.json
  egan encryip revoke --registry keys/owner.json --user alice
  egan train experiments/encryip_digits.py --workdir runs/ei --set model.registry=keys/owner.json
  egan encryip publish --workdir runs/ei --registry keys/owner.json
  egan encryip evaluate --workdir runs/ei --registry keys/owner.json
  egan encryip compare --workdir runs/ei --registry keys/owner.json --transform-workdir runs/cl
  egan encryip triggers --workdir runs/ei --registry keys/owner.json --out triggers.npy
  egan encryip trace --workdir runs/ei --registry keys/owner.json --key found.json
  egan encryip trace --workdir runs/ei --registry keys/owner.json --answers answers.json
  egan encryip parity experiments/encryip_digits.py --registry keys/owner.json --folds 5 \\
      --seeds 0 1 2 --out runs/parity
user:
  egan encryip decrypt --workdir runs/ei --key keys/alice.json --split test
  egan encryip decrypt --workdir runs/ei --key keys/alice.json --images batch.npy

The registry and user key files hold secrets (mode 0600); only fingerprints are printed.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encryip",
        help="EncryIP: encrypted-label models, per-user keys, leak tracing",
        description="Public-key encrypted labels (CS-lite): the owner's registry, user keys, "
        "codebook publication, decryption, tracing of leaked pipelines and the report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="encryip_command", metavar="ACTION")
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)

    def add(name: str, help: str, func) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(func=func)
        return sub

    keygen = add("keygen", "create the owner's key registry (new CS-lite key pair)", _keygen)
    keygen.add_argument("--registry", required=True, type=Path, help="registry file to write")
    keygen.add_argument(
        "--insecure-test-group",
        action="store_true",
        help="use the 64-bit test group (fast, NOT secure: for tests and demos only)",
    )
    keygen.add_argument("--force", action="store_true", help="overwrite an existing registry")

    issue = add("issue-user", "issue a new user key (no retraining)", _issue)
    issue.add_argument("--registry", required=True, type=Path)
    issue.add_argument("--user", required=True, help="user id (letters, digits, ._@+-)")
    issue.add_argument("--out", required=True, type=Path, help="user key file to write (0600)")

    listing = add("list-users", "list issued users (ids, fingerprints, status)", _list)
    listing.add_argument("--registry", required=True, type=Path)
    listing.add_argument("--status", default=None, choices=("active", "revoked"))

    revoke = add("revoke", "mark a user revoked (they stay traceable)", _revoke)
    revoke.add_argument("--registry", required=True, type=Path)
    revoke.add_argument("--user", required=True)

    publish = add("publish", "write the run's public codebook to WORKDIR/codebook.json", _publish)
    publish.add_argument("--workdir", required=True, type=Path)
    publish.add_argument("--registry", required=True, type=Path)
    publish.add_argument("--out", default=None, type=Path)

    decrypt = add("decrypt", "classify with a user key (decrypts the codebook once)", _decrypt)
    decrypt.add_argument("--workdir", required=True, type=Path)
    decrypt.add_argument("--key", required=True, type=Path, help="user key file")
    decrypt.add_argument(
        "--codebook", default=None, type=Path, help="default WORKDIR/codebook.json"
    )
    source = decrypt.add_mutually_exclusive_group(required=True)
    source.add_argument("--split", help="accuracy on a split of the run's dataset (e.g. test)")
    source.add_argument("--images", type=Path, help=".npy or image file (uint8 or [-1, 1] float)")

    triggers = add("triggers", "export the trigger images (.npy) to query a black box", _triggers)
    triggers.add_argument("--workdir", required=True, type=Path)
    triggers.add_argument("--registry", required=True, type=Path)
    triggers.add_argument("--out", required=True, type=Path)

    trace = add("trace", "name the user whose key a suspect pipeline uses", _trace)
    trace.add_argument("--workdir", required=True, type=Path)
    trace.add_argument("--registry", required=True, type=Path)
    found = trace.add_mutually_exclusive_group(required=True)
    found.add_argument("--key", type=Path, help="a decoder key file found with the suspect")
    found.add_argument("--answers", type=Path, help="JSON list: the black box's trigger classes")

    evaluate = add("evaluate", "accuracy, tracing, attacker curve, robustness report", _evaluate)
    evaluate.add_argument("--workdir", required=True, type=Path)
    evaluate.add_argument("--registry", required=True, type=Path)
    evaluate.add_argument("--out", default=None, type=Path, help="default WORKDIR/report/encryip")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--draws", type=int, default=5, help="draws per attacker budget")
    evaluate.add_argument("--finetune-steps", type=int, default=100)

    compare = add(
        "compare",
        "side by side with the plain, watermarked and key-transform models (same model and data)",
        _compare,
    )
    compare.add_argument("--workdir", required=True, type=Path, help="the encryip run")
    compare.add_argument("--registry", required=True, type=Path)
    compare.add_argument(
        "--transform-workdir",
        required=True,
        type=Path,
        help="a classifier run with a key transform and the encryip run's settings",
    )
    compare.add_argument("--out", default=None, type=Path, help="default WORKDIR/report/encryip")
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--finetune-steps", type=int, default=100)

    from egan_jax.encryip.parity_cli import add_arguments

    parity = add(
        "parity",
        "accuracy of every user key vs the plain twin, by k-fold cross-validation",
        _parity,
    )
    add_arguments(parity)


def _keygen(args) -> int:
    from egan_jax.encryip.group import RFC3526_2048, TEST_GROUP_64
    from egan_jax.encryip.registry import Registry

    group = TEST_GROUP_64 if args.insecure_test_group else RFC3526_2048
    registry = Registry.create(args.registry, group=group, overwrite=args.force)
    print(f"registry {args.registry}: public key {registry.public_key.fingerprint} ({group.name})")
    return 0


def _issue(args) -> int:
    from egan_jax.encryip.registry import Registry

    key = Registry.load(args.registry).issue_user(args.user, args.out)
    print(f"user {args.user}: key {key.fingerprint} written to {args.out}")
    return 0


def _list(args) -> int:
    from egan_jax.encryip.registry import Registry

    for user in Registry.load(args.registry).list_users(args.status):
        revoked = f" revoked {user.revoked_at}" if user.revoked_at else ""
        print(
            f"{user.user_id}\t{user.fingerprint}\t{user.status}\tissued {user.issued_at}{revoked}"
        )
    return 0


def _revoke(args) -> int:
    from egan_jax.encryip.registry import Registry

    record = Registry.load(args.registry).revoke(args.user)
    print(f"user {record.user_id} revoked at {record.revoked_at} (key {record.fingerprint})")
    print("note: a revoked key still decrypts codebooks of this public key; publish new ones")
    return 0


def _publish(args) -> int:
    from egan_jax.encryip.workdir import publish_codebook

    print(f"codebook written to {publish_codebook(args.workdir, args.registry, args.out)}")
    return 0


def _load_images(path: Path):
    import numpy as np

    from egan_jax.data import to_float
    from egan_jax.errors import DataError

    if path.suffix == ".npy":
        array = np.load(path)
    else:
        from egan_jax.imageio import read_image

        array = read_image(path)[0]
    if array.ndim == 3:
        array = array[None]
    if array.dtype == np.uint8:
        return to_float(array)
    if array.dtype.kind != "f" or array.min() < -1.0 or array.max() > 1.0:
        raise DataError(f"{path}: images must be uint8 or floats in [-1, 1]")
    return array.astype(np.float32)


def _decrypt(args) -> int:
    from egan_jax.encryip import workdir
    from egan_jax.encryip.registry import load_user_key

    key, user_id = load_user_key(args.key)
    if args.split:
        result = workdir.split_accuracy(args.workdir, key, args.split, codebook_path=args.codebook)
        print(json.dumps({"user": user_id, **result}, indent=2))
    else:
        images = _load_images(args.images)
        classes = workdir.classify(args.workdir, key, images, codebook_path=args.codebook)
        print(json.dumps({"user": user_id, "classes": classes.tolist()}))
    return 0


def _triggers(args) -> int:
    from egan_jax.encryip.workdir import export_triggers

    path = export_triggers(args.workdir, args.registry, args.out)
    print(f"triggers written to {path} (keep them private until you trace)")
    return 0


def _trace(args) -> int:
    from egan_jax.encryip import workdir
    from egan_jax.encryip.registry import load_user_key
    from egan_jax.errors import DataError

    if args.key is not None:
        result = workdir.trace_suspect(
            args.workdir, args.registry, suspect_key=load_user_key(args.key)[0]
        )
    else:
        try:
            answers = json.loads(args.answers.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(f"{args.answers}: not a JSON list of classes ({error})") from None
        result = workdir.trace_suspect(args.workdir, args.registry, answers=answers)
    print(workdir.trace_json(result))
    return 0


def _evaluate(args) -> int:
    from egan_jax.encryip.report import evaluate_run, markdown

    report = evaluate_run(
        args.workdir,
        args.registry,
        out=args.out,
        seed=args.seed,
        draws=args.draws,
        finetune_steps=args.finetune_steps,
    )
    print(markdown(report))
    print(json.dumps(report["paths"]))
    return 0


def _compare(args) -> int:
    from egan_jax.encryip.compare import compare_protections, markdown

    report = compare_protections(
        args.workdir,
        args.registry,
        args.transform_workdir,
        out=args.out,
        seed=args.seed,
        finetune_steps=args.finetune_steps,
    )
    print(markdown(report))
    print(json.dumps(report["paths"]))
    return 0


def _parity(args) -> int:
    from egan_jax.encryip import parity_stats
    from egan_jax.encryip.parity_cli import command_line, run_args

    report = run_args(args, command_line(args, "egan encryip parity"))
    print(parity_stats.markdown(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m egan_jax.cli.encryip_cmd ACTION ...`: the same as `egan encryip ACTION ...`."""
    import sys

    from egan_jax import cli

    return cli.main(["encryip", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
