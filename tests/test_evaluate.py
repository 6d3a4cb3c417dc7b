"""The protection report: summaries, goals, tables, grids, and the whole `egan evaluate` path."""

import jax
import numpy as np
import pytest
from conftest import REPO, TINY_OVERRIDES

from egan_jax import evaluate
from egan_jax.config import load_config
from egan_jax.keys import SecretKey

ROWS = [
    {"name": "correct key", "kind": "authorized", "fd": 10.3},
    {"name": "no key", "kind": "no_key", "fd": 80.0},
    {"name": "random key 0", "kind": "random_key", "fd": 60.0},
    {"name": "random key 1", "kind": "random_key", "fd": 40.0},
    {"name": "near key 0", "kind": "near_key", "fd": 70.0},
]


def test_summary_reports_worst_cases_ratios_and_goals():
    summary = evaluate.summarize(ROWS, baseline_fd=10.0)
    random = summary["kinds"]["random_key"]
    assert random["mean"] == 50.0 and random["worst"] == 40.0
    assert random["sd"] == pytest.approx(np.std([60.0, 40.0], ddof=1))
    assert summary["correct_ratio"] == pytest.approx(1.03)
    assert summary["worst_unauthorized_ratio"] == pytest.approx(4.0)
    goals = list(summary["goals"].values())
    assert goals == [True, False]  # correct key within 5%; a random key only 4x the baseline
    assert "goals" not in evaluate.summarize(ROWS, baseline_fd=None)


def test_markdown_table_and_labelled_grid(tmp_path):
    table = evaluate.markdown_table(
        [*ROWS, {"name": "wm", "kind": "watermark", "fd": None, "note": "logo SSIM 0.9"}], 10.0
    )
    assert "| no key | no_key | 80.00 | 8.00 |  |" in table
    assert "| wm | watermark | – | – | logo SSIM 0.9 |" in table
    previews = {"correct key": np.zeros((8, 8, 8, 1)), "no key": np.ones((8, 8, 8, 1))}
    path = evaluate.save_labelled_grid(previews, tmp_path / "grid.png", scale=2)
    from PIL import Image

    image = np.asarray(Image.open(path))
    assert image.shape[0] == 2 * 2 * (8 + 4)  # two rows of padded 8-px tiles, scaled 2x
    assert image[:, 110:].std() > 0


def test_make_generate_matches_the_baked_in_variants_for_the_feature_lock_design(tmp_path):
    from flax import nnx

    from egan_jax.families import egan_dcgan, get_family
    from egan_jax.train import initial_state
    from egan_jax.unauthorized import UnauthorizedSpec

    config = load_config(
        REPO / "experiments" / "egan_dcgan_digits.py",
        # without the deep lock: keyed variants would run with their own (test_egan_dcgan_deep_lock)
        [*TINY_OVERRIDES, "model.design=feature_lock", "model.deep_lock="],
    )
    graphdef, state = initial_state(get_family("egan_dcgan"), config)
    generator = nnx.merge(graphdef, state)["models"]["generator"]
    key = SecretKey.from_bytes(bytes(32))
    generator.key_lock = egan_dcgan.KeyLock(  # the checkpoint's γ is the owner's
        egan_dcgan.variants(config, key).authorized.material.lock_value()
    )
    vs = egan_dcgan.variants(
        config, key, UnauthorizedSpec(random_keys=0, near_keys=0, near_materials=1)
    )
    generate = evaluate.make_generate(config, generator)
    z = np.asarray(jax.random.normal(jax.random.key(0), (4, config.model.latent_dim)))
    run = nnx.jit(lambda g, z, v: egan_dcgan.generate_variant(g, z, v, config), static_argnums=2)
    for variant in (vs.authorized, *vs.unauthorized):
        expected = np.asarray(run(generator, z, variant))
        np.testing.assert_allclose(generate(variant, z), expected, atol=1e-5)
    assert not np.allclose(generate(vs.authorized, z), generate(vs.unauthorized[-1], z), atol=0.1)
    # the thief's plain model: no hook, no γ
    plain = np.asarray(nnx.jit(lambda g, z: g(z))(generator, z))
    np.testing.assert_allclose(generate(evaluate.plain_variant(), z), plain, atol=1e-5)


def test_watermark_notes_say_whether_each_mark_verifies():
    note = evaluate.watermark_note({"logo_ssim": 0.91, "bit_error_rate": 0.25})
    assert note == "logo SSIM 0.910 (verified), bit error rate 0.250 (NOT verified)"
    assert evaluate.watermark_note({}) == ""
