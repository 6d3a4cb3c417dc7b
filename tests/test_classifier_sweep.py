"""The classifier sweep's table: one line per (transform, block[, key]), and its argument checks."""

from __future__ import annotations

import pytest

from egan_jax import classifier_sweep
from egan_jax.errors import ConfigError


def _line(key: str | None = None, correct: float = 0.97) -> dict:
    line = {
        "transform": "ffx",
        "block": 4,
        "plain_model": 0.989,
        "correct_key": correct,
        "plain_images": 0.2,
        "random_keys_mean": 0.3,
        "random_keys_sd": 0.1,
        "random_keys_worst": 0.5,
        "goals": {"correct_key": False, "plain_images": False},
    }
    return line if key is None else {**line, "key": key}


def test_one_key_table_has_no_key_column():
    table = classifier_sweep.markdown([_line()])
    head, rule, row = table.splitlines()
    assert "| key |" not in head and head.count("|") == rule.count("|")
    assert row.startswith("| ffx | 4 | 98.9 | 97.0 | 20.0 | 30.0 ± 10.0 (50.0) |")


def test_several_keys_get_a_column_each_line_its_fingerprint():
    table = classifier_sweep.markdown([_line("egk1-aa"), _line("egk1-bb", correct=0.989)])
    head, rule, *rows = table.splitlines()
    assert "| block | key | plain model |" in head and head.count("|") == rule.count("|")
    assert rows[0].startswith("| ffx | 4 | egk1-aa | 98.9 | 97.0 |")
    assert rows[1].startswith("| ffx | 4 | egk1-bb | 98.9 | 98.9 |")
    assert all(row.count("|") == head.count("|") for row in rows)


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown transform"):
        classifier_sweep.sweep("x.py", key_file="k", out=tmp_path, transforms=("rot13",))
    with pytest.raises(ConfigError, match="at least one key"):
        classifier_sweep.sweep("x.py", key_file=(), out=tmp_path)
