"""Tests for egan_jax/ema.py and the generator EMA in the generic loop (egan_jax/train.py)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config
from flax import nnx

from egan_jax import ema
from egan_jax.errors import ConfigError
from egan_jax.families import get_family
from egan_jax.train import initial_state, load_trained, sample_images, train_and_evaluate

DECAY = 0.5


class Lock(nnx.Variable):
    """A variable that is neither Param nor BatchStat: copied, never averaged."""


class Tiny(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.linear = nnx.Linear(3, 2, rngs=rngs)
        self.norm = nnx.BatchNorm(2, rngs=rngs)
        self.lock = Lock(jnp.zeros(2))


def arrays(module) -> dict[str, np.ndarray]:
    flat = nnx.to_flat_state(nnx.state(module))
    return {"/".join(map(str, path)): np.asarray(value[...]) for path, value in flat}


def test_update_averages_params_and_batch_stats_and_copies_the_rest():
    average, live = Tiny(nnx.Rngs(0)), Tiny(nnx.Rngs(1))
    live.norm.mean[...] = jnp.array([1.0, 2.0])
    live.lock.set_value(jnp.array([7.0, 8.0]))
    before_avg, before_live = arrays(average), arrays(live)
    ema.update(average, live, jnp.float32(0.75))
    after = arrays(average)
    for name in ("linear/kernel", "linear/bias", "norm/scale", "norm/mean", "norm/var"):
        expected = 0.75 * before_avg[name] + 0.25 * before_live[name]
        np.testing.assert_allclose(after[name], expected, rtol=1e-6, err_msg=name)
    np.testing.assert_array_equal(after["lock"], [7.0, 8.0])
    np.testing.assert_array_equal(arrays(live)["linear/kernel"], before_live["linear/kernel"])


def test_decay_warms_up_then_stays_at_the_configured_value():
    values = [float(ema.decay_at(0.999, step)) for step in (0, 1, 90, 10**6)]
    np.testing.assert_allclose(values[:3], [0.1, 2 / 11, 91 / 100], rtol=1e-6)
    assert values[3] == pytest.approx(0.999)


def test_bad_decay_and_a_family_without_generator_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="train.ema_decay"):
        train_and_evaluate(tiny_config("train.ema_decay=1.0"), tmp_path)
    with pytest.raises(ConfigError, match="set train.ema_decay=0"):
        ema.build(tiny_config("train.ema_decay=0.9"), {"classifier": Tiny(nnx.Rngs(0))})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny DCGAN runs of 4 steps with and without EMA, and one EMA step."""
    root = tmp_path_factory.mktemp("ema")
    config = tiny_config(f"train.ema_decay={DECAY}")
    return {
        "config": config,
        "ema": (root / "ema", train_and_evaluate(config, root / "ema")),
        "plain": (root / "plain", train_and_evaluate(tiny_config(), root / "plain")),
        "one": (
            root / "one",
            train_and_evaluate(
                tiny_config(f"train.ema_decay={DECAY}", "train.steps=1"), root / "one"
            ),
        ),  # fmt: skip
        "root": root,
    }


def test_ema_does_not_change_training(runs):
    trained, plain = arrays(runs["ema"][1].models), arrays(runs["plain"][1].models)
    assert trained.keys() == plain.keys()
    for name in trained:
        np.testing.assert_array_equal(trained[name], plain[name], err_msg=name)


def test_one_step_of_ema_is_the_warm_up_mix_of_initial_and_trained_generator(runs):
    config = runs["config"]
    graphdef, state = initial_state(get_family("dcgan"), config)
    initial = arrays(nnx.merge(graphdef, state)["models"]["generator"])
    workdir, result = runs["one"]
    trained = arrays(result.models["generator"])
    _, models, _ = load_trained(workdir)
    averaged = arrays(models["generator"])
    d = 0.1  # min(DECAY, (1 + 0) / (10 + 0))
    kernel = next(name for name in averaged if name.endswith("kernel"))
    assert not np.array_equal(averaged[kernel], trained[kernel])
    for name in averaged:
        if name.endswith(("kernel", "bias", "scale", "mean", "var")):
            expected = d * initial[name] + (1 - d) * trained[name]
            np.testing.assert_allclose(averaged[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)


def test_ema_resumes_bit_identically_and_is_deterministic(runs):
    root, config = runs["root"], runs["config"]
    resumed = root / "resumed"
    train_and_evaluate(tiny_config(f"train.ema_decay={DECAY}", "train.steps=2"), resumed)
    train_and_evaluate(config, resumed)
    for use_ema in (True, False):
        a = arrays(load_trained(runs["ema"][0], use_ema=use_ema)[1])
        b = arrays(load_trained(resumed, use_ema=use_ema)[1])
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_sampling_and_loading_use_the_ema_generator(runs):
    workdir, result = runs["ema"]
    _, averaged, _ = load_trained(workdir)
    _, raw, _ = load_trained(workdir, use_ema=False)
    raw_arrays, result_arrays = arrays(raw["generator"]), arrays(result.models["generator"])
    for name in raw_arrays:
        np.testing.assert_array_equal(raw_arrays[name], result_arrays[name], err_msg=name)
    assert any(
        not np.array_equal(value, raw_arrays[name])
        for name, value in arrays(averaged["generator"]).items()
    )
    ema_images = sample_images(workdir, n=4)
    raw_images = sample_images(workdir, n=4, use_ema=False)
    assert ema_images.shape == raw_images.shape == (4, 8, 8, 1)
    assert not np.allclose(ema_images, raw_images)
    # Without EMA the run's samples are the trained generator's.
    np.testing.assert_array_equal(
        sample_images(runs["plain"][0], n=4), sample_images(runs["plain"][0], n=4, use_ema=False)
    )
