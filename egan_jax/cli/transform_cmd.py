"""`egan transform`: lock or unlock one image file with a key."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from egan_jax import __version__
from egan_jax.errors import EganError, KeyMismatchError, ShapeError
from egan_jax.keys import SecretKey

DEFAULT_STEPS = "shuffle,np,ffx"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "transform",
        help="encrypt an image with a key's block-wise transforms, or decrypt it (--inverse)",
        description=(
            "Apply the key's block-wise transforms (Kiya et al.: block pixel shuffling, negative/"
            "positive, FFX) to an image, or undo them with --inverse. The output records the transform "
            "config and the key's public fingerprint (never the key) in its metadata, so --inverse "
            "needs only the key and refuses a key whose fingerprint differs. Values that leave 0-255 "
            "(the decimal FFX variant gives 0-999) are written as a 16-bit PNG or .npy, never clipped; "
            "decrypting gives back the exact input image."
        ),
        epilog="example: egan transform --key my.key photo.png locked.png --block 4",
    )
    parser.add_argument("--key", required=True, type=Path, metavar="FILE", help="key file")
    parser.add_argument("input", type=Path, metavar="IN", help="input image (.png or .npy)")
    parser.add_argument("output", type=Path, metavar="OUT", help="output image (.png or .npy)")
    parser.add_argument(
        "--inverse", action="store_true", help="decrypt a file written by egan transform"
    )
    parser.add_argument("--block", type=int, default=4, metavar="M", help="block size (default 4)")
    parser.add_argument(
        "--steps",
        default=DEFAULT_STEPS,
        help=f"comma-separated steps in order, from shuffle, np, ffx, channel (default {DEFAULT_STEPS})",
    )
    parser.add_argument(
        "--ffx-variant",
        choices=("decimal", "binary"),
        default="decimal",
        help="decimal: Kiya et al.'s 3-digit codes 0-999 (16-bit output); binary: 8-bit codes 0-255",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from egan_jax.imageio import read_image, write_image
    from egan_jax.transforms.compose import Pipeline

    key = SecretKey.load(args.key)
    image, metadata = read_image(args.input)
    if args.inverse:
        record = (
            metadata.get("egan_jax") if isinstance(metadata.get("egan_jax"), dict) else metadata
        )
        if "transform" not in record or "key_fingerprint" not in record:
            raise EganError(
                f"{args.input} carries no egan_jax transform metadata, so it was not written by "
                "`egan transform` (or the metadata was stripped); nothing to invert"
            )
        if record["key_fingerprint"] != key.fingerprint:
            raise KeyMismatchError(
                f"{args.input} was encrypted with key {record['key_fingerprint']}, but {args.key} is "
                f"key {key.fingerprint}; use the key that encrypted it"
            )
        pipeline = Pipeline.from_config(record["transform"], key)
        restored = np.asarray(pipeline.inverse(image[None]))[0]
        original_dtype = record.get("source_dtype", "uint8")
        if restored.dtype != np.dtype(original_dtype):
            restored = restored.astype(original_dtype)
        write_image(args.output, restored, {})
        print(f"wrote {args.output}: decrypted with key {key.fingerprint}")
        return 0

    steps = [step.strip() for step in args.steps.split(",") if step.strip()]
    config = {
        "block": args.block,
        "steps": steps,
        "channels": int(image.shape[-1]),
        "ffx_variant": args.ffx_variant,
    }
    if image.dtype != np.uint8:
        raise ShapeError(
            f"{args.input} holds {image.dtype} values; egan transform encrypts 8-bit images "
            "(to decrypt a file written by egan transform, add --inverse)"
        )
    pipeline = Pipeline.from_config(config, key)
    locked = np.asarray(pipeline.forward(image[None]))[0]
    write_image(
        args.output,
        locked,
        {
            "egan_jax": __version__,
            "transform": pipeline.config,
            "key_fingerprint": key.fingerprint,
            "source_dtype": str(image.dtype),
        },
    )
    bits = 16 if locked.dtype == np.uint16 else 8
    print(f"wrote {args.output} ({bits}-bit): {','.join(steps)} with key {key.fingerprint}")
    return 0
