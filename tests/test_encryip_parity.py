"""The k-fold parity check (egan_jax.encryip.parity): folds partition the pool, stratified and
deterministic; the fold trainer is `egan train`'s step; the report holds every field and is
reproduced exactly; bad input is refused with a message naming the fix."""

from __future__ import annotations

import json
import random

import jax
import numpy as np
import pytest

from egan_jax.config import apply_overrides
from egan_jax.encryip import heads, parity
from egan_jax.encryip import parity_stats as stats
from egan_jax.encryip.group import TEST_GROUP_64
from egan_jax.encryip.registry import Registry
from egan_jax.errors import ConfigError
from egan_jax.families import encryip as family

TINY = (
    "data.image_size=8",
    "model.width=8",
    "model.per_class=2",
    "model.num_fakes=8",
    "model.codebook_label=tiny",
    "loss.triggers_per_step=4",
    "loss.eval_batch_size=256",
    "train.batch_size=16",
    "train.steps=6",
    "optim.learning_rate=0.01",
    "log.quiet=true",
    "log.tensorboard=false",
    "checkpoint.every=0",
)


@pytest.fixture(scope="module")
def registry_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity_keys")
    registry = Registry.create(root / "owner.json", group=TEST_GROUP_64, rng=random.Random(5))
    for i in range(2):
        registry.issue_user(f"user{i}", rng=random.Random(200 + i))
    return root / "owner.json"


@pytest.fixture(scope="module")
def config():
    return apply_overrides(family.default_config(), list(TINY))


def test_folds_partition_stratified_and_deterministic():
    labels = np.repeat(np.arange(10), np.arange(20, 30))  # unequal class sizes
    folds = parity.stratified_folds(labels, 5, seed=0)
    assert folds.shape == labels.shape and set(np.unique(folds)) == set(range(5))
    sizes = np.bincount(folds)
    assert sizes.sum() == len(labels) and sizes.max() - sizes.min() <= 1
    for y in range(10):
        per_class = np.bincount(folds[labels == y], minlength=5)
        assert per_class.max() - per_class.min() <= 1
    np.testing.assert_array_equal(folds, parity.stratified_folds(labels, 5, seed=0))
    assert not np.array_equal(folds, parity.stratified_folds(labels, 5, seed=1))


@pytest.mark.parametrize("folds", [0, 1, -3])
def test_too_few_folds_is_refused(folds):
    with pytest.raises(ConfigError, match="folds"):
        parity.stratified_folds(np.arange(40) % 4, folds, seed=0)


def test_more_folds_than_a_class_has_examples_is_refused():
    with pytest.raises(ConfigError, match="fewer folds"):
        parity.stratified_folds(np.array([0, 0, 0, 1, 1, 1, 1]), 4, seed=0)


def test_cli_refuses_bad_folds(capsys):
    code = parity.main(["experiments/encryip_digits.py", "--folds", "1", "--out", "unused"])
    assert code == 2 and "at least 2 folds" in capsys.readouterr().err


def test_cli_needs_a_registry(capsys):
    code = parity.main(["experiments/encryip_digits.py", "--folds", "2", "--out", "unused"])
    assert code == 2 and "--registry" in capsys.readouterr().err


def test_mcnemar_and_bootstrap():
    plain = np.array([1, 1, 1, 1, 0, 0, 1, 1], bool)
    other = np.array([0, 0, 0, 1, 0, 0, 1, 1], bool)
    result = stats.mcnemar_exact(plain, other)
    assert result == {"plain_only": 3, "other_only": 0, "p_value": 0.25}
    assert stats.mcnemar_exact(plain, plain)["p_value"] == 1.0
    diff = other.astype(float) - plain
    low, high = stats.paired_bootstrap(diff, resamples=1000, seed=0)
    assert low <= diff.mean() <= high <= 0.0
    assert (low, high) == stats.paired_bootstrap(diff, resamples=1000, seed=0)
    assert stats.paired_bootstrap(np.zeros(50)) == (0.0, 0.0)


@pytest.mark.slow
def test_fold_trainer_is_the_engine_step(tmp_path, config, registry_path):
    """On the train split the fold trainer gives `train_and_evaluate`'s parameters exactly."""
    from flax import nnx

    from egan_jax.families import classifier as plain
    from egan_jax.train import train_and_evaluate

    cfg = parity.training_config(config, registry_path, seed=3)
    cfg = apply_overrides(cfg, ["train.steps=3"])
    engine = train_and_evaluate(cfg, tmp_path / "run").models
    images, labels = plain._load(cfg, cfg.data.split)
    ours, metrics = parity.FoldTrainer(cfg).train(cfg, images, labels)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and "baseline_loss" in metrics
    for name in ("classifier", "baseline"):
        a, b = nnx.state(engine[name], nnx.Param), nnx.state(ours[name], nnx.Param)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def report(tmp_path_factory, config, registry_path):
    out = tmp_path_factory.mktemp("parity")
    result = parity.run_parity(config, registry_path, folds=2, seeds=[0], out=out, resamples=200)
    return out, result


def test_report_fields_and_files(report):
    out, result = report
    s = result["summary"]
    assert s["images"] == 1797 and s["folds"] == 2 and s["seeds"] == [0]
    assert s["users"] == ["user0", "user1"]
    row = s["per_seed"][0]
    assert set(row["accuracy"]) == {"plain", "owner", "user0", "user1"}
    assert [f["images"] for f in row["folds"]] == [899, 898]
    for key in ("gap_points", "gap_ci95_points", "mcnemar", "index_spread", "users_agree"):
        assert key in row
    pooled = s["pooled_over_seeds"]
    low, high = pooled["gap_ci95_points"]
    assert low <= pooled["gap_points"] <= high
    assert pooled["gap_points"] == pytest.approx(100 * (pooled["worst_user"] - pooled["plain"]))
    assert all(0.0 <= r["trigger_hit_rate"] <= 1.0 for r in result["fold_runs"])
    assert all("baseline_accuracy" in r["train_metrics"] for r in result["fold_runs"])
    assert json.loads((out / "parity.json").read_text())["summary"] == s
    assert "gap" in (out / "parity.md").read_text()
    cached = [np.load(out / "folds" / f"seed0_fold{f}.npz") for f in range(2)]
    assert sum(len(c["plain"]) for c in cached) == 1797
    text = (out / "parity.json").read_text()
    assert "secret" not in text and '"x"' not in text


def test_report_is_deterministic(report, tmp_path, config, registry_path):
    _, first = report
    again = parity.run_parity(
        config, registry_path, folds=2, seeds=[0], out=tmp_path, resamples=200
    )
    assert again["summary"] == first["summary"]


def test_rerun_reuses_the_folds(report, config, registry_path):
    out, first = report
    again = parity.run_parity(config, registry_path, folds=2, seeds=[0], out=out, resamples=200)
    assert again["summary"] == first["summary"]
    assert all(t["seconds"] is None for t in again["fold_runs"])


def _batch_stats_after_one_step(config, registry_path, *overrides):
    from flax import nnx

    from egan_jax.data import to_float
    from egan_jax.families import classifier as plain
    from egan_jax.train import initial_state

    cfg = apply_overrides(config, [f"model.registry={registry_path}", *overrides])
    tree = nnx.merge(*initial_state(family.FAMILY, cfg))
    images, labels = plain._load(cfg, "train")
    batch = {"images": to_float(images[:16]), "labels": labels[:16]}
    step = nnx.jit(family.make_train_step(cfg))
    step(tree["models"], tree["optimizers"], batch, jax.random.key(1))
    return jax.tree.leaves(nnx.state(tree["models"]["classifier"], nnx.BatchStat))


def test_running_mode_keeps_triggers_out_of_batch_norm(config, registry_path):
    """With ``trigger_batch_norm=running`` the statistics are those of the natural images alone
    (as with no triggers at all); with ``batch`` the triggers change them."""
    without = _batch_stats_after_one_step(config, registry_path, "loss.triggers_per_step=0")
    for mode, same in (("running", True), ("batch", False)):
        stats_ = _batch_stats_after_one_step(
            config, registry_path, f"loss.trigger_batch_norm={mode}"
        )
        equal = all(np.array_equal(a, b) for a, b in zip(stats_, without, strict=True))
        assert equal == same, mode


def test_unknown_trigger_batch_norm_is_refused(config, registry_path):
    cfg = apply_overrides(
        config, [f"model.registry={registry_path}", "loss.trigger_batch_norm=mixed"]
    )
    with pytest.raises(ConfigError, match="trigger_batch_norm"):
        family.make_train_step(cfg)


def test_combine_runs_of_other_seeds(report, tmp_path, config, registry_path):
    out, first = report
    other = tmp_path / "seed1"
    second = parity.run_parity(config, registry_path, folds=2, seeds=[1], out=other, resamples=200)
    both = parity.combine_runs(
        config, registry_path, [out, other], out=tmp_path / "both", resamples=200
    )
    s = both["summary"]
    assert s["seeds"] == [0, 1]
    assert s["per_seed"][0]["accuracy"] == first["summary"]["per_seed"][0]["accuracy"]
    assert s["per_seed"][1]["accuracy"] == second["summary"]["per_seed"][0]["accuracy"]
    with pytest.raises(ConfigError, match="seed 0"):
        parity.combine_runs(config, registry_path, [out, out], out=tmp_path / "dup")


def test_tied_head_starts_each_class_from_one_column():
    from flax import nnx

    head = nnx.Linear(6, 7, rngs=nnx.Rngs(0))
    before = np.asarray(head.kernel[...])
    table = np.array([[4, 0], [2, 5]])  # 2 classes x 2 indices; 1, 3, 6 are Fakes
    heads.tie_head(head, table, noise=0.1)
    after = np.asarray(head.kernel[...])
    for y in range(2):
        for j in table[y]:
            np.testing.assert_allclose(after[:, j], before[:, table[y, 0]] + 0.1 * before[:, j])
    np.testing.assert_array_equal(after[:, [1, 3, 6]], before[:, [1, 3, 6]])


def test_unknown_head_init_is_refused(config, registry_path):
    cfg = apply_overrides(config, [f"model.registry={registry_path}", "model.head_init=zeros"])
    with pytest.raises(ConfigError, match="head_init"):
        family.make_train_step(cfg)


def test_partial_summary_pools_the_finished_folds(tmp_path):
    from egan_jax.encryip.parity_partial import partial_summary

    labels = np.repeat(np.arange(4), 10)
    fold_of = parity.stratified_folds(labels, 2, seed=0)
    (tmp_path / "folds").mkdir()
    held = fold_of == 1
    wrong = np.flatnonzero(held)[:3]  # the user key misses 3 held-out images, plain misses none
    user = labels.copy()
    user[wrong] = (user[wrong] + 1) % 4
    np.savez(
        tmp_path / "folds" / "seed2_fold1.npz",
        tag=np.str_("t"),
        plain=labels[held],
        winner=labels[held],
        **{"user:a": user[held], "user:b": labels[held]},
    )
    s = partial_summary(labels, fold_of, [tmp_path], resamples=200)
    assert s["folds_used"] == [(2, 1)] and s["held_out_predictions"] == held.sum()
    assert s["gap_points"] == pytest.approx(-100 * 3 / held.sum())
    assert s["mcnemar"]["plain_only"] == 3 and s["mcnemar"]["other_only"] == 0
    low, high = s["gap_ci95_points"]
    assert low <= s["gap_points"] <= high <= 0
    with pytest.raises(ConfigError, match="no finished folds"):
        partial_summary(labels, fold_of, [tmp_path / "none"], resamples=10)
