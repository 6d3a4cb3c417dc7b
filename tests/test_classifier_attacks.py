"""Attacks on a key-protected classifier: key space, block adapter, key search, fine-tuning."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import classifier_config
from flax import nnx

from egan_jax import classifier_attacks as attacks
from egan_jax.classifier_eval import transformed
from egan_jax.classifier_lock import block_matrix
from egan_jax.data import to_float
from egan_jax.errors import ConfigError
from egan_jax.families import classifier
from egan_jax.keys import SecretKey

TINY = (
    "data.name=lfw",
    "data.image_size=16",
    "model.width=8",
    "train.batch_size=8",
    "model.transform.block=2",
    "model.transform.steps=shuffle,np",
)


@pytest.fixture(scope="module")
def key_file(classifier_key_file):
    return classifier_key_file


def _config(key_file, *overrides):
    return classifier_config(key_file, TINY, *overrides)


def _tiny_run(key_file, tmp_path, *overrides):
    """A 2-step protected run in ``tmp_path/run`` (no baseline, no checkpoints, no logs)."""
    from egan_jax.train import train_and_evaluate

    quiet = ("log.quiet=true", "log.tensorboard=false", "checkpoint.every=0", "eval.enabled=false")
    config = _config(key_file, "model.baseline=false", "train.steps=2", *quiet, *overrides)
    train_and_evaluate(config, tmp_path / "run")
    return tmp_path / "run"


def test_key_space_sizes():
    assert attacks.key_space(("shuffle", "np"), 2, 1) == (
        384,
        "4! shuffles × 2^4 NP masks = 384",
    )
    assert attacks.key_space(("shuffle",), 4, 1)[0] == math.factorial(16)
    assert attacks.key_space(("np",), 2, 3)[0] == 2**12
    size, text = attacks.key_space(("shuffle", "np", "ffx"), 2, 1)
    assert size is None and "256-bit AES key" in text and "not enumerable" in text


def test_attacker_data_is_a_seeded_fraction(key_file):
    config = _config(key_file)
    a, b = attacks.attacker_data(config, 0.1, 0), attacks.attacker_data(config, 0.1, 0)
    np.testing.assert_array_equal(a.images, b.images)
    assert len(a.labels) == 16  # 10% of lfw's 160 training images
    assert len(attacks.attacker_data(config, 0.001, 0).labels) == 2  # at least one per class
    assert not np.array_equal(attacks.attacker_data(config, 0.1, 1).labels, a.labels) or not (
        np.array_equal(attacks.attacker_data(config, 0.1, 1).images, a.images)
    )
    with pytest.raises(ConfigError, match="fraction"):
        attacks.attacker_data(config, 0.0)


@pytest.mark.parametrize("steps", [("shuffle",), ("np",), ("shuffle", "np")])
def test_block_adapter_is_the_identity_and_can_express_the_key(key_file, steps):
    config = _config(key_file, "model.transform.steps=" + ",".join(steps))
    pipeline = classifier.load_pipeline(config)
    x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1), minval=-1.0, maxval=1.0)
    adapter = attacks.BlockAdapter(2, 1, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(adapter(x), x, atol=1e-6)
    matrix = block_matrix(pipeline)  # T(block) = A @ block; the conv computes block @ kernel
    adapter.conv.kernel = nnx.Param(jnp.asarray(matrix.T.reshape(2, 2, 1, 4)))
    np.testing.assert_allclose(adapter(x), pipeline.forward(x), atol=1e-6)


class Memorizer(nnx.Module):
    """A stand-in stolen model: nearest neighbour among owner-transformed images (class logit
    ``10·exp(−d)``, d the squared distance to the closest reference of the class), so only the
    owner's material gives a confident, correct answer on the attacker's images."""

    def __init__(self, references: np.ndarray, labels: np.ndarray, classes: int):
        self.references = nnx.Variable(jnp.asarray(references.reshape(len(references), -1)))
        self.onehot = nnx.Variable(jax.nn.one_hot(jnp.asarray(labels), classes) > 0)

    def __call__(self, x: jax.Array) -> jax.Array:
        flat = x.reshape(x.shape[0], -1)
        d = jnp.sum((flat[:, None, :] - self.references[...][None]) ** 2, axis=-1)  # [N, R]
        masked = jnp.where(self.onehot[...][None], -d[..., None], -jnp.inf)  # [N, R, K]
        return 10.0 * jnp.exp(jnp.max(masked, axis=1))


def test_exhaustive_search_at_block_2_finds_the_owners_material(key_file):
    config = _config(key_file)
    owner = SecretKey.load(key_file)
    data = attacks.attacker_data(config, 0.1, 0)
    references = transformed(classifier.load_pipeline(config), to_float(data.images))
    stolen = Memorizer(references, data.labels, 2)
    row = attacks.search(config, stolen, data, key=owner)
    assert row["candidates"] == 384 and row["kind"] == "search"
    assert "exhaustive" in row["note"] and "= 384" in row["note"]
    assert "owner's material found" in row["note"]
    sampled = attacks.search(config, stolen, data, exhaustive_limit=100, candidates=3, key=owner)
    assert sampled["candidates"] == 3 and "sampled" in sampled["note"]
    assert "not found" in sampled["note"]


@pytest.mark.slow
def test_finetune_scratch_and_estimate_rows_leave_the_stolen_model_alone(key_file):
    config = _config(key_file)
    data = attacks.attacker_data(config, 0.1, 0)
    stolen = classifier.make_classifier(config, nnx.Rngs(0), 2)
    before = jax.tree.map(np.asarray, nnx.state(stolen, nnx.Param))
    rows = [
        attacks.from_scratch(config, data, steps=2),
        attacks.finetune(config, stolen, data, steps=2),
        attacks.estimate(config, stolen, data, steps=2),
    ]
    assert [r["kind"] for r in rows] == ["from_scratch", "finetune", "estimate"]
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 1.0 and row["images"] == 16 and row["steps"] == 2
    after = jax.tree.map(np.asarray, nnx.state(stolen, nnx.Param))
    jax.tree.map(np.testing.assert_array_equal, before, after)
    with pytest.raises(ConfigError, match="steps"):
        attacks.finetune(config, stolen, data, steps=0)


@pytest.mark.slow
def test_cli_attacks_and_evaluate_on_a_tiny_run(key_file, tmp_path, capsys):
    import json

    from egan_jax.cli import main

    workdir = _tiny_run(
        key_file,
        tmp_path,
        "model.transform.steps=shuffle,np,ffx",
        "loss.random_keys=1",
        "loss.near_miss_keys=1",
    )
    assert main(["attack", "search", "--workdir", str(workdir), "--candidates", "2"]) == 0
    assert main(["attack", "prune", "--workdir", str(workdir)]) == 2  # not a classifier attack
    assert main(["evaluate", "--workdir", str(workdir)]) == 0
    report = json.loads((workdir / "report" / "report.json").read_text())
    kinds = [r["kind"] for r in report["rows"]]
    assert kinds.count("search") == kinds.count("from_scratch") == 2  # 1% and 10% of the data
    assert {"authorized", "no_key", "random_key", "near_key"} <= set(kinds)
    search = [r for r in report["rows"] if r["kind"] == "search"]
    assert all("not enumerable" in r["note"] and "sampled" in r["note"] for r in search)
    assert "goal plain images, random and near-miss keys" in capsys.readouterr().out
    stored = (workdir / "report" / "report.md").read_text()
    assert "key search (sampled), 10% data (16 images)" in stored


def test_seed_study_summary_and_bootstrap_interval():
    from egan_jax import classifier_attack_seeds as study

    rows = [
        {"from_scratch": 0.50, "finetune": 0.55, "shuffled_finetune": 0.50},
        {"from_scratch": 0.40, "finetune": 0.44, "shuffled_finetune": 0.41},
        {"from_scratch": 0.60, "finetune": 0.66, "shuffled_finetune": 0.58},
    ]
    s = study.summarize(rows, ("finetune", "shuffled_finetune"))
    np.testing.assert_allclose(s["finetune_gain"]["mean"], 5.0)
    np.testing.assert_allclose(s["shuffled_finetune_gain"]["mean"], -1 / 3, atol=1e-9)
    low, high = s["finetune_gain"]["ci95"]
    assert 3.99 <= low < 5.0 < high <= 6.01 and s["finetune_gain"]["helps"]
    assert not s["shuffled_finetune_gain"]["helps"]  # its interval contains 0
    assert study.interval(np.array([1.0, 2.0, 3.0])) == study.interval(np.array([1.0, 2.0, 3.0]))


def test_shuffled_weights_keep_each_arrays_entries_but_not_their_order(key_file):
    from egan_jax import classifier_attack_seeds as study

    model = classifier.make_classifier(_config(key_file), nnx.Rngs(0), 2)
    probe = study.shuffled(model, 3)
    before = jax.tree.leaves(nnx.state(model, nnx.Param))
    after = jax.tree.leaves(nnx.state(probe, nnx.Param))
    moved = 0
    for a, b in zip(before, after, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_array_equal(np.sort(a.ravel()), np.sort(b.ravel()))
        moved += int(a.size > 1 and len(np.unique(a)) > 1 and not np.array_equal(a, b))
    assert moved > 0
    jax.tree.map(  # the stolen model itself is untouched and the probe is deterministic
        np.testing.assert_array_equal,
        jax.tree.map(np.asarray, nnx.state(study.shuffled(model, 3), nnx.Param)),
        jax.tree.map(np.asarray, nnx.state(probe, nnx.Param)),
    )


@pytest.mark.slow
def test_seed_study_cli_on_a_tiny_run(key_file, tmp_path, capsys):
    import json

    from egan_jax import classifier_attack_seeds as study

    workdir = _tiny_run(key_file, tmp_path)
    argv = ["--workdir", str(workdir), "--seeds", "2", "--steps", "2", "--fraction", "0.1"]
    assert study.main(argv) == 0
    stored = json.loads((workdir / "attacks" / "finetune_seeds.json").read_text())
    assert [r["seed"] for r in stored["rows"]] == [0, 1]
    assert set(stored["rows"][0]) == {
        "seed", "images", "from_scratch", "finetune", "shuffled_finetune"
    }  # fmt: skip
    assert "finetune: mean" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="at least 2"):
        study.seed_study(workdir, seeds=1)
