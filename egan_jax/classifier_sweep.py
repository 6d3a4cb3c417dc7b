"""The protection table over transforms and block sizes, trained and evaluated in one command.

    python -m egan_jax.classifier_sweep experiments/classifier_digits.py \\
        --key keys/classifier.key --out runs/classifier_sweep [--blocks 2,4,8] \\
        [--transforms shuffle,np,ffx,all] [--set train.steps=600 ...] [--key another.key ...]

Trains one unprotected run (``OUT/plain``) and one protected run per transform and block size
(``OUT/<transform>_b<block>``) with the engine (``train_and_evaluate``: a finished run is resumed as
a no-op, so the command can be re-run to rebuild the table), evaluates each with
:func:`egan_jax.classifier_eval.evaluate_workdir` against the unprotected run (its
``report/report.{md,json}``), and writes ``OUT/table.{md,json}``: one line per run with the plain
model, the correct key, plain images, random keys (mean ± sd, worst), near-miss keys and near-miss
material, the goals checked.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from egan_jax.errors import ConfigError

TRANSFORMS = {
    "shuffle": ("shuffle",),
    "np": ("np",),
    "ffx": ("ffx",),
    "all": ("shuffle", "np", "ffx"),
}
# the sweep's runs have no baseline twin (one unprotected run serves every line) and evaluate
# through evaluate_workdir, not at the end of training
RUN_OVERRIDES = ("model.baseline=false", "eval.enabled=false", "log.quiet=true")


def _steps_override(steps: tuple[str, ...]) -> str:
    return "model.transform.steps=" + (",".join(steps) if steps else "()")


def sweep(
    experiment: str,
    *,
    key_file: str | tuple[str, ...],
    out: str | Path,
    blocks: tuple[int, ...] = (2, 4, 8),
    transforms: tuple[str, ...] = tuple(TRANSFORMS),
    overrides: tuple[str, ...] = (),
    plain: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Train and evaluate every (transform, block) run for each key file; write and return the
    table's lines.

    With several keys the runs are ``OUT/<transform>_b<block>_k<i>`` (``i`` the key's index) and
    every line names its key's fingerprint. The unprotected run is shared by all lines, except for
    models with a per-position input embedding (``model.input_codes`` > 0), whose positions repeat
    with the block: there one unprotected run per block, ``OUT/plain_b<block>``. ``plain``: an
    unprotected run already trained (e.g. by an earlier sweep with the same settings) to use
    instead of training one.
    """
    from egan_jax.classifier_eval import evaluate_workdir
    from egan_jax.config import load_config
    from egan_jax.train import train_and_evaluate

    unknown = sorted(set(transforms) - set(TRANSFORMS))
    if unknown:
        raise ConfigError(f"unknown transform(s) {unknown}; use names from {sorted(TRANSFORMS)}")
    key_files = (key_file,) if isinstance(key_file, str | Path) else tuple(key_file)
    if not key_files:
        raise ConfigError("the sweep needs at least one key file (--key FILE)")
    out = Path(out)

    def common(key: str) -> tuple[str, ...]:
        return (*RUN_OVERRIDES, f"model.transform.key_file={Path(key).absolute()}", *overrides)

    per_block = load_config(experiment, common(key_files[0])).model.input_codes > 0
    plains = {}
    for block in () if plain is not None else blocks if per_block else (None,):
        plain_run = out / ("plain" if block is None else f"plain_b{block}")
        run = (*common(key_files[0]), _steps_override(()))
        if block is not None:
            run = (*run, f"model.transform.block={block}")
        train_and_evaluate(load_config(experiment, run), plain_run)
        plains[block] = plain_run
    lines = []
    for index, key in enumerate(key_files):
        suffix = f"_k{index}" if len(key_files) > 1 else ""
        for name in transforms:
            for block in blocks:
                workdir = out / f"{name}_b{block}{suffix}"
                run = (
                    *common(key),
                    _steps_override(TRANSFORMS[name]),
                    f"model.transform.block={block}",
                )
                train_and_evaluate(load_config(experiment, run), workdir)
                baseline = (
                    Path(plain) if plain is not None else plains[block if per_block else None]
                )
                report = evaluate_workdir(workdir, baseline=baseline)
                line = {"transform": name, "block": block, **report["summary"]}
                if len(key_files) > 1:
                    line["key"] = report["meta"]["key_fingerprint"]
                lines.append({**line, "goals": report["goals"]})
                write_table(lines, out)
    return lines


def _pct(summary: dict[str, Any], name: str) -> str:
    return f"{100 * summary[name]:.1f}" if name in summary else "–"


def _spread(summary: dict[str, Any], name: str) -> str:
    if f"{name}_mean" not in summary:
        return "–"
    mean, sd, worst = (100 * summary[f"{name}_{s}"] for s in ("mean", "sd", "worst"))
    return f"{mean:.1f} ± {sd:.1f} ({worst:.1f})"


def markdown(lines: list[dict[str, Any]]) -> str:
    """The table: accuracy % on the test split; random and near-miss: mean ± sd (worst)."""
    head = (
        "| transform | block | plain model | correct key | plain images | random keys | "
        "near-miss keys | near-miss material | goals |"
    )
    several_keys = any("key" in line for line in lines)
    if several_keys:
        head = head.replace("| block |", "| block | key |")
    rows = [
        head,
        "|---|---:|" + ("---|" if several_keys else "") + "---:|---:|---:|---|---|---|---|",
    ]
    for line in lines:
        material = "; ".join(
            f"{step}: {_spread(line, f'near_material_{step}')}"
            for step in TRANSFORMS[line["transform"]]
        )
        met = sum(line["goals"].values())
        rows.append(
            f"| {line['transform']} | {line['block']} | "
            + (f"{line.get('key', '–')} | " if several_keys else "")
            + f"{_pct(line, 'plain_model')} | "
            f"{_pct(line, 'correct_key')} | {_pct(line, 'plain_images')} | "
            f"{_spread(line, 'random_keys')} | {_spread(line, 'near_miss_keys')} | {material} | "
            f"{met}/{len(line['goals'])} |"
        )
    return "\n".join(rows)


def write_table(lines: list[dict[str, Any]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.json").write_text(json.dumps(lines, indent=2) + "\n")
    (out / "table.md").write_text(markdown(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m egan_jax.classifier_sweep", description=__doc__
    )
    parser.add_argument(
        "experiment", help="a classifier experiment config, e.g. experiments/classifier_digits.py"
    )
    parser.add_argument(
        "--key",
        action="append",
        required=True,
        help="the owner's key file (egan keygen --out FILE); repeat for a line per key",
    )
    parser.add_argument("--out", required=True, help="folder for the runs and table.{md,json}")
    parser.add_argument("--blocks", default="2,4,8", help="block sizes (default 2,4,8)")
    parser.add_argument("--transforms", default=",".join(TRANSFORMS), help="default: all four")
    parser.add_argument("--set", action="append", default=[], help="config override FIELD=VALUE")
    parser.add_argument(
        "--plain", default=None, help="an unprotected run to use instead of training OUT/plain"
    )
    args = parser.parse_args(argv)
    lines = sweep(
        args.experiment,
        key_file=tuple(args.key),
        out=args.out,
        blocks=tuple(int(b) for b in args.blocks.split(",")),
        transforms=tuple(args.transforms.split(",")),
        overrides=tuple(args.set),
        plain=args.plain,
    )
    print(markdown(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
