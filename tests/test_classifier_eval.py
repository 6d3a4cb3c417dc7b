"""The classifier protection table: near-miss keys, the summary, the goals, the report table."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from egan_jax import classifier_eval
from egan_jax.transforms.compose import Pipeline


def _row(kind: str, accuracy: float) -> dict:
    return {"name": kind, "kind": kind, "accuracy": accuracy, "note": ""}


def test_near_miss_keys_flip_one_secret_bit_and_give_fresh_material():
    from egan_jax.keys import SecretKey

    owner = SecretKey.from_bytes(bytes(range(32)))
    config = {"block": 4, "steps": ["shuffle"], "channels": 1}
    own = Pipeline.from_config(config, owner).materials[0][1].permutation
    near = classifier_eval.near_miss_keys(owner, 4)
    assert [bit for bit, _ in near] == [0, 131, 255, 1]
    for _, key in near:
        a = np.unpackbits(np.frombuffer(owner._secret, np.uint8))
        b = np.unpackbits(np.frombuffer(key._secret, np.uint8))
        assert np.count_nonzero(a != b) == 1
        moved = Pipeline.from_config(config, key).materials[0][1].permutation
        assert np.count_nonzero(moved != own) > 8  # HKDF: unrelated, not one swap away


def test_summary_reduces_repeated_kinds_and_goals_judge_them():
    rows = [
        _row("baseline", 0.98),
        _row("authorized", 0.975),
        _row("no_key", 0.12),
        _row("random_key", 0.10),
        _row("random_key", 0.14),
        _row("near_key", 0.09),
        _row("near_material_shuffle", 0.95),
    ]
    summary = classifier_eval.summarize(rows, 0.1)
    assert summary["plain_model"] == 0.98 and summary["correct_key"] == 0.975
    assert summary["random_keys_mean"] == pytest.approx(0.12)
    assert summary["random_keys_sd"] == pytest.approx(0.02)  # population sd
    assert summary["random_keys_worst"] == 0.14
    assert summary["near_material_shuffle_worst"] == 0.95
    goals = classifier_eval.goals(summary)
    assert list(goals.values()) == [True, True]  # near-miss *material* is not judged
    worse = classifier_eval.goals({**summary, "correct_key": 0.969, "random_keys_worst": 0.21})
    assert list(worse.values()) == [False, False]


def test_markdown_table_shows_percent_and_points_against_the_plain_model():
    table = classifier_eval.markdown_table([_row("authorized", 0.972)], 0.983)
    assert "| authorized | authorized | 97.2 | -1.1 |" in table
    assert "| – |" in classifier_eval.markdown_table([_row("x", 0.5)], None)


def test_ffx_probes_swap_only_the_table_or_only_the_positions():
    from egan_jax.config import apply_overrides
    from egan_jax.families import classifier
    from egan_jax.keys import SecretKey
    from egan_jax.transforms.block import pixel_grid

    config = apply_overrides(
        classifier.default_config(),
        [
            "model.transform.key_file=unused.key",  # the key is passed, the file never read
            "model.transform.steps=ffx",
            "model.transform.block=2",
            "loss.near_miss_keys=2",
        ],
    )
    owner = classifier.load_pipeline(config, SecretKey.from_bytes(bytes(range(32))))
    levels = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1))
    plain = pixel_grid()[levels]
    keyed = np.asarray(owner.forward(plain))
    owner_mask = dict(owner.materials)["ffx"].position_mask(8, 8).reshape(8, 8, 1)
    rows = classifier_eval.ffx_probe_rows(
        config, owner, jax.random.key(0), plain, lambda n, k, x: {"kind": k, "images": x}
    )
    assert [r["kind"] for r in rows] == ["ffx_other_table", "ffx_other_mask"] * 2
    for r in rows:
        changed = np.any(r["images"] != plain, axis=0)  # positions the probe encrypts
        if r["kind"] == "ffx_other_table":  # owner's positions, another table
            assert changed.any() and not np.any(changed & ~owner_mask)
            assert not np.array_equal(r["images"], keyed)
        else:  # owner's table (same codes for a value), maybe other positions
            both = changed & owner_mask
            np.testing.assert_array_equal(r["images"][:, both], keyed[:, both])
