"""Attacks: exact global pruning, key search, identity-initialised adapters, fine-tune configs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from egan_jax import attacks
from egan_jax.errors import ConfigError
from egan_jax.keys import SecretKey
from egan_jax.transforms.block import BlockShuffleMaterial, block_shuffle


def _tree():
    rng = np.random.default_rng(0)
    return {
        "conv": {
            "kernel": rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
            "bias": rng.normal(size=(4,)).astype(np.float32),
        },
        "linear": {"kernel": rng.normal(size=(10, 7)).astype(np.float32)},
    }


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
def test_global_pruning_zeroes_exactly_the_fraction_of_smallest_kernels(fraction):
    tree = _tree()
    pruned = attacks.prune_tree(tree, fraction)
    total = 3 * 3 * 2 * 4 + 10 * 7
    zeros = sum(int(np.sum(np.asarray(pruned[k]["kernel"]) == 0)) for k in ("conv", "linear"))
    assert zeros == round(fraction * total)
    np.testing.assert_array_equal(pruned["conv"]["bias"], tree["conv"]["bias"])  # rank 1 kept
    kept = np.concatenate(
        [np.abs(np.asarray(pruned[k]["kernel"])).ravel() for k in ("conv", "linear")]
    )
    every = np.concatenate([np.abs(tree[k]["kernel"]).ravel() for k in ("conv", "linear")])
    if 0 < zeros < total:  # global: every survivor is at least as large as every pruned value
        assert kept[kept > 0].min() >= np.sort(every)[zeros - 1]
    assert attacks.sparsity(pruned) == pytest.approx(zeros / total)


def test_pruning_rejects_bad_fractions():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        attacks.prune_tree(_tree(), 1.5)


def test_prune_model_in_place():
    model = nnx.Linear(20, 10, rngs=nnx.Rngs(0))
    attacks.prune_model(model, 0.3)
    assert attacks.sparsity(nnx.state(model, nnx.Param)) == pytest.approx(0.3)


def test_key_search_returns_the_lowest_scoring_candidate():
    best, scores = attacks.key_search(["a", "bb", "c"], lambda c: {"a": 3, "bb": 1, "c": 2}[c])
    assert best == "bb" and scores == [3.0, 1.0, 2.0]


def test_latent_adapter_starts_as_the_identity():
    adapter = attacks.LatentAdapter(6, hidden=8, rngs=nnx.Rngs(0))
    z = jax.random.normal(jax.random.key(0), (3, 6))
    np.testing.assert_allclose(adapter(z), z)


def test_block_adapter_is_identity_at_init_and_can_express_a_block_shuffle():
    x = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3), minval=-1, maxval=1)
    adapter = attacks.BlockAdapter(4, 3, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(adapter(x), x, atol=1e-6)
    material = BlockShuffleMaterial.from_key(SecretKey.from_bytes(bytes(32)), block_size=4)
    n = 4 * 4 * 3
    # output value k of a block reads input value permutation[k]
    weights = np.zeros((n, n), np.float32)
    weights[material.permutation, np.arange(n)] = 1.0
    adapter.conv.kernel[...] = jnp.asarray(weights.reshape(4, 4, 3, n))
    np.testing.assert_allclose(adapter(x), block_shuffle(material, x), atol=1e-6)


def test_finetune_config_follows_the_threat_model():
    from egan_jax.families.egan_dcgan import default_config

    source = default_config()
    attack = attacks.finetune_config(source, "/tmp/stolen", keep_discriminator=False)
    assert attack.family == "egan_attack_dcgan"
    assert attack.optim.learning_rate == pytest.approx(source.optim.learning_rate * 0.1)
    assert attack.train.steps == source.train.steps // 2
    assert attack.model.source_workdir == "/tmp/stolen"
    assert attack.model.data_fraction == 0.1 and not attack.model.keep_discriminator
    scratch = attacks.finetune_config(source, "/tmp/stolen", from_scratch=True)
    assert scratch.model.source_workdir is None
    assert scratch.optim.learning_rate == source.optim.learning_rate
    assert scratch.train == attack.train and scratch.data == attack.data
    overwrite = attacks.finetune_config(source, "/tmp/stolen", overwrite_watermark=True)
    assert overwrite.loss.overwrite_weight > 0
    assert dataclasses.asdict(overwrite.model) == dataclasses.asdict(
        attacks.finetune_config(source, "/tmp/stolen").model
    )
    bold = attacks.finetune_config(source, "/tmp/stolen", lr_scale=1.0)
    assert bold.optim.learning_rate == source.optim.learning_rate
    assert bold.train == attack.train


def test_lr_scale_flag_is_refused_where_it_does_not_apply(tmp_path, capsys):
    from egan_jax.cli import main
    from egan_jax.config import save_config
    from egan_jax.families.egan_dcgan import default_config

    save_config(default_config(), tmp_path / "config.json")
    for argv in (["prune", "--lr-scale", "1"], ["finetune", "--lr-scale", "0"]):
        assert main(["attack", *argv, "--workdir", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "--lr-scale applies to `egan attack finetune`" in err and "must be > 0" in err
    for argv in (["finetune", "--adapter", "sites"], ["prune", "--control"]):
        assert main(["attack", *argv, "--workdir", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "--adapter applies to `egan attack estimate`" in err
    assert "--control applies to `egan attack estimate`" in err
    # an image-family run would have ignored them
    from conftest import REPO

    from egan_jax.config import load_config

    save_config(
        load_config(REPO / "experiments" / "egan_srgan_photos.py"), tmp_path / "config.json"
    )
    assert main(["attack", "estimate", "--control", "--workdir", str(tmp_path)]) != 0
    assert "on a 'egan_srgan' run" in capsys.readouterr().err
    # --adapter sites is the image families' estimate too, and nothing else there
    assert main(["attack", "finetune", "--adapter", "sites", "--workdir", str(tmp_path)]) != 0
    assert "not to `finetune` on a 'egan_srgan' run" in capsys.readouterr().err


def test_attacker_data_subset_is_a_seeded_tenth():
    a = attacks.subset_indices(1437, 0.1, seed=0)
    assert len(a) == 144 and len(set(a)) == 144
    np.testing.assert_array_equal(a, attacks.subset_indices(1437, 0.1, seed=0))
    assert not np.array_equal(a, attacks.subset_indices(1437, 0.1, seed=1))
