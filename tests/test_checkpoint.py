"""Tests for egan_jax/checkpoint.py, and for how the loop treats existing checkpoints."""

from __future__ import annotations

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import tiny_config
from flax import nnx

from egan_jax.checkpoint import Checkpointer, check_meta, flatten_state, unflatten_state
from egan_jax.config import config_to_dict
from egan_jax.errors import CheckpointError, KeyMismatchError
from egan_jax.train import load_trained, train_and_evaluate


class Block(nnx.Module):
    """Parameters, batch statistics and an RNG stream: every kind of state a run holds."""

    def __init__(self, features: int, *, rngs: nnx.Rngs):
        self.linear = nnx.Linear(3, features, rngs=rngs)
        self.norm = nnx.BatchNorm(features, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x):
        return self.dropout(self.norm(self.linear(x)))


def make_tree(features: int = 4, seed: int = 0):
    model = Block(features, rngs=nnx.Rngs(seed))
    return {
        "models": {"block": model},
        "optimizers": {"block": nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)},
    }


def advance(tree) -> None:
    """One optimizer step, so that moments, counters and statistics are non-trivial."""
    model, optimizer = tree["models"]["block"], tree["optimizers"]["block"]
    grads = nnx.grad(lambda m: jnp.sum(m(jnp.ones((2, 3))) ** 2))(model)
    optimizer.update(model, grads)


def leaves(state):
    return [
        np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
        for x in jax.tree.leaves(state)
    ]


def assert_same(a, b):
    got, want = leaves(a), leaves(b)
    assert len(got) == len(want)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_array_equal(x, y)


def test_flatten_names_leaves_by_path_and_round_trips_keys():
    tree = make_tree()
    state = nnx.state(tree)
    flat = flatten_state(state)
    assert "models/block/linear/kernel" in flat
    assert "optimizers/block/opt_state/0/mu/linear/kernel" in flat
    key_names = [name for name in flat if name.endswith("rngs/key") or "/key" in name]
    assert key_names and all(flat[name].dtype == jnp.uint32 for name in key_names)
    assert_same(unflatten_state(flat, state), state)


def test_save_restore_is_bit_exact(tmp_path):
    tree = make_tree()
    advance(tree)
    checkpointer = Checkpointer(tmp_path / "ckpt", max_to_keep=2)
    checkpointer.save(5, nnx.state(tree), {"config": {"a": 1}})
    checkpointer.wait()

    checkpointer.close()
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: make_tree(seed=1)))
    with Checkpointer(tmp_path / "ckpt") as fresh:
        assert fresh.latest_step() == 5
        meta = fresh.read_meta(5)
        restored = fresh.restore(5, abstract)
    assert meta["config"] == {"a": 1} and meta["step"] == 5
    assert_same(restored, nnx.state(tree))
    # The restored state drives the model exactly like the original.
    merged = nnx.merge(graphdef, restored)
    advance(merged)
    advance(tree)
    assert_same(nnx.state(merged), nnx.state(tree))


def test_keeps_only_the_latest_checkpoints(tmp_path):
    tree = make_tree()
    checkpointer = Checkpointer(tmp_path / "ckpt", max_to_keep=2)
    for step in (1, 2, 3):
        checkpointer.save(step, nnx.state(tree), {"config": {}})
    checkpointer.close()
    with Checkpointer(tmp_path / "ckpt") as fresh:
        assert fresh.all_steps() == [2, 3]


def test_restore_into_a_different_shape_names_the_parameter(tmp_path):
    _, abstract = nnx.split(nnx.eval_shape(lambda: make_tree(features=6)))
    with Checkpointer(tmp_path / "ckpt") as checkpointer:
        checkpointer.save(1, nnx.state(make_tree(features=4)), {"config": {}})
        checkpointer.wait()
        with pytest.raises(
            CheckpointError, match=r"models/block/linear/kernel.*\(3, 4\).*\(3, 6\)"
        ):
            checkpointer.restore(1, abstract)


def test_missing_or_corrupt_files_raise_checkpoint_error(tmp_path):
    checkpointer = Checkpointer(tmp_path / "ckpt")
    checkpointer.save(1, nnx.state(make_tree()), {"config": {}})
    checkpointer.save(2, nnx.state(make_tree()), {"config": {}})
    checkpointer.close()
    _, abstract = nnx.split(nnx.eval_shape(make_tree))
    shutil.rmtree(tmp_path / "ckpt" / "1" / "state")
    (tmp_path / "ckpt" / "2" / "meta" / "metadata").write_text("{truncated")
    for path in (tmp_path / "ckpt" / "2" / "state").rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.write_bytes(b"garbage")
    with Checkpointer(tmp_path / "ckpt") as damaged:
        for action in (
            lambda: damaged.restore(1, abstract),
            lambda: damaged.read_meta(2),
            lambda: damaged.restore(2, abstract),
        ):
            with pytest.raises(CheckpointError, match="corrupt or incomplete") as error:
                action()
            assert len(str(error.value)) < 400  # a sentence, not an orbax dump


def test_check_meta_refuses_other_keys_and_other_configs():
    config = config_to_dict(tiny_config())
    meta = {"config": config, "key_fingerprint": "fp-A"}
    check_meta(meta, config=config, key_fingerprint="fp-A", where="here")
    with pytest.raises(KeyMismatchError, match="fp-A.*fp-B"):
        check_meta(meta, config=config, key_fingerprint="fp-B", where="here")
    with pytest.raises(KeyMismatchError):
        check_meta(meta, config=config, key_fingerprint=None, where="here")
    wider = config_to_dict(tiny_config("model.width=16"))
    with pytest.raises(CheckpointError, match="model.width: 8 -> 16"):
        check_meta(meta, config=wider, key_fingerprint="fp-A", where="here")


def test_a_run_never_restarts_over_a_checkpoint_of_another_config(tmp_path):
    config = tiny_config("train.steps=2")
    train_and_evaluate(config, tmp_path)
    saved = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    with pytest.raises(CheckpointError, match="model.width"):
        train_and_evaluate(tiny_config("train.steps=4", "model.width=16"), tmp_path)
    with pytest.raises(CheckpointError, match="seed"):
        train_and_evaluate(tiny_config("train.steps=4", "seed=1"), tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == saved
    with pytest.raises(KeyMismatchError):
        load_trained(tmp_path, key_fingerprint="some-other-key")
    _, _, step = load_trained(tmp_path)
    assert step == 2
