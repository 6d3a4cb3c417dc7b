"""Attacks on the EGAN-protected SRGAN / CycleGAN (attacks_i2i.py, attack_runs_i2i.py): tiny
widths, a few steps; one protected SRGAN run shared by the module."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from egan_jax import attack_runs_i2i as runs
from egan_jax import attacks_i2i
from egan_jax.attacks import sparsity
from egan_jax.config import apply_overrides
from egan_jax.errors import ConfigError
from egan_jax.families import get_family

TINY = {
    "egan_srgan": (
        "model.width=4", "model.num_blocks=0", "model.discriminator_width=4",
        "data.image_size=32", "train.batch_size=4", "loss.pretrain_steps=10",
    ),
    "egan_cyclegan": (
        "model.width=2", "model.num_blocks=0", "model.discriminator_width=2",
        "data.image_size=32", "train.batch_size=1", "loss.pool_size=2",
    ),
}  # fmt: skip
COMMON = (
    "train.steps=4", "log.every=2", "log.sample_every=0", "log.tensorboard=false",
    "log.quiet=true", "checkpoint.every=0", "loss.unauthorized.random_keys=1",
    "loss.unauthorized.near_keys=0", "loss.unauthorized.near_materials=0",
)  # fmt: skip


def train(family: str, workdir: Path, *overrides: str):
    from egan_jax.train import train_and_evaluate

    config = get_family(family).default_config()
    config = apply_overrides(config, [*COMMON, *TINY[family], *overrides])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # srgan's "no VGG weights" notice
        train_and_evaluate(config, workdir)
    return workdir


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
    return train("egan_srgan", tmp_path_factory.mktemp("attacks_i2i") / "egan_srgan")


def test_pruning_zeroes_exactly_the_fraction(sr_run):
    from egan_jax.attacks import prune_model
    from egan_jax.train import load_trained

    _, models, _ = load_trained(sr_run)
    generator = models["generator"]
    params = nnx.state(generator, nnx.Param)
    count = sum(x.size for x in jax.tree_util.tree_leaves(params) if x.ndim >= 2)
    assert generator.adapter is not None  # the input map is pruned with the network
    prune_model(generator, 0.3)
    assert sparsity(nnx.state(generator, nnx.Param)) == pytest.approx(round(0.3 * count) / count)
    rows = runs.attack_prune(sr_run, fractions=(0.5,))
    assert [r["name"] for r in rows] == ["pruned 50% (correct key)", "pruned 50% (no key)"]
    assert all(np.isfinite(r["psnr_y"]) for r in rows) and "sparsity 0.500" in rows[0]["note"]


def test_search_picks_the_best_key(sr_run, monkeypatch):
    seen = []
    original = runs.Scorer.__call__

    def spy(self, forward, transform=None):
        scores = original(self, forward, transform)
        seen.append(scores["psnr_y"])
        return scores

    monkeypatch.setattr(runs.Scorer, "__call__", spy)
    (row,) = runs.attack_search(sr_run, candidates=3)
    assert len(seen) == 3 and row["psnr_y"] == max(seen)
    assert "48! shuffles × 2^48 NP masks" in row["note"]
    stored = json.loads((sr_run / "attacks" / "search.json").read_text())
    assert stored["rows"] == [row]


def test_search_and_prune_run_the_thiefs_builds_with_the_key_inverse(tmp_path, monkeypatch):
    """With the `key_inverse` input map and the deep lock, a thief trying a key builds that key's
    inverse and lock; pruning's no-key row is the keyless build (neither)."""
    from egan_jax import deep_lock
    from egan_jax import evaluate_i2i as ev

    workdir = train(
        "egan_srgan", tmp_path / "run", "model.adapter=key_inverse", "model.deep_lock=up1,up2"
    )
    calls, real = [], ev.forward_fn
    monkeypatch.setattr(ev, "forward_fn", lambda g, *a, **kw: calls.append(kw) or real(g, *a, **kw))
    runs.attack_search(workdir, candidates=2)
    assert len(calls) == 2 and all(callable(c["key_inverse"]) for c in calls)
    prints = {c["lock"].key_fingerprint for c in calls}
    assert len(prints) == 2 and all(isinstance(c["lock"], deep_lock.DeepLock) for c in calls)
    calls.clear()
    runs.attack_prune(workdir, fractions=(0.5,))
    no_key = [c for c in calls if c.get("lock") is deep_lock.NO_LOCK]
    assert len(no_key) == 1 and no_key[0]["key_inverse"] is None


def test_sites_estimation_learns_channel_maps_where_the_locks_sit(tmp_path):
    """`egan attack estimate --adapter sites` on an image family: the white-box thief's C×C maps at
    the deep-lock sites of the stolen generator; a run without sites is a clear error."""
    from egan_jax.cli import main

    workdir = train("egan_srgan", tmp_path / "run", "model.deep_lock=up1,up2")
    argv = ["attack", "estimate", "--adapter", "sites", "--steps", "2", "--workdir", str(workdir)]
    assert main(argv) == 0
    (row,) = json.loads((workdir / "attacks" / "estimate_sites.json").read_text())["rows"][:1]
    assert (
        row["name"].startswith("key estimation: learned channel maps") and "2 sites" in row["note"]
    )
    assert np.isfinite(row["psnr_y"])
    plain = train("egan_srgan", tmp_path / "plain", "model.deep_lock=")
    with pytest.raises(ConfigError, match="needs deep-lock sites"):
        runs.attack_estimate(plain, steps=1, adapter="sites", with_scratch=False)


def test_finetune_config_is_the_thiefs_budget(sr_run):
    from egan_jax.config import read_config

    source = read_config(sr_run / "config.json")
    thief = attacks_i2i.finetune_config(source, sr_run, keep_discriminator=False)
    scratch = attacks_i2i.finetune_config(source, sr_run, from_scratch=True)
    assert thief.family == "egan_attack_srgan" and thief.train.steps == source.train.steps // 2
    assert thief.optim.learning_rate == pytest.approx(0.1 * source.optim.learning_rate)
    assert scratch.optim.learning_rate == source.optim.learning_rate
    assert scratch.model.source_workdir is None and thief.model.data_fraction == 0.1
    assert thief.loss.pretrain_steps == 0 and not hasattr(thief.loss, "unauthorized")
    batch = attacks_i2i.make_batches(thief)(0, 0, 1)
    assert batch["lr"].shape == (4, 8, 8, 3) and "adversarial" in batch


def test_estimation_trains_only_the_adapter_and_is_deterministic(sr_run):
    from egan_jax.attacks import BlockAdapter
    from egan_jax.config import read_config
    from egan_jax.train import load_trained

    source = read_config(sr_run / "config.json")
    share = attacks_i2i.make_batches(attacks_i2i.finetune_config(source, sr_run))
    _, models, _ = load_trained(sr_run)
    before = jax.tree_util.tree_map(np.array, nnx.state(models["generator"]))
    loss = attacks_i2i.TASK_LOSSES["egan_srgan"](source)
    adapters = []
    for _ in range(2):
        adapter = BlockAdapter(4, 3, rngs=nnx.Rngs(0))
        history = attacks_i2i.estimate_adapter(
            adapter, {"generator": models["generator"]}, loss,
            (share(0, 0, 1) for _ in range(3)), steps=3, learning_rate=1e-3,
        )  # fmt: skip
        adapters.append(nnx.state(adapter))
    assert len(history) == 3 and history[-1] < history[0]
    jax.tree_util.tree_map(np.testing.assert_array_equal, *adapters)
    after = nnx.state(models["generator"])
    jax.tree_util.tree_map(np.testing.assert_array_equal, before, after)  # frozen


@pytest.mark.slow
def test_finetune_and_estimate_rows(sr_run):
    rows = runs.attack_finetune(sr_run, steps=1)
    names = [r["name"] for r in rows]
    assert names == [
        "fine-tune with D (no key)", "fine-tune with D (owner's correct key)",
        "fine-tune without D (no key)", "fine-tune without D (owner's correct key)",
        "from scratch, same data and budget",
    ]  # fmt: skip
    assert all({"psnr_y", "ssim_y", "kind"} <= set(r) for r in rows)
    estimate = runs.attack_estimate(sr_run, steps=1)
    assert estimate[0]["kind"] == "attack_estimate" and "loss" in estimate[0]["note"]
    assert estimate[1] == rows[-1]  # the same from-scratch attacker (same data and budget)


def test_report_renders_the_attack_rows(sr_run, tmp_path):
    from egan_jax.evaluate_i2i import evaluate_workdir

    runs.attack_prune(sr_run, fractions=(0.9,))
    report = evaluate_workdir(sr_run, out=tmp_path / "report", random_keys=1, near_keys=0,
                              near_materials=0)  # fmt: skip
    assert any(r["name"] == "pruned 90% (no key)" for r in report["attacks"])
    assert "## Attacks" in (tmp_path / "report" / "report.md").read_text()


def test_dcgan_only_attack_or_other_family_is_a_clear_error(sr_run, tmp_path):
    from egan_jax.cli import egan_cmd

    args = argparse.Namespace(attack="watermark-overwrite", workdir=str(sr_run), key=None,
                              cache_dir=None, seed=0, steps=None, candidates=2,
                              lr_scale=None)  # fmt: skip
    with pytest.raises(ConfigError, match="DCGAN-only.*prune"):
        egan_cmd.run_attack(args)
    other = tmp_path / "dcgan"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"family": "dcgan"}))
    with pytest.raises(ConfigError, match="not an EGAN image family"):
        attacks_i2i.task_of(type("C", (), {"family": "dcgan"})())


@pytest.mark.slow
def test_cyclegan_attacks_end_to_end(tmp_path, cheap_cycle_features):
    workdir = train("egan_cyclegan", tmp_path / "egan_cyclegan")
    rows = runs.attack_estimate(workdir, steps=1) + runs.attack_search(workdir, candidates=2)
    assert all(np.isfinite(r["fd_a_to_b"]) for r in rows)
    assert [r["kind"] for r in rows] == ["attack_estimate", "attack_scratch", "attack_search"]
