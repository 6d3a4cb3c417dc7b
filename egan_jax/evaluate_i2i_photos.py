"""EGAN SRGAN on the whole held-out photos: Y-PSNR/SSIM per photo (the SR benchmarks' per-image
convention), averaged, for bicubic, the unprotected baseline and every input kind of `egan evaluate`.

`egan evaluate` scores the mean over 64-px tiles; there flat tiles (sky), where bicubic is already
≥ 45 dB, weigh as much as textured ones. This module gives the whole-photo column beside it. The
photos are cropped to a multiple of scale × model.block so that the block transform tiles them.

`python -m egan_jax.evaluate_i2i_photos --workdir runs/egan_srgan --baseline runs/srgan_baseline`
prints a markdown table and writes WORKDIR/report/photos.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from egan_jax.config import Config


def held_out_photos(config: Config) -> list[tuple[np.ndarray, np.ndarray]]:
    """(lr, hr) uint8 of each held-out photo, cropped so the LR sides are multiples of the block."""
    from egan_jax.data_paired import load_sr_photos

    scale, block = config.model.scale, config.model.block
    photos = load_sr_photos("photos", split="test", scale=scale)
    pairs = []
    for lr, hr in zip(photos.lr, photos.hr, strict=True):
        height, width = lr.shape[0] // block * block, lr.shape[1] // block * block
        pairs.append((lr[:height, :width], hr[: height * scale, : width * scale]))
    return pairs


def photo_rows(workdir: str | Path, baseline: str | Path | None, random_keys: int = 10):
    from egan_jax.data import to_float, to_uint8
    from egan_jax.evaluate_i2i import _sr_inputs, forward_fn, has_input_map, wrapper_deleted_fn
    from egan_jax.families.egan_image import load_key
    from egan_jax.image_quality import bicubic_upscale, sr_scores
    from egan_jax.train import load_trained
    from egan_jax.unauthorized import UnauthorizedSpec

    config, models, _ = load_trained(workdir)
    key = load_key(config)
    spec = UnauthorizedSpec(
        random_keys=random_keys, near_keys=2, near_materials=2, seed=0, label="evaluate"
    )
    pairs = held_out_photos(config)
    scale = config.model.scale
    rows: list[dict] = []

    def add(name: str, kind: str, outputs: list[np.ndarray]) -> None:
        scores = [
            sr_scores(to_uint8(sr), hr[None], border=scale)
            for sr, (_, hr) in zip(outputs, pairs, strict=True)
        ]
        rows.append(
            {
                "name": name,
                "kind": kind,
                "psnr_y": float(np.mean([s["psnr_y"] for s in scores])),
                "ssim_y": float(np.mean([s["ssim_y"] for s in scores])),
            }
        )

    add("bicubic", "bicubic", [to_float(bicubic_upscale(lr[None], scale)) for lr, _ in pairs])
    if baseline is not None:
        _, base_models, _ = load_trained(baseline)
        forward = forward_fn(base_models["generator"], batch=1)
        add("unprotected baseline", "baseline", [forward(to_float(lr[None])) for lr, _ in pairs])
    forwards = {}  # one compile per photo shape for every input sharing a feature map and lock
    for name, kind, image, feature, lock, inverse in _sr_inputs(config, key, spec):
        if (id(feature), id(lock), id(inverse)) not in forwards:
            forwards[id(feature), id(lock), id(inverse)] = forward_fn(
                models["generator"], 1, feature, lock, inverse
            )
        forward = forwards[id(feature), id(lock), id(inverse)]
        add(name, kind, [forward(np.asarray(image(to_float(lr[None])))) for lr, _ in pairs])
    if has_input_map(models["generator"]):
        forward = wrapper_deleted_fn(models["generator"], batch=1)
        add(
            "input map deleted", "adapter_removed", [forward(to_float(lr[None])) for lr, _ in pairs]
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--baseline")
    parser.add_argument("--random-keys", type=int, default=10)
    args = parser.parse_args(argv)
    rows = photo_rows(args.workdir, args.baseline, args.random_keys)
    out = Path(args.workdir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    (out / "photos.json").write_text(json.dumps(rows, indent=2))
    print("| input | kind | Y-PSNR dB (whole photos) | Y-SSIM |\n|---|---|---:|---:|")
    for row in rows:
        print(f"| {row['name']} | {row['kind']} | {row['psnr_y']:.2f} | {row['ssim_y']:.3f} |")


if __name__ == "__main__":
    main()
