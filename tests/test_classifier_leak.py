"""classifier_leak: block means survive every shuffle key; the variance split and the attacker."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from egan_jax import classifier_leak
from egan_jax.errors import ShapeError
from egan_jax.keys import SecretKey
from egan_jax.transforms.compose import Pipeline


def test_every_shuffle_key_keeps_the_block_means():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 1)).astype(np.float32)
    for seed in range(3):
        key = SecretKey.from_bytes(bytes([seed]) * 32)
        shuffled = np.asarray(
            Pipeline.from_config({"block": 4, "steps": ["shuffle"], "channels": 1}, key).forward(
                jnp.asarray(x)
            )
        )
        assert not np.allclose(shuffled, x)
        np.testing.assert_allclose(
            classifier_leak.block_means(shuffled, 4), classifier_leak.block_means(x, 4), atol=1e-6
        )


def test_within_block_share_is_zero_for_constant_blocks_and_one_for_zero_mean_blocks():
    coarse = np.random.default_rng(1).uniform(-1, 1, (3, 2, 2, 1))
    constant_blocks = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    assert classifier_leak.within_block_share(constant_blocks, 4) == pytest.approx(0.0, abs=1e-12)
    checker = np.indices((8, 8)).sum(axis=0) % 2 * 2.0 - 1.0  # every 2×2 block has mean 0
    assert classifier_leak.within_block_share(checker[None, :, :, None], 2) == pytest.approx(1.0)
    with pytest.raises(ShapeError, match="blocks"):
        classifier_leak.block_means(constant_blocks, 3)


def test_block_mean_attack_reads_a_class_from_the_means():
    rng = np.random.default_rng(2)
    labels = np.arange(40) % 2
    # class 1 is brighter on average; the values inside each block are noise
    x = rng.uniform(-1, 1, (40, 8, 8, 1)) + 0.5 * labels[:, None, None, None]
    accuracy = classifier_leak.block_mean_attack(x[:30], labels[:30], x[30:], labels[30:], 4)
    assert accuracy >= 0.9
