"""`egan evaluate` and `egan attack` for key-protected classifier runs.

`egan_cmd` registers the two commands and hands a workdir whose config is a ``classifier`` run to
:func:`run_evaluate` / :func:`run_attack` here, so one command reports on every protected model:

    egan evaluate --workdir runs/classifier_digits [--key K] [--baseline runs/plain] [--out DIR]
    egan attack finetune --workdir runs/classifier_digits [--steps 300]
    egan attack estimate --workdir runs/classifier_digits [--steps 300]
    egan attack search   --workdir runs/classifier_digits [--candidates 100] [--key K]

Attacks use no key (``search --key`` only says whether the owner's material was found); each runs
with 1% and 10% of the training images next to a from-scratch model trained on the same images
with the same budget, and stores its rows under WORKDIR/attacks/ for ``egan evaluate``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from egan_jax.errors import ConfigError


def is_classifier_run(workdir: str) -> bool:
    """Whether ``workdir/config.json`` is a classifier run (False when there is none)."""
    path = Path(workdir) / "config.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("family") == "classifier"
    except (json.JSONDecodeError, AttributeError):
        return False


def _key(path: str | None):
    if path is None:
        return None
    from egan_jax.keys import SecretKey

    return SecretKey.load(path)


def run_evaluate(args: argparse.Namespace) -> int:
    from egan_jax.classifier_eval import evaluate_workdir, markdown_table

    report = evaluate_workdir(
        args.workdir,
        key=_key(args.key),
        baseline=args.baseline,
        out=args.out,
        seed=args.seed,
    )
    print(markdown_table(report["rows"], report["summary"].get("plain_model")))
    for goal, met in report["goals"].items():
        print(f"goal {goal}: {'met' if met else 'NOT met'}")
    print(json.dumps(report["paths"]))
    return 0


def run_attack(args: argparse.Namespace) -> int:
    from egan_jax.classifier_attacks import ATTACKS
    from egan_jax.classifier_attacks import run_attack as attack
    from egan_jax.classifier_eval import markdown_table

    if args.attack not in ATTACKS:
        raise ConfigError(
            f"attack {args.attack!r} is not defined for classifier runs; use one of "
            f"{sorted(ATTACKS)}"
        )
    rows = attack(
        args.workdir,
        args.attack,
        steps=args.steps,
        seed=args.seed,
        candidates=args.candidates,
        key=_key(args.key) if args.attack == "search" else None,
    )
    print(markdown_table(rows, None))
    print(f"rows stored in {Path(args.workdir) / 'attacks'}")
    return 0
