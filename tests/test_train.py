"""Tests for egan_jax/train.py (the generic loop), the DCGAN family and `egan train/sample`."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, TINY_OVERRIDES, subprocess_env, tiny_config
from flax import nnx
from PIL import Image

from egan_jax import train as train_module
from egan_jax.cli import main
from egan_jax.errors import ConfigError
from egan_jax.families import get_family
from egan_jax.logging_utils import read_metrics
from egan_jax.train import load_trained, sample_images, train_and_evaluate

DIGITS = REPO / "experiments" / "dcgan_digits.py"


def param_arrays(models) -> dict[str, np.ndarray]:
    flat = nnx.to_flat_state(nnx.state(models))
    return {"/".join(map(str, path)): np.asarray(value[...]) for path, value in flat}


def assert_identical(models_a, models_b) -> None:
    a, b = param_arrays(models_a), param_arrays(models_b)
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def losses(workdir) -> list[tuple[int, float, float]]:
    return [(r["step"], r["d_loss"], r["g_loss"]) for r in read_metrics(workdir) if "d_loss" in r]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 4-step run, the baseline of the determinism and resumption tests."""
    workdir = tmp_path_factory.mktemp("reference")
    return workdir, train_and_evaluate(tiny_config(), workdir)


def test_a_run_trains_and_writes_its_outputs(reference):
    workdir, result = reference
    assert result.step == 4
    assert set(result.metrics) == {"d_loss", "g_loss", "d_real_logit", "d_fake_logit"}
    records = losses(workdir)
    assert [step for step, _, _ in records] == [1, 2, 3, 4]
    assert all(np.isfinite(d) and np.isfinite(g) for _, d, g in records)
    # Hinge D loss starts near 2 (logits near 0) and the discriminator learns something.
    assert 1.5 < records[0][1] < 2.5
    assert records[-1][1] != records[0][1]
    assert json.loads((workdir / "config.json").read_text())["model"]["width"] == 8
    steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [2, 4]


def test_same_seed_gives_bit_identical_params_and_another_seed_does_not(reference, tmp_path):
    workdir, result = reference
    again = train_and_evaluate(tiny_config(), tmp_path / "again")
    assert_identical(result.models, again.models)
    assert losses(tmp_path / "again") == losses(workdir)
    other = train_and_evaluate(tiny_config("seed=1", "train.steps=1"), tmp_path / "other")
    first = train_and_evaluate(tiny_config("train.steps=1"), tmp_path / "first")
    with pytest.raises(AssertionError):
        assert_identical(first.models, other.models)


def test_resuming_continues_bit_identically(reference, tmp_path):
    workdir, result = reference
    train_and_evaluate(tiny_config("train.steps=2"), tmp_path)
    resumed = train_and_evaluate(tiny_config("train.steps=4"), tmp_path)
    assert resumed.step == 4
    assert_identical(result.models, resumed.models)
    assert losses(tmp_path) == losses(workdir)  # every step logged exactly once
    _, restored, step = load_trained(tmp_path)
    assert step == 4
    assert_identical(result.models, restored)


@pytest.mark.parametrize("how", ["raise", "sigint"])
def test_ctrl_c_saves_the_last_finished_step_then_reraises(reference, tmp_path, monkeypatch, how):
    workdir, result = reference
    family = get_family("dcgan")

    def interrupting_batches(config):
        batches = family.make_batches(config)

        def batch(step, process_index, process_count):
            if step == 2 and how == "sigint":  # honoured once this step is done: saved at 3
                os.kill(os.getpid(), signal.SIGINT)
            if step == 3 and how == "raise":  # raised before step 3 starts: saved at 3
                raise KeyboardInterrupt
            return batches(step, process_index, process_count)

        return batch

    patched = dataclasses.replace(family, make_batches=interrupting_batches)
    monkeypatch.setattr(train_module, "get_family", lambda name: patched)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(tiny_config("checkpoint.every=0"), tmp_path)
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["3"]
    resumed = train_and_evaluate(tiny_config("checkpoint.every=0"), tmp_path)
    assert_identical(result.models, resumed.models)


def test_samples_tensorboard_and_evaluate_hook(tmp_path, monkeypatch):
    family = get_family("dcgan")
    calls = []

    def make_evaluate(config):
        def evaluate(models, key):
            images = family.make_sample(config)(models, key, 6)
            calls.append(images.shape)
            return {"mean_pixel": float(np.mean(np.asarray(images)))}

        return evaluate

    patched = dataclasses.replace(family, make_evaluate=make_evaluate)
    monkeypatch.setattr(train_module, "get_family", lambda name: patched)
    config = tiny_config(
        "log.sample_every=2", "log.tensorboard=true", "eval.enabled=true", "eval.every=2"
    )
    result = train_and_evaluate(config, tmp_path)
    grid = np.asarray(Image.open(tmp_path / "samples" / "step_000004.png"))
    assert grid.shape == (2 + 2 * (8 + 2), 2 + 2 * (8 + 2))  # 4 grey 8×8 samples, 2×2
    assert (tmp_path / "samples" / "step_000002.png").exists()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert calls == [(6, 8, 8, 1), (6, 8, 8, 1)]  # at step 2 and at the end
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert evaluation["step"] == 4 and evaluation["mean_pixel"] == result.evaluation["mean_pixel"]
    assert -1.0 <= evaluation["mean_pixel"] <= 1.0
    assert any("eval/mean_pixel" in record for record in read_metrics(tmp_path))


def test_dcgan_evaluate_hook_writes_the_digits_frechet_distance(tmp_path):
    feature_dir = REPO / ".pytest_cache" / "digits-classifier"  # trained once (~8 s), then cached
    config = tiny_config(
        "train.steps=1",
        "eval.enabled=true",
        "eval.num_samples=300",
        f"eval.feature_dir={feature_dir}",
    )
    result = train_and_evaluate(config, tmp_path)
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert evaluation == {"step": 1, **result.evaluation}
    # An untrained generator is much farther from the digits than held-out real digits are.
    assert 0 < evaluation["digits_fd_real_test"] < evaluation["digits_fd"]
    assert get_family("dcgan").make_evaluate(tiny_config("data.name=tfds:cifar10")) is None


def test_cli_train_then_sample(tmp_path, capsys):
    overrides = [arg for override in TINY_OVERRIDES for arg in ("--set", override)]
    workdir = tmp_path / "run"
    argv = ["train", str(DIGITS), "--workdir", str(workdir), *overrides, "--set", "train.steps=2"]
    assert main(argv) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    out = tmp_path / "grid.png"
    assert main(["sample", "--workdir", str(workdir), "--n", "5", "--out", str(out)]) == 0
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 + 2 * 10, 2 + 3 * 10)  # 5 images: 2 rows of 3
    first = sample_images(workdir, n=5, seed=0)
    np.testing.assert_array_equal(first, sample_images(workdir, n=5, seed=0))
    assert not np.array_equal(first, sample_images(workdir, n=5, seed=1))
    assert first.shape == (5, 8, 8, 1) and first.min() >= -1 and first.max() <= 1


def test_cli_reports_config_and_checkpoint_errors(tmp_path, capsys):
    argv = ["train", str(DIGITS), "--workdir", str(tmp_path), "--set", "train.stpes=3"]
    assert main(argv) == 2
    assert "did you mean train.steps" in capsys.readouterr().err
    assert main(["sample", "--workdir", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "is this a training workdir" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="at least 1"):
        sample_images(tmp_path, n=0)
    with pytest.raises(ConfigError, match="train.batch_size"):
        train_and_evaluate(tiny_config("train.batch_size=0"), tmp_path)


@pytest.mark.slow
def test_sigterm_of_a_real_process_saves_and_the_run_resumes_identically(tmp_path):
    workdir = tmp_path / "killed"
    script = (
        "import sys; from conftest import tiny_config; from egan_jax.train import "
        "train_and_evaluate; train_and_evaluate(tiny_config('train.steps=100000', "
        "'checkpoint.every=0'), sys.argv[1])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(workdir)], env=subprocess_env(), cwd=REPO
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(losses(workdir)) < 3:
            assert process.poll() is None, "the training process died on its own"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) != 0
    finally:
        process.kill()
    steps = [int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]
    assert len(steps) == 1 and steps[0] >= 3
    stopped = steps[0]
    resumed = train_and_evaluate(tiny_config(f"train.steps={stopped + 1}"), workdir)
    straight = train_and_evaluate(tiny_config(f"train.steps={stopped + 1}"), tmp_path / "straight")
    assert_identical(straight.models, resumed.models)
    assert [s for s, _, _ in losses(workdir)] == list(range(1, stopped + 2))
