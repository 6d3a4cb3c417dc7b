"""What block-wise pixel shuffling leaves in the clear, whatever the key.

A shuffle permutes values *inside* each M×M block, so every key keeps each block's mean (and its
histogram). Two numbers per block size say how much that is on a dataset:

* the within-block share of the image variance — the only part a shuffle moves; the rest, the
  block means, is identical under every key;
* the test accuracy of a key-free attacker that classifies the block means (logistic regression on
  the training split): an upper bound on what no shuffle key can hide.

    python -m egan_jax.classifier_leak --data digits --blocks 2,4,8

On the bundled digits (32×32, upscaled from scikit-learn's 8×8) this explains why shuffle-only
models answer other keys well: see the README's classifier section.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from egan_jax.errors import ShapeError


def block_means(images: np.ndarray, block_size: int) -> np.ndarray:
    """``[N, H/M, W/M, C]``: the mean of every M×M block of ``images`` ``[N, H, W, C]``."""
    n, height, width, channels = images.shape
    m = block_size
    if height % m or width % m:
        raise ShapeError(
            f"images of {height}×{width} do not split into {m}×{m} blocks; use a block size "
            "that divides the image size"
        )
    return images.reshape(n, height // m, m, width // m, m, channels).mean(axis=(2, 4))


def within_block_share(images: np.ndarray, block_size: int) -> float:
    """Share of the per-image variance that lies inside blocks (what a shuffle can move)."""
    m = block_size
    centred = images - images.mean(axis=(1, 2, 3), keepdims=True)
    means = np.repeat(np.repeat(block_means(images, m), m, axis=1), m, axis=2)
    return float(np.mean((images - means) ** 2) / np.mean(centred**2))


def block_mean_attack(train, train_labels, test, test_labels, block_size: int) -> float:
    """Test accuracy of logistic regression on block means (no key: same for every key)."""
    from sklearn.linear_model import LogisticRegression

    def features(x):
        return block_means(x, block_size).reshape(len(x), -1)

    model = LogisticRegression(max_iter=2000).fit(features(train), train_labels)
    return float(model.score(features(test), test_labels))


def leak_table(data: str, blocks: tuple[int, ...], image_size: int = 32, channels: int = 1):
    from egan_jax.data import to_float
    from egan_jax.data_labeled import load_labeled

    def load(split):
        x, y = load_labeled(data, split, image_size=image_size, channels=channels)
        return to_float(x), np.asarray(y)

    (x, y), (xt, yt) = load("train"), load("test")
    return [
        {
            "block": m,
            "within_block_variance_share": within_block_share(xt, m),
            "block_mean_attack_accuracy": block_mean_attack(x, y, xt, yt, m),
        }
        for m in blocks
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m egan_jax.classifier_leak", description=__doc__)
    parser.add_argument("--data", default="digits", help="a labelled dataset (digits, lfw, ...)")
    parser.add_argument("--blocks", default="2,4,8")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1)
    args = parser.parse_args(argv)
    blocks = tuple(int(b) for b in args.blocks.split(","))
    for line in leak_table(args.data, blocks, args.image_size, args.channels):
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
