"""`egan evaluate` and `egan attack ...`: the protection report of an EGAN-protected run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EVALUATE_EPILOG = """\
examples:
  egan evaluate --workdir runs/egan_digits --baseline runs/dcgan_digits
  egan evaluate --workdir runs/egan_digits --key owner.key --samples 1000 --random-keys 10

Writes WORKDIR/report/{report.md,report.json,grid.png} (or --out). Rows: the unprotected baseline
(with --baseline), the correct key, no key, random keys, near-miss keys and near-miss material, then
any attack rows that `egan attack` stored in WORKDIR/attacks/. A key whose fingerprint differs from
the checkpoint's is refused.
"""

ATTACK_EPILOG = """\
examples:
  egan attack prune --workdir runs/egan_digits
  egan attack search --workdir runs/egan_digits --candidates 20
  egan attack estimate --workdir runs/egan_digits --objective discriminator --steps 300
  egan attack finetune --workdir runs/egan_digits
  egan attack watermark-overwrite --workdir runs/egan_digits

Each attack stores its rows in WORKDIR/attacks/NAME.json; `egan evaluate` adds them to the report.
search, estimate, finetune and watermark-overwrite use no key (finetune and watermark-overwrite
check the owner's key and watermarks afterwards; watermark-overwrite embeds the thief's own logo
and signature while fine-tuning).
A classifier workdir gets the classifier's table and attacks (egan_jax/cli/classifier_cmd.py);
an egan_srgan / egan_cyclegan workdir gets prune, search, finetune, estimate
(egan_jax/attack_runs_i2i.py).
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="an egan_dcgan training workdir")
    parser.add_argument("--samples", type=int, default=500, help="images per FD (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of latents and stand-in keys")
    parser.add_argument("--cache-dir", default=None, help="where the digits classifier is cached")


def register(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        help="protection report of an EGAN-protected run (markdown, JSON, PNG grid)",
        description="Digits Fréchet distance of a protected DCGAN with the correct key, no key, "
        "random keys and near-miss keys, against an unprotected baseline.",
        epilog=EVALUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(evaluate)
    evaluate.add_argument("--key", default=None, help="key file (default: the run's key_file)")
    evaluate.add_argument("--baseline", default=None, help="workdir of the unprotected DCGAN")
    evaluate.add_argument("--out", default=None, help="report folder (default WORKDIR/report)")
    evaluate.add_argument("--random-keys", type=int, default=10, help="random keys (default 10)")
    evaluate.add_argument(
        "--near-materials",
        type=int,
        default=6,
        help="near-miss materials: one transposition / flipped sign each (default 6)",
    )
    evaluate.set_defaults(func=run_evaluate)

    attack = subparsers.add_parser(
        "attack",
        help="attack an EGAN-protected run (prune, search, estimate, finetune, watermark-overwrite)",
        description="Run one attack on a protected run and store its report rows.",
        epilog=ATTACK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    attack.add_argument("attack", choices=sorted(ATTACKS), help="which attack")
    _common(attack)
    attack.add_argument(
        "--key", default=None, help="owner's key file (prune; finetune/overwrite checks)"
    )
    attack.add_argument("--candidates", type=int, default=20, help="search: keys tried")
    attack.add_argument(
        "--objective", default="discriminator", help="estimate: discriminator or pixels"
    )
    attack.add_argument(
        "--steps", type=int, default=None, help="estimate/finetune/overwrite: steps"
    )
    attack.add_argument(
        "--adapter",
        default="latent",
        choices=["latent", "sites"],
        help="estimate: a latent adapter (default; egan_srgan / egan_cyclegan runs: a per-block "
        "input map) or a learned channel map at every deep-lock site",
    )
    attack.add_argument(
        "--control",
        action="store_true",
        help="estimate on an egan_dcgan run: also run the same attack on a randomly initialised "
        "generator (how much the stolen weights help)",
    )
    attack.add_argument(
        "--lr-scale",
        type=float,
        default=None,
        help="finetune on an egan_dcgan run: the thief's lr as a multiple of the owner's "
        "(default 0.1, the protocol's; try 1 for a bolder thief)",
    )
    attack.set_defaults(func=run_attack)


def _key(path: str | None):
    if path is None:
        return None
    from egan_jax.keys import SecretKey

    return SecretKey.load(path)


def run_evaluate(args: argparse.Namespace) -> int:
    from egan_jax.cli import classifier_cmd

    if classifier_cmd.is_classifier_run(args.workdir):  # key-protected classifiers: accuracy table
        return classifier_cmd.run_evaluate(args)
    from egan_jax import evaluate_i2i

    if evaluate_i2i.is_image_run(args.workdir):  # egan_srgan / egan_cyclegan: PSNR / FD tables
        return evaluate_i2i.run_cli(args)
    from egan_jax.evaluate import evaluate_workdir, markdown_table

    report = evaluate_workdir(
        args.workdir,
        key=_key(args.key),
        baseline=args.baseline,
        out=args.out,
        num_samples=args.samples,
        seed=args.seed,
        random_keys=args.random_keys,
        near_materials=args.near_materials,
        cache_dir=args.cache_dir,
    )
    print(markdown_table(report["rows"], report["summary"].get("baseline_fd")))
    print(json.dumps(report["paths"]))
    return 0


def _prune(args):
    from egan_jax.attack_runs import attack_prune

    return attack_prune(
        args.workdir,
        key=_key(args.key),
        num_samples=args.samples,
        seed=args.seed,
        cache_dir=args.cache_dir,
    )


def _search(args):
    from egan_jax.attack_runs import attack_search

    return attack_search(
        args.workdir,
        candidates=args.candidates,
        num_samples=args.samples,
        seed=args.seed,
        cache_dir=args.cache_dir,
    )


def _estimate(args):
    from egan_jax.attack_runs import attack_estimate

    return attack_estimate(
        args.workdir,
        objective=args.objective,
        adapter=args.adapter,
        control=args.control,
        steps=args.steps or 300,
        num_samples=args.samples,
        seed=args.seed,
        cache_dir=args.cache_dir,
    )


def _finetune(args):
    from egan_jax.attack_runs import attack_finetune

    return attack_finetune(
        args.workdir,
        key=_key(args.key),
        num_samples=args.samples,
        seed=args.seed,
        cache_dir=args.cache_dir,
        steps=args.steps,
        lr_scale=0.1 if args.lr_scale is None else args.lr_scale,
    )


def _overwrite(args):
    from egan_jax.attack_runs import attack_watermark_overwrite

    return attack_watermark_overwrite(
        args.workdir,
        key=_key(args.key),
        num_samples=args.samples,
        seed=args.seed,
        cache_dir=args.cache_dir,
        steps=args.steps,
    )


ATTACKS = {
    "prune": _prune,
    "search": _search,
    "estimate": _estimate,
    "finetune": _finetune,
    "watermark-overwrite": _overwrite,
}


def _check_dcgan_flags(args: argparse.Namespace) -> None:
    """--lr-scale, --adapter and --control exist for one attack on egan_dcgan runs each: elsewhere
    they would be silently ignored, so they are refused."""
    from egan_jax.config import read_config
    from egan_jax.errors import ConfigError

    given = {
        "--lr-scale": ("finetune", args.lr_scale is not None),
        "--adapter": ("estimate", getattr(args, "adapter", "latent") != "latent"),
        "--control": ("estimate", bool(getattr(args, "control", False))),
    }
    given = {flag: attack for flag, (attack, on) in given.items() if on}
    if not given:
        return
    family = read_config(Path(args.workdir) / "config.json").family
    for flag, attack in given.items():
        # the image families' estimate takes --adapter sites too (attack_runs_i2i)
        image_sites = flag == "--adapter" and family in ("egan_srgan", "egan_cyclegan")
        if (family != "egan_dcgan" and not image_sites) or args.attack != attack:
            raise ConfigError(
                f"{flag} applies to `egan attack {attack}` on an egan_dcgan run, not to "
                f"`{args.attack}` on a {family!r} run; drop the flag"
            )
    if args.lr_scale is not None and not args.lr_scale > 0:
        raise ConfigError(f"--lr-scale must be > 0, got {args.lr_scale}")


def run_attack(args: argparse.Namespace) -> int:
    from egan_jax.cli import classifier_cmd

    _check_dcgan_flags(args)
    if classifier_cmd.is_classifier_run(args.workdir):  # finetune, estimate, search
        return classifier_cmd.run_attack(args)
    from egan_jax import evaluate_i2i

    if evaluate_i2i.is_image_run(args.workdir):  # egan_srgan / egan_cyclegan: attack_runs_i2i
        from egan_jax.attack_runs_i2i import run_cli
        from egan_jax.evaluate_i2i_report import attack_table

        rows = run_cli(args)
        family = json.loads((Path(args.workdir) / "config.json").read_text())["family"]
        print(attack_table(family, rows))
        print(f"rows stored in {Path(args.workdir) / 'attacks'}")
        return 0
    from egan_jax.evaluate import markdown_table

    rows = ATTACKS[args.attack](args)
    print(markdown_table(rows, None))
    print(f"rows stored in {Path(args.workdir) / 'attacks'}")
    return 0
