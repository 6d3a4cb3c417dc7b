"""The classifier protection table: near-miss keys, the summary, the goals, the report table."""

from __future__ import annotations

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
