"""`make demo`: the main job on the bundled default, offline.

Part 1 locks a real photo that scikit-image ships with a key's block-wise transforms and writes one PNG
grid: plain, each transform alone, all three, decrypted with the key, and "decrypted" with a wrong key.
It checks that decryption is bit-exact.

Part 2 (`egan_jax.egan_demo`) trains an unprotected and an EGAN-protected DCGAN on the bundled digits,
evaluates the protected one with the correct key, no key, random keys and near-miss keys, and writes
the report (markdown, JSON, PNG grid) under the same folder, printing the protection table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from egan_jax.keys import SecretKey

DEMO_PASSPHRASE = "egan_jax demo key: never use for real models"


def demo_key(out: Path) -> SecretKey:
    """A reproducible demo key (scrypt of a fixed passphrase and a zero salt), saved beside the outputs."""
    key = SecretKey.from_passphrase(DEMO_PASSPHRASE, bytes(16))
    key.save(out / "demo.key", overwrite=True)
    return key


def bundled_photo(size: int = 128) -> np.ndarray:
    """scikit-image's astronaut (512×512 RGB), resized: uint8 [size, size, 3]."""
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.LANCZOS))


def _display(array: np.ndarray) -> np.ndarray:
    """uint8 for showing: 0-999 FFX codes are scaled down, 8-bit values shown as they are."""
    if array.dtype == np.uint16:
        return np.round(array.astype(np.float64) * 255.0 / 999.0).astype(np.uint8)
    return array.astype(np.uint8)


def save_grid(panels: list[np.ndarray], labels: list[str], path: Path) -> None:
    """One row of equally sized uint8 panels with a caption above each."""
    from PIL import ImageDraw

    padded = [np.pad(p, ((18, 4), (4, 4), (0, 0)), constant_values=255) for p in panels]
    image = Image.fromarray(np.concatenate(padded, axis=1))
    draw = ImageDraw.Draw(image)
    for i, label in enumerate(labels):
        draw.text((i * padded[0].shape[1] + 6, 3), label, fill=(0, 0, 0))
    image.save(path)


def transforms_grid(key: SecretKey, out: Path, *, block: int = 4) -> dict:
    from egan_jax.transforms.compose import Pipeline

    photo = bundled_photo()
    batch = photo[None]
    panels, labels = [photo], ["plain"]
    for steps in (["shuffle"], ["np"], ["ffx"], ["shuffle", "np", "ffx"]):
        pipeline = Pipeline.from_config({"block": block, "steps": steps}, key)
        panels.append(_display(np.asarray(pipeline.forward(batch))[0]))
        labels.append("+".join(steps))
    full = Pipeline.from_config({"block": block, "steps": ["shuffle", "np", "ffx"]}, key)
    locked = full.forward(batch)
    restored = np.asarray(full.inverse(locked))[0]
    exact = bool(np.array_equal(restored, photo))
    panels.append(restored)
    labels.append("decrypted")
    # A wrong key cannot decode the FFX codes at all; without FFX its "decryption" is noise.
    wrong = SecretKey.generate()
    no_ffx = {"block": block, "steps": ["shuffle", "np"]}
    locked_no_ffx = Pipeline.from_config(no_ffx, key).forward(batch)
    panels.append(np.asarray(Pipeline.from_config(no_ffx, wrong).inverse(locked_no_ffx))[0])
    labels.append("wrong key")
    save_grid(panels, labels, out / "transforms.png")
    return {"block": block, "panels": labels, "decryption_exact": exact, "grid": "transforms.png"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--steps", type=int, default=None, help="DCGAN training steps (part 2)")
    parser.add_argument(
        "--quick", action="store_true", help="tiny models and few steps (smoke test)"
    )
    parser.add_argument("--transforms-only", action="store_true", help="skip part 2 (the GAN)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    key = demo_key(args.out)
    print(f"demo key {key.fingerprint} -> {args.out / 'demo.key'} (mode 0600)")
    summary = {"key_fingerprint": key.fingerprint, "transforms": transforms_grid(key, args.out)}
    print(
        f"transforms grid -> {args.out / 'transforms.png'}; decryption exact: "
        f"{summary['transforms']['decryption_exact']}"
    )
    if not args.transforms_only:
        from egan_jax import egan_demo

        steps = args.steps or (4 if args.quick else egan_demo.DEFAULT_STEPS)
        seeds = (0, 1) if args.quick else egan_demo.DEFAULT_SEEDS
        egan = egan_demo.run(args.out, steps=steps, quick=args.quick, seeds=seeds)
        summary["egan"] = egan["summary"]
        summary["egan_quality_over_seeds"] = egan["quality_over_seeds"]
    summary["seconds"] = round(time.perf_counter() - start, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"summary -> {args.out / 'summary.json'} ({summary['seconds']} s)")
    return 0 if summary["transforms"]["decryption_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
